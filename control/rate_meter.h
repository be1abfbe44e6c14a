#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>

namespace sluice::control {

// Rate of a monotonically growing counter (changes applied, rows copied) from samples of its
// value over time: (newest - oldest) / (time between them), over the samples of the last
// `window`. Keeps at most `max_samples` samples (the oldest go first).
//
// A counter that goes backwards (its owner restarted) drops the older samples and starts over,
// so a reset never shows as a negative or huge rate. With fewer than two samples, or all of them
// at the same instant, the rate is 0.
//
// Threads: not thread-safe; the owner serializes calls.
class RateMeter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RateMeter(Clock::duration window = std::chrono::seconds(10), size_t max_samples = 64);

  void Add(Clock::time_point at, uint64_t count);
  double PerSecond() const;
  size_t samples() const { return samples_.size(); }

 private:
  struct Sample {
    Clock::time_point at;
    uint64_t count;
  };

  const Clock::duration window_;
  const size_t max_samples_;
  std::deque<Sample> samples_;  // oldest first, times non-decreasing
};

}  // namespace sluice::control
