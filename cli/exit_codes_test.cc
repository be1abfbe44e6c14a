#include "cli/exit_codes.h"

#include <gtest/gtest.h>

#include "pg/sql_state.h"

namespace sluice::cli {
namespace {

// The exit codes the systemd units act on, for server errors as pg::ClassifySqlState sees them.
TEST(ExitCodesTest, TransientServerErrorsExitUnavailableSoTheUnitRestarts) {
  for (const char* state : {"", "08006", "53300", "55006", "57P01", "40P01"}) {
    EXPECT_EQ(ExitCodeFor(pg::StatusForSqlState(state, "x")), kExitUnavailable) << state;
  }
}

TEST(ExitCodesTest, DataTheTargetRefusesIsADataError) {
  for (const char* state : {"23505", "23514", "22P02", "42804"}) {
    EXPECT_EQ(ExitCodeFor(pg::StatusForSqlState(state, "x")), kExitDataError) << state;
  }
}

TEST(ExitCodesTest, WhatAPersonMustFixIsAConfigError) {
  for (const char* state : {"42501", "42P01", "53400", "55000"}) {
    EXPECT_EQ(ExitCodeFor(pg::StatusForSqlState(state, "x")), kExitConfig) << state;
  }
  EXPECT_EQ(ExitCodeFor(core::Internal("bug")), kExitSoftware);
  EXPECT_EQ(ExitCodeFor(core::Aborted("stopped")), kExitOk);
}

}  // namespace
}  // namespace sluice::cli
