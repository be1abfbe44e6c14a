#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

namespace sluice::core {

// A multi-producer multi-consumer FIFO with a capacity: Push blocks while full (backpressure),
// Pop blocks while empty. Close() wakes everyone; after it Push fails and Pop drains what is
// left, then returns nullopt. Wake() ends one PopFor wait early without an item, so a consumer
// that also watches something besides the queue hears of it at once. Thread-safe.
template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // Returns false if the queue was closed before there was room.
  bool Push(T item) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  // Waits until an item is available, the queue is closed and drained, Wake() is called, or
  // `timeout` passes. An item waiting is returned even when a wake-up is pending.
  std::optional<T> PopFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    const bool ready =
        not_empty_.wait_for(lock, timeout, [&] { return closed_ || woken_ || !items_.empty(); });
    woken_ = false;
    if (!ready) return std::nullopt;
    return PopLocked();
  }

  // Makes the current (or, if none waits, the next) PopFor return. A wake-up is never lost
  // between a consumer's checks and its wait.
  void Wake() {
    std::lock_guard lock(mu_);
    woken_ = true;
    not_empty_.notify_all();
  }

  std::optional<T> Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    return PopLocked();
  }

  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  bool closed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }

 private:
  std::optional<T> PopLocked() {
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  const size_t capacity_;
  mutable std::mutex mu_;  // guards items_, closed_ and woken_
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
  bool woken_ = false;
};

}  // namespace sluice::core
