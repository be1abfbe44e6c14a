#include "control/pipeline_status.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <sstream>

#include "control/admin_server.h"
#include "core/pg_time.h"

namespace sluice::control {
namespace {

PipelineStatus Sample() {
  PipelineStatus s;
  s.name = "orders";
  s.phase = "streaming";
  s.slot = "sluice_orders";
  s.source_lsn = core::Lsn(0x16B374D848);
  s.durable_lsn = core::Lsn(0x16B3740000);
  s.lag_bytes = 0xD848;
  s.lag_seconds = 1.5;
  s.rows_per_second = 1234.25;
  s.transactions_applied = 10;
  s.changes_applied = 200;
  s.bytes_applied = 30000;
  s.batches_committed = 4;
  s.errors = 1;
  s.last_commit_time = 700000000123456;
  s.last_progress_unix_ms = 1700000000000;
  s.retained_wal_bytes = 5 * config::kMiB;
  s.last_error = "connection reset";
  s.copy_rows = 1200000;
  s.copy = {{"public.orders", 1200000, 80000000, 2000000, false},
            {"public.users", 500, 4096, 480, true}};
  s.sink_counters = {{"rows_applied", "Rows written.", 7}, {"early_flushes", "Sent early.", 2}};
  s.daemon_running = true;
  return s;
}

TEST(PipelineStatusJsonTest, Shape) {
  const nlohmann::json json = ToJson(std::vector<PipelineStatus>{Sample()});
  EXPECT_EQ(json["daemon"], "running");
  ASSERT_TRUE(json["pipelines"].is_array());
  ASSERT_EQ(json["pipelines"].size(), 1u);
  const auto& p = json["pipelines"][0];
  EXPECT_EQ(p["name"], "orders");
  EXPECT_EQ(p["phase"], "streaming");
  EXPECT_EQ(p["source_lsn"], "16/B374D848");
  EXPECT_EQ(p["durable_lsn"], "16/B3740000");
  EXPECT_EQ(p["lag_bytes"], 0xD848);
  EXPECT_DOUBLE_EQ(p["lag_seconds"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(p["rows_per_second"].get<double>(), 1234.25);
  EXPECT_EQ(p["retained_wal_bytes"], 5 * config::kMiB);
  EXPECT_EQ(p["last_error"], "connection reset");
  EXPECT_EQ(p["transactions_applied"], 10);
  EXPECT_EQ(p["changes_applied"], 200);
  ASSERT_TRUE(p["copy"].is_array());
  ASSERT_EQ(p["copy"].size(), 2u);
  EXPECT_EQ(p["copy"][0]["table"], "public.orders");
  EXPECT_EQ(p["copy"][0]["rows"], 1200000);
  EXPECT_EQ(p["copy"][0]["estimated_rows"], 2000000);
  EXPECT_EQ(p["copy"][0]["done"], false);
  EXPECT_EQ(p["copy"][1]["done"], true);
  EXPECT_EQ(p["sink"], nlohmann::json::parse(R"({"rows_applied": 7, "early_flushes": 2})"));
}

TEST(PipelineStatusJsonTest, UnknownValuesAreNullAndDaemonDown) {
  PipelineStatus s;
  s.name = "p";
  s.phase = "stopped";
  const nlohmann::json json = ToJson(std::vector<PipelineStatus>{s});
  EXPECT_EQ(json["daemon"], "down");
  const auto& p = json["pipelines"][0];
  EXPECT_TRUE(p["source_lsn"].is_null());
  EXPECT_EQ(p["durable_lsn"], "0/0");
  EXPECT_TRUE(p["lag_bytes"].is_null());
  EXPECT_TRUE(p["lag_seconds"].is_null());
  EXPECT_TRUE(p["retained_wal_bytes"].is_null());
  EXPECT_TRUE(p["last_commit_time"].is_null());
  EXPECT_TRUE(p["copy"].is_array());
  EXPECT_EQ(ToJson(std::vector<PipelineStatus>{})["daemon"], "down");
}

TEST(PipelineStatusJsonTest, RoundTrip) {
  PipelineStatus unknown;
  unknown.name = "idle";
  unknown.phase = "retrying";
  unknown.daemon_running = true;
  const std::vector<PipelineStatus> statuses = {Sample(), unknown};
  auto back = StatusesFromJson(nlohmann::json::parse(ToJson(statuses).dump()));
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->size(), 2u);
  const PipelineStatus& a = (*back)[0];
  const PipelineStatus expected = Sample();
  EXPECT_EQ(a.name, expected.name);
  EXPECT_EQ(a.slot, expected.slot);
  EXPECT_EQ(a.source_lsn, expected.source_lsn);
  EXPECT_EQ(a.durable_lsn, expected.durable_lsn);
  EXPECT_EQ(a.lag_bytes, expected.lag_bytes);
  EXPECT_EQ(a.lag_seconds, expected.lag_seconds);
  EXPECT_EQ(a.retained_wal_bytes, expected.retained_wal_bytes);
  EXPECT_EQ(a.last_commit_time, expected.last_commit_time);
  EXPECT_EQ(a.last_progress_unix_ms, expected.last_progress_unix_ms);
  EXPECT_EQ(a.errors, expected.errors);
  EXPECT_EQ(a.copy, expected.copy);
  ASSERT_EQ(a.sink_counters.size(), 2u);  // JSON keeps names and values, not help texts
  for (const auto& counter : expected.sink_counters) {
    const auto it = std::find_if(a.sink_counters.begin(), a.sink_counters.end(),
                                 [&](const auto& c) { return c.name == counter.name; });
    ASSERT_NE(it, a.sink_counters.end()) << counter.name;
    EXPECT_EQ(it->value, counter.value) << counter.name;
  }
  EXPECT_TRUE(a.daemon_running);
  const PipelineStatus& b = (*back)[1];
  EXPECT_FALSE(b.source_lsn.valid());
  EXPECT_FALSE(b.lag_bytes.has_value());
  EXPECT_FALSE(b.lag_seconds.has_value());
  EXPECT_FALSE(b.retained_wal_bytes.has_value());
  EXPECT_EQ(b.slot_wal_status, "");
  EXPECT_FALSE(b.slot_safe_wal_bytes.has_value());
  EXPECT_FALSE(b.max_slot_wal_keep_bytes.has_value());
}

TEST(PipelineStatusJsonTest, SlotWalAndErrorTimeRoundTrip) {
  PipelineStatus s = Sample();
  s.slot_wal_status = "unreserved";
  s.slot_safe_wal_bytes = -1024;
  s.max_slot_wal_keep_bytes = 64 * config::kMiB;
  s.slot_wal_at_risk = true;
  s.last_error_unix_ms = 1700000000999;
  const nlohmann::json json = ToJson(s);
  EXPECT_EQ(json["slot_wal_status"], "unreserved");
  EXPECT_EQ(json["slot_safe_wal_bytes"], -1024);
  EXPECT_EQ(json["slot_wal_at_risk"], true);
  auto back = StatusesFromJson(ToJson(std::vector<PipelineStatus>{s}));
  ASSERT_TRUE(back.ok()) << back.status().message();
  const PipelineStatus& a = (*back)[0];
  EXPECT_EQ(a.slot_wal_status, s.slot_wal_status);
  EXPECT_EQ(a.slot_safe_wal_bytes, s.slot_safe_wal_bytes);
  EXPECT_EQ(a.max_slot_wal_keep_bytes, s.max_slot_wal_keep_bytes);
  EXPECT_TRUE(a.slot_wal_at_risk);
  EXPECT_EQ(a.last_error_unix_ms, s.last_error_unix_ms);
}

TEST(PipelineStatusJsonTest, MalformedDocumentsAreErrors) {
  EXPECT_FALSE(StatusesFromJson(nlohmann::json::parse("{}")).ok());
  EXPECT_FALSE(StatusesFromJson(nlohmann::json::parse(R"({"pipelines":[{"phase":"x"}]})")).ok());
  EXPECT_FALSE(
      StatusesFromJson(nlohmann::json::parse(R"({"pipelines":[{"name":"a","durable_lsn":"zz"}]})"))
          .ok());
}

TEST(HumanFormatTest, Bytes) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(812), "812 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 kB");
  EXPECT_EQ(HumanBytes(12 * config::kMiB), "12.0 MB");
  EXPECT_EQ(HumanBytes(3 * config::kGiB + config::kGiB / 5), "3.2 GB");
}

TEST(HumanFormatTest, Counts) {
  EXPECT_EQ(HumanCount(950), "950");
  EXPECT_EQ(HumanCount(12300), "12.3k");
  EXPECT_EQ(HumanCount(1200000), "1.2M");
  EXPECT_EQ(HumanCount(3000000000), "3.0G");
}

TEST(HumanFormatTest, Seconds) {
  EXPECT_EQ(HumanSeconds(0), "0s");
  EXPECT_EQ(HumanSeconds(4.25), "4.2s");
  EXPECT_EQ(HumanSeconds(42), "42s");
  EXPECT_EQ(HumanSeconds(187), "3m07s");
  EXPECT_EQ(HumanSeconds(2 * 3600 + 5 * 60 + 9), "2h05m");
  EXPECT_EQ(HumanSeconds(3 * 86400 + 4 * 3600), "3d04h");
}

TEST(ProgressBarTest, PartialWithEstimate) {
  EXPECT_EQ(ProgressBar({"public.t", 1160000, 0, 2000000, false}, 12),
            "[######......]  58%  1.2M/2.0M rows");
}

TEST(ProgressBarTest, DoneIsFull) {
  EXPECT_EQ(ProgressBar({"public.t", 2100000, 0, 2000000, true}, 10),
            "[##########] 100%  2.1M rows");
}

TEST(ProgressBarTest, NeverFullBeforeDone) {
  // The estimate was low: more rows than estimated, still copying.
  EXPECT_EQ(ProgressBar({"public.t", 3000, 0, 1000, false}, 10),
            "[#########.]  99%  3.0k/1.0k rows");
}

TEST(ProgressBarTest, NoEstimate) {
  EXPECT_EQ(ProgressBar({"public.t", 42, 0, 0, false}, 5), "[.....]    ?  42 rows");
}

TEST(StatusTableTest, ShowsEverythingAtAGlance) {
  const std::string table = RenderStatusTable({Sample()}, true);
  EXPECT_NE(table.find("daemon: running"), std::string::npos) << table;
  for (const char* column : {"PIPELINE", "PHASE", "SOURCE LSN", "DURABLE LSN", "LAG", "LAG TIME",
                             "ROWS/S", "RETAINED WAL", "LAST ERROR"}) {
    EXPECT_NE(table.find(column), std::string::npos) << column << "\n" << table;
  }
  for (const char* value : {"orders", "streaming", "16/B374D848", "16/B3740000", "54.1 kB", "1.5s",
                            "1234", "5.0 MB", "connection reset"}) {
    EXPECT_NE(table.find(value), std::string::npos) << value << "\n" << table;
  }
  EXPECT_NE(table.find("1/2 tables done"), std::string::npos) << table;
  EXPECT_NE(table.find("public.orders"), std::string::npos) << table;
  EXPECT_NE(table.find("60%  1.2M/2.0M rows"), std::string::npos) << table;
  EXPECT_EQ(table.find("WARNING"), std::string::npos) << table;
}

TEST(StatusTableTest, CopyProgressHiddenOnceSnapshotDone) {
  PipelineStatus s = Sample();
  s.snapshot_done = true;
  EXPECT_EQ(RenderStatusTable({s}, true).find("public.orders"), std::string::npos);
}

TEST(StatusTableTest, DaemonDownAndUnknownValues) {
  PipelineStatus s;
  s.name = "p";
  s.phase = "stopped";
  s.durable_lsn = core::Lsn(0x100);
  const std::string table = RenderStatusTable({s}, false);
  EXPECT_NE(table.find("daemon: DOWN"), std::string::npos) << table;
  EXPECT_NE(table.find("0/100"), std::string::npos) << table;
  EXPECT_NE(table.find(" - "), std::string::npos) << table;
}

TEST(StatusTableTest, RetainedWalWarning) {
  PipelineStatus s = Sample();
  s.retained_wal_bytes = 3 * config::kGiB;
  const std::string table = RenderStatusTable({s}, true);
  EXPECT_NE(table.find("WARNING: orders: slot sluice_orders retains 3.0 GB"), std::string::npos)
      << table;
  // Below a custom threshold: no warning; above it: warning.
  EXPECT_EQ(RenderStatusTable({s}, true, 4 * config::kGiB).find("WARNING"), std::string::npos);
  s.retained_wal_bytes = 2 * config::kMiB;
  EXPECT_NE(RenderStatusTable({s}, true, config::kMiB).find("WARNING"), std::string::npos);
}

// max_slot_wal_keep_size on the source: a warning from 80% of it, another while wal_status is
// unreserved, an error once it is lost; the absolute threshold stays for unlimited sources.
TEST(StatusTableTest, SlotWalNearTheSourcesLimitUnreservedAndLost) {
  PipelineStatus s = Sample();
  s.copy.clear();
  s.max_slot_wal_keep_bytes = 100 * config::kMiB;
  s.slot_wal_status = "reserved";
  s.retained_wal_bytes = 79 * config::kMiB;
  EXPECT_EQ(SlotWalWarning(s, config::kGiB), "");
  s.retained_wal_bytes = 80 * config::kMiB;
  s.slot_safe_wal_bytes = 21 * config::kMiB;
  std::string warning = SlotWalWarning(s, config::kGiB);
  EXPECT_NE(warning.find("orders: slot sluice_orders retains 80.0 MB of WAL, 80% of the source's "
                         "max_slot_wal_keep_size 100.0 MB; 21.0 MB more"),
            std::string::npos)
      << warning;
  EXPECT_NE(RenderStatusTable({s}, true).find("WARNING: " + warning + "\n"), std::string::npos);

  s.slot_wal_status = "unreserved";
  s.retained_wal_bytes = 130 * config::kMiB;
  s.slot_safe_wal_bytes = -13 * static_cast<int64_t>(config::kMiB);
  warning = SlotWalWarning(s, config::kGiB);
  EXPECT_NE(warning.find("wal_status unreserved"), std::string::npos) << warning;
  EXPECT_NE(RenderStatusTable({s}, true).find("WARNING: " + warning), std::string::npos);

  s.slot_wal_status = "lost";
  s.retained_wal_bytes.reset();  // a lost slot has no restart_lsn
  s.slot_safe_wal_bytes.reset();
  warning = SlotWalWarning(s, config::kGiB);
  EXPECT_NE(warning.find("has lost WAL it needed"), std::string::npos) << warning;
  EXPECT_NE(RenderStatusTable({s}, true).find("ERROR: " + warning), std::string::npos);

  PipelineStatus unlimited = Sample();
  unlimited.slot_wal_status = "extended";
  unlimited.retained_wal_bytes = 3 * config::kGiB;
  EXPECT_NE(SlotWalWarning(unlimited, config::kGiB).find("threshold 1.0 GB"), std::string::npos);
}

TEST(StatusTableTest, ErrorsStayOnOneLine) {
  PipelineStatus s = Sample();
  s.copy.clear();
  s.last_error = "first line\nsecond line " + std::string(300, 'x');
  const std::string table = RenderStatusTable({s}, true);
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 3) << table;  // daemon, header, row
  EXPECT_NE(table.find("first line second line"), std::string::npos);
  EXPECT_NE(table.find("..."), std::string::npos);
}

