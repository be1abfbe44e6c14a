#pragma once

#include "capture/logical_capture.h"
#include "config/config.h"

namespace sluice::control {

// The capture options of one configured pipeline (defaults resolved against the config).
capture::CaptureOptions CaptureOptionsFor(const config::Config& config,
                                          const config::PipelineConfig& pipeline);

// The pipeline named `name`, or the only one when `name` is empty; error names what exists.
core::Result<const config::PipelineConfig*> FindPipeline(const config::Config& config,
                                                         const std::string& name);

}  // namespace sluice::control
