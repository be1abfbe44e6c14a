#include "control/capture_setup.h"

namespace sluice::control {

capture::CaptureOptions CaptureOptionsFor(const config::Config& config,
                                          const config::PipelineConfig& pipeline) {
  capture::CaptureOptions o;
  o.pipeline = pipeline.name;
  o.dsn = pipeline.source.dsn;
  o.slot = pipeline.source.slot;
  o.publication = pipeline.source.publication;
  o.tables = pipeline.source.tables;
  o.create_publication = pipeline.source.create_publication;
  o.protocol_version = pipeline.source.protocol_version;
  o.streaming = pipeline.source.streaming;
  o.binary = pipeline.source.binary;
  o.status_interval = pipeline.source.status_interval;
  o.connect_timeout = pipeline.source.connect_timeout;
  o.receive_timeout = pipeline.source.receive_timeout;
  o.assembler.memory_limit_bytes = pipeline.capture.memory_limit_bytes;
  o.assembler.spill_dir = pipeline.capture.spill_dir.empty()
                              ? config.state_dir + "/spill/" + pipeline.name
                              : pipeline.capture.spill_dir;
  o.assembler.max_fragment_changes = pipeline.capture.max_fragment_changes;
  o.assembler.max_fragment_bytes = pipeline.capture.max_fragment_bytes;
  o.assembler.skip_origins.insert(pipeline.source.skip_origins.begin(),
                                  pipeline.source.skip_origins.end());
  return o;
}

core::Result<const config::PipelineConfig*> FindPipeline(const config::Config& config,
                                                         const std::string& name) {
  std::string known;
  for (const auto& p : config.pipelines) {
    if (p.name == name || (name.empty() && config.pipelines.size() == 1)) return &p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  if (name.empty()) {
    return core::InvalidArgument(config.source_file + " has " +
                                 std::to_string(config.pipelines.size()) +
                                 " pipelines; name one with --pipeline (" + known + ")");
  }
  return core::InvalidArgument("no pipeline named '" + name + "' in " + config.source_file +
                               " (pipelines: " + known + ")");
}

}  // namespace sluice::control
