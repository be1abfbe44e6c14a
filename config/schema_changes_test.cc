#include "config/schema_changes.h"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

TEST(SchemaChangesTest, EveryPolicyRoundTripsThroughItsName) {
  for (SchemaChanges policy : kSchemaChanges) {
    EXPECT_EQ(ParseSchemaChanges(SchemaChangesName(policy)), policy) << SchemaChangesName(policy);
  }
  EXPECT_EQ(SchemaChangesName(SchemaChanges::kStop), "stop");
  EXPECT_EQ(SchemaChangesName(SchemaChanges::kAddColumns), "add_columns");
}

TEST(SchemaChangesTest, OnlyTheExactSpellingParses) {
  EXPECT_EQ(ParseSchemaChanges("add-columns"), std::nullopt);
  EXPECT_EQ(ParseSchemaChanges("STOP"), std::nullopt);
  EXPECT_EQ(ParseSchemaChanges(""), std::nullopt);
}

}  // namespace
}  // namespace sluice::config
