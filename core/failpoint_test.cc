#include "core/failpoint.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>

namespace sluice::core {
namespace {

class FailpointTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(ArmFailpoints("").ok()); }
};

TEST_F(FailpointTest, UnarmedPointsPass) {
  for (const char* name : kFailpointNames) EXPECT_TRUE(Failpoint(name).ok()) << name;
}

TEST_F(FailpointTest, ErrorFiresOnceAtTheNamedPass) {
  ASSERT_TRUE(ArmFailpoints("after_checkpoint=error@3, after_target_commit=unavailable").ok());
  EXPECT_TRUE(Failpoint(failpoint::kAfterCheckpoint).ok());
  EXPECT_TRUE(Failpoint(failpoint::kAfterCheckpoint).ok());
  const Status third = Failpoint(failpoint::kAfterCheckpoint);
  EXPECT_EQ(third.code(), StatusCode::kInternal);
  EXPECT_EQ(third.message(), "failpoint after_checkpoint: error");
  EXPECT_TRUE(Failpoint(failpoint::kAfterCheckpoint).ok()) << "fires once";

  const Status first = Failpoint(failpoint::kAfterTargetCommit);
  EXPECT_EQ(first.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(first.retryable());
  EXPECT_TRUE(Failpoint(failpoint::kAfterTargetCommit).ok());
  EXPECT_TRUE(Failpoint(failpoint::kAfterAcknowledge).ok()) << "not armed";
}

TEST_F(FailpointTest, ArmingAgainReplacesWhatWasArmed) {
  ASSERT_TRUE(ArmFailpoints("after_acknowledge=error").ok());
  ASSERT_TRUE(ArmFailpoints("after_copy_commit=error").ok());
  EXPECT_TRUE(Failpoint(failpoint::kAfterAcknowledge).ok());
  EXPECT_FALSE(Failpoint(failpoint::kAfterCopyCommit).ok());
}

TEST_F(FailpointTest, MalformedSpecsAreRefusedAndArmNothing) {
  ASSERT_TRUE(ArmFailpoints("after_checkpoint=error").ok());
  for (const char* spec : {"after_checkpoint", "after_checkpoint=explode", "no_such_point=crash",
                           "after_checkpoint=error@0", "after_checkpoint=error@x",
                           "after_checkpoint=error@2x", "after_checkpoint=crash,typo=crash"}) {
    const Status st = ArmFailpoints(spec);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << spec;
    EXPECT_NE(st.message().find("SLUICE_FAILPOINTS"), std::string::npos) << st.message();
  }
  // The earlier arming stays as it was.
  EXPECT_FALSE(Failpoint(failpoint::kAfterCheckpoint).ok());
  EXPECT_NE(ArmFailpoints("typo=crash").message().find("after_target_commit"), std::string::npos)
      << "names the known points";
}

TEST_F(FailpointTest, EnvironmentArmsThePoints) {
  ASSERT_EQ(setenv(kFailpointsVariable, "after_snapshot_forget=error", 1), 0);
  const Status armed = ArmFailpointsFromEnvironment();
  unsetenv(kFailpointsVariable);
  ASSERT_TRUE(armed.ok()) << armed.ToString();
  EXPECT_FALSE(Failpoint(failpoint::kAfterSnapshotForget).ok());
  EXPECT_TRUE(ArmFailpointsFromEnvironment().ok()) << "unset: nothing armed, no error";
  EXPECT_TRUE(Failpoint(failpoint::kAfterSnapshotForget).ok());
}

TEST_F(FailpointTest, CrashKillsTheProcessWithSigkillAndSaysWhere) {
  ASSERT_TRUE(ArmFailpoints("after_target_commit=crash@2").ok());
  EXPECT_EXIT(
      {
        (void)Failpoint(failpoint::kAfterTargetCommit);
        (void)Failpoint(failpoint::kAfterTargetCommit);
        std::_Exit(0);  // not reached
      },
      ::testing::KilledBySignal(SIGKILL), "sluice: failpoint after_target_commit: crash");
}

}  // namespace
}  // namespace sluice::core
