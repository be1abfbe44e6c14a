#include "control/pipeline_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "capture/logical_capture.h"
#include "control/capture_setup.h"
#include "control/initial_copy.h"
#include "control/pipeline_error_record.h"
#include "core/bounded_queue.h"
#include "core/pg_time.h"
#include "core/thread_name.h"

namespace sluice::control {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kSnapshotKey[] = "snapshot";
constexpr char kSnapshotDone[] = "done";

int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

size_t FragmentBytes(const core::Transaction& txn) {
  size_t bytes = 0;
  for (const auto& change : txn.changes) bytes += change.ApproximateBytes();
  return bytes;
}

// One target transaction in the making.
struct Batch {
  bool open = false;
  bool mid_transaction = false;  // a transaction's last fragment is still to come
  size_t transactions = 0;
  size_t positioned = 0;  // transactions with an end LSN (what capture counts as emitted)
  size_t changes = 0;
  uint64_t bytes = 0;
  Clock::time_point started;
  apply::AppliedPosition end;  // last complete transaction in the batch
};

}  // namespace

const char* PipelinePhaseName(PipelinePhase phase) {
  switch (phase) {
    case PipelinePhase::kStarting:
      return "starting";
    case PipelinePhase::kCopying:
      return "copying";
    case PipelinePhase::kStreaming:
      return "streaming";
    case PipelinePhase::kRetrying:
      return "retrying";
    case PipelinePhase::kStopped:
      return "stopped";
    case PipelinePhase::kFailed:
      return "failed";
  }
  return "unknown";
}

PipelineRunner::PipelineRunner(const config::Config& config, const config::PipelineConfig& pipeline,
                               state::CheckpointStore& store, SinkFactory make_sink)
    : config_(config),
      pipeline_(pipeline),
      store_(store),
      make_sink_(std::move(make_sink)),
      limits_(pipeline.target.apply) {}

void PipelineRunner::SetApplyLimits(const config::ApplyConfig& limits) {
  std::lock_guard lock(limits_mu_);
  limits_ = limits;
}

config::ApplyConfig PipelineRunner::CurrentLimits() const {
  std::lock_guard lock(limits_mu_);
  return limits_;
}

PipelineRunner::~PipelineRunner() = default;

void PipelineRunner::RecordError(const core::Status& status) {
  metrics_.SetLastError(status.message());
  const PipelineErrorRecord record{status.message(), UnixMillisNow(), !status.retryable()};
  error_recorded_ = true;  // cleared at the next success, stored or not
  if (core::Status st = store_.Put(pipeline_.name, kLastErrorKey, EncodePipelineError(record));
      !st.ok()) {
    spdlog::warn("pipeline {}: cannot keep the last error in the state store: {}", pipeline_.name,
                 st.message());
  }
}

void PipelineRunner::LoadRecordedError() {
  auto stored = store_.Get(pipeline_.name, kLastErrorKey);
  if (!stored.ok() || !stored->has_value()) return;
  error_recorded_ = true;  // whatever it holds goes at the next success
  if (auto record = DecodePipelineError(**stored); record.ok()) {
    metrics_.SetLastError(record->message, record->at_unix_ms);
  }
}

void PipelineRunner::NoteProgress(bool success) {
  metrics_.last_progress_unix_ms = UnixMillisNow();
  if (!success || !error_recorded_) return;
  if (core::Status st = store_.Delete(pipeline_.name, kLastErrorKey); !st.ok()) {
    spdlog::warn("pipeline {}: cannot clear the last error: {}", pipeline_.name, st.message());
    return;
  }
  error_recorded_ = false;
  metrics_.SetLastError("");
  spdlog::info("pipeline {}: making progress again; last error cleared", pipeline_.name);
}

