// `sluice snapshot`: every table from a new slot, or some tables at a temporary slot's snapshot
// while the others stream on without a gap; killed with SIGKILL at any moment and run again, it
// ends with the target equal to the source row by row.
#include <gtest/gtest.h>

#include <csignal>
#include <random>
#include <thread>

#include "tests/support/run_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(240);
const std::vector<std::string> kTables = {"public.items", "public.big", "public.sluice_marker"};

class SnapshotCommandTest : public SluiceRunTest {
 protected:
  void SetUp() override {
    SluiceRunTest::SetUp();
    Source(
        "CREATE TABLE public.sluice_marker (id int PRIMARY KEY);"
        "CREATE TABLE public.items (id int PRIMARY KEY, note text);"
        "INSERT INTO public.items SELECT g, 'before ' || g FROM generate_series(1, 1000) g;"
        "CREATE TABLE public.big (id int PRIMARY KEY, pad text);"
        "INSERT INTO public.big SELECT g, repeat('x', 300) FROM generate_series(1, 200000) g");
    config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(), {"public.*"},
                                  "      apply: { create_tables: true, copy_jobs: 2 }\n");
  }

  // Starts `sluice snapshot ARGS` and SIGKILLs it after `delay` (if it is still running).
  void SnapshotKilledAfter(const std::vector<std::string>& args, std::chrono::milliseconds delay) {
    SluiceProcess snapshot;
    std::vector<std::string> argv = {"snapshot", "--config", config_.path, "--pipeline", "pipe"};
    argv.insert(argv.end(), args.begin(), args.end());
    ASSERT_TRUE(
        snapshot.Start(argv, f_.dir().File("snapshot.out"), f_.dir().File("snapshot.err")).ok());
    std::this_thread::sleep_for(delay);
    snapshot.Kill(SIGKILL);
    ASSERT_TRUE(snapshot.Wait(std::chrono::seconds(30)).ok());
  }
  SluiceRun Snapshot(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"snapshot", "--config", config_.path, "--pipeline", "pipe"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunSluice(argv, std::chrono::seconds(300));
  }

  // Streams on, writes to every table, and compares.
  void ConvergeUnderWrites() {
    StartRun();
    Source(
        "UPDATE public.items SET note = 'updated' WHERE id % 7 = 0;"
        "DELETE FROM public.big WHERE id % 11 = 0;"
        "INSERT INTO public.items SELECT g, 'late ' || g FROM generate_series(5001, 5100) g");
    ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
    StopRun();
    EXPECT_EQ(f_.Diff(kTables), "");
  }
};

// The operator's repair of one damaged table: only it is emptied and copied again; the other
// tables' changes made while sluice was stopped still arrive by the stream, with no gap.
TEST_F(SnapshotCommandTest, SomeTablesAreCopiedAgainWhileTheOthersStreamOn) {
  RunUntilCaughtUp();
  Target("DELETE FROM public.items WHERE id <= 500");  // damage on the target
  Target("INSERT INTO public.big VALUES (-1, 'not on the source')");
  // Written while sluice is stopped: big's arrive by the stream, items' by the copy.
  Source(
      "UPDATE public.big SET pad = 'changed' WHERE id <= 100;"
      "INSERT INTO public.items SELECT g, 'while stopped ' || g FROM generate_series(2001, 2100) "
      "g");
  SluiceRun snapshot = Snapshot({"--tables", "public.items"});
  ASSERT_EQ(snapshot.exit_code, 0) << snapshot.out << snapshot.err;
  EXPECT_NE(snapshot.out.find("copying public.items"), std::string::npos) << snapshot.out;
  EXPECT_EQ(f_.Diff({"public.items"}), "");
  // big was not emptied: a row only the target has is still there.
  auto own_row = f_.target().QueryValue("SELECT count(*) FROM public.big WHERE id = -1");
  ASSERT_TRUE(own_row.ok());
  EXPECT_EQ(*own_row, "1");
  Target("DELETE FROM public.big WHERE id = -1");
  ConvergeUnderWrites();
}

TEST_F(SnapshotCommandTest, RefusesWhileTheDaemonRunsAndNamesWhatToDo) {
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  SluiceRun refused = Snapshot({});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("works with the daemon stopped"), std::string::npos) << refused.err;
  SluiceRun unknown = Snapshot({"--tables", "public.nope"});
  EXPECT_NE(unknown.exit_code, 0);
  StopRun();
  SluiceRun not_published = Snapshot({"--tables", "public.nope"});
  EXPECT_EQ(not_published.exit_code, 78) << not_published.err;
  EXPECT_NE(not_published.err.find("public.nope"), std::string::npos) << not_published.err;
  ConvergeUnderWrites();
}

// SIGKILL at many moments of a snapshot of every table (slot dropped, state forgotten, copy
// under way), then the same command again: it finishes, and the target matches the source.
TEST_F(SnapshotCommandTest, EveryTableKilledAtAnyMomentFinishesWhenRunAgain) {
  RunUntilCaughtUp();
  std::mt19937 random(7);  // seeded: the same schedule every run
  for (int round = 0; round < 6; ++round) {
    Source("INSERT INTO public.items VALUES (" + std::to_string(3000 + round) + ", 'round')");
    SnapshotKilledAfter({}, std::chrono::milliseconds(100 + random() % 1500));
  }
  SluiceRun finish = Snapshot({});
  ASSERT_EQ(finish.exit_code, 0) << finish.out << finish.err;
  EXPECT_EQ(f_.Diff(kTables), "");
  ConvergeUnderWrites();
}

TEST_F(SnapshotCommandTest, SomeTablesKilledAtAnyMomentFinishWhenRunAgain) {
  RunUntilCaughtUp();
  std::mt19937 random(11);
  for (int round = 0; round < 6; ++round) {
    Source("UPDATE public.items SET note = 'round " + std::to_string(round) + "' WHERE id = 5");
    SnapshotKilledAfter({"--tables", "public.big"},
                        std::chrono::milliseconds(100 + random() % 1500));
  }
  SluiceRun finish = Snapshot({"--tables", "public.big"});
  ASSERT_EQ(finish.exit_code, 0) << finish.out << finish.err;
  EXPECT_EQ(f_.Diff({"public.big"}), "");
  ConvergeUnderWrites();
}

// A run started after an interrupted snapshot finishes it before it streams.
TEST_F(SnapshotCommandTest, RunFinishesAnInterruptedSnapshot) {
  RunUntilCaughtUp();
  SnapshotKilledAfter({}, std::chrono::milliseconds(700));
  ConvergeUnderWrites();
}

}  // namespace
}  // namespace sluice::testing
