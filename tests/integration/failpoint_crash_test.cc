// Crashes at exactly the named step of the durability sequence, the initial copy and
// `sluice snapshot` (failpoints, core/failpoint.h), under a pgbench load of inserts and updates
// (pgbench_history has no key: a change applied twice shows as a duplicate row). Each test
// checks that the process died by SIGKILL at that point and what the point left behind, then
// restarts without failpoints and compares source and target row by row.
#include <gtest/gtest.h>

#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "state/checkpoint_store.h"
#include "tests/support/run_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(240);
constexpr auto kUntilCrash = std::chrono::seconds(240);  // a bound, not an expectation
constexpr int kKilledBySigkill = 128 + SIGKILL;
// A function, not a namespace-scope copy: kPgbenchTables lives in another translation unit and
// may not be initialized yet when this one's statics are.
std::vector<std::string> AllTables() {
  auto tables = kPgbenchTables;
  tables.push_back("public.sluice_marker");
  return tables;
}

std::string Failpoints(const std::string& spec) { return "SLUICE_FAILPOINTS=" + spec; }

class FailpointCrashTest : public SluiceRunTest {
 protected:
  void SetUp() override {
    SluiceRunTest::SetUp();
    ASSERT_TRUE(f_.InitPgbench(1).ok());
    config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(), {"public.*"},
                                  "      apply: { create_tables: true }\n");
  }
  void StartLoad() { ASSERT_TRUE(f_.StartLoad(load_, 600).ok()); }
  void StopLoad() {
    load_.Kill(SIGTERM);
    ASSERT_TRUE(load_.Wait(std::chrono::seconds(30)).ok());
  }

  // The running `sluice` dies by SIGKILL, saying it was the failpoint `name`.
  void ExpectCrashAt(SluiceProcess& process, const std::string& log, const std::string& name) {
    auto exit_code = process.Wait(kUntilCrash);
    ASSERT_TRUE(exit_code.ok()) << exit_code.status().ToString() << "\n" << ReadFile(log);
    EXPECT_EQ(*exit_code, kKilledBySigkill) << ReadFile(log);
    EXPECT_NE(ReadFile(log).find("sluice: failpoint " + name + ": crash"), std::string::npos)
        << ReadFile(log);
  }

  // The store as the crash left it, read as `sluice status` reads it.
  std::unique_ptr<state::CheckpointStore> Store() {
    auto store = state::CheckpointStore::Open(config_.state_dir, /*read_only=*/true);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  std::string Checkpoint() {
    auto store = Store();
    if (store == nullptr) return "<no store>";
    auto checkpoint = store->LoadCheckpoint("pipe");
    EXPECT_TRUE(checkpoint.ok() && checkpoint->has_value()) << checkpoint.status().ToString();
    return checkpoint.ok() && checkpoint->has_value() ? (*checkpoint)->durable_lsn.ToString()
                                                      : "<none>";
  }
  // Whether `sql` with "$1" replaced by `lsn` as a pg_lsn is true on `cluster`.
  static bool True(const PgCluster& cluster, std::string sql, const std::string& lsn) {
    sql.replace(sql.find("$1"), 2, "'" + lsn + "'::pg_lsn");
    return Value(cluster, sql) == "t";
  }

  // A crash at `name` mid-stream, then a restart without failpoints; the load runs throughout.
  void CrashWhileStreamingThenConverge(const std::string& name,
                                       const std::function<void()>& check_crash_site) {
    StartLoad();
    // The third pass: the copy is behind it and batches are flowing.
    StartRun({Failpoints(name + "=crash@3")});
    ExpectCrashAt(run_, Log(), name);
    check_crash_site();
    StartRun();  // the load still runs: the restart catches up under it
    ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
    StopLoad();
    ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
    StopRun();
    EXPECT_EQ(f_.Diff(AllTables()), "");
  }

  SluiceProcess load_;
};

// The target committed the batch and its position; the checkpoint did not get it. The restart
// resumes from the target's position: the batch is not applied twice.
TEST_F(FailpointCrashTest, AfterTargetCommitLosesAndDoublesNothing) {
  CrashWhileStreamingThenConverge("after_target_commit", [this] {
    const std::string checkpoint = Checkpoint();
    EXPECT_TRUE(True(f_.target(), "SELECT end_lsn > $1 FROM sluice.applied WHERE pipeline = 'pipe'",
                     checkpoint))
        << "the target's position is past the checkpoint " << checkpoint;
  });
}

