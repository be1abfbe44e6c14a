// `sluice status`, GET /status, /metrics and /healthz against a real PostgreSQL source: lag from
// live metrics and the source's WAL position, the daemon-down answer from the checkpoint store,
// and that a password in a DSN never reaches any output.

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/admin_server.h"
#include "control/pipeline_status.h"
#include "control/status_command.h"
#include "core/pg_time.h"
#include "state/checkpoint_store.h"
#include "tests/support/pg_cluster.h"

namespace sluice::control {
namespace {

using testing::PgCluster;

constexpr char kPassword[] = "Pw-d0nt-leak-7781";
constexpr char kSlot[] = "sluice_live";

// Trust authentication ignores the password, so the DSN works and still carries the secret.
std::string DsnWithPassword(const PgCluster& cluster) {
  return cluster.Dsn() + " password=" + kPassword;
}

core::Lsn CurrentLsn(const PgCluster& cluster) {
  auto text = cluster.QueryValue("SELECT pg_current_wal_lsn()");
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  if (!text.ok()) return core::Lsn();
  auto lsn = core::Lsn::Parse(*text);
  EXPECT_TRUE(lsn.ok());
  return lsn.ok() ? *lsn : core::Lsn();
}

// Runs RunStatusCommand and returns (exit code, what it printed).
std::pair<int, std::string> RunCommand(const config::Config& config, bool json) {
  std::FILE* out = std::tmpfile();
  EXPECT_NE(out, nullptr);
  const int code = RunStatusCommand(config, json, /*watch=*/false, out);
  std::string text;
  std::rewind(out);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, out)) > 0) text.append(buf, n);
  std::fclose(out);
  return {code, text};
}

class StatusTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto cluster = PgCluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(cluster).value().release();
    auto st = cluster_->Exec(
        std::string("SELECT pg_create_logical_replication_slot('") + kSlot +
        "', 'pgoutput');"
        "CREATE TABLE items (id int PRIMARY KEY, note text);"
        "INSERT INTO items SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g;");
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sluice-status-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    state_dir_ = pattern;

    config_.source_file = "status_test.yaml";
    config_.state_dir = state_dir_;
    config_.admin.listen = "127.0.0.1:" + std::to_string(testing::FreeLoopbackPort());
    config::PipelineConfig live;
    live.name = "live";
    live.source.dsn = DsnWithPassword(*cluster_);
    live.source.slot = kSlot;
    live.target.dsn = "host=127.0.0.1 port=1 password=" + std::string(kPassword);
    config_.pipelines.push_back(live);
    // A pipeline whose source cannot be reached (nothing listens on port 1).
    config::PipelineConfig broken;
    broken.name = "broken";
    broken.source.dsn =
        "host=127.0.0.1 port=1 user=postgres connect_timeout=2 password=" + std::string(kPassword);
    broken.source.slot = "sluice_broken";
    broken.target.dsn = "host=127.0.0.1 port=1";
    config_.pipelines.push_back(broken);
  }
  void TearDown() override { std::filesystem::remove_all(state_dir_); }

  std::unique_ptr<state::CheckpointStore> OpenStore() {
    auto store = state::CheckpointStore::Open(state_dir_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  static void ExpectNoPassword(const std::string& text, const std::string& what) {
    EXPECT_EQ(text.find(kPassword), std::string::npos) << what << " leaks the password:\n" << text;
  }

  static PgCluster* cluster_;
  std::string state_dir_;
  config::Config config_;
  PipelineMetrics live_metrics_;
  PipelineMetrics broken_metrics_;
};

PgCluster* StatusTest::cluster_ = nullptr;

TEST_F(StatusTest, LagBytesFromTheSourcesWalPosition) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  // A long cache so both collections see the same source position.
  StatusCollectorOptions options;
  options.source_cache_ttl = std::chrono::hours(1);
  StatusCollector collector(
      config_, {{&config_.pipelines[0], &live_metrics_}, {&config_.pipelines[1], &broken_metrics_}},
      store.get(), options);
  ASSERT_TRUE(collector.daemon_running());

  const core::Lsn before = CurrentLsn(*cluster_);
  ASSERT_GT(before.value(), 0x10000u);
  live_metrics_.phase = PipelinePhase::kStreaming;
  live_metrics_.durable_lsn = before.value() - 0x8000;
  live_metrics_.changes_applied = 1000;
  live_metrics_.oldest_pending_commit_time = 0;  // nothing pending: caught up in time
  broken_metrics_.phase = PipelinePhase::kRetrying;

  auto statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().ToString();
  ASSERT_EQ(statuses->size(), 2u);
  const PipelineStatus& live = (*statuses)[0];
  EXPECT_EQ(live.name, "live");
  EXPECT_EQ(live.phase, "streaming");
  EXPECT_TRUE(live.daemon_running);
  EXPECT_GE(live.source_lsn, before);
  ASSERT_TRUE(live.lag_bytes.has_value());
  EXPECT_EQ(*live.lag_bytes, live.source_lsn.value() - (before.value() - 0x8000));
  EXPECT_GE(*live.lag_bytes, 0x8000u);
  ASSERT_TRUE(live.lag_seconds.has_value());
  EXPECT_EQ(*live.lag_seconds, 0.0);
  // The slot was created before the table and its rows: it holds at least that WAL.
  ASSERT_TRUE(live.retained_wal_bytes.has_value());
  EXPECT_GT(*live.retained_wal_bytes, 0u);
  EXPECT_EQ(live.last_error, "");

  const PipelineStatus& broken = (*statuses)[1];
  EXPECT_EQ(broken.phase, "retrying");
  EXPECT_FALSE(broken.source_lsn.valid());
  EXPECT_FALSE(broken.lag_bytes.has_value());
  EXPECT_NE(broken.last_error.find("source unreachable"), std::string::npos) << broken.last_error;
  ExpectNoPassword(broken.last_error, "last_error");

  // Durable at the source's position: no lag.
  live_metrics_.durable_lsn = live.source_lsn.value();
  statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().ToString();
  EXPECT_EQ((*statuses)[0].lag_bytes, 0u);
  // Durable ahead of what the source told us (it moved on since): never negative.
  live_metrics_.durable_lsn = live.source_lsn.value() + 100;
  statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().ToString();
  EXPECT_EQ((*statuses)[0].lag_bytes, 0u);

  // Something pending for a minute: lag_seconds is its age.
  live_metrics_.oldest_pending_commit_time = core::PgNow() - 60LL * 1000000;
  statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().ToString();
  ASSERT_TRUE((*statuses)[0].lag_seconds.has_value());
  EXPECT_GE(*(*statuses)[0].lag_seconds, 60.0);
}

