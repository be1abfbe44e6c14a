#include "pg/table_pattern.h"

#include <gtest/gtest.h>

namespace sluice::pg {
namespace {

TEST(TablePatternTest, UnquotedNamesFoldQuotedNamesKeepTheirSpelling) {
  auto plain = ParseTablePattern("Sales.Orders");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->schema, "sales");
  EXPECT_EQ(plain->table, "orders");
  EXPECT_FALSE(plain->all_tables);
  EXPECT_EQ(plain->DisplayName(), "sales.orders");

  auto quoted = ParseTablePattern("\"My Schema\".\"Or\"\"ders\"");
  ASSERT_TRUE(quoted.ok()) << quoted.status().ToString();
  EXPECT_EQ(quoted->schema, "My Schema");
  EXPECT_EQ(quoted->table, "Or\"ders");
  EXPECT_EQ(quoted->DisplayName(), "\"My Schema\".\"Or\"\"ders\"");
  EXPECT_EQ(quoted->ToString(), "\"My Schema\".\"Or\"\"ders\"");
}

TEST(TablePatternTest, AStarIsEveryTableUnlessQuoted) {
  auto star = ParseTablePattern("app.*");
  ASSERT_TRUE(star.ok());
  EXPECT_TRUE(star->all_tables);
  EXPECT_EQ(star->DisplayName(), "app.*");
  EXPECT_EQ(star->ToString(), "\"app\".*");
  auto quoted_star = ParseTablePattern("app.\"*\"");  // a table literally named *
  ASSERT_TRUE(quoted_star.ok());
  EXPECT_FALSE(quoted_star->all_tables);
  EXPECT_EQ(quoted_star->table, "*");
}

TEST(TablePatternTest, TheSchemaIsRequiredAndBadSpellingsAreRefused) {
  for (const char* bad : {"", "orders", "a.b.c", "a.", ".b", "\"open", "a.\"\"", "a. b"}) {
    auto parsed = ParseTablePattern(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), core::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ParseTablePattern("public." + std::string(64, 'x')).ok());
}

}  // namespace
}  // namespace sluice::pg
