#pragma once

#include <atomic>
#include <string>

#include "apply/sink.h"
#include "config/config.h"
#include "control/pipeline_metrics.h"
#include "core/status.h"
#include "state/checkpoint_store.h"

namespace sluice::control {

// The initial copy of one pipeline: every table of its publication, read at the slot's exported
// `snapshot` (so copy and stream meet exactly at the slot's consistent point) and written
// through the sink's bulk path, `target.apply.copy_jobs` tables or key ranges in parallel.
// Progress per table (rows, bytes, estimate, done) is kept in the checkpoint store under
// "copy/<schema>.<table>" and mirrored into `metrics`. Returns Ok early when `stop` is set; the
// caller then treats the copy as unfinished (it is redone from a new snapshot on next start).
core::Status RunInitialCopy(const config::Config& config, const config::PipelineConfig& pipeline,
                            const std::string& snapshot, apply::Sink& sink,
                            state::CheckpointStore& store, PipelineMetrics& metrics,
                            const std::atomic<bool>& stop);

}  // namespace sluice::control