// The stream went quiet (nothing durable, nothing reported) while the source wrote on: the lag
// is the time since the pipeline last moved, not 0.
TEST_F(StatusTest, AQuietStreamWhileTheSourceMovesOnIsLag) {
  StatusCollectorOptions options;
  options.source_cache_ttl = std::chrono::milliseconds(0);
  StatusCollector collector(config_, {{&config_.pipelines[0], &live_metrics_}}, nullptr, options);
  const core::Lsn now = CurrentLsn(*cluster_);
  live_metrics_.phase = PipelinePhase::kRetrying;
  live_metrics_.durable_lsn = now.value() - 0x100;
  live_metrics_.source_wal_end = now.value() - 0x100;
  live_metrics_.oldest_pending_commit_time = 0;
  live_metrics_.last_progress_unix_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          (std::chrono::system_clock::now() - std::chrono::minutes(2)).time_since_epoch())
          .count();
  auto statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().ToString();
  ASSERT_TRUE((*statuses)[0].lag_seconds.has_value());
  EXPECT_GE(*(*statuses)[0].lag_seconds, 120.0);

  // The stream reported the source's position (a keepalive): quiet, but nothing is missing.
  live_metrics_.source_wal_end = CurrentLsn(*cluster_).value() + 0x10000;
  statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().ToString();
  EXPECT_EQ((*statuses)[0].lag_seconds, 0.0);
}

// How the last run ended survives the daemon: a permanent error is phase "failed" with the
// error, any other stored one shows beside phase "stopped".
TEST_F(StatusTest, DaemonDownShowsTheStoredLastError) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store
                    ->Save(state::LastErrorKey("live"),
                           state::PipelineErrorRecord{
                               "pipeline live: new row violates check constraint", 1700000000123,
                               /*permanent=*/true})
                    .ok());
    ASSERT_TRUE(store
                    ->Save(state::LastErrorKey("broken"),
                           state::PipelineErrorRecord{"pipeline broken: target went away",
                                                      1700000000456, /*permanent=*/false})
                    .ok());
  }
  StatusCollector collector(config_);
  auto statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().ToString();
  const PipelineStatus& live = (*statuses)[0];
  EXPECT_EQ(live.phase, "failed");
  EXPECT_EQ(live.last_error.rfind("pipeline live: new row violates check constraint", 0), 0u)
      << live.last_error;
  EXPECT_EQ(live.last_error_unix_ms, 1700000000123);
  const PipelineStatus& broken = (*statuses)[1];
  EXPECT_EQ(broken.phase, "stopped");
  EXPECT_NE(broken.last_error.find("target went away"), std::string::npos) << broken.last_error;
  EXPECT_NE(broken.last_error.find("source unreachable"), std::string::npos) << broken.last_error;

  auto [code, text] = RunCommand(config_, /*json=*/false);
  EXPECT_EQ(code, 0);
  EXPECT_NE(text.find("live      failed"), std::string::npos) << text;
}

