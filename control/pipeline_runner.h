#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "apply/sink.h"
#include "config/config.h"
#include "control/durable_watermark.h"
#include "control/pipeline_metrics.h"
#include "core/status.h"
#include "state/checkpoint_store.h"

namespace sluice::capture {
class LogicalCapture;
}

namespace sluice::control {

class PipelineState;

using SinkFactory = std::function<core::Result<apply::SinkPtr>()>;

// Where a runner's stream begins and ends. `start`: transactions ending at or before it are
// skipped even when the target's and the checkpoint's positions are behind it (a migration's
// reverse stream starts at the cutover's position). `end`: Run() returns once every transaction
// committed before it is durable on the target, and applies none committed at or after it (the
// target then holds the source as of `end`). Invalid: no bound.
struct StreamBounds {
  core::Lsn start;
  core::Lsn end;
};

// Runs one pipeline: slot and copy bookkeeping, then its stream (capture thread -> bounded
// queue -> apply on this thread -> checkpoint -> feedback to the source).
//
//   * Batches: consecutive source transactions share one target transaction, bounded by
//     transaction count, bytes and delay; a batch only ends after a transaction's last fragment,
//     so the target never shows part of a source transaction.
//   * Durability order: target commit (with the position, atomically) -> RocksDB checkpoint ->
//     acknowledge to the source (which may now recycle WAL), written once in ApplyLoop over a
//     ChangeStream (CaptureStream here). A crash between any two steps replays a suffix that
//     the sink's recorded position makes harmless.
//   * Failures: a retryable error (either server gone, serialization failure, ...) tears the
//     pipeline down and starts it again from the durable position after a capped backoff; a
//     permanent one stops the pipeline and is returned.
//   * The slot: made only for a pipeline with nothing to lose, and dropped only when this state
//     directory made it (PipelineState's "slot" record). Once the pipeline has a position, a
//     missing slot, one that confirmed more than sluice made durable, or one whose WAL is gone
//     is a permanent error telling the operator to run `sluice snapshot`, on every start, until
//     they do.
//   * Initial copy: when `snapshot: initial` and the copy has not completed, the slot is (re)made
//     with an exported snapshot, target tables are emptied and copied at that snapshot, and
//     streaming starts at the slot's consistent point.
//   * Tables that join later (added to `tables:`, created in a "schema.*", added to the
//     publication, or asked for by `sluice snapshot --tables`) are copied before they are
//     streamed, at the snapshot of a temporary slot; the stream then skips their changes
//     committed before that snapshot, which the copy holds.
//
// Threads: Run() on the caller's thread plus the capture thread it owns; metrics(),
// SetApplyLimits() and SetTables() from any.
class PipelineRunner {
 public:
  PipelineRunner(const config::Config& config, const config::PipelineConfig& pipeline,
                 state::CheckpointStore& store, SinkFactory make_sink, StreamBounds bounds = {});
  ~PipelineRunner();

  // Until `stop` (then finishes the in-flight batch, checkpoints, confirms) or a permanent error.
  core::Status Run(const std::atomic<bool>& stop);

  // Everything Run() does before it streams (slot checks, a pending `sluice snapshot`, the
  // initial copy, copies of tables that joined), then returns. For `sluice snapshot`.
  core::Status Prepare(const std::atomic<bool>& stop);

  const PipelineMetrics& metrics() const { return metrics_; }

  // True once the stream is durable on the target up to `lsn` (applied, checkpointed and
  // acknowledged); false when `timeout` passes first. Any thread.
  bool WaitUntilDurable(core::Lsn lsn, std::chrono::milliseconds timeout) const;

  // Batching limits take effect from the next batch (SIGHUP reload). Thread-safe.
  void SetApplyLimits(const config::ApplyConfig& limits);
  // New table patterns (SIGHUP reload): the pipeline ends its batch, adds them to the
  // publication and copies the new tables before it streams again. Thread-safe.
  void SetTables(std::vector<std::string> tables);
  const config::PipelineConfig& pipeline() const { return pipeline_; }

 private:
  // What streaming starts from, once Prepare() is done.
  struct Start {
    std::unique_ptr<capture::LogicalCapture> capture;
    core::Lsn resume;  // skip transactions ending at or before it
    // Tables copied later than `resume`: their changes in transactions committed before this
    // position are in the copy.
    std::map<std::string, core::Lsn> table_starts;
    std::set<std::string> known_tables;  // copied or streamed from the start ("schema.name")
    bool stopped = false;                // stop was requested during a copy
  };

  core::Status RunOnce(const std::atomic<bool>& stop);
  core::Result<Start> PrepareStream(const std::atomic<bool>& stop);
  core::Status Stream(Start start, const std::atomic<bool>& stop);
  // `sluice snapshot` without --tables: drops the slot (whoever made it, unless in use) and
  // forgets the position and every table's copy, so the pipeline starts over from a new slot.
  core::Status StartOver(PipelineState& state);
  // Copies `tables` at the snapshot of a temporary slot; their records then say where their
  // stream starts.
  core::Status CopyTables(const std::set<std::string>& tables, const std::atomic<bool>& stop);
  // "run: sluice snapshot ...": what every slot refusal ends with.
  std::string SnapshotRemedy() const;

  // The last error, kept in the store (state::PipelineErrorRecord) until the pipeline succeeds
  // again.
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
  std::vector<std::string> CurrentTables() const;

  const StreamBounds bounds_;
  PipelineMetrics metrics_;
  DurableWatermark durable_;
  bool error_recorded_ = false;   // the store holds a last error; Run()'s thread only
  mutable std::mutex limits_mu_;  // guards limits_ and tables_
  config::ApplyConfig limits_;
  std::vector<std::string> tables_;
  // Set when the stream should end at the next transaction boundary and start again through
  // PrepareStream (tables changed); cleared when it does.
  std::atomic<bool> restart_{false};
};

}  // namespace sluice::control
