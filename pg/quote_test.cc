#include "pg/quote.h"

#include <gtest/gtest.h>

namespace sluice::pg {
namespace {

TEST(QuoteTest, IdentifiersAreAlwaysQuotedWithInnerQuotesDoubled) {
  EXPECT_EQ(QuoteIdentifier("orders"), "\"orders\"");
  EXPECT_EQ(QuoteIdentifier("my\"pub"), "\"my\"\"pub\"");
  EXPECT_EQ(QuoteIdentifier("Grüße Tabelle"), "\"Grüße Tabelle\"");
  EXPECT_EQ(QuoteQualifiedName("S", "t\"x"), "\"S\".\"t\"\"x\"");
}

TEST(QuoteTest, SqlLiteralsUseTheEscapeFormOnlyWhenABackslashIsPresent) {
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
  EXPECT_EQ(QuoteLiteral(""), "''");
  EXPECT_EQ(QuoteLiteral("a\\b'c"), "E'a\\\\b''c'");
}

TEST(QuoteTest, ReplicationLiteralsNeverUseTheEscapeForm) {
  EXPECT_EQ(QuoteReplicationLiteral("it's"), "'it''s'");
  EXPECT_EQ(QuoteReplicationLiteral("a\\b"), "'a\\b'");
}

}  // namespace
}  // namespace sluice::pg
