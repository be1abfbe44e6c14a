#include "pg/redact.h"

#include <gtest/gtest.h>

namespace sluice::pg {
namespace {

TEST(RedactPasswordTest, CoversKeyValueAndUriForms) {
  EXPECT_EQ(RedactPassword("host=a password=hunter2 user=u"), "host=a password=******** user=u");
  EXPECT_EQ(RedactPassword("password = 'it\\'s \\\\ secret' port=1"), "password=******** port=1");
  EXPECT_EQ(RedactPassword("PASSWORD=x"), "PASSWORD=********");
  EXPECT_EQ(RedactPassword("postgresql://bob:hunter2@db:5432/app?sslmode=require"),
            "postgresql://bob:********@db:5432/app?sslmode=require");
  EXPECT_EQ(RedactPassword("postgres://db/app?user=bob&password=hunter2&x=1"),
            "postgres://db/app?user=bob&password=********&x=1");
}

TEST(RedactPasswordTest, LeavesTextWithoutSecretsAlone) {
  EXPECT_EQ(RedactPassword("postgresql://bob@db/app"), "postgresql://bob@db/app");
  EXPECT_EQ(RedactPassword("old_password=x"), "old_password=x");  // not the password keyword
  EXPECT_EQ(RedactPassword("relation \"t\" does not exist"), "relation \"t\" does not exist");
}

}  // namespace
}  // namespace sluice::pg
