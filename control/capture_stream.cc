#include "control/capture_stream.h"

#include <optional>

#include "core/thread_name.h"

namespace sluice::control {

CaptureStream::CaptureStream(capture::LogicalCapture& capture, std::string pipeline,
                             size_t queue_capacity, uint64_t queue_bytes)
    : capture_(capture),
      pipeline_(std::move(pipeline)),
      queue_(queue_capacity, queue_bytes,
             [](const core::Transaction& txn) { return txn.ApproximateBytes(); }) {}

CaptureStream::~CaptureStream() {
  Stop();
  Join();
}

core::Status CaptureStream::Start(core::Lsn resume, core::Lsn end) {
  if (thread_.joinable()) return core::Internal("pipeline " + pipeline_ + ": stream started twice");
  thread_ = std::thread([this, resume, end] {
    core::NameCurrentThread("cap", pipeline_);
    capture_status_ = capture_.Run(
        resume, stop_,
        [this](core::Transaction&& txn) -> core::Status {
          if (!queue_.Push(std::move(txn))) return core::Aborted("pipeline stopping");
          return core::Status::Ok();
        },
        [this] {
          // The source may just have gone idle after the open batch's last transaction: let
          // the consumer look now rather than at the end of its current wait.
          queue_.Wake();
          return core::Status::Ok();
        },
        end);
    queue_.Close();
  });
  return core::Status::Ok();
}

StreamNext CaptureStream::Next(core::Transaction& out, std::chrono::milliseconds wait) {
  std::optional<core::Transaction> item = queue_.PopFor(wait);
  // Closed after the wait gave up: what was pushed before the close is still to be taken.
  if (!item && queue_.closed()) item = queue_.PopFor(std::chrono::milliseconds(0));
  if (item) {
    out = std::move(*item);
    return StreamNext::kFragment;
  }
  return queue_.closed() ? StreamNext::kEnded : StreamNext::kNothingYet;
}

StreamIdle CaptureStream::idle() const {
  const capture::IdlePosition idle = capture_.idle_position();
  return {idle.lsn, idle.transactions_emitted};
}

StreamSourceState CaptureStream::source() const {
  return {core::Lsn(capture_.stats().server_wal_end.load()),
          capture_.stats().source_heard_unix_ms.load()};
}

void CaptureStream::Stop() {
  stop_ = true;
  queue_.Close();
}

void CaptureStream::Join() {
  if (thread_.joinable()) thread_.join();
}

core::Status CaptureStream::Finish() {
  Stop();
  Join();
  if (!capture_status_.ok() && capture_status_.code() != core::StatusCode::kAborted) {
    return capture_status_;
  }
  return capture_.Finish();
}

}  // namespace sluice::control
