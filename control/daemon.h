#pragma once

#include <atomic>
#include <functional>

#include "config/config.h"
#include "core/status.h"

namespace sluice::control {

// `sluice run`: every pipeline of the config that has a target, each on its own thread, until
// `stop`. A pipeline that fails permanently stops alone (its error is logged and kept); the
// others go on. Returns the first permanent failure once every pipeline has ended, else Ok.
//
// When `reload` becomes true (SIGHUP) the daemon calls `load_config` and applies what can change
// safely (log settings through `apply_logging`, batching limits), logs what it refused and why,
// and clears the flag.
struct ReloadHooks {
  std::atomic<bool>* reload = nullptr;
  std::function<core::Result<config::Config>()> load_config;
  std::function<core::Status(const std::string& level, const std::string& format)> apply_logging;
};
core::Status RunDaemon(const config::Config& config, const std::atomic<bool>& stop,
                       const ReloadHooks& hooks = {});

}  // namespace sluice::control
