#include "control/sink_factory.h"

#include "apply/postgres_sink.h"

namespace sluice::control {

core::Result<apply::SinkPtr> MakeSink(const config::PipelineConfig& pipeline) {
  const config::TargetConfig& target = pipeline.target;
  if (target.type == "postgres") {
    apply::PostgresSinkOptions options;
    options.pipeline = pipeline.name;
    options.dsn = target.dsn;
    options.session_replication_role = target.apply.session_replication_role;
    options.compact = target.apply.compact;
    options.flush_on_pause_bytes = target.apply.flush_on_pause_bytes;
    options.schema_changes = target.apply.schema_changes == "add_columns"
                                 ? apply::SchemaChangePolicy::kAddColumns
                                 : apply::SchemaChangePolicy::kStop;
    options.connect_timeout = pipeline.source.connect_timeout;
    return apply::SinkPtr(std::make_unique<apply::PostgresSink>(std::move(options)));
  }
  if (target.type == "none") {
    return core::InvalidArgument("pipeline " + pipeline.name +
                                 " has no target; `sluice tail` shows its stream");
  }
  return core::Unsupported("pipeline " + pipeline.name + ": target type '" + target.type +
                           "' is not available in this version of sluice");
}

}  // namespace sluice::control
