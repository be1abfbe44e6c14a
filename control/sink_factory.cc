#include "control/sink_factory.h"

#include "apply/postgres_sink.h"

namespace sluice::control {

core::Result<apply::SinkPtr> MakeSink(const config::PipelineConfig& pipeline) {
  const config::TargetConfig& target = pipeline.target;
  switch (target.type) {
    case config::TargetType::kPostgres: {
      apply::PostgresSinkOptions options;
      options.pipeline = pipeline.name;
      options.dsn = target.dsn;
      options.session_replication_role = target.postgres.session_replication_role;
      options.compact = target.postgres.compact;
      options.flush_on_pause_bytes = target.postgres.flush_on_pause_bytes;
      options.schema_changes = target.postgres.schema_changes == config::SchemaChanges::kAddColumns
                                   ? apply::SchemaChangePolicy::kAddColumns
                                   : apply::SchemaChangePolicy::kStop;
      options.connect_timeout = pipeline.source.connect_timeout;
      return apply::SinkPtr(std::make_unique<apply::PostgresSink>(std::move(options)));
    }
    case config::TargetType::kRedis:
    case config::TargetType::kKafka:
      break;
    case config::TargetType::kNone:
      return core::InvalidArgument("pipeline " + pipeline.name +
                                   " has no target; `sluice tail` shows its stream");
  }
  return core::Unsupported("pipeline " + pipeline.name + ": target type '" +
                           std::string(config::TargetTypeName(target.type)) +
                           "' is not available in this version of sluice");
}

}  // namespace sluice::control
