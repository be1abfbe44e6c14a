#include "config/target_type.h"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

TEST(TargetTypeTest, EveryTypeRoundTripsThroughItsName) {
  for (TargetType type : kTargetTypes) {
    EXPECT_EQ(ParseTargetType(TargetTypeName(type)), type) << TargetTypeName(type);
  }
  EXPECT_EQ(TargetTypeName(TargetType::kPostgres), "postgres");
  EXPECT_EQ(TargetTypeName(TargetType::kRedis), "redis");
  EXPECT_EQ(TargetTypeName(TargetType::kKafka), "kafka");
  EXPECT_EQ(TargetTypeName(TargetType::kNone), "none");
}

TEST(TargetTypeTest, OnlyTheExactSpellingParses) {
  EXPECT_EQ(ParseTargetType("Postgres"), std::nullopt);
  EXPECT_EQ(ParseTargetType("postgresql"), std::nullopt);
  EXPECT_EQ(ParseTargetType(""), std::nullopt);
}

}  // namespace
}  // namespace sluice::config
