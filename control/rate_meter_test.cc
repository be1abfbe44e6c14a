#include "control/rate_meter.h"

#include <gtest/gtest.h>

namespace sluice::control {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const RateMeter::Clock::time_point kT0{};

TEST(RateMeterTest, NoRateWithoutTwoSamples) {
  RateMeter meter;
  EXPECT_EQ(meter.PerSecond(), 0.0);
  meter.Add(kT0, 100);
  EXPECT_EQ(meter.PerSecond(), 0.0);
}

TEST(RateMeterTest, SamplesAtOneInstantGiveZero) {
  RateMeter meter;
  meter.Add(kT0, 100);
  meter.Add(kT0, 200);
  EXPECT_EQ(meter.PerSecond(), 0.0);
}

TEST(RateMeterTest, DeltaOverElapsedTime) {
  RateMeter meter;
  meter.Add(kT0, 1000);
  meter.Add(kT0 + seconds(1), 1500);
  meter.Add(kT0 + seconds(2), 3000);
  EXPECT_DOUBLE_EQ(meter.PerSecond(), 1000.0);  // 2000 changes in 2 s
}

TEST(RateMeterTest, IdleCounterGivesZero) {
  RateMeter meter;
  meter.Add(kT0, 42);
  meter.Add(kT0 + seconds(1), 42);
  meter.Add(kT0 + seconds(2), 42);
  EXPECT_EQ(meter.PerSecond(), 0.0);
}

TEST(RateMeterTest, OldSamplesLeaveTheWindow) {
  RateMeter meter(seconds(10));
  meter.Add(kT0, 0);
  meter.Add(kT0 + seconds(1), 100000);  // a burst long ago
  for (int i = 2; i <= 30; ++i) meter.Add(kT0 + seconds(i), 100000 + (i - 1) * 10);
  // Only the last 10 s (plus the sample at the window's start) count: 10 changes per second.
  EXPECT_DOUBLE_EQ(meter.PerSecond(), 10.0);
  EXPECT_LE(meter.samples(), 12u);
}

TEST(RateMeterTest, SampleCountIsBounded) {
  RateMeter meter(seconds(1000), 4);
  for (int i = 0; i < 100; ++i) meter.Add(kT0 + milliseconds(100 * i), uint64_t(i) * 5);
  EXPECT_EQ(meter.samples(), 4u);
  EXPECT_DOUBLE_EQ(meter.PerSecond(), 50.0);  // 5 per 100 ms
}

TEST(RateMeterTest, CounterResetStartsOver) {
  RateMeter meter;
  meter.Add(kT0, 5000);
  meter.Add(kT0 + seconds(1), 6000);
  meter.Add(kT0 + seconds(2), 10);  // the runner restarted; its counters began again
  EXPECT_EQ(meter.PerSecond(), 0.0);
  EXPECT_EQ(meter.samples(), 1u);
  meter.Add(kT0 + seconds(4), 210);
  EXPECT_DOUBLE_EQ(meter.PerSecond(), 100.0);
}

}  // namespace
}  // namespace sluice::control
