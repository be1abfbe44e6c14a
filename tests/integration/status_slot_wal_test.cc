// A slot that nobody confirms keeps WAL on its source. With max_slot_wal_keep_size set there,
// the source will drop that WAL and lose the slot: status, /metrics and the log must warn while
// the retained WAL approaches the limit and once it is past it (wal_status unreserved), and
// show a lost slot as an error, with the daemon running and with it down.
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <functional>
#include <thread>

#include "core/lsn.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/sluice_fixture.h"
#include "tests/support/sluice_process.h"

namespace sluice::testing {
namespace {

constexpr auto kPatience = std::chrono::seconds(120);
// max_slot_wal_keep_size: ten 16 MB segments, so that with one segment written at a time the
// slot spends at least one step past 80% of it before it is past all of it.
constexpr uint64_t kKeepLimit = 160ull << 20;

TEST(StatusSlotWalTest, WarnsNearTheSourcesLimitWhenUnreservedAndShowsALostSlotAsAnError) {
  PgCluster::Options options;
  options.settings["max_slot_wal_keep_size"] = "160MB";
  options.settings["checkpoint_timeout"] = "1h";  // only the test's CHECKPOINT removes WAL
  auto started = PgCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  PgCluster& source = **started;
  auto target_started = PgCluster::Start();
  ASSERT_TRUE(target_started.ok()) << target_started.status().ToString();
  PgCluster& target = **target_started;
  auto created = source.Exec("CREATE TABLE public.items (id int PRIMARY KEY)");
  ASSERT_TRUE(created.ok()) << created.ToString();

  // The daemon makes its slot and starts streaming; then its target goes away, so it never
  // confirms anything again: the slot retains every byte the source writes.
  TempDir dir;
  const int admin_port = FreeLoopbackPort();
  const std::string target_yaml =
      "    target:\n      type: postgres\n      dsn: " + nlohmann::json(target.Dsn()).dump() +
      "\n      apply: { create_tables: true }\n";
  TailConfig config = WriteTailConfig(dir, source, {"public.items"}, target_yaml, "walrisk");
  WriteFile(config.path, "admin: { listen: \"127.0.0.1:" + std::to_string(admin_port) + "\" }\n" +
                             ReadFile(config.path));
  const std::string log = dir.File("run.err");
  SluiceProcess run;
  ASSERT_TRUE(run.Start({"run", "--config", config.path}, dir.File("run.out"), log).ok());
  bool streaming = false;
  for (int i = 0; i < 600 && !streaming; ++i) {
    auto active = source.Query(
        "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_walrisk' AND active");
    streaming = active.ok() && !active->empty();
    if (!streaming) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(streaming) << ReadFile(log);
  ASSERT_TRUE(target.Stop(/*immediate=*/true).ok());

  httplib::Client admin("127.0.0.1", admin_port);
  admin.set_connection_timeout(std::chrono::seconds(10));
  admin.set_read_timeout(std::chrono::seconds(30));
  auto pipeline_status = [&]() -> nlohmann::json {
    auto answer = admin.Get("/status");
    if (!answer || answer->status != 200) return {};
    auto json = nlohmann::json::parse(answer->body, nullptr, false);
    if (json.is_discarded() || json["pipelines"].size() != 1) return {};
    return json["pipelines"][0];
  };
  // One more WAL segment on the source per call (a switch only counts after a write).
  int rows = 0;
  auto write_segment = [&] {
    ++rows;
    auto inserted = source.Exec("INSERT INTO public.items VALUES (" + std::to_string(rows) + ")");
    ASSERT_TRUE(inserted.ok()) << inserted.ToString();
    auto switched = source.Exec("SELECT pg_switch_wal()");
    ASSERT_TRUE(switched.ok()) << switched.ToString();
  };
  // The daemon's /status once it covers everything written so far.
  auto status_after_writes = [&]() -> nlohmann::json {
    auto written = core::Lsn::Parse(CurrentWalLsn(source));
    EXPECT_TRUE(written.ok());
    nlohmann::json status;
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (written.ok() && std::chrono::steady_clock::now() < deadline) {
      status = pipeline_status();
      if (!status.is_null() && status["source_lsn"].is_string()) {
        auto seen = core::Lsn::Parse(status["source_lsn"].get<std::string>());
        if (seen.ok() && *seen >= *written) return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "the daemon's status never caught up with the source: " << status.dump();
    return {};
  };
  // Writes one segment at a time until the daemon's /status shows `done`; the last status.
  auto write_until = [&](const std::function<bool(const nlohmann::json&)>& done,
                         const std::string& what) {
    nlohmann::json status;
    for (int segments = 0; segments < 40; ++segments) {
      status = status_after_writes();
      if (status.is_null() || done(status)) return status;
      write_segment();
    }
    ADD_FAILURE() << "never saw " << what << "; last: " << status.dump() << "\n" << ReadFile(log);
    return status;
  };

  const nlohmann::json near = write_until(
      [](const nlohmann::json& s) { return s["slot_wal_at_risk"] == true; }, "the slot at risk");
  EXPECT_EQ(near["max_slot_wal_keep_bytes"], kKeepLimit) << near.dump();
  EXPECT_GE(near["retained_wal_bytes"].get<uint64_t>(), kKeepLimit / 100 * 80) << near.dump();
  EXPECT_TRUE(near["slot_safe_wal_bytes"].is_number()) << near.dump();
  auto metrics = admin.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("\nsluice_slot_wal_at_risk{pipeline=\"walrisk\"} 1\n"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("\nsluice_slot_safe_wal_bytes{pipeline=\"walrisk\"} "),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("\nsluice_slot_wal_lost{pipeline=\"walrisk\"} 0\n"),
            std::string::npos)
      << metrics->body;

  const nlohmann::json unreserved =
      write_until([](const nlohmann::json& s) { return s["slot_wal_status"] == "unreserved"; },
                  "wal_status unreserved");
  EXPECT_EQ(unreserved["slot_wal_at_risk"], true) << unreserved.dump();
  EXPECT_LE(unreserved["slot_safe_wal_bytes"].get<int64_t>(), 0) << unreserved.dump();
  // The log said so too: first near the limit, then past it.
  const auto log_says = [&](const std::string& text) {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (std::chrono::steady_clock::now() < deadline) {
      if (ReadFile(log).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  };
  EXPECT_TRUE(log_says("% of the source's max_slot_wal_keep_size 160.0 MB")) << ReadFile(log);
  EXPECT_TRUE(log_says("(wal_status unreserved)")) << ReadFile(log);

  // Daemon down: `sluice status` asks the source itself and says the same.
  run.Kill(SIGTERM);
  ASSERT_TRUE(run.Wait(std::chrono::seconds(60)).ok());
  SluiceRun down = RunSluice({"status", "--config", config.path, "--json"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  const auto down_status = nlohmann::json::parse(down.out)["pipelines"][0];
  EXPECT_EQ(down_status["slot_wal_status"], "unreserved") << down.out;
  EXPECT_EQ(down_status["slot_wal_at_risk"], true) << down.out;
  SluiceRun table = RunSluice({"status", "--config", config.path});
  EXPECT_NE(table.out.find("WARNING: walrisk: slot sluice_walrisk retains"), std::string::npos)
      << table.out;

  // A checkpoint removes the WAL: the slot is lost, an error in status.
  ASSERT_TRUE(source.Exec("CHECKPOINT").ok());
  SluiceRun lost = RunSluice({"status", "--config", config.path, "--json"});
  ASSERT_EQ(lost.exit_code, 0) << lost.err;
  const auto lost_status = nlohmann::json::parse(lost.out)["pipelines"][0];
  EXPECT_EQ(lost_status["slot_wal_status"], "lost") << lost.out;
  EXPECT_NE(lost_status["last_error"].get<std::string>().find("has lost WAL it needed"),
            std::string::npos)
      << lost.out;
  SluiceRun lost_table = RunSluice({"status", "--config", config.path});
  EXPECT_NE(lost_table.out.find("ERROR: walrisk: slot sluice_walrisk has lost WAL"),
            std::string::npos)
      << lost_table.out;
}

}  // namespace
}  // namespace sluice::testing