TEST_F(StatusTest, SlotWalStatusComesFromTheSource) {
  StatusCollector collector(config_, {{&config_.pipelines[0], &live_metrics_}}, nullptr);
  auto statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().ToString();
  const PipelineStatus& live = (*statuses)[0];
  EXPECT_EQ(live.slot_wal_status, "reserved");
  EXPECT_FALSE(live.max_slot_wal_keep_bytes.has_value());  // -1: no limit
  EXPECT_FALSE(live.slot_safe_wal_bytes.has_value());
  EXPECT_FALSE(live.slot_wal_at_risk);
}

// The admin endpoint answers from what the collector has: CollectCached never asks a source.
TEST_F(StatusTest, CachedCollectionNeverAsksTheSources) {
  StatusCollectorOptions options;
  options.source_cache_ttl = std::chrono::milliseconds(0);
  StatusCollector collector(config_, {{&config_.pipelines[0], &live_metrics_}}, nullptr, options);
  auto before = collector.CollectCached();
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_FALSE((*before)[0].source_lsn.valid());  // never asked yet
  collector.RefreshSources();
  auto first = collector.CollectCached();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)[0].source_lsn.valid());
  ASSERT_TRUE(
      cluster_->Exec("INSERT INTO items SELECT g, 'z' FROM generate_series(9001, 9500) g").ok());
  auto second = collector.CollectCached();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)[0].source_lsn, (*first)[0].source_lsn);
}

TEST_F(StatusTest, SourceCacheExpiresAndSeesNewWal) {
  StatusCollectorOptions options;
  options.source_cache_ttl = std::chrono::milliseconds(0);  // ask every time
  StatusCollector collector(config_, {{&config_.pipelines[0], &live_metrics_}}, nullptr, options);
  auto first = collector.Collect();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(
      cluster_->Exec("INSERT INTO items SELECT g, 'y' FROM generate_series(5001, 5500) g").ok());
  auto second = collector.Collect();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_GT((*second)[0].source_lsn, (*first)[0].source_lsn);
  // No store given and the state dir holds none: live status still answers.
  EXPECT_TRUE((*second)[0].copy.empty());
}

