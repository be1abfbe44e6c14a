#include "core/pg_time.h"

#include <gtest/gtest.h>

namespace sluice::core {
namespace {

TEST(PgTimeTest, FormatsPostgresEpochAndMicroseconds) {
  EXPECT_EQ(FormatPgTimestamp(0), "2000-01-01T00:00:00.000000Z");
  EXPECT_EQ(FormatPgTimestamp(1), "2000-01-01T00:00:00.000001Z");
  EXPECT_EQ(FormatPgTimestamp(-1), "1999-12-31T23:59:59.999999Z");
}

TEST(PgTimeTest, RoundTripsThroughSystemClock) {
  const PgTimestamp ts = 123456789012345;
  EXPECT_EQ(PgTimestampFromSystem(SystemFromPgTimestamp(ts)), ts);
}

}  // namespace
}  // namespace sluice::core
