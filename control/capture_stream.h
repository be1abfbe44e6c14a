#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "capture/logical_capture.h"
#include "control/change_stream.h"
#include "core/bounded_queue.h"

namespace sluice::control {

// The ChangeStream of a logical replication slot: LogicalCapture runs on a thread of its own
// and hands fragments over through a bounded queue (backpressure: capture waits while apply
// is behind by queue_capacity fragments or queue_bytes of changes).
class CaptureStream final : public ChangeStream {
 public:
  // `capture` is Open()ed and outlives the stream; `pipeline` names the capture thread.
  CaptureStream(capture::LogicalCapture& capture, std::string pipeline, size_t queue_capacity,
                uint64_t queue_bytes);
  ~CaptureStream() override;

  CaptureStream(const CaptureStream&) = delete;
  CaptureStream& operator=(const CaptureStream&) = delete;

  core::Status Start(core::Lsn resume, core::Lsn end) override;
  StreamNext Next(core::Transaction& out, std::chrono::milliseconds wait) override;
  size_t backlog() const override { return queue_.size(); }
  StreamIdle idle() const override;
  StreamSourceState source() const override;
  void Acknowledge(core::Lsn lsn) override { capture_.SetDurableLsn(lsn); }
  void Stop() override;
  core::Status Finish() override;

 private:
  void Join();

  capture::LogicalCapture& capture_;
  const std::string pipeline_;
  core::BoundedQueue<core::Transaction> queue_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  core::Status capture_status_;  // written by the thread, read after Join()
};

}  // namespace sluice::control
