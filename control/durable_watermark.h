#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/lsn.h"

namespace sluice::control {

// The position up to which a pipeline's stream is durable on its target (applied, checkpointed
// and acknowledged), for callers that must wait for it: a cutover waits until the shadow holds
// everything up to the fence's position, a verify until the target holds its chosen position.
// Thread-safe.
class DurableWatermark {
 public:
  // Where a stream starts (it may be behind an earlier value after `sluice snapshot`).
  void Reset(core::Lsn lsn) {
    std::lock_guard lock(mu_);
    lsn_ = lsn;
    changed_.notify_all();
  }

  // The stream made `lsn` durable; never moves backwards.
  void Advance(core::Lsn lsn) {
    std::lock_guard lock(mu_);
    if (lsn <= lsn_) return;
    lsn_ = lsn;
    changed_.notify_all();
  }

  core::Lsn Get() const {
    std::lock_guard lock(mu_);
    return lsn_;
  }

  // True once everything up to `lsn` is durable; false when `timeout` passes first.
  bool WaitFor(core::Lsn lsn, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return lsn_ >= lsn; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  core::Lsn lsn_;
};

}  // namespace sluice::control
