// `sluice status` and the admin endpoint against a live daemon with a known backlog: lag above
// zero while the target is down, zero after catch-up, and answers from the state directory when
// the daemon is not running.
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <regex>
#include <thread>

#include "tests/support/pipeline_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);

nlohmann::json StatusJson(const std::string& config) {
  SluiceRun r = RunSluice({"status", "--config", config, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

TEST(StatusLiveTest, LagWhileTargetIsDownZeroAfterCatchUpAndAnswersWhenDaemonIsDown) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.InitPgbench(1).ok());
  const int admin_port = FreeLoopbackPort();
  const std::string yaml =
      "    target:\n      type: postgres\n      dsn: " + nlohmann::json(f.target().Dsn()).dump() +
      "\n      apply: { create_tables: true }\n";
  TailConfig config = WriteTailConfig(f.dir(), f.source(), {"public.*"}, yaml, "st");
  std::string text = ReadFile(config.path);
  text = "admin: { listen: \"127.0.0.1:" + std::to_string(admin_port) + "\" }\n" + text;
  WriteFile(config.path, text);

  const std::string log = f.dir().File("run.err");
  SluiceProcess run;
  ASSERT_TRUE(run.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(log);

  // The marker may have come with the copy: wait until the pipeline streams.
  nlohmann::json status;
  for (int i = 0; i < 300; ++i) {
    status = StatusJson(config.path);
    if (status["pipelines"].size() == 1 && status["pipelines"][0]["phase"] == "streaming") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(status["daemon"], "running") << status.dump();
  ASSERT_EQ(status["pipelines"].size(), 1u) << status.dump();
  EXPECT_EQ(status["pipelines"][0]["name"], "st");
  EXPECT_EQ(status["pipelines"][0]["phase"], "streaming") << status.dump();

  // Target down, source keeps writing: a backlog builds and status shows it.
  ASSERT_TRUE(f.target().Stop().ok());
  ASSERT_TRUE(f.source()
                  .Exec("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                        "SELECT 1, 1, g, 1, now() FROM generate_series(1, 20000) g")
                  .ok());
  int64_t lag = 0;
  for (int i = 0; i < 50 && lag <= 0; ++i) {
    auto s = StatusJson(config.path)["pipelines"][0];
    if (s["lag_bytes"].is_number()) lag = s["lag_bytes"].get<int64_t>();
    if (lag <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_GT(lag, 0);
  httplib::Client admin("127.0.0.1", admin_port);
  auto metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics) << "no /metrics answer";
  EXPECT_NE(metrics->body.find("sluice_lag_bytes{pipeline=\"st\"}"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("sluice_batch_latency_seconds_count{pipeline=\"st\"}"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("sluice_slot_retained_wal_warning{pipeline=\"st\"} 0"),
            std::string::npos)
      << metrics->body;
  // The PostgreSQL sink's own counters: the rows it wrote before the target went down.
  const std::regex rows_applied(R"(\nsluice_sink_rows_applied_total\{pipeline="st"\} ([0-9]+)\n)");
  std::smatch rows_match;
  ASSERT_TRUE(std::regex_search(metrics->body, rows_match, rows_applied)) << metrics->body;
  EXPECT_GT(std::stoull(rows_match[1]), 0u);
  SluiceRun table = RunSluice({"status", "--config", config.path});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("st"), std::string::npos) << table.out;

  // Target back: the backlog drains and lag returns to zero, in bytes and in seconds.
  ASSERT_TRUE(f.target().StartAgain().ok());
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(log);
  nlohmann::json caught_up;
  for (int i = 0; i < 100; ++i) {
    caught_up = StatusJson(config.path)["pipelines"][0];
    if (caught_up["lag_bytes"] == 0 && caught_up["lag_seconds"] == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  EXPECT_EQ(caught_up["lag_bytes"], 0) << caught_up.dump();
  EXPECT_EQ(caught_up["lag_seconds"], 0) << caught_up.dump();
  ASSERT_TRUE(caught_up["sink"].is_object()) << caught_up.dump();
  EXPECT_GE(caught_up["sink"]["rows_applied"].get<uint64_t>(), 20000u) << caught_up.dump();
  auto health = admin.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;

  // Daemon down: status still answers from the state directory and says so.
  run.Kill(SIGTERM);
  ASSERT_TRUE(run.Wait(std::chrono::seconds(30)).ok());
  auto down = StatusJson(config.path);
  EXPECT_EQ(down["daemon"], "down") << down.dump();
  EXPECT_TRUE(down["pipelines"][0]["durable_lsn"].is_string()) << down.dump();
  SluiceRun down_table = RunSluice({"status", "--config", config.path});
  EXPECT_EQ(down_table.exit_code, 0);
  EXPECT_NE(down_table.out.find("daemon: DOWN"), std::string::npos) << down_table.out;

  // --watch redraws in place every 2 s until Ctrl-C, then exits 0.
  SluiceProcess watch;
  ASSERT_TRUE(watch
                  .Start({"status", "--config", config.path, "--watch"}, f.dir().File("watch.out"),
                         f.dir().File("watch.err"))
                  .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(4500));
  watch.Kill(SIGINT);
  auto watch_exit = watch.Wait(std::chrono::seconds(10));
  ASSERT_TRUE(watch_exit.ok());
  EXPECT_EQ(*watch_exit, 0) << ReadFile(f.dir().File("watch.err"));
  const std::string screens = ReadFile(f.dir().File("watch.out"));
  size_t redraws = 0;
  for (size_t at = screens.find("daemon: DOWN"); at != std::string::npos;
       at = screens.find("daemon: DOWN", at + 1)) {
    ++redraws;
  }
  EXPECT_GE(redraws, 2u) << screens;
  EXPECT_NE(screens.find("\x1b["), std::string::npos);  // cursor home / clear, not scrolling
}

}  // namespace
}  // namespace sluice::testing