TEST(PrometheusTest, EveryLineParses) {
  PipelineStatus odd = Sample();
  odd.name = "we\"ird\\name";
  odd.lag_seconds.reset();  // unknown: left out, not 0
  const std::string text = RenderPrometheus({Sample(), odd});
  const std::regex comment(R"(# (HELP|TYPE) (sluice_[a-z_]+) .+)");
  const std::regex sample(
      R"re((sluice_[a-z_]+)\{pipeline="((?:[^"\\]|\\.)*)"\} (-?[0-9]+(?:\.[0-9]+)?))re");
  std::map<std::string, std::map<std::string, std::string>> values;  // metric -> pipeline
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, comment)) continue;
    ASSERT_TRUE(std::regex_match(line, m, sample)) << "unparsable line: " << line;
    values[m[1]][m[2]] = m[3];
  }
  EXPECT_EQ(values["sluice_lag_bytes"]["orders"], std::to_string(0xD848));
  EXPECT_EQ(values["sluice_lag_seconds"]["orders"], "1.500");
  EXPECT_EQ(values["sluice_lag_seconds"].count("we\\\"ird\\\\name"), 0u);
  EXPECT_EQ(values["sluice_lag_bytes"]["we\\\"ird\\\\name"], std::to_string(0xD848));
  EXPECT_EQ(values["sluice_transactions_applied_total"]["orders"], "10");
  EXPECT_EQ(values["sluice_changes_applied_total"]["orders"], "200");
  EXPECT_EQ(values["sluice_bytes_applied_total"]["orders"], "30000");
  EXPECT_EQ(values["sluice_batches_committed_total"]["orders"], "4");
  EXPECT_EQ(values["sluice_errors_total"]["orders"], "1");
  EXPECT_EQ(values["sluice_slot_retained_wal_bytes"]["orders"], std::to_string(5 * config::kMiB));
  EXPECT_EQ(values["sluice_copy_rows_total"]["orders"], "1200000");
  EXPECT_EQ(values["sluice_pipeline_up"]["orders"], "1");
  EXPECT_EQ(values["sluice_sink_rows_applied_total"]["orders"], "7");
  EXPECT_EQ(values["sluice_sink_early_flushes_total"]["orders"], "2");
  // Slot WAL state unknown (no wal_status): no lines rather than a reassuring 0.
  EXPECT_EQ(values["sluice_slot_wal_at_risk"].count("orders"), 0u);
  EXPECT_EQ(values["sluice_slot_safe_wal_bytes"].count("orders"), 0u);
  PipelineStatus at_risk = Sample();
  at_risk.slot_wal_status = "unreserved";
  at_risk.slot_wal_at_risk = true;
  at_risk.slot_safe_wal_bytes = -4096;
  const std::string risky = RenderPrometheus({at_risk});
  EXPECT_NE(risky.find("\nsluice_slot_wal_at_risk{pipeline=\"orders\"} 1\n"), std::string::npos)
      << risky;
  EXPECT_NE(risky.find("\nsluice_slot_wal_lost{pipeline=\"orders\"} 0\n"), std::string::npos);
  EXPECT_NE(risky.find("\nsluice_slot_safe_wal_bytes{pipeline=\"orders\"} -4096\n"),
            std::string::npos);
  EXPECT_NE(text.find("# HELP sluice_sink_rows_applied_total Rows written.\n"
                      "# TYPE sluice_sink_rows_applied_total counter\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE sluice_errors_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE sluice_lag_bytes gauge\n"), std::string::npos);
}

