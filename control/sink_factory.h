#pragma once

#include "apply/sink.h"
#include "config/config.h"
#include "core/status.h"

namespace sluice::control {

// The sink a pipeline's target section describes (postgres today; redis and kafka to come).
core::Result<apply::SinkPtr> MakeSink(const config::PipelineConfig& pipeline);

}  // namespace sluice::control
