#include "core/lsn.h"

#include <gtest/gtest.h>

namespace sluice::core {
namespace {

TEST(LsnTest, ParsesAndPrintsPostgresForm) {
  auto lsn = Lsn::Parse("16/B374D848");
  ASSERT_TRUE(lsn.ok()) << lsn.status().ToString();
  EXPECT_EQ(lsn->value(), (uint64_t{0x16} << 32) | 0xB374D848);
  EXPECT_EQ(lsn->ToString(), "16/B374D848");
  EXPECT_EQ(Lsn(0).ToString(), "0/0");
}

TEST(LsnTest, RejectsMalformedText) {
  for (const char* bad : {"", "/", "1/", "/1", "12", "G/1", "1/1x", "1//2", "100000000/0"}) {
    EXPECT_FALSE(Lsn::Parse(bad).ok()) << bad;
  }
}

TEST(LsnTest, Orders) {
  EXPECT_LT(Lsn(1), Lsn(2));
  EXPECT_FALSE(kInvalidLsn.valid());
}

}  // namespace
}  // namespace sluice::core
