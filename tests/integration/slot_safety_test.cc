// A pipeline that has a position never gets a new slot on its own: every way the world takes
// the slot away (dropped after the copy, dropped while streaming, dropped during the copy,
// advanced past sluice, dropped and made again by someone else, WAL removed by
// max_slot_wal_keep_size, another daemon with the same pipeline name) ends in a refusal that
// names the slot and `sluice snapshot`, repeated on every start, and never in lost rows. After
// `sluice snapshot` the target equals the source row by row.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "tests/support/run_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);
const std::vector<std::string> kTables = {"public.items", "public.sluice_marker"};

class SlotSafetyTest : public SluiceRunTest {
 protected:
  void SetUp() override {
    SluiceRunTest::SetUp();
    Source(
        "CREATE TABLE public.sluice_marker (id int PRIMARY KEY);"
        "CREATE TABLE public.items (id int PRIMARY KEY, note text);"
        "INSERT INTO public.items SELECT g, 'before ' || g FROM generate_series(1, 100) g");
    config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(), {"public.*"},
                                  "      apply: { create_tables: true }\n");
  }

  void Insert(int from, int to, const std::string& note) {
    Source("INSERT INTO public.items SELECT g, '" + note + " ' || g FROM generate_series(" +
           std::to_string(from) + ", " + std::to_string(to) + ") g");
  }

  bool SlotExists() {
    auto rows =
        f_.source().Query("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_pipe'");
    EXPECT_TRUE(rows.ok());
    return rows.ok() && !rows->empty();
  }

  // `sluice run` must refuse at once with the slot named and the way out, and leave the source
  // without a new slot. Twice: the refusal holds on every start.
  void ExpectRefusal(const std::string& why) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      SluiceRun refused = RunSluice({"run", "--config", config_.path}, std::chrono::seconds(120));
      EXPECT_EQ(refused.exit_code, 78) << refused.err;
      EXPECT_NE(refused.err.find("sluice_pipe"), std::string::npos) << refused.err;
      EXPECT_NE(refused.err.find(why), std::string::npos) << refused.err;
      EXPECT_NE(refused.err.find("sluice snapshot --config " + config_.path + " --pipeline pipe"),
                std::string::npos)
          << refused.err;
      EXPECT_EQ(refused.err.find("streaming from"), std::string::npos)
          << "nothing may be streamed:\n"
          << refused.err;
    }
    // `status` (daemon down) shows the pipeline failed, with the refusal.
    SluiceRun status = RunSluice({"status", "--config", config_.path, "--json"});
    EXPECT_EQ(status.exit_code, 0) << status.err;
    auto json = nlohmann::json::parse(status.out, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << status.out;
    EXPECT_EQ(json["pipelines"][0]["phase"], "failed") << status.out;
    EXPECT_NE(json["pipelines"][0]["last_error"].get<std::string>().find(why), std::string::npos)
        << status.out;
    // `check` says what `run` would.
    SluiceRun check = RunSluice({"check", "--config", config_.path}, std::chrono::seconds(120));
    EXPECT_EQ(check.exit_code, 78) << check.out << check.err;
    EXPECT_NE(check.out.find(why), std::string::npos) << check.out;
    EXPECT_NE(check.out.find("sluice snapshot --config"), std::string::npos) << check.out;
  }

  // The way back: a new slot, every table copied again, then streaming; identical row by row.
  void SnapshotAndConverge() {
    SluiceRun snapshot = RunSluice({"snapshot", "--config", config_.path, "--pipeline", "pipe"},
                                   std::chrono::seconds(180));
    ASSERT_EQ(snapshot.exit_code, 0) << snapshot.out << snapshot.err;
    EXPECT_NE(snapshot.out.find("copied"), std::string::npos) << snapshot.out;
    StartRun();
    Insert(100001, 100050, "after the snapshot");
    ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
    StopRun();
    EXPECT_EQ(f_.Diff(kTables), "");
  }
};

