#pragma once

#include <atomic>
#include <set>
#include <string>

#include "apply/sink.h"
#include "config/config.h"
#include "control/pipeline_metrics.h"
#include "core/status.h"
#include "state/checkpoint_store.h"

namespace sluice::control {

// Which tables a copy covers and how.
struct CopyScope {
  // Only these tables ("schema.name" as core::Relation::QualifiedName); empty = every table the
  // publication publishes.
  std::set<std::string> tables;
  // The stream position the snapshot belongs to (the slot's consistent point), recorded with
  // each copied table: the stream skips the table's changes committed before it.
  core::Lsn snapshot_lsn;
  // Empty every target table first, even one with no record of an earlier attempt (the
  // operator asked for the whole pipeline to be copied again).
  bool truncate_all = false;
};

// The initial copy of one pipeline: every table of its publication, read at the slot's exported
// `snapshot` (so copy and stream meet exactly at the slot's consistent point) and written
// through the sink's bulk path, `target.apply.copy_jobs` tables or key ranges in parallel.
// Progress per table (rows, bytes, estimate, done) is kept in the checkpoint store as its
// state::TableCopyRecord (state::TableCopyKey) and mirrored into `metrics`. A table whose
// record exists from an earlier attempt (or a re-copy request) is emptied first. Returns Ok early
// when `stop` is set; the caller then treats the copy as unfinished (it is redone from a new
// snapshot on next start).
core::Status RunInitialCopy(const config::Config& config, const config::PipelineConfig& pipeline,
                            const std::string& snapshot, apply::Sink& sink,
                            state::CheckpointStore& store, PipelineMetrics& metrics,
                            const std::atomic<bool>& stop, const CopyScope& scope);

}  // namespace sluice::control
