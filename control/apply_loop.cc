#include "control/apply_loop.h"

#include "core/failpoint.h"
#include "core/wall_clock.h"

namespace sluice::control {
ApplyLoop::ApplyLoop(ApplyLoopOptions options, ChangeStream& stream, apply::Sink& sink,
                     state::CheckpointStore& store, PipelineMetrics& metrics,
                     DurableWatermark& watermark)
    : options_(std::move(options)),
      stream_(stream),
      sink_(sink),
      store_(store),
      metrics_(metrics),
      watermark_(watermark) {}

core::Status ApplyLoop::Run(core::Lsn resume, core::Lsn end, const std::atomic<bool>& stop) {
  end_ = end;
  durable_ = resume;
  done_ = 0;
  batch_ = Batch{};
  winding_down_ = false;
  stream_stopped_ = false;
  metrics_.durable_lsn = resume.value();
  watermark_.Reset(resume);
  SLUICE_RETURN_IF_ERROR(stream_.Start(resume, end));

  core::Status status = Loop(resume, stop);
  if (batch_.open) sink_.AbortBatch();         // a partial transaction never reaches the target
  metrics_.SetSinkCounters(sink_.Counters());  // also what a failed batch counted
  if (!status.ok()) {
    stream_.Stop();
    return status.WithContext("pipeline " + options_.pipeline);
  }
  return stream_.Finish();
}

core::Status ApplyLoop::Loop(core::Lsn resume, const std::atomic<bool>& stop) {
  while (true) {
    if (!winding_down_) {
      if (stop.load()) {
        // Stopping: the stream ends now; what it delivered is applied up to the last
        // transaction boundary (a huge transaction is not waited for).
        winding_down_ = true;
        StopStream();
      } else if (options_.hooks.wind_down) {
        SLUICE_ASSIGN_OR_RETURN(winding_down_, options_.hooks.wind_down());
      }
    }
    // Asked to wind down: the stream ends at the next transaction boundary, so the open batch
    // commits whole instead of being streamed again.
    if (winding_down_ && !batch_.mid_transaction) StopStream();
    // Nothing waiting: apply is ahead of the stream. Let the sink send what it holds, so the
    // target works during the wait instead of all at the batch's end.
    if (batch_.open && stream_.backlog() == 0) SLUICE_RETURN_IF_ERROR(sink_.StreamPaused());

    core::Transaction txn;
    const StreamNext next = stream_.Next(txn, options_.poll);
    metrics_.source_wal_end = stream_.source().wal_end.value();
    if (next != StreamNext::kFragment) {
      const bool ended = next == StreamNext::kEnded;
      if (batch_.open && !batch_.mid_transaction &&
          (BatchFull() || ended || winding_down_ || SourceIdleAfterBatch())) {
        SLUICE_RETURN_IF_ERROR(CommitBatch());
      }
      if (!batch_.open) {
        if (options_.hooks.on_idle) options_.hooks.on_idle(stream_.source().heard_unix_ms);
        // At the stream's end its position is confirmed at once: the caller waits for it.
        SLUICE_RETURN_IF_ERROR(ConfirmIdlePosition(/*now=*/ended && end_.valid()));
      }
      if (ended || EndReached()) return core::Status::Ok();
      continue;
    }

    if (resume.valid() && txn.commit_lsn.valid() && txn.commit_lsn < resume) {
      if (txn.last_fragment && txn.end_lsn.valid()) ++done_;
      continue;
    }
    if (end_.valid() && txn.commit_lsn.valid() && txn.commit_lsn >= end_) {
      // The first transaction committed at or after the end: everything before the end is
      // delivered, and the open batch holds only whole transactions.
      SLUICE_RETURN_IF_ERROR(CommitBatch());
      if (!EndReached()) {
        SLUICE_RETURN_IF_ERROR(MakeDurable(end_, metrics_.last_commit_time.load()));
      }
      return core::Status::Ok();
    }
    if (options_.hooks.admit) {
      SLUICE_ASSIGN_OR_RETURN(const FragmentVerdict verdict, options_.hooks.admit(txn));
      if (verdict == FragmentVerdict::kRestart) return core::Status::Ok();
    }
    SLUICE_RETURN_IF_ERROR(ApplyFragment(std::move(txn)));
    if (!batch_.mid_transaction && (BatchFull() || winding_down_)) {
      SLUICE_RETURN_IF_ERROR(CommitBatch());
      if (EndReached()) return core::Status::Ok();
    }
  }
}

void ApplyLoop::StopStream() {
  if (stream_stopped_) return;
  stream_stopped_ = true;
  stream_.Stop();
}

core::Status ApplyLoop::ApplyFragment(core::Transaction&& txn) {
  if (!batch_.open) {
    SLUICE_RETURN_IF_ERROR(sink_.BeginBatch());
    limits_ = options_.limits ? options_.limits() : config::ApplyConfig{};
    batch_ = Batch{};
    batch_.open = true;
    batch_.started = Clock::now();
  }
  if (metrics_.oldest_pending_commit_time.load() == 0 && txn.commit_time != 0) {
    metrics_.oldest_pending_commit_time = txn.commit_time;
  }
  batch_.changes += txn.changes.size();
  batch_.bytes += txn.ApproximateBytes();
  // What the batch needs of the transaction, kept before the sink takes it.
  const bool last_fragment = txn.last_fragment;
  const core::Lsn end_lsn = txn.end_lsn;
  const core::PgTimestamp commit_time = txn.commit_time;
  SLUICE_RETURN_IF_ERROR(sink_.Apply(std::move(txn)));
  metrics_.last_progress_unix_ms = core::UnixMillisNow();  // a huge transaction is progress too
  batch_.mid_transaction = !last_fragment;
  if (last_fragment) {
    ++batch_.transactions;
    if (end_lsn.valid()) {
      ++batch_.positioned;
      batch_.end = {end_lsn, commit_time};
    }
  }
  return core::Status::Ok();
}

core::Status ApplyLoop::CommitBatch() {
  if (!batch_.open) return core::Status::Ok();
  const bool positioned = batch_.end.end_lsn.valid();
  if (positioned) {
    SLUICE_RETURN_IF_ERROR(sink_.CommitBatch(batch_.end));
  } else {
    sink_.AbortBatch();  // nothing but position-less messages: nothing to keep
  }
  batch_.open = false;
  if (positioned) {
    // Each failpoint marks a crash between two steps of the sequence (core/failpoint.h).
    SLUICE_RETURN_IF_ERROR(core::Failpoint(core::failpoint::kAfterTargetCommit));
    SLUICE_RETURN_IF_ERROR(MakeDurable(batch_.end.end_lsn, batch_.end.commit_time));
    metrics_.last_commit_time = batch_.end.commit_time;
  }
  done_ += batch_.positioned;
  metrics_.oldest_pending_commit_time = 0;
  metrics_.transactions_applied.fetch_add(batch_.transactions);
  metrics_.changes_applied.fetch_add(batch_.changes);
  metrics_.bytes_applied.fetch_add(batch_.bytes);
  metrics_.batches_committed.fetch_add(1);
  metrics_.RecordBatchLatency(std::chrono::duration<double>(Clock::now() - batch_.started).count());
  metrics_.SetSinkCounters(sink_.Counters());
  if (options_.hooks.on_durable) options_.hooks.on_durable();
  return core::Status::Ok();
}

core::Status ApplyLoop::MakeDurable(core::Lsn lsn, core::PgTimestamp commit_time) {
  SLUICE_RETURN_IF_ERROR(
      store_.SaveCheckpoint(options_.pipeline, {lsn, commit_time, core::UnixMillisNow()}));
  SLUICE_RETURN_IF_ERROR(core::Failpoint(core::failpoint::kAfterCheckpoint));
  stream_.Acknowledge(lsn);
  SLUICE_RETURN_IF_ERROR(core::Failpoint(core::failpoint::kAfterAcknowledge));
  durable_ = lsn;
  metrics_.durable_lsn = lsn.value();
  watermark_.Advance(lsn);
  return core::Status::Ok();
}

core::Status ApplyLoop::ConfirmIdlePosition(bool now) {
  if (batch_.open || stream_.backlog() != 0) return core::Status::Ok();
  if (!now && Clock::now() - last_idle_confirm_ < options_.idle_confirm_interval) {
    return core::Status::Ok();
  }
  const StreamIdle idle = stream_.idle();
  if (!idle.lsn.valid() || idle.lsn <= durable_ || done_ < idle.transactions_delivered) {
    return core::Status::Ok();
  }
  last_idle_confirm_ = Clock::now();
  return MakeDurable(idle.lsn, metrics_.last_commit_time.load());
}

bool ApplyLoop::BatchFull() const {
  return batch_.transactions >= limits_.batch_max_transactions ||
         batch_.bytes >= limits_.batch_max_bytes ||
         Clock::now() - batch_.started >= limits_.batch_max_delay;
}

// The source went idle right after the last transaction the open batch holds (a keepalive past
// it, nothing delivered since): more is not on its way, and waiting out batch_max_delay would
// only add lag. Batches still fill while a backlog streams.
bool ApplyLoop::SourceIdleAfterBatch() const {
  const StreamIdle idle = stream_.idle();
  return batch_.end.end_lsn.valid() && idle.lsn.valid() && idle.lsn >= batch_.end.end_lsn &&
         idle.transactions_delivered == done_ + batch_.positioned;
}

}  // namespace sluice::control