// Pipelines whose sinks count different things: one family per counter name, each with the
// pipelines that have it, HELP and TYPE once.
TEST(PrometheusTest, SinkCountersOfDifferentSinksShareFamiliesByName) {
  PipelineStatus pg = Sample();
  PipelineStatus other = Sample();
  other.name = "cache";
  other.sink_counters = {{"keys_written", "Keys written.", 40}, {"rows_applied", "Rows.", 3}};
  PipelineStatus none = Sample();
  none.name = "tail";
  none.sink_counters.clear();
  const std::string text = RenderPrometheus({pg, other, none});
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
      ++n;
    }
    return n;
  };
  EXPECT_EQ(count("# TYPE sluice_sink_rows_applied_total counter\n"), 1u);
  EXPECT_EQ(count("# TYPE sluice_sink_keys_written_total counter\n"), 1u);
  EXPECT_EQ(count("sluice_sink_rows_applied_total{pipeline=\"orders\"} 7\n"), 1u);
  EXPECT_EQ(count("sluice_sink_rows_applied_total{pipeline=\"cache\"} 3\n"), 1u);
  EXPECT_EQ(count("sluice_sink_keys_written_total{pipeline=\"cache\"} 40\n"), 1u);
  EXPECT_EQ(count("sluice_sink_keys_written_total{pipeline=\"orders\"}"), 0u);
  EXPECT_EQ(count("{pipeline=\"tail\"} 7"), 0u);  // no sink counters: no sink lines
  // A family's samples follow its own TYPE line.
  EXPECT_LT(text.find("# TYPE sluice_sink_rows_applied_total"),
            text.find("sluice_sink_rows_applied_total{pipeline=\"cache\"}"));
}

