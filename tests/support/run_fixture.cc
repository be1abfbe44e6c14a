#include "tests/support/run_fixture.h"

#include <csignal>
#include <thread>

namespace sluice::testing {

void SluiceRunTest::Exec(const PgCluster& cluster, const std::string& sql) {
  auto st = cluster.Exec(sql);
  ASSERT_TRUE(st.ok()) << st.ToString();
}

std::string SluiceRunTest::Value(const PgCluster& cluster, const std::string& sql) {
  auto value = cluster.QueryValue(sql);
  EXPECT_TRUE(value.ok()) << value.status().ToString();
  return value.ok() ? *value : "<error>";
}

void SluiceRunTest::StartRun(const std::vector<std::string>& env) {
  ASSERT_TRUE(
      run_.Start({"run", "--config", config_.path}, f_.dir().File("run.out"), Log(), env).ok());
}

void SluiceRunTest::StopRun() {
  run_.Kill(SIGTERM);
  auto exit_code = run_.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(exit_code.ok()) << ReadFile(Log());
  EXPECT_EQ(*exit_code, 0) << ReadFile(Log());
}

void SluiceRunTest::RunUntilCaughtUp() {
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(std::chrono::seconds(240))) << ReadFile(Log());
  StopRun();
}

bool SluiceRunTest::WaitForRows(const std::string& table) {
  for (int i = 0; i < 600; ++i) {
    auto want = f_.source().QueryValue("SELECT count(*) FROM " + table);
    auto have = f_.target().QueryValue("SELECT count(*) FROM " + table);
    if (want.ok() && have.ok() && *want == *have) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace sluice::testing
