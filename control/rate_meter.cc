#include "control/rate_meter.h"

#include <algorithm>

namespace sluice::control {

RateMeter::RateMeter(Clock::duration window, size_t max_samples)
    : window_(window), max_samples_(std::max<size_t>(max_samples, 2)) {}

void RateMeter::Add(Clock::time_point at, uint64_t count) {
  if (!samples_.empty()) {
    const Sample& last = samples_.back();
    // A counter reset or a clock that went backwards: the old samples say nothing about now.
    if (count < last.count || at < last.at) samples_.clear();
  }
  samples_.push_back(Sample{at, count});
  // Keep one sample at or before the window's start so the rate covers the whole window.
  while (samples_.size() > 2 && samples_[1].at <= at - window_) samples_.pop_front();
  while (samples_.size() > max_samples_) samples_.pop_front();
}

double RateMeter::PerSecond() const {
  if (samples_.size() < 2) return 0.0;
  const Sample& first = samples_.front();
  const Sample& last = samples_.back();
  const double seconds = std::chrono::duration<double>(last.at - first.at).count();
  if (seconds <= 0.0) return 0.0;
  return static_cast<double>(last.count - first.count) / seconds;
}

}  // namespace sluice::control