void PipelineRunner::NoteIdle(int64_t source_heard_unix_ms) {
  // An idle loop that heard nothing is no progress: a hung source must stop the watchdog.
  if (source_heard_unix_ms <= metrics_.last_progress_unix_ms.load()) return;
  NoteProgress(/*success=*/true);
  metrics_.last_progress_unix_ms = source_heard_unix_ms;
}

core::Status PipelineRunner::Run(const std::atomic<bool>& stop) {
  auto backoff = std::chrono::milliseconds(250);
  constexpr auto kMaxBackoff = std::chrono::milliseconds(10000);
  LoadRecordedError();  // shown until this run succeeds
  while (!stop.load()) {
    core::Status status = RunOnce(stop);
    if (status.ok() || stop.load()) break;
    // Some steps (connecting, preparing the source) report without the pipeline's name.
    const std::string where = "pipeline " + pipeline_.name;
    if (status.message().rfind(where + ":", 0) != 0) status = status.WithContext(where);
    metrics_.errors.fetch_add(1);
    RecordError(status);
    if (!status.retryable()) {
      metrics_.phase = PipelinePhase::kFailed;
      return status;
    }
    metrics_.phase = PipelinePhase::kRetrying;
    spdlog::warn("pipeline {}: {}; retrying in {} ms", pipeline_.name, status.message(),
                 backoff.count());
    const auto until = Clock::now() + backoff;
    while (!stop.load() && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
  metrics_.phase = PipelinePhase::kStopped;
  return core::Status::Ok();
}

core::Status PipelineRunner::RunOnce(const std::atomic<bool>& stop) {
  const std::string where = "pipeline " + pipeline_.name;
  metrics_.phase = PipelinePhase::kStarting;
  // One sink for every attempt: Open() reconnects, and what the sink learned about the target
  // (tables that need upserts) stays.
  if (!sink_) {
    SLUICE_ASSIGN_OR_RETURN(sink_, make_sink_());
  }
  apply::Sink* sink = sink_.get();
  SLUICE_ASSIGN_OR_RETURN(apply::AppliedPosition applied, sink->Open());
  SLUICE_ASSIGN_OR_RETURN(auto checkpoint, store_.LoadCheckpoint(pipeline_.name));

  capture::CaptureOptions capture_options = CaptureOptionsFor(config_, pipeline_);
  SLUICE_ASSIGN_OR_RETURN(auto capture, capture::LogicalCapture::Open(capture_options));

  SLUICE_ASSIGN_OR_RETURN(auto snapshot_state, store_.Get(pipeline_.name, kSnapshotKey));
  const bool copy_needed = pipeline_.snapshot == "initial" && snapshot_state != kSnapshotDone;
  if (copy_needed) {
    if (!capture->slot_created()) {
      // An earlier copy did not finish (or the slot predates this state directory): its
      // snapshot is gone, so start over with a fresh slot and a fresh snapshot.
      spdlog::info("{}: initial copy incomplete; recreating slot {} for a new snapshot", where,
                   capture_options.slot);
      capture.reset();
      SLUICE_RETURN_IF_ERROR(capture::LogicalCapture::DropSlot(capture_options));
      SLUICE_ASSIGN_OR_RETURN(capture, capture::LogicalCapture::Open(capture_options));
    }
    metrics_.phase = PipelinePhase::kCopying;
    SLUICE_RETURN_IF_ERROR(RunInitialCopy(config_, pipeline_, capture->exported_snapshot(), *sink,
                                          store_, metrics_, stop));
    if (stop.load()) return core::Status::Ok();  // copy interrupted: redone on next start
    // The copy holds everything up to the consistent point; the stream starts there.
    SLUICE_RETURN_IF_ERROR(
        store_.SaveCheckpoint(pipeline_.name, {capture->consistent_point(), 0, UnixMillisNow()}));
    SLUICE_RETURN_IF_ERROR(store_.Put(pipeline_.name, kSnapshotKey, kSnapshotDone));
    checkpoint = state::Checkpoint{capture->consistent_point(), 0, UnixMillisNow()};
  } else if (pipeline_.snapshot == "never" && snapshot_state != kSnapshotDone) {
    SLUICE_RETURN_IF_ERROR(store_.Put(pipeline_.name, kSnapshotKey, kSnapshotDone));
  }

  // The target's own record is the truth for what it holds; the RocksDB checkpoint can only be
  // behind it (a crash between target commit and checkpoint) or carry the copy's end.
  core::Lsn resume = applied.end_lsn;
  if (checkpoint && checkpoint->durable_lsn > resume) resume = checkpoint->durable_lsn;
  metrics_.durable_lsn = resume.value();
  spdlog::info("{}: streaming from {}", where,
               resume.valid() ? resume.ToString() : std::string("the slot's position"));

  metrics_.phase = PipelinePhase::kStreaming;
  core::BoundedQueue<core::Transaction> queue(pipeline_.capture.queue_capacity);
  std::atomic<bool> capture_stop{false};
  core::Status capture_status;
  std::thread capture_thread([&] {
    core::NameCurrentThread("cap", pipeline_.name);
    capture_status = capture->Run(
        resume, capture_stop,
        [&](core::Transaction&& txn) -> core::Status {
          if (!queue.Push(std::move(txn))) return core::Aborted("pipeline stopping");
          return core::Status::Ok();
        },
        [&] {
          metrics_.source_wal_end = capture->stats().server_wal_end.load();
          // The source may just have gone idle after the open batch's last transaction: let
          // apply look now rather than at the end of its current wait.
          queue.Wake();
          return core::Status::Ok();
        });
    queue.Close();
  });

  config::ApplyConfig limits = CurrentLimits();
  Batch batch;
  core::Status apply_status;
  uint64_t done = 0;  // positioned transactions durable on the target (or skipped as applied)
  core::Lsn durable = resume;
  Clock::time_point last_idle_confirm;

  auto commit = [&]() -> core::Status {
    if (!batch.open) return core::Status::Ok();
    if (batch.end.end_lsn.valid()) {
      SLUICE_RETURN_IF_ERROR(sink->CommitBatch(batch.end));
    } else {
      sink->AbortBatch();  // nothing but position-less messages: nothing to keep
    }
    batch.open = false;
    if (batch.end.end_lsn.valid()) {
      SLUICE_RETURN_IF_ERROR(store_.SaveCheckpoint(
          pipeline_.name, {batch.end.end_lsn, batch.end.commit_time, UnixMillisNow()}));
      capture->SetDurableLsn(batch.end.end_lsn);
      durable = batch.end.end_lsn;
      metrics_.durable_lsn = batch.end.end_lsn.value();
      metrics_.last_commit_time = batch.end.commit_time;
    }
    done += batch.positioned;
    metrics_.oldest_pending_commit_time = 0;
    metrics_.transactions_applied.fetch_add(batch.transactions);
    metrics_.changes_applied.fetch_add(batch.changes);
    metrics_.bytes_applied.fetch_add(batch.bytes);
    metrics_.batches_committed.fetch_add(1);
    metrics_.RecordBatchLatency(
        std::chrono::duration<double>(Clock::now() - batch.started).count());
    metrics_.SetSinkCounters(sink->Counters());
    NoteProgress(/*success=*/true);
    return core::Status::Ok();
  };
  // Idle: everything emitted is durable, so the source's decoded position can be confirmed
  // too (at most once a second: each confirmation is a synced checkpoint write).
  auto confirm_idle_position = [&]() -> core::Status {
    if (batch.open || queue.size() != 0) return core::Status::Ok();
    if (Clock::now() - last_idle_confirm < std::chrono::seconds(1)) return core::Status::Ok();
    const capture::IdlePosition idle = capture->idle_position();
    if (!idle.lsn.valid() || idle.lsn <= durable || done < idle.transactions_emitted) {
      return core::Status::Ok();
    }
    last_idle_confirm = Clock::now();
    SLUICE_RETURN_IF_ERROR(store_.SaveCheckpoint(
        pipeline_.name, {idle.lsn, metrics_.last_commit_time.load(), UnixMillisNow()}));
    capture->SetDurableLsn(idle.lsn);
    durable = idle.lsn;
    metrics_.durable_lsn = idle.lsn.value();
    return core::Status::Ok();
  };
  auto batch_full = [&] {
    return batch.transactions >= limits.batch_max_transactions ||
           batch.bytes >= limits.batch_max_bytes ||
           Clock::now() - batch.started >= limits.batch_max_delay;
  };
  // The source went idle right after the last transaction the open batch holds (a keepalive
  // past it, nothing emitted since): more is not on its way, and waiting out batch_max_delay
  // would only add lag. Batches still fill while a backlog streams.
  auto source_idle_after_batch = [&] {
    const capture::IdlePosition idle = capture->idle_position();
    return batch.end.end_lsn.valid() && idle.lsn.valid() && idle.lsn >= batch.end.end_lsn &&
           idle.transactions_emitted == done + batch.positioned;
  };

  while (true) {
    if (stop.load()) capture_stop = true;
    // Nothing queued: the apply side is ahead of the stream. Let the sink send what it holds,
    // so the target works during the wait instead of all at the batch's end.
    if (batch.open && queue.size() == 0) {
      apply_status = sink->StreamPaused();
      if (!apply_status.ok()) break;
    }
    auto item = queue.PopFor(std::chrono::milliseconds(20));
    metrics_.source_wal_end = capture->stats().server_wal_end.load();
    if (!item) {
      if (batch.open && !batch.mid_transaction &&
          (batch_full() || queue.closed() || capture_stop.load() || source_idle_after_batch())) {
        apply_status = commit();
        if (!apply_status.ok()) break;
      }
      if (!batch.open) {
        NoteIdle(capture->stats().source_heard_unix_ms.load());
        apply_status = confirm_idle_position();
        if (!apply_status.ok()) break;
      }
      if (queue.closed()) break;
      continue;
    }
    core::Transaction& txn = *item;
    if (resume.valid() && txn.commit_lsn.valid() && txn.commit_lsn < resume) {
      if (txn.last_fragment && txn.end_lsn.valid()) ++done;
      continue;
    }
    if (!batch.open) {
      apply_status = sink->BeginBatch();
      if (!apply_status.ok()) break;
      limits = CurrentLimits();
      batch = Batch{};
      batch.open = true;
      batch.started = Clock::now();
    }
    if (metrics_.oldest_pending_commit_time.load() == 0 && txn.commit_time != 0) {
      metrics_.oldest_pending_commit_time = txn.commit_time;
    }
    batch.changes += txn.changes.size();
    batch.bytes += FragmentBytes(txn);
    apply_status = sink->Apply(std::move(txn));  // takes only its changes; the rest stays
    if (!apply_status.ok()) break;
    metrics_.last_progress_unix_ms = UnixMillisNow();  // a huge transaction is progress too
    batch.mid_transaction = !txn.last_fragment;
    if (txn.last_fragment) {
      ++batch.transactions;
      if (txn.end_lsn.valid()) {
        ++batch.positioned;
        batch.end = {txn.end_lsn, txn.commit_time};
      }
    }
    if (!batch.mid_transaction && (batch_full() || capture_stop.load())) {
      apply_status = commit();
      if (!apply_status.ok()) break;
    }
  }

  if (batch.open) sink->AbortBatch();          // a partial transaction never reaches the target
  metrics_.SetSinkCounters(sink->Counters());  // also what a failed batch counted
  capture_stop = true;
  queue.Close();
  capture_thread.join();
  if (!apply_status.ok()) return apply_status.WithContext(where);
  if (!capture_status.ok() && capture_status.code() != core::StatusCode::kAborted) {
    return capture_status;
  }
  return capture->Finish();
}

}  // namespace sluice::control