TEST(HealthTest, Phases) {
  for (const char* phase : {"starting", "copying", "streaming", "retrying"}) {
    EXPECT_TRUE(IsHealthyPhase(phase)) << phase;
  }
  EXPECT_FALSE(IsHealthyPhase("failed"));
  EXPECT_FALSE(IsHealthyPhase("stopped"));
}

// The lag rules through the collector: live metrics, a source nobody can reach (so nothing
// source-derived is known), and no state directory needed while the daemon runs.
class CollectorLagTest : public ::testing::Test {
 protected:
  CollectorLagTest() {
    config_.state_dir = ::testing::TempDir() + "/sluice-no-state-here";
    config::PipelineConfig pipeline;
    pipeline.name = "p";
    pipeline.source.dsn = "host=127.0.0.1 port=1 password=hunter2secret connect_timeout=1";
    pipeline.source.slot = "sluice_p";
    pipeline.target.dsn = "host=127.0.0.1 port=1";
    config_.pipelines.push_back(pipeline);
  }
  config::Config config_;
  PipelineMetrics metrics_;
};

TEST_F(CollectorLagTest, IdleSourceHasZeroLagSeconds) {
  metrics_.phase = PipelinePhase::kStreaming;
  metrics_.durable_lsn = 0x5000;
  metrics_.source_wal_end = 0x5100;
  metrics_.last_commit_time = core::PgNow() - 3600LL * 1000000;  // last change an hour ago
  metrics_.oldest_pending_commit_time = 0;                       // nothing pending
  StatusCollector collector(config_, {{&config_.pipelines[0], &metrics_}}, nullptr);
  auto statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().message();
  ASSERT_EQ(statuses->size(), 1u);
  const PipelineStatus& s = (*statuses)[0];
  EXPECT_EQ(s.phase, "streaming");
  ASSERT_TRUE(s.lag_seconds.has_value());
  EXPECT_EQ(*s.lag_seconds, 0.0);
  // The source is unreachable: its last reported position stands in, and the error says so.
  EXPECT_EQ(s.source_lsn, core::Lsn(0x5100));
  EXPECT_EQ(s.lag_bytes, 0x100u);
  EXPECT_FALSE(s.retained_wal_bytes.has_value());
  EXPECT_NE(s.last_error.find("source unreachable"), std::string::npos) << s.last_error;
  EXPECT_EQ(s.last_error.find("hunter2secret"), std::string::npos) << s.last_error;
}

