#include "pg/conninfo.h"

#include <gtest/gtest.h>

namespace sluice::pg {
namespace {

TEST(ConninfoTest, ReplicationIsForcedAfterTheDsn) {
  const auto params = BuildConninfoParams("host=h replication=false", /*replication=*/true);
  ASSERT_EQ(params.keywords.size(), 4u);
  EXPECT_EQ(params.keywords[0], "dbname");
  EXPECT_EQ(params.values[0], "host=h replication=false");
  EXPECT_EQ(params.keywords[1], "fallback_application_name");
  EXPECT_EQ(params.values[1], "sluice");
  EXPECT_EQ(params.keywords[2], "replication");
  EXPECT_EQ(params.values[2], "database");
  EXPECT_EQ(params.keywords[3], "options");
  EXPECT_EQ(params.values[3], kWalsenderSessionOptions);
  const auto plain = BuildConninfoParams("host=h", /*replication=*/false, "sluice-apply");
  ASSERT_EQ(plain.keywords.size(), 2u);
  EXPECT_EQ(plain.values[1], "sluice-apply");
}

TEST(ConninfoTest, WalsenderOptionsFollowTheUsersOwn) {
  const auto keyword_value = BuildConninfoParams(
      "host=h options='-c search_path=app -c datestyle=German'", /*replication=*/true);
  ASSERT_EQ(keyword_value.keywords.back(), "options");
  EXPECT_EQ(keyword_value.values.back(),
            std::string("-c search_path=app -c datestyle=German ") + kWalsenderSessionOptions);
  const auto uri = BuildConninfoParams("postgresql://h/app?options=-c%20search_path%3Dapp",
                                       /*replication=*/true);
  EXPECT_EQ(uri.values.back(), std::string("-c search_path=app ") + kWalsenderSessionOptions);
}

}  // namespace
}  // namespace sluice::pg
