#include "pg/sql_state.h"

#include <gtest/gtest.h>

namespace sluice::pg {
namespace {

using core::StatusCode;

TEST(SqlStateTest, TransientServerStatesAreRetryable) {
  for (const char* state : {"", "08006", "08001", "40001", "40P01", "55006", "55P03", "57014",
                            "57P01", "57P02", "57P03", "53300", "53100", "53200"}) {
    EXPECT_TRUE(ClassifySqlState(state).retryable) << state;
  }
  EXPECT_EQ(ClassifySqlState("55006").code, StatusCode::kUnavailable);
  EXPECT_EQ(ClassifySqlState("53300").code, StatusCode::kResourceExhausted);
}

TEST(SqlStateTest, AConfiguredLimitNeedsAPerson) {
  EXPECT_EQ(ClassifySqlState("53400").code, StatusCode::kResourceExhausted);
  EXPECT_FALSE(ClassifySqlState("53400").retryable);
}

TEST(SqlStateTest, ValuesTheTargetRefusesAreDataErrors) {
  for (const char* state : {"23505", "23514", "23502", "22001", "22P02", "42804"}) {
    EXPECT_EQ(ClassifySqlState(state).code, StatusCode::kDataRejected) << state;
    EXPECT_FALSE(ClassifySqlState(state).retryable) << state;
  }
}

TEST(SqlStateTest, MissingAndDuplicateObjectsAndEverythingElseArePermanent) {
  EXPECT_EQ(ClassifySqlState("42P01").code, StatusCode::kNotFound);
  EXPECT_EQ(ClassifySqlState("42704").code, StatusCode::kNotFound);
  EXPECT_EQ(ClassifySqlState("42710").code, StatusCode::kAlreadyExists);
  EXPECT_EQ(ClassifySqlState("42601").code, StatusCode::kInternal);
  EXPECT_EQ(ClassifySqlState("42501").code, StatusCode::kFailedPrecondition);
  EXPECT_EQ(ClassifySqlState("25006").code, StatusCode::kFailedPrecondition);
  EXPECT_FALSE(ClassifySqlState("42501").retryable);
}

TEST(SqlStateTest, TheStatusKeepsTheServerCodeBesideTheKind) {
  const core::Status status = StatusForSqlState("53300", "too many clients");
  EXPECT_EQ(status.code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(status.retryable());
  EXPECT_EQ(status.server_code(), "53300");
  const core::Status wrapped = status.WithContext("connecting");
  EXPECT_EQ(wrapped.server_code(), "53300");
  EXPECT_TRUE(wrapped.retryable());
  EXPECT_EQ(wrapped.message(), "connecting: too many clients");
}

}  // namespace
}  // namespace sluice::pg