TEST_F(StatusTest, AdminServerEndpoints) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->Put("live", "copy/public.items",
                        R"({"rows":1500,"bytes":300000,"estimated_rows":2000,)"
                        R"("estimated_bytes":400000,"ranges":1,"ranges_done":0,"done":false,)"
                        R"("updated_at_unix_ms":1})")
                  .ok());
  StatusCollector collector(
      config_, {{&config_.pipelines[0], &live_metrics_}, {&config_.pipelines[1], &broken_metrics_}},
      store.get());
  live_metrics_.phase = PipelinePhase::kCopying;
  live_metrics_.durable_lsn = 0x100;
  live_metrics_.transactions_applied = 7;
  live_metrics_.changes_applied = 70;
  live_metrics_.copy_rows = 1500;
  broken_metrics_.phase = PipelinePhase::kRetrying;

  AdminServer server(collector);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  ASSERT_GT(server.port(), 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_connection_timeout(std::chrono::seconds(10));
  client.set_read_timeout(std::chrono::seconds(30));

  auto status = client.Get("/status");
  ASSERT_TRUE(status) << httplib::to_string(status.error());
  EXPECT_EQ(status->status, 200);
  ExpectNoPassword(status->body, "/status");
  const auto json = nlohmann::json::parse(status->body);
  EXPECT_EQ(json["daemon"], "running");
  ASSERT_EQ(json["pipelines"].size(), 2u);
  const auto& live = json["pipelines"][0];
  EXPECT_EQ(live["name"], "live");
  EXPECT_EQ(live["phase"], "copying");
  EXPECT_EQ(live["durable_lsn"], "0/100");
  EXPECT_TRUE(live["source_lsn"].is_string());
  EXPECT_GT(live["lag_bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(live["transactions_applied"], 7);
  ASSERT_EQ(live["copy"].size(), 1u);
  EXPECT_EQ(live["copy"][0]["table"], "public.items");
  EXPECT_EQ(live["copy"][0]["rows"], 1500);
  EXPECT_EQ(live["copy"][0]["estimated_rows"], 2000);
  EXPECT_NE(json["pipelines"][1]["last_error"].get<std::string>().find("source unreachable"),
            std::string::npos);

  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  ExpectNoPassword(metrics->body, "/metrics");
  EXPECT_NE(metrics->body.find("sluice_transactions_applied_total{pipeline=\"live\"} 7\n"),
            std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("sluice_copy_rows_total{pipeline=\"live\"} 1500\n"),
            std::string::npos);
  EXPECT_NE(metrics->body.find("sluice_lag_bytes{pipeline=\"live\"} "), std::string::npos);
  EXPECT_NE(metrics->body.find("sluice_slot_retained_wal_bytes{pipeline=\"live\"} "),
            std::string::npos);
  // Unknown for the unreachable source: left out, not reported as 0.
  EXPECT_EQ(metrics->body.find("sluice_lag_bytes{pipeline=\"broken\"}"), std::string::npos);

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;
  EXPECT_EQ(health->body, "ok\n");

  broken_metrics_.phase = PipelinePhase::kFailed;
  broken_metrics_.SetLastError(std::string("authentication failed, password=") + kPassword);
  health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_NE(health->body.find("pipeline broken: failed"), std::string::npos) << health->body;
  EXPECT_EQ(health->body.find("pipeline live"), std::string::npos) << health->body;
  ExpectNoPassword(health->body, "/healthz");

  // `sluice status` asks the daemon when it answers.
  config_.admin.listen = "127.0.0.1:" + std::to_string(server.port());
  auto [code, text] = RunCommand(config_, /*json=*/false);
  EXPECT_EQ(code, 0);
  EXPECT_NE(text.find("daemon: running"), std::string::npos) << text;
  EXPECT_NE(text.find("public.items"), std::string::npos) << text;
  EXPECT_NE(text.find("75%  1.5k/2.0k rows"), std::string::npos) << text;
  ExpectNoPassword(text, "status table");
  auto [json_code, json_text] = RunCommand(config_, /*json=*/true);
  EXPECT_EQ(json_code, 0);
  EXPECT_EQ(nlohmann::json::parse(json_text)["daemon"], "running");
  ExpectNoPassword(json_text, "status --json");

  server.Stop();
  server.Stop();  // idempotent
}

TEST_F(StatusTest, DaemonDownAnswersFromTheCheckpointStore) {
  const core::Lsn durable(0x1234ABC);
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->SaveCheckpoint("live", {durable, core::PgNow(), 1700000000000}).ok());
    ASSERT_TRUE(store
                    ->Put("live", "copy/public.items",
                          R"({"rows":2000,"bytes":400000,"estimated_rows":2000,"done":true})")
                    .ok());
    ASSERT_TRUE(store->Put("live", "snapshot", "done").ok());
  }

  StatusCollector collector(config_);
  EXPECT_FALSE(collector.daemon_running());
  auto statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().ToString();
  ASSERT_EQ(statuses->size(), 2u);
  const PipelineStatus& live = (*statuses)[0];
  EXPECT_FALSE(live.daemon_running);
  EXPECT_EQ(live.phase, "stopped");
  EXPECT_EQ(live.durable_lsn, durable);
  EXPECT_TRUE(live.source_lsn.valid());
  ASSERT_TRUE(live.lag_bytes.has_value());
  EXPECT_EQ(*live.lag_bytes, live.source_lsn.value() - durable.value());
  EXPECT_FALSE(live.lag_seconds.has_value());  // nobody knows what is pending
  EXPECT_TRUE(live.snapshot_done);
  ASSERT_EQ(live.copy.size(), 1u);
  EXPECT_TRUE(live.copy[0].done);
  EXPECT_EQ(live.copy_rows, 2000u);
  EXPECT_EQ((*statuses)[1].durable_lsn, core::Lsn());  // never checkpointed

  const std::string table = RenderStatusTable(*statuses, /*daemon_running=*/false);
  EXPECT_NE(table.find("DOWN"), std::string::npos) << table;
  EXPECT_NE(table.find(durable.ToString()), std::string::npos) << table;
  ExpectNoPassword(table, "table");
  ExpectNoPassword(ToJson(*statuses).dump(), "JSON");
  ExpectNoPassword(RenderPrometheus(*statuses), "Prometheus text");

  // `sluice status` with nothing on admin.listen: the same answer, exit 0.
  auto [code, text] = RunCommand(config_, /*json=*/false);
  EXPECT_EQ(code, 0);
  EXPECT_NE(text.find("daemon: DOWN"), std::string::npos) << text;
  EXPECT_NE(text.find("0/1234ABC"), std::string::npos) << text;
  ExpectNoPassword(text, "status table");
  auto [json_code, json_text] = RunCommand(config_, /*json=*/true);
  EXPECT_EQ(json_code, 0);
  const auto json = nlohmann::json::parse(json_text);
  EXPECT_EQ(json["daemon"], "down");
  EXPECT_EQ(json["pipelines"][0]["durable_lsn"], "0/1234ABC");
  ExpectNoPassword(json_text, "status --json");

  // The daemon is down and the state directory is gone: nothing can answer.
  std::filesystem::remove_all(state_dir_);
  auto [missing_code, missing_text] = RunCommand(config_, /*json=*/false);
  EXPECT_EQ(missing_code, kStatusUnavailableExit);
  EXPECT_EQ(missing_text, "");
}

}  // namespace
}  // namespace sluice::control
