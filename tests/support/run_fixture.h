#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/pipeline_fixture.h"

namespace sluice::testing {

// A gtest fixture for end-to-end tests of `sluice run`: two real clusters (PipelineFixture),
// SQL helpers that fail the test on error, and the daemon as a child process whose stderr is
// Log(). Tests set config_ before StartRun().
class SluiceRunTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(f_.ok()) << f_.error(); }

  void Source(const std::string& sql) { Exec(f_.source(), sql); }
  void Target(const std::string& sql) { Exec(f_.target(), sql); }
  // The same SQL on both sides (a schema as `pg_dump -s` of the source would make it).
  void Both(const std::string& sql) {
    Source(sql);
    Target(sql);
  }
  std::string SourceValue(const std::string& sql) { return Value(f_.source(), sql); }
  std::string TargetValue(const std::string& sql) { return Value(f_.target(), sql); }

  std::string Log() const { return f_.dir().File("run.err"); }
  // `sluice run --config config_.path`, output appended to Log(); `env` ("NAME=value") added
  // to its environment.
  void StartRun(const std::vector<std::string>& env = {});
  // SIGTERM, then expects a clean exit (0) within a minute.
  void StopRun();
  // StartRun(), the target catches up (PipelineFixture::WaitForCatchUp), StopRun(): the
  // pipeline has a position.
  void RunUntilCaughtUp();
  // Until the target's `table` has as many rows as the source's (up to a minute).
  bool WaitForRows(const std::string& table);

  static void Exec(const PgCluster& cluster, const std::string& sql);
  static std::string Value(const PgCluster& cluster, const std::string& sql);

  PipelineFixture f_;
  TailConfig config_;
  SluiceProcess run_;
};

}  // namespace sluice::testing
