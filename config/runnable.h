#pragma once

#include "config/config.h"
#include "core/status.h"

// What `sluice run` accepts, decided in one place: the daemon refuses a config this refuses,
// and `sluice check` reports the same refusal with the same message, so `check` never passes a
// config that `run` turns away. Pure; thread-safe.

namespace sluice::config {

// True if `run` starts this pipeline: it has a target (one without is for `sluice tail`).
bool RunStartsPipeline(const PipelineConfig& pipeline);

// Ok if `run` has something to do with `config` and can do all of it: at least one pipeline
// with a target, every target of a type this version applies, and no migrations (not
// implemented yet: running the pipelines while silently ignoring them would mislead).
// Otherwise kInvalidArgument (exit 78) naming the file, the entries concerned and what to do.
core::Status CheckRunnable(const Config& config);

}  // namespace sluice::config