TEST_F(CollectorLagTest, PendingTransactionGivesItsAge) {
  metrics_.phase = PipelinePhase::kStreaming;
  metrics_.durable_lsn = 0x5000;
  metrics_.source_wal_end = 0x4000;  // behind durable: lag is 0, never negative
  metrics_.oldest_pending_commit_time = core::PgNow() - 30LL * 1000000;
  StatusCollector collector(config_, {{&config_.pipelines[0], &metrics_}}, nullptr);
  auto statuses = collector.Collect();
  ASSERT_TRUE(statuses.ok()) << statuses.status().message();
  const PipelineStatus& s = (*statuses)[0];
  ASSERT_TRUE(s.lag_seconds.has_value());
  EXPECT_GE(*s.lag_seconds, 30.0);
  EXPECT_EQ(s.lag_bytes, 0u);
}

TEST_F(CollectorLagTest, DaemonDownWithoutStateDirIsAnError) {
  StatusCollector collector(config_);
  EXPECT_FALSE(collector.daemon_running());
  auto statuses = collector.Collect();
  ASSERT_FALSE(statuses.ok());
  EXPECT_NE(statuses.status().message().find("state directory"), std::string::npos);
}

TEST(ListenAddressTest, Parses) {
  auto a = ParseListenAddress("127.0.0.1:7878");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7878);
  auto b = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 0);
  EXPECT_FALSE(ParseListenAddress("localhost").ok());
  EXPECT_FALSE(ParseListenAddress("localhost:http").ok());
  EXPECT_FALSE(ParseListenAddress("localhost:70000").ok());
  EXPECT_FALSE(ParseListenAddress(":80").ok());
}

}  // namespace
}  // namespace sluice::control

