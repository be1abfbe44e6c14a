#pragma once

// A scripted ChangeStream for unit tests of what consumes one (header only; production code
// never includes this).

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "control/change_stream.h"

namespace sluice::control::testing {

class FakeChangeStream final : public ChangeStream {
 public:
  struct Idle {
    core::Lsn lsn;  // the source decoded this far with nothing open
  };
  using Event = std::variant<core::Transaction, Idle>;

  // `events` are delivered in order, one per Next(); once they are out the stream ends when
  // `ends`, else it stays quiet until stopped.
  FakeChangeStream(std::vector<Event> events, bool ends) : ends_(ends) {
    for (Event& event : events) events_.push_back(std::move(event));
  }

  // Called with each acknowledged position, before it is recorded.
  std::function<void(core::Lsn)> on_acknowledge;

  core::Status Start(core::Lsn resume, core::Lsn end) override {
    started_ = true;
    resume_ = resume;
    end_ = end;
    return core::Status::Ok();
  }

  StreamNext Next(core::Transaction& out, std::chrono::milliseconds wait) override {
    while (!stopped_ && !events_.empty()) {
      Event event = std::move(events_.front());
      events_.pop_front();
      if (auto* idle = std::get_if<Idle>(&event)) {
        std::lock_guard lock(mu_);
        idle_ = {idle->lsn, delivered_};
        if (end_.valid() && idle->lsn >= end_) stopped_ = true;
        return StreamNext::kNothingYet;
      }
      core::Transaction& txn = std::get<core::Transaction>(event);
      // As a slot does: nothing that ends at or before the resume position again.
      if (resume_.valid() && txn.end_lsn.valid() && txn.end_lsn <= resume_) continue;
      const bool whole = txn.last_fragment && txn.end_lsn.valid();
      if (whole) {
        std::lock_guard lock(mu_);
        ++delivered_;
        delivered_ends_.push_back(txn.end_lsn);
        if (end_.valid() && txn.end_lsn >= end_) stopped_ = true;  // as capture does
      }
      out = std::move(txn);
      return StreamNext::kFragment;
    }
    if (stopped_ || ends_) return StreamNext::kEnded;
    std::this_thread::sleep_for(wait);  // a quiet source
    return StreamNext::kNothingYet;
  }

  size_t backlog() const override { return events_.size(); }

  StreamIdle idle() const override {
    std::lock_guard lock(mu_);
    return idle_;
  }
  StreamSourceState source() const override { return {}; }

  void Acknowledge(core::Lsn lsn) override {
    if (on_acknowledge) on_acknowledge(lsn);
    std::lock_guard lock(mu_);
    acknowledged_.push_back(lsn);
  }
  void Stop() override { stopped_ = true; }
  core::Status Finish() override {
    finished_ = true;
    return core::Status::Ok();
  }

  bool started() const { return started_; }
  bool finished() const { return finished_; }
  // End positions of the whole transactions delivered so far.
  std::vector<core::Lsn> delivered_ends() const {
    std::lock_guard lock(mu_);
    return delivered_ends_;
  }
  std::vector<core::Lsn> acknowledged() const {
    std::lock_guard lock(mu_);
    return acknowledged_;
  }

 private:
  std::deque<Event> events_;
  const bool ends_;
  bool started_ = false;
  std::atomic<bool> stopped_{false};  // Stop() may come from another thread
  bool finished_ = false;
  core::Lsn resume_;
  core::Lsn end_;
  mutable std::mutex mu_;  // guards what other threads read
  uint64_t delivered_ = 0;
  StreamIdle idle_;
  std::vector<core::Lsn> delivered_ends_;
  std::vector<core::Lsn> acknowledged_;
};

}  // namespace sluice::control::testing
