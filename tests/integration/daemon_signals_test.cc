// The daemon and its signals: SIGTERM under load stops after the in-flight batch with checkpoint
// and feedback written and loses nothing; SIGHUP applies log and batching changes and refuses
// the rest by name. Also the daemon's threads: each named after its role and pipeline, and each
// at the configured CPU priority (`nice`).
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/pipeline_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);

TailConfig WriteConfig(PipelineFixture& f, const std::string& log_level = "info",
                       const std::string& source_extra = "") {
  const std::string yaml =
      "    target:\n      type: postgres\n      dsn: " + nlohmann::json(f.target().Dsn()).dump() +
      "\n      apply: { create_tables: true, batch_max_transactions: 500 }\n";
  TailConfig config = WriteTailConfig(f.dir(), f.source(), {"public.*"}, yaml, "sig", source_extra);
  std::string text = ReadFile(config.path);
  text.replace(text.find("level: info"), 11, "level: " + log_level);
  WriteFile(config.path, text);
  return config;
}

// Every thread of process `pid`, by thread id: its name (/proc/PID/task/TID/comm) and nice
// value (field 19 of .../stat).
struct ThreadInfo {
  std::string name;
  int nice = 0;
};
std::map<std::string, ThreadInfo> Threads(pid_t pid) {
  std::map<std::string, ThreadInfo> threads;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    ThreadInfo& info = threads[task.path().filename().string()];
    info.name = ReadFile(task.path().string() + "/comm");
    while (!info.name.empty() && info.name.back() == '\n') info.name.pop_back();
    const std::string stat = ReadFile(task.path().string() + "/stat");
    std::istringstream after_name(stat.substr(stat.rfind(')') + 1));
    std::string skipped;
    for (int field = 3; field < 19; ++field) after_name >> skipped;
    after_name >> info.nice;
  }
  return threads;
}

std::set<std::string> NamesOf(const std::map<std::string, ThreadInfo>& threads) {
  std::set<std::string> names;
  for (const auto& [tid, info] : threads) names.insert(info.name);
  return names;
}

TEST(DaemonSignalsTest, EveryThreadIsNamedAndRunsAtTheConfiguredNiceValue) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.InitPgbench(1).ok());
  TailConfig config = WriteConfig(f);
  WriteFile(config.path, "nice: 7\n" + ReadFile(config.path));
  const std::string log = f.dir().File("run.err");
  SluiceProcess run;
  ASSERT_TRUE(run.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(log);

  // The marker may have come with the initial copy: wait for the stream's capture thread.
  std::set<std::string> names;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!names.contains("cap:sig") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    names = NamesOf(Threads(run.pid()));
  }
  EXPECT_TRUE(names.contains("cap:sig")) << ::testing::PrintToString(names);
  EXPECT_TRUE(names.contains("apply:sig")) << ::testing::PrintToString(names);

  const std::map<std::string, ThreadInfo> threads = Threads(run.pid());
  EXPECT_GE(threads.size(), 3u);
  for (const auto& [tid, info] : threads) EXPECT_EQ(info.nice, 7) << "thread " << tid;

  run.Kill(SIGTERM);
  auto exit_code = run.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << ReadFile(log);
}

TEST(DaemonSignalsTest, SigtermUnderLoadStopsCleanlyAndLosesNothing) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.InitPgbench(1).ok());
  TailConfig config = WriteConfig(f);
  const std::string log = f.dir().File("run.err");
  SluiceProcess run;
  ASSERT_TRUE(run.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(log);

  SluiceProcess load;
  ASSERT_TRUE(f.StartLoad(load, 20).ok());
  std::this_thread::sleep_for(std::chrono::seconds(4));
  const auto stop_started = std::chrono::steady_clock::now();
  run.Kill(SIGTERM);
  auto exit_code = run.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(exit_code.ok()) << "sluice run did not stop within 60 s of SIGTERM";
  EXPECT_EQ(*exit_code, 0) << ReadFile(log);
  std::cerr << "stopped "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - stop_started)
                   .count()
            << " ms after SIGTERM\n";
  EXPECT_NE(ReadFile(log).find("stopped cleanly"), std::string::npos);

  // Feedback was written: the slot confirms what the target holds (or, when the stream was idle
  // at that moment, the source's decoded position past it).
  auto applied = f.target().QueryValue("SELECT end_lsn::text FROM sluice.applied");
  ASSERT_TRUE(applied.ok());
  bool confirmed_matches = false;
  for (int i = 0; i < 50 && !confirmed_matches; ++i) {
    auto confirmed =
        f.source().QueryValue("SELECT confirmed_flush_lsn >= '" + *applied +
                              "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'sluice_sig'");
    confirmed_matches = confirmed.ok() && *confirmed == "t";
    if (!confirmed_matches) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(confirmed_matches) << "applied " << *applied;

  // The load went on meanwhile; a restart picks up exactly where it stopped.
  ASSERT_TRUE(load.Wait(std::chrono::seconds(60)).ok());
  SluiceProcess again;
  ASSERT_TRUE(again.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(log);
  EXPECT_EQ(f.Diff({"public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_tellers",
                    "public.pgbench_history"}),
            "");
}

TEST(DaemonSignalsTest, SighupAppliesSafeChangesAndRefusesTheRestByKey) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.InitPgbench(1).ok());
  TailConfig config = WriteConfig(f);
  const std::string log = f.dir().File("run.err");
  SluiceProcess run;
  ASSERT_TRUE(run.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(log);

  // New log level and batch size (safe), and a new status interval (needs a restart).
  WriteConfig(f, "debug", "      status_interval: 2s\n");
  std::string text = ReadFile(config.path);
  text.replace(text.find("batch_max_transactions: 500"), 27, "batch_max_transactions: 20");
  WriteFile(config.path, text);
  run.Kill(SIGHUP);
  std::string seen;
  for (int i = 0; i < 100; ++i) {
    seen = ReadFile(log);
    if (seen.find("cannot change while running") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(seen.find("reload: log level debug"), std::string::npos) << seen;
  EXPECT_NE(seen.find("batches now at most 20 transactions"), std::string::npos) << seen;
  EXPECT_NE(seen.find("pipelines[sig].source.status_interval changed but cannot change"),
            std::string::npos)
      << seen;
  // A config that no longer loads is reported and the daemon keeps running.
  WriteFile(config.path, "pipelines: [");
  run.Kill(SIGHUP);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_NE(ReadFile(log).find("no longer loads"), std::string::npos);
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp));
  EXPECT_TRUE(run.running());
  run.Kill(SIGTERM);
  auto exit_code = run.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);
}

}  // namespace
}  // namespace sluice::testing
