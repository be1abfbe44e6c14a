#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "apply/sink.h"
#include "config/config.h"
#include "control/change_stream.h"
#include "control/durable_watermark.h"
#include "control/pipeline_metrics.h"
#include "core/status.h"
#include "state/checkpoint_store.h"

namespace sluice::control {

enum class FragmentVerdict {
  kApply,    // apply it (the hook may have dropped some of its changes)
  kRestart,  // end now: the open batch is dropped and streamed again after the restart
};

// What the loop asks of the pipeline around it. Every hook is optional.
struct ApplyLoopHooks {
  // Before each fragment is applied.
  std::function<core::Result<FragmentVerdict>(core::Transaction&)> admit;
  // Asked every round: true ends the stream at the next transaction boundary, after the open
  // batch commits (tables changed, a restart wanted).
  std::function<core::Result<bool>()> wind_down;
  // A batch committed (durable when it carried a position).
  std::function<void()> on_durable;
  // Idle with nothing open; the source was last heard at the given Unix ms.
  std::function<void(int64_t)> on_idle;
};

struct ApplyLoopOptions {
  std::string pipeline;  // names the checkpoint and every error
  // Batching limits, read at the start of each batch (a SIGHUP may change them).
  std::function<config::ApplyConfig()> limits;
  ApplyLoopHooks hooks;
  // How often an idle stream's position is checkpointed and acknowledged at most (each is a
  // synced write).
  std::chrono::milliseconds idle_confirm_interval{1000};
  // How long one wait for the stream lasts before the loop looks around (stop, hooks, batch
  // age).
  std::chrono::milliseconds poll{20};
};

// The durability sequence, written once for every stream and every target:
//
//   fragments -> Sink batch (many source transactions, never part of one) -> target commit
//   (with the position, atomically) -> checkpoint -> acknowledge to the stream
//
// A crash between any two steps replays a suffix the sink's recorded position makes harmless;
// nothing is acknowledged that is not durable on the target. Batches end at a transaction
// boundary once they reach the limits (transactions, bytes, age), when the source goes idle
// right after the batch's last transaction, or when the loop winds down. An idle stream's
// position is confirmed once everything delivered before it is durable.
//
// Threads: Run() on one thread; the watermark from any.
class ApplyLoop {
 public:
  ApplyLoop(ApplyLoopOptions options, ChangeStream& stream, apply::Sink& sink,
            state::CheckpointStore& store, PipelineMetrics& metrics, DurableWatermark& watermark);

  // Starts the stream after `resume` and applies until `stop`, the stream ends, a hook ends it,
  // an error, or `end` (invalid: none): then every transaction committed before `end` is
  // durable, none committed at or after it is applied, and `end` itself is checkpointed and
  // acknowledged (the state of the source "as of end"). The open batch commits on every
  // graceful end; a partial transaction never reaches the target.
  core::Status Run(core::Lsn resume, core::Lsn end, const std::atomic<bool>& stop);

 private:
  using Clock = std::chrono::steady_clock;

  // One target transaction in the making.
  struct Batch {
    bool open = false;
    bool mid_transaction = false;  // a transaction's last fragment is still to come
    size_t transactions = 0;
    size_t positioned = 0;  // transactions with an end LSN (what the stream counts)
    size_t changes = 0;
    uint64_t bytes = 0;
    Clock::time_point started;
    apply::AppliedPosition end;  // last complete transaction in the batch
  };

  core::Status Loop(core::Lsn resume, const std::atomic<bool>& stop);
  void StopStream();
  core::Status ApplyFragment(core::Transaction&& txn);
  core::Status CommitBatch();
  // Checkpoint, then acknowledge: the last two steps of the sequence.
  core::Status MakeDurable(core::Lsn lsn, core::PgTimestamp commit_time);
  core::Status ConfirmIdlePosition(bool now);
  bool BatchFull() const;
  bool SourceIdleAfterBatch() const;
  bool EndReached() const { return end_.valid() && durable_ >= end_; }

  const ApplyLoopOptions options_;
  ChangeStream& stream_;
  apply::Sink& sink_;
  state::CheckpointStore& store_;
  PipelineMetrics& metrics_;
  DurableWatermark& watermark_;

  config::ApplyConfig limits_;
  Batch batch_;
  core::Lsn end_;
  core::Lsn durable_;
  uint64_t done_ = 0;  // positioned transactions durable on the target (or skipped as applied)
  Clock::time_point last_idle_confirm_;
  bool winding_down_ = false;  // the loop ends at the next transaction boundary
  bool stream_stopped_ = false;
};

}  // namespace sluice::control
