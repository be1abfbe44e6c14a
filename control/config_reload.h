#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.h"

namespace sluice::control {

// What a SIGHUP may change in a running daemon, and what it may not. Log settings and the
// batching limits of existing pipelines apply at once; a pipeline's tables at its next
// transaction boundary (new ones are copied before they are streamed); anything else (servers,
// slots, tables, new or removed pipelines, the state directory, ...) needs a restart and is
// refused, naming the key, so an operator never believes a change took effect when it did not.
struct ReloadPlan {
  std::string log_level;   // new level, or empty when unchanged
  std::string log_format;  // new format, or empty when unchanged
  // Pipeline name -> its new apply limits (only pipelines whose limits changed).
  std::map<std::string, config::ApplyConfig> apply_limits;
  // Pipeline name -> its new source.tables (only pipelines whose tables changed).
  std::map<std::string, std::vector<std::string>> tables;
  std::vector<std::string> refused;  // key paths that changed but need a restart
};

ReloadPlan PlanReload(const config::Config& running, const config::Config& fresh);

}  // namespace sluice::control
