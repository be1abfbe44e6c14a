#include "core/number_text.h"

#include <gtest/gtest.h>

namespace sluice::core {
namespace {

TEST(NumberTextTest, WholeNumbersParse) {
  EXPECT_EQ(*ParseInt64("-42", "x"), -42);
  EXPECT_EQ(*ParseInt64("9223372036854775807", "x"), INT64_MAX);
  EXPECT_EQ(*ParseUint32("4294967295", "oid"), 4294967295u);
}

TEST(NumberTextTest, AnythingElseIsACorruptionNamingWhatWasRead) {
  for (const char* text : {"", "12a", " 1", "1.5", "9223372036854775808", "abc"}) {
    auto parsed = ParseInt64(text, "max_wal_senders");
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), StatusCode::kCorruption);
    EXPECT_NE(parsed.status().message().find("max_wal_senders"), std::string::npos);
  }
  EXPECT_FALSE(ParseUint32("-1", "oid").ok());
  EXPECT_FALSE(ParseUint32("4294967296", "oid").ok());
}

}  // namespace
}  // namespace sluice::core