namespace sluice::control {
namespace {

TEST(PipelineStatusPrometheusTest, BatchLatencyHistogramIsCumulativeWithSumAndCount) {
  PipelineStatus s;
  s.name = "orders";
  s.phase = "streaming";
  s.batch_latency_counts.assign(PipelineMetrics::kBatchLatencyBucketsSeconds.size() + 1, 0);
  s.batch_latency_counts[0] = 2;      // <= 1 ms
  s.batch_latency_counts[5] = 3;      // <= 100 ms
  s.batch_latency_counts.back() = 1;  // > 5 s
  s.batch_latency_sum_seconds = 7.5;
  s.retained_wal_bytes = 10;
  s.retained_wal_warning = true;
  const std::string text = RenderPrometheus({s});
  EXPECT_NE(text.find("# TYPE sluice_batch_latency_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("sluice_batch_latency_seconds_bucket{pipeline=\"orders\",le=\"0.001\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_batch_latency_seconds_bucket{pipeline=\"orders\",le=\"0.100\"} 5"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_batch_latency_seconds_bucket{pipeline=\"orders\",le=\"+Inf\"} 6"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sluice_batch_latency_seconds_count{pipeline=\"orders\"} 6"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_batch_latency_seconds_sum{pipeline=\"orders\"} 7.500000"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_slot_retained_wal_warning{pipeline=\"orders\"} 1"),
            std::string::npos);
  EXPECT_EQ(ToJson(s)["retained_wal_warning"], true);
}

TEST(PipelineMetricsTest, RecordBatchLatencyPicksTheFirstBucketAtOrAbove) {
  PipelineMetrics m;
  m.RecordBatchLatency(0.0005);
  m.RecordBatchLatency(0.001);
  m.RecordBatchLatency(0.2);
  m.RecordBatchLatency(60);
  EXPECT_EQ(m.batch_latency_counts[0].load(), 2u);
  EXPECT_EQ(m.batch_latency_counts[6].load(), 1u);  // <= 0.25 s
  EXPECT_EQ(m.batch_latency_counts.back().load(), 1u);
}

}  // namespace
}  // namespace sluice::control
