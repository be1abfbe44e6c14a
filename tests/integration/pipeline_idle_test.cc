// A pipeline whose published tables are quiet while the source writes WAL elsewhere must still
// advance its slot (the source must not retain WAL forever), without confirming anything that
// is not durable on the target. And a batch must not wait out its delay once the source is idle.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "tests/support/pipeline_fixture.h"

namespace sluice::testing {
namespace {

TEST(PipelineIdleTest, QuietTablesStillAdvanceTheSlotWhileOtherDatabasesWrite) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.source().Exec("CREATE TABLE public.quiet (id int PRIMARY KEY)").ok());
  ASSERT_TRUE(f.source().Exec("INSERT INTO public.quiet VALUES (1)").ok());
  const std::string yaml =
      "      status_interval: 500ms\n    target:\n      type: postgres\n"
      "      dsn: " +
      nlohmann::json(f.target().Dsn()).dump() + "\n      apply: { create_tables: true }\n";
  TailConfig config = WriteTailConfig(f.dir(), f.source(), {"public.quiet"}, yaml, "idle");
  SluiceProcess run;
  ASSERT_TRUE(
      run.Start({"run", "--config", config.path}, f.dir().File("run.out"), f.dir().File("run.err"))
          .ok());
  // Wait for the copy of the one row.
  for (int i = 0; i < 300; ++i) {
    auto n = f.target().Query("SELECT 1 FROM public.quiet");
    if (n.ok() && !n->empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // Another database on the same server writes ~20 MB of WAL; the pipeline sees none of it.
  ASSERT_TRUE(f.source().Exec("CREATE TABLE public.unpublished (id int, pad text)").ok());
  auto start = f.source().QueryValue("SELECT pg_current_wal_lsn()::text");
  ASSERT_TRUE(start.ok());
  for (int round = 0; round < 10; ++round) {
    ASSERT_TRUE(f.source()
                    .Exec("INSERT INTO public.unpublished SELECT g, repeat('x', 500) "
                          "FROM generate_series(1, 20000) g")
                    .ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  // The slot follows: within a few seconds it confirms past everything written above.
  auto end = f.source().QueryValue("SELECT pg_current_wal_lsn()::text");
  ASSERT_TRUE(end.ok());
  std::string behind = "?";
  for (int i = 0; i < 100; ++i) {
    auto confirmed =
        f.source().QueryValue("SELECT pg_wal_lsn_diff('" + *end +
                              "', confirmed_flush_lsn)::bigint::text "
                              "FROM pg_replication_slots WHERE slot_name = 'sluice_idle'");
    ASSERT_TRUE(confirmed.ok()) << confirmed.status().ToString();
    behind = *confirmed;
    if (std::stoll(behind) <= 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_LE(std::stoll(behind), 0) << "slot stayed " << behind << " bytes behind\n"
                                   << ReadFile(f.dir().File("run.err"));
  auto written = f.source().QueryValue("SELECT pg_wal_lsn_diff('" + *end + "', '" + *start +
                                       "')::bigint::text");
  ASSERT_TRUE(written.ok());
  EXPECT_GT(std::stoll(*written), 5 * 1024 * 1024);

  // And the quiet table still replicates afterwards (nothing was skipped by confirming).
  ASSERT_TRUE(f.source().Exec("INSERT INTO public.quiet VALUES (2)").ok());
  bool arrived = false;
  for (int i = 0; i < 300 && !arrived; ++i) {
    auto n = f.target().QueryValue("SELECT count(*) FROM public.quiet");
    arrived = n.ok() && *n == "2";
    if (!arrived) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(arrived);
  run.Kill(SIGTERM);
  ASSERT_TRUE(run.Wait(std::chrono::seconds(30)).ok());
}

// With limits no test would reach (an hour, a million transactions), each write still arrives
// within seconds: the batch closes when the source goes idle after it.
TEST(PipelineIdleTest, AnIdleSourceClosesTheOpenBatchWithoutWaitingForItsLimits) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.source().Exec("CREATE TABLE public.events (id int PRIMARY KEY, note text)").ok());
  TailConfig config =
      WritePipelineConfig(f.dir(), f.source(), f.target(), {"public.events"},
                          "      apply: { create_tables: true, batch_max_delay: 1h, "
                          "batch_max_transactions: 1000000, batch_max_bytes: 1GB }\n",
                          "prompt");
  const std::string log = f.dir().File("run.err");
  SluiceProcess run;
  ASSERT_TRUE(run.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());

  for (int id = 1; id <= 3; ++id) {
    ASSERT_TRUE(f.source()
                    .Exec("INSERT INTO public.events VALUES (" + std::to_string(id) + ", 'n" +
                          std::to_string(id) + "')")
                    .ok());
    bool arrived = false;
    for (int i = 0; i < 600 && !arrived; ++i) {  // at most a minute, against the hour
      auto n = f.target().QueryValue("SELECT count(*) FROM public.events");
      arrived = n.ok() && *n == std::to_string(id);
      if (!arrived) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(arrived) << "insert " << id << " did not reach the target\n" << ReadFile(log);
  }
  EXPECT_EQ(f.Diff({"public.events"}), "");
  run.Kill(SIGTERM);
  auto exit_code = run.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << ReadFile(log);
}

}  // namespace
}  // namespace sluice::testing