// The checkpoint has the batch; the source was never told. The slot resends from its older
// confirmed position and the resumed stream drops what the checkpoint covers.
TEST_F(FailpointCrashTest, AfterCheckpointLosesAndDoublesNothing) {
  CrashWhileStreamingThenConverge("after_checkpoint", [this] {
    const std::string checkpoint = Checkpoint();
    // Equal after a batch; past the target's position when the pass was an idle confirmation.
    EXPECT_TRUE(True(f_.target(),
                     "SELECT end_lsn <= $1 FROM sluice.applied WHERE pipeline = 'pipe'",
                     checkpoint))
        << checkpoint;
    EXPECT_TRUE(True(f_.source(),
                     "SELECT confirmed_flush_lsn < $1 FROM pg_replication_slots "
                     "WHERE slot_name = 'sluice_pipe'",
                     checkpoint))
        << "the slot confirmed the checkpoint " << checkpoint << " it was never told of";
  });
}

// Capture was handed the durable position (the next status update tells the source).
TEST_F(FailpointCrashTest, AfterAcknowledgeLosesAndDoublesNothing) {
  CrashWhileStreamingThenConverge("after_acknowledge", [this] {
    const std::string checkpoint = Checkpoint();
    EXPECT_TRUE(True(f_.target(),
                     "SELECT end_lsn <= $1 FROM sluice.applied WHERE pipeline = 'pipe'",
                     checkpoint))
        << checkpoint;
    EXPECT_TRUE(True(f_.source(),
                     "SELECT confirmed_flush_lsn <= $1 FROM pg_replication_slots "
                     "WHERE slot_name = 'sluice_pipe'",
                     checkpoint))
        << "never more than durable";
  });
}

// A table's copy committed on the target, its record not yet done: the restart makes the slot
// again for a new snapshot, empties the table and copies it again.
TEST_F(FailpointCrashTest, AfterCopyCommitCopiesTheTableAgain) {
  StartLoad();
  StartRun({Failpoints("after_copy_commit=crash")});
  ExpectCrashAt(run_, Log(), "after_copy_commit");
  {
    auto store = Store();
    ASSERT_NE(store, nullptr);
    auto tables = store->LoadAll(state::TableCopyPrefix("pipe"));
    ASSERT_TRUE(tables.ok()) << tables.status().ToString();
    EXPECT_FALSE(tables->empty());
    for (const auto& [table, record] : *tables) EXPECT_FALSE(record.done) << table;
    auto snapshot = store->Load(state::SnapshotKey("pipe"));
    ASSERT_TRUE(snapshot.ok());
    EXPECT_FALSE(snapshot->has_value());
  }
  int64_t rows_on_target = 0;
  for (const std::string& table : kPgbenchTables) {
    rows_on_target += std::stoll(TargetValue("SELECT count(*) FROM " + table));
  }
  EXPECT_GT(rows_on_target, 0) << "a copy committed before the crash";

  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopLoad();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff(AllTables()), "");
}

// `sluice snapshot` dropped the slot and forgot the position (one batch), then died: the
// request it recorded first is still there, and `sluice run` finishes it before it streams.
TEST_F(FailpointCrashTest, AfterSnapshotForgetRunFinishesTheSnapshot) {
  RunUntilCaughtUp();
  StartLoad();
  SluiceProcess snapshot;
  const std::string snapshot_log = f_.dir().File("snapshot.err");
  ASSERT_TRUE(snapshot
                  .Start({"snapshot", "--config", config_.path, "--pipeline", "pipe"},
                         f_.dir().File("snapshot.out"), snapshot_log,
                         {Failpoints("after_snapshot_forget=crash")})
                  .ok());
  ExpectCrashAt(snapshot, snapshot_log, "after_snapshot_forget");
  {
    auto store = Store();
    ASSERT_NE(store, nullptr);
    auto checkpoint = store->LoadCheckpoint("pipe");
    ASSERT_TRUE(checkpoint.ok());
    EXPECT_FALSE(checkpoint->has_value()) << "forgotten";
    auto slot = store->Load(state::SlotKey("pipe"));
    ASSERT_TRUE(slot.ok());
    EXPECT_FALSE(slot->has_value()) << "forgotten with the checkpoint";
    auto tables = store->LoadAll(state::TableCopyPrefix("pipe"));
    ASSERT_TRUE(tables.ok());
    EXPECT_TRUE(tables->empty()) << "forgotten with the checkpoint";
    auto request = store->Load(state::SnapshotRequestKey("pipe"));
    ASSERT_TRUE(request.ok() && request->has_value()) << "kept until the copy is done";
    EXPECT_TRUE((*request)->all());
  }

  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopLoad();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff(AllTables()), "");
}

// A failpoint name sluice does not have is refused at start: a typo cannot make a crash test
// pass without the crash.
TEST_F(FailpointCrashTest, UnknownFailpointIsRefusedAtStart) {
  SluiceProcess run;
  const std::string log = f_.dir().File("typo.err");
  ASSERT_TRUE(run.Start({"run", "--config", config_.path}, f_.dir().File("typo.out"), log,
                        {Failpoints("after_tagret_commit=crash")})
                  .ok());
  auto exit_code = run.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 64) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("unknown failpoint"), std::string::npos) << ReadFile(log);
}

}  // namespace
}  // namespace sluice::testing