TEST_F(SlotSafetyTest, SlotDroppedAfterTheCopyIsRefusedUntilSnapshot) {
  RunUntilCaughtUp();
  Source("SELECT pg_drop_replication_slot('sluice_pipe')");
  Insert(101, 200, "while the slot was gone");
  ExpectRefusal("does not exist on source");
  EXPECT_FALSE(SlotExists()) << "sluice made a slot on its own";
  auto target_rows = f_.target().QueryValue("SELECT count(*) FROM public.items");
  ASSERT_TRUE(target_rows.ok());
  EXPECT_EQ(*target_rows, "100");
  SnapshotAndConverge();
}

TEST_F(SlotSafetyTest, SlotDroppedWhileStreamingStopsThePipeline) {
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  Insert(101, 150, "streamed");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  // As a failover to a server without the slot, or an operator, would: the walsender goes and
  // the slot with it (sluice reconnects fast, so try until the drop wins).
  bool dropped = false;
  for (int i = 0; i < 200 && !dropped; ++i) {
    (void)f_.source().Exec(
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = "
        "'sluice_pipe' AND active_pid IS NOT NULL");
    dropped = f_.source().Exec("SELECT pg_drop_replication_slot('sluice_pipe')").ok();
    if (!dropped) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(dropped);
  Insert(151, 250, "while the slot was gone");
  auto exit_code = run_.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(exit_code.ok()) << "sluice kept running without its slot";
  EXPECT_EQ(*exit_code, 78) << ReadFile(Log());
  EXPECT_NE(ReadFile(Log()).find("does not exist on source"), std::string::npos) << ReadFile(Log());
  EXPECT_FALSE(SlotExists());
  ExpectRefusal("does not exist on source");
  SnapshotAndConverge();
}

TEST_F(SlotSafetyTest, SlotDroppedDuringTheCopyIsRefused) {
  // Enough rows that the copy takes a while; one worker.
  Source(
      "CREATE TABLE public.big (id int PRIMARY KEY, pad text);"
      "INSERT INTO public.big SELECT g, repeat('x', 500) FROM generate_series(1, 400000) g");
  config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(), {"public.*"},
                                "      apply: { create_tables: true, copy_jobs: 1 }\n");
  StartRun();
  // The slot exists (inactive) while the copy reads its snapshot.
  bool copying = false;
  for (int i = 0; i < 600 && !copying; ++i) {
    auto rows = f_.source().Query(
        "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY%big%' AND state = 'active'");
    copying = rows.ok() && !rows->empty();
    if (!copying) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(copying) << ReadFile(Log());
  Source("SELECT pg_drop_replication_slot('sluice_pipe')");
  Insert(101, 200, "during the copy");
  auto exit_code = run_.Wait(std::chrono::seconds(300));
  ASSERT_TRUE(exit_code.ok()) << "sluice went on without its slot";
  EXPECT_EQ(*exit_code, 78) << ReadFile(Log());
  EXPECT_NE(ReadFile(Log()).find("does not exist on source"), std::string::npos) << ReadFile(Log());
  ExpectRefusal("does not exist on source");
  EXPECT_FALSE(SlotExists());
  SnapshotAndConverge();
  EXPECT_EQ(f_.Diff({"public.big"}), "");
}

TEST_F(SlotSafetyTest, SlotAdvancedPastSluiceIsRefused) {
  RunUntilCaughtUp();
  Insert(101, 200, "skipped by the advance");
  Source("SELECT pg_replication_slot_advance('sluice_pipe', pg_current_wal_lsn())");
  ExpectRefusal("past the position sluice made durable");
  SnapshotAndConverge();
}

TEST_F(SlotSafetyTest, SlotMadeAgainBySomeoneElseIsRefused) {
  RunUntilCaughtUp();
  Source("SELECT pg_drop_replication_slot('sluice_pipe')");
  Insert(101, 200, "while the slot was gone");
  Source("SELECT pg_create_logical_replication_slot('sluice_pipe', 'pgoutput')");
  ExpectRefusal("past the position sluice made durable");
  SnapshotAndConverge();
}

TEST_F(SlotSafetyTest, SlotWhoseWalWasRemovedIsRefused) {
  // A source that lets slots lose WAL beyond 1 MB.
  Source("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
  Source("SELECT pg_reload_conf()");
  RunUntilCaughtUp();
  Insert(101, 200, "lost with the WAL");
  Source("CREATE SCHEMA filler");  // not published
  for (int i = 0; i < 6; ++i) {
    Source("CREATE TABLE filler.t" + std::to_string(i) +
           " AS SELECT g, repeat('y', 200) AS pad FROM generate_series(1, 5000) g");
    Source("SELECT pg_switch_wal()");
    Source("CHECKPOINT");
  }
  auto status = f_.source().QueryValue(
      "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'sluice_pipe'");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  ASSERT_EQ(*status, "lost");
  ExpectRefusal("has lost WAL it needed");
  Source("ALTER SYSTEM RESET max_slot_wal_keep_size");
  Source("SELECT pg_reload_conf()");
  SnapshotAndConverge();
}

// Two daemons (two state directories) with the same pipeline name on one source: the second
// neither streams from nor drops the first's slot, running or not.
TEST_F(SlotSafetyTest, ASecondDaemonNeverTakesTheFirstsSlot) {
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  TempDir other_dir;
  TailConfig other = WritePipelineConfig(other_dir, f_.source(), f_.target(), {"public.*"},
                                         "      apply: { create_tables: true }\n");
  for (bool first_running : {true, false}) {
    SluiceRun second = RunSluice({"run", "--config", other.path}, std::chrono::seconds(120));
    EXPECT_EQ(second.exit_code, 78) << second.err;
    SluiceRun check = RunSluice({"check", "--config", other.path}, std::chrono::seconds(120));
    EXPECT_EQ(check.exit_code, 78) << check.out;
    EXPECT_NE(check.out.find("was not created by this pipeline's state directory"),
              std::string::npos)
        << check.out;
    EXPECT_NE(second.err.find("was not created by this pipeline's state directory"),
              std::string::npos)
        << second.err;
    ASSERT_TRUE(SlotExists());
    if (first_running) {
      Insert(101, 200, "beside the second daemon");
      ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
      StopRun();
      Insert(201, 300, "while the first was stopped");
    }
  }
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff(kTables), "");
}

// A slot made by hand (or by another tool) at the position to start from is refused unless
// the operator says to adopt it; adopted, it streams from there and is the pipeline's own.
TEST_F(SlotSafetyTest, ASlotMadeForThePipelineIsAdoptedOnlyWhenAsked) {
  Target(
      "CREATE TABLE public.sluice_marker (id int PRIMARY KEY);"
      "CREATE TABLE public.items (id int PRIMARY KEY, note text)");
  // The operator's own copy, consistent with the slot made right after it (nothing writes).
  Target("INSERT INTO public.items SELECT g, 'before ' || g FROM generate_series(1, 100) g");
  // pgoutput reads the publication as of each change: it must exist before the slot.
  Source("CREATE PUBLICATION sluice_pipe FOR TABLE public.items, public.sluice_marker");
  Source("SELECT pg_create_logical_replication_slot('sluice_pipe', 'pgoutput')");
  Insert(101, 200, "after the slot was made");
  config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(), {"public.*"},
                                "    snapshot: never\n");
  SluiceRun refused = RunSluice({"run", "--config", config_.path}, std::chrono::seconds(120));
  EXPECT_EQ(refused.exit_code, 78) << refused.err;
  EXPECT_NE(refused.err.find("source.adopt_slot: true"), std::string::npos) << refused.err;

  std::string yaml = ReadFile(config_.path);
  yaml.replace(yaml.find("      tables:"), 0, "      adopt_slot: true\n");
  WriteFile(config_.path, yaml);
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  Insert(201, 250, "while stopped");
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff({"public.items"}), "");
}

}  // namespace
}  // namespace sluice::testing
