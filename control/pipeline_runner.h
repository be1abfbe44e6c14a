#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "apply/sink.h"
#include "config/config.h"
#include "control/pipeline_metrics.h"
#include "core/status.h"
#include "state/checkpoint_store.h"

namespace sluice::control {

using SinkFactory = std::function<core::Result<apply::SinkPtr>()>;

// Runs one pipeline: capture thread -> bounded queue -> apply (this thread) -> checkpoint ->
// feedback to the source.
//
//   * Batches: consecutive source transactions share one target transaction, bounded by
//     transaction count, bytes and delay; a batch only ends after a transaction's last fragment,
//     so the target never shows part of a source transaction.
//   * Durability order: target commit (with the position, atomically) -> RocksDB checkpoint ->
//     SetDurableLsn (the source may now recycle WAL). A crash between any two steps replays a
//     suffix that the sink's recorded position makes harmless.
//   * Failures: a retryable error (either server gone, serialization failure, ...) tears the
//     pipeline down and starts it again from the durable position after a capped backoff; a
//     permanent one stops the pipeline and is returned.
//   * Initial copy: when `snapshot: initial` and the copy has not completed, the slot is (re)made
//     with an exported snapshot, target tables are emptied and copied at that snapshot, and
//     streaming starts at the slot's consistent point.
//
// Threads: Run() on the caller's thread plus one capture thread it owns; metrics() from any.
class PipelineRunner {
 public:
  PipelineRunner(const config::Config& config, const config::PipelineConfig& pipeline,
                 state::CheckpointStore& store, SinkFactory make_sink);
  ~PipelineRunner();

  // Until `stop` (then finishes the in-flight batch, checkpoints, confirms) or a permanent error.
  core::Status Run(const std::atomic<bool>& stop);

  const PipelineMetrics& metrics() const { return metrics_; }

  // Batching limits take effect from the next batch (SIGHUP reload). Thread-safe.
  void SetApplyLimits(const config::ApplyConfig& limits);
  const config::PipelineConfig& pipeline() const { return pipeline_; }

 private:
  core::Status RunOnce(const std::atomic<bool>& stop);

  // The last error, kept in the store (PipelineErrorRecord) until the pipeline succeeds again.
  void RecordError(const core::Status& status);
  void LoadRecordedError();
  // Progress for the watchdog and lag. A success (a batch durable) also clears a recorded error.
  void NoteProgress(bool success);
  // Idle with everything handed over durable: current as of the source's last word at
  // `source_heard_unix_ms`. Progress (and a success) only when the source spoke since.
  void NoteIdle(int64_t source_heard_unix_ms);

  const config::Config& config_;
  const config::PipelineConfig& pipeline_;
  state::CheckpointStore& store_;
  SinkFactory make_sink_;
  apply::SinkPtr sink_;  // made on the first attempt, reopened by each
  config::ApplyConfig CurrentLimits() const;

  PipelineMetrics metrics_;
  bool error_recorded_ = false;   // the store holds a last error; Run()'s thread only
  mutable std::mutex limits_mu_;  // guards limits_
  config::ApplyConfig limits_;
};

}  // namespace sluice::control
