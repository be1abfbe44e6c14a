#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

namespace sluice::core {

// A multi-producer multi-consumer FIFO with a capacity: Push blocks while full (backpressure),
// Pop blocks while empty. Close() wakes everyone; after it Push fails and Pop drains what is
// left, then returns nullopt. Wake() ends one PopFor wait early without an item, so a consumer
// that also watches something besides the queue hears of it at once. Thread-safe.
//
// Byte budget (optional): items are weighed by `weigh` and the queue holds at most
// `byte_budget` bytes, counting each item from its Push until the consumer is done with it,
// i.e. until the next Pop or PopFor (a consumer works on one item at a time, so with a budget
// there must be one consumer). Push waits until its item fits; an item that does not fit even
// into an empty queue goes alone, once nothing at all is held, so progress is guaranteed.
// Such an item is handed over: its Push returns only once the consumer is done with it (or
// the queue is closed), so the producer makes nothing else while it is in the consumer's hands
// either. Memory held by the queue and its consumer is thus at most max(byte_budget, the
// largest item).
template <typename T>
class BoundedQueue {
 public:
  using Weigh = std::function<uint64_t(const T&)>;

  // `capacity` in items (0 is taken as 1); `byte_budget` 0 or an empty `weigh`: no byte bound.
  explicit BoundedQueue(size_t capacity, uint64_t byte_budget = 0, Weigh weigh = nullptr)
      : capacity_(capacity == 0 ? 1 : capacity),
        byte_budget_(weigh ? byte_budget : 0),
        weigh_(std::move(weigh)) {}

  // Returns false if the queue was closed before there was room.
  bool Push(T item) {
    const uint64_t bytes = byte_budget_ != 0 ? weigh_(item) : 0;
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || (items_.size() < capacity_ && Fits(bytes)); });
    if (closed_) return false;
    items_.push_back({std::move(item), bytes});
    held_bytes_ += bytes;
    not_empty_.notify_one();
    // An item over the budget: wait until the consumer is done with it.
    not_full_.wait(lock, [&] { return closed_ || held_bytes_ <= byte_budget_; });
    return true;
  }

  // Waits until an item is available, the queue is closed and drained, Wake() is called, or
  // `timeout` passes. An item waiting is returned even when a wake-up is pending.
  std::optional<T> PopFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    ReleaseInHandLocked();
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
    ReleaseInHandLocked();
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

  // Bytes of the items queued and of the one the consumer holds (0 without a byte budget).
  uint64_t held_bytes() const {
    std::lock_guard lock(mu_);
    return held_bytes_;
  }

 private:
  struct Entry {
    T item;
    uint64_t bytes;
  };

  bool Fits(uint64_t bytes) const {
    return byte_budget_ == 0 || held_bytes_ == 0 || held_bytes_ + bytes <= byte_budget_;
  }

  // The consumer asks for the next item: it is done with the previous one.
  void ReleaseInHandLocked() {
    if (in_hand_bytes_ == 0) return;
    held_bytes_ -= in_hand_bytes_;
    in_hand_bytes_ = 0;
    not_full_.notify_all();  // producers waiting for room, or for their item to be done
  }

  std::optional<T> PopLocked() {
    if (items_.empty()) return std::nullopt;
    Entry entry = std::move(items_.front());
    items_.pop_front();
    in_hand_bytes_ = entry.bytes;  // still held until the consumer is done with it
    not_full_.notify_all();
    return std::move(entry.item);
  }

  const size_t capacity_;
  const uint64_t byte_budget_;  // 0: none
  const Weigh weigh_;
  mutable std::mutex mu_;  // guards items_, held_bytes_, in_hand_bytes_, closed_ and woken_
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<Entry> items_;
  uint64_t held_bytes_ = 0;     // items_ plus in_hand_bytes_
  uint64_t in_hand_bytes_ = 0;  // the item the consumer took last
  bool closed_ = false;
  bool woken_ = false;
};

}  // namespace sluice::core
