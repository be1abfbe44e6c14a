#include "config/runnable.h"

#include <string>
#include <vector>

namespace sluice::config {
namespace {

// The target types control::MakeSink builds; keep the two in step.
bool IsAppliedTargetType(TargetType type) {
  switch (type) {
    case TargetType::kPostgres:
      return true;
    case TargetType::kRedis:
    case TargetType::kKafka:
    case TargetType::kNone:
      return false;
  }
  return false;
}

std::string NameList(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

bool RunStartsPipeline(const PipelineConfig& pipeline) {
  return pipeline.target.type != TargetType::kNone;
}

core::Status CheckRunnable(const Config& config) {
  std::vector<std::string> errors;
  size_t started = 0;
  for (size_t i = 0; i < config.pipelines.size(); ++i) {
    const PipelineConfig& p = config.pipelines[i];
    if (!RunStartsPipeline(p)) continue;
    ++started;
    if (!IsAppliedTargetType(p.target.type)) {
      errors.push_back("pipelines[" + std::to_string(i) + "] (" + p.name + "): target type '" +
                       std::string(TargetTypeName(p.target.type)) +
                       "' is not available in this version of sluice (only postgres)");
    }
  }
  if (!config.migrations.empty()) {
    std::vector<std::string> names;
    for (const MigrationConfig& m : config.migrations) names.push_back(m.name);
    errors.push_back("migrations (" + NameList(names) +
                     ") are not implemented in this version of sluice" +
                     (started > 0 ? "; remove the migrations: section to run the pipelines" : ""));
  }
  if (started == 0 && !config.pipelines.empty()) {
    errors.push_back(
        "no pipeline with a target to run (a pipeline without one is for `sluice tail`)");
  } else if (started == 0 && config.migrations.empty()) {
    errors.push_back("no pipeline to run");
  }
  if (errors.empty()) return core::Status::Ok();
  std::string message = "sluice run refuses " + config.source_file + ": ";
  for (size_t i = 0; i < errors.size(); ++i) message += (i > 0 ? "; " : "") + errors[i];
  return core::InvalidArgument(message);
}

}  // namespace sluice::config
