// sluice run end to end over TRUNCATE: the target truncates exactly the tables the source's
// Truncate message lists, never with CASCADE, so a table sluice was never told to touch keeps its
// rows; a foreign key from such a table stops the pipeline with an error naming both tables.
#include <gtest/gtest.h>

#include <csignal>

#include "tests/support/run_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);

class TruncateTest : public SluiceRunTest {
 protected:
  void SetUp() override {
    SluiceRunTest::SetUp();
    Both(
        "CREATE TABLE public.sluice_marker (id int PRIMARY KEY);"
        "CREATE TABLE parent (id int PRIMARY KEY, v text);"
        "CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id), v text)");
    Source(
        "INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 5) g;"
        "INSERT INTO child SELECT g, g, 'source child' FROM generate_series(1, 3) g");
  }
  std::vector<PgCluster::Row> TargetRows(const std::string& sql) {
    auto rows = f_.target().Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? *rows : std::vector<PgCluster::Row>{};
  }

  void StartRun(const std::vector<std::string>& tables) {
    const std::string yaml = "    target:\n      type: postgres\n      dsn: " +
                             nlohmann::json(f_.target().Dsn()).dump() + "\n";
    config_ = WriteTailConfig(f_.dir(), f_.source(), tables, yaml, "trunc");
    ASSERT_TRUE(Restart().ok());
  }
  core::Status Restart() {
    return run_.Start({"run", "--config", config_.path}, f_.dir().File("run.out"), Log());
  }
  void CatchUp() { ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log()); }
};

using Rows = std::vector<PgCluster::Row>;

// Only parent is replicated; the target's child holds rows of its own that reference it.
// TRUNCATE parent CASCADE on the source empties the source's child too, but the Truncate message
// lists parent alone: the target must not touch its child. Since the target's foreign key makes
// a truncate of parent alone impossible, the pipeline stops, naming both tables, and applies
// nothing of it; once the operator drops that key, the truncate goes through and child still
// keeps its rows.
TEST_F(TruncateTest, CascadeOnTheSourceNeverEmptiesATableTheTargetDoesNotReplicate) {
  StartRun({"public.parent", "public.sluice_marker"});
  CatchUp();
  Target("INSERT INTO child VALUES (10, 1, 'target own'), (11, 2, 'target own'), (12, NULL, 'x')");
  Source("INSERT INTO parent VALUES (6, 'p6')");
  CatchUp();
  ASSERT_EQ(f_.Diff({"public.parent"}), "");

  Source("TRUNCATE parent CASCADE");
  auto exit_code = run_.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(exit_code.ok()) << "sluice run did not stop:\n" << ReadFile(Log());
  EXPECT_NE(*exit_code, 0);
  const std::string log = ReadFile(Log());
  EXPECT_NE(log.find("truncate of public.parent at source LSN"), std::string::npos) << log;
  EXPECT_NE(log.find("target table public.child references public.parent (foreign key "
                     "child_parent_id_fkey)"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("never with CASCADE"), std::string::npos) << log;
  // Row by row: nothing of the truncate was applied.
  const Rows child = {
      {"10", "1", "target own"}, {"11", "2", "target own"}, {"12", std::nullopt, "x"}};
  EXPECT_EQ(TargetRows("SELECT id::text, parent_id::text, v FROM child ORDER BY id"), child);
  EXPECT_EQ(TargetRows("SELECT string_agg(id::text, ',' ORDER BY id) FROM parent"),
            (Rows{{"1,2,3,4,5,6"}}));

  // The operator's way out: the key that made the target refuse goes; the truncate applies.
  Target("ALTER TABLE child DROP CONSTRAINT child_parent_id_fkey");
  ASSERT_TRUE(Restart().ok());
  CatchUp();
  EXPECT_EQ(f_.Diff({"public.parent"}), "");
  EXPECT_EQ(TargetRows("SELECT count(*)::text FROM parent"), (Rows{{"0"}}));
  EXPECT_EQ(TargetRows("SELECT id::text, parent_id::text, v FROM child ORDER BY id"), child);
  Source("INSERT INTO parent VALUES (7, 'after')");
  CatchUp();
  EXPECT_EQ(f_.Diff({"public.parent"}), "");
  StopRun();
}

// Both tables replicated: the source's TRUNCATE ... CASCADE lists both, and the target truncates
// exactly those two; a table only the target has, and another replicated one, keep their rows.
TEST_F(TruncateTest, CascadeOfReplicatedTablesTruncatesExactlyTheListedOnes) {
  Both("CREATE TABLE other (id int PRIMARY KEY); INSERT INTO other VALUES (1), (2)");
  Target("TRUNCATE other; CREATE TABLE notes (id int PRIMARY KEY, parent_id int)");
  StartRun({"public.*"});
  CatchUp();
  Target("INSERT INTO notes VALUES (1, 1), (2, 5)");
  ASSERT_EQ(f_.Diff({"public.parent", "public.child", "public.other"}), "");

  Source("TRUNCATE parent CASCADE");
  Source("INSERT INTO parent VALUES (9, 'after'); INSERT INTO child VALUES (9, 9, 'after')");
  CatchUp();
  EXPECT_EQ(f_.Diff({"public.parent", "public.child", "public.other"}), "");
  EXPECT_EQ(TargetRows("SELECT id::text, parent_id::text FROM child"), (Rows{{"9", "9"}}));
  EXPECT_EQ(TargetRows("SELECT id::text FROM other ORDER BY id"), (Rows{{"1"}, {"2"}}));
  EXPECT_EQ(TargetRows("SELECT id::text, parent_id::text FROM notes ORDER BY id"),
            (Rows{{"1", "1"}, {"2", "5"}}));
  StopRun();
}

}  // namespace
}  // namespace sluice::testing
