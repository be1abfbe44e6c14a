// sluice run end to end over the awkward cases: primary-key updates, unchanged TOAST, truncate,
// tables without a primary key, every type, odd identifiers, a transaction far larger than the
// memory bound, a permanent apply error, and a target that already holds streamed keys.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "tests/support/pipeline_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);

// Peak resident memory of a process in kB (VmHWM), or -1.
long PeakRssKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

class PipelineSemanticsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(f_.ok()) << f_.error();
    Source("CREATE TABLE public.sluice_marker (id int PRIMARY KEY)");
  }
  void Source(const std::string& sql) {
    auto st = f_.source().Exec(sql);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void StartRun(const std::string& extra_yaml = "",
                const std::vector<std::string>& tables = {"public.*"}) {
    const std::string yaml = "    target:\n      type: postgres\n      dsn: " +
                             nlohmann::json(f_.target().Dsn()).dump() +
                             "\n      apply: { create_tables: true }\n" + extra_yaml;
    config_ = WriteTailConfig(f_.dir(), f_.source(), tables, yaml, "sem");
    ASSERT_TRUE(
        run_.Start({"run", "--config", config_.path}, f_.dir().File("run.out"), Log()).ok());
  }
  std::string Log() const { return f_.dir().File("run.err"); }
  // Until the run's slot exists and is streaming (up to 30 s).
  void WaitForActiveSlot() {
    for (int i = 0; i < 300; ++i) {
      auto slot = f_.source().Query(
          "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sluice_sem' AND active");
      if (slot.ok() && !slot->empty()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  PipelineFixture f_;
  TailConfig config_;
  SluiceProcess run_;
};

TEST_F(PipelineSemanticsTest, RowOperationsTypesAndOddIdentifiersArriveExactly) {
  Source(
      "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');"
      "CREATE DOMAIN posint AS int CHECK (VALUE > 0);"
      "CREATE TABLE pk_t (id int PRIMARY KEY, v text);"
      "CREATE TABLE toast_t (id int PRIMARY KEY, big text, n int);"
      "CREATE TABLE nopk_t (a int, b text); ALTER TABLE nopk_t REPLICA IDENTITY FULL;"
      "CREATE TABLE trunc_a (id int PRIMARY KEY); CREATE TABLE trunc_b (id int PRIMARY KEY);"
      "CREATE TABLE types_t (id int PRIMARY KEY, n numeric, f8 float8, ts timestamptz,"
      " ia int[], ta text[], j json, jb jsonb, b bytea, u uuid, e mood, dm posint, iv interval);"
      "CREATE SCHEMA \"Odd Schema ü\";"
      "CREATE TABLE \"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\" (\"Id Col\" int PRIMARY KEY,"
      " \"MixedCase\" text);"
      "INSERT INTO pk_t VALUES (1, 'copied'); INSERT INTO nopk_t VALUES (1, 'x'), (1, 'x');");
  // The target needs the enum and the domain before create_tables can use them.
  ASSERT_TRUE(f_.target()
                  .Exec("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');"
                        "CREATE DOMAIN posint AS int CHECK (VALUE > 0);")
                  .ok());
  StartRun("", {"public.*", "\"Odd Schema ü\".*"});
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());

  Source("INSERT INTO pk_t VALUES (2, 'two'), (3, 'three')");
  Source("UPDATE pk_t SET id = 20 WHERE id = 2");  // primary-key change
  Source("UPDATE pk_t SET v = 'one' WHERE id = 1");
  Source("DELETE FROM pk_t WHERE id = 3");
  Source(
      "INSERT INTO toast_t SELECT 1, string_agg(md5(g::text || random()::text), ''), 0"
      " FROM generate_series(1, 700) g");
  Source("UPDATE toast_t SET n = n + 1");  // big stays unchanged TOAST in the stream
  Source("UPDATE nopk_t SET b = 'y' WHERE ctid = (SELECT min(ctid) FROM nopk_t)");
  Source("INSERT INTO nopk_t VALUES (2, NULL); DELETE FROM nopk_t WHERE a = 2");
  Source("INSERT INTO trunc_a VALUES (1); INSERT INTO trunc_b VALUES (1)");
  Source("TRUNCATE trunc_a, trunc_b");
  Source("INSERT INTO trunc_a VALUES (2)");
  Source(
      "INSERT INTO types_t VALUES (1, 12345678901234567890.123456789, 1.0000000000000002,"
      " '2026-11-22 06:01:02.123456+05:30', '{1,NULL,3}', '{\"a b\",\"c,d\",NULL}',"
      " '{\"k\": [1, 2.50]}', '{\"k\": [1, 2.50]}', '\\x00ff10',"
      " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', 42, '1 day -02:00:00.5'),"
      " (2, 'NaN', '-Infinity', NULL, '{}', NULL, 'null', '[]', '', NULL, 'sad', 1, NULL)");
  Source("INSERT INTO \"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\" VALUES (1, 'x')");
  Source("UPDATE \"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\" SET \"Id Col\" = 2, \"MixedCase\" = 'y'");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());

  EXPECT_EQ(f_.Diff({"public.pk_t", "public.toast_t", "public.nopk_t", "public.trunc_a",
                     "public.trunc_b", "public.types_t", "\"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\""}),
            "");
  auto big = f_.target().QueryValue("SELECT length(big) FROM toast_t WHERE n = 1");
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(*big, std::to_string(700 * 32));
  run_.Kill(SIGTERM);
  auto exit_code = run_.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << ReadFile(Log());
}

TEST_F(PipelineSemanticsTest, TransactionFarLargerThanMemoryBoundKeepsMemoryBounded) {
  Source("CREATE TABLE big_t (id int PRIMARY KEY, pad text)");
  Source("ALTER SYSTEM SET logical_decoding_work_mem = '64kB'");
  Source("SELECT pg_reload_conf()");
  StartRun("    capture: { memory_limit: 1MB, max_fragment_changes: 500, queue_capacity: 8 }\n");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  // ~180 MB of row data in one source transaction, streamed in progress by the walsender.
  Source("INSERT INTO big_t SELECT g, repeat(md5(g::text), 10) FROM generate_series(1, 500000) g");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  const long peak_kb = PeakRssKb(run_.pid());
  EXPECT_EQ(f_.Diff({"public.big_t"}), "");
  // Bounded by configuration, not by the transaction: far below the transaction's size.
  EXPECT_GT(peak_kb, 0);
  EXPECT_LT(peak_kb, 120 * 1024) << "peak RSS " << peak_kb << " kB";
  std::cerr << "peak RSS of sluice run: " << peak_kb << " kB\n";
}

TEST_F(PipelineSemanticsTest, PermanentApplyErrorStopsThePipelineAndNamesTableLsnAndKey) {
  Source("CREATE TABLE uniq_t (id int PRIMARY KEY, code text)");
  ASSERT_TRUE(f_.target().Exec("CREATE TABLE uniq_t (id int PRIMARY KEY, code text UNIQUE)").ok());
  ASSERT_TRUE(f_.target().Exec("CREATE TABLE public.sluice_marker (id int PRIMARY KEY)").ok());
  StartRun("    snapshot: never\n");
  // Without a copy, only changes after the slot exists are streamed: wait for it.
  WaitForActiveSlot();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  auto confirmed_before = f_.source().QueryValue(
      "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'sluice_sem'");
  ASSERT_TRUE(confirmed_before.ok());
  Source("INSERT INTO uniq_t VALUES (1, 'same')");
  Source("INSERT INTO uniq_t VALUES (2, 'same')");  // violates the target's extra constraint
  auto exit_code = run_.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(exit_code.ok()) << "sluice run did not stop on a permanent error";
  EXPECT_NE(*exit_code, 0);
  const std::string log = ReadFile(Log());
  EXPECT_NE(log.find("uniq_t"), std::string::npos) << log;
  EXPECT_NE(log.find("(id)=(2)"), std::string::npos) << log;
  EXPECT_NE(log.find("source LSN"), std::string::npos) << log;
  // The failing batch was rolled back whole (the first insert may have shared it) and nothing
  // past the last durable batch was confirmed: fixing the target and restarting applies both.
  auto applied = f_.target().QueryValue("SELECT count(*) FROM uniq_t");
  ASSERT_TRUE(applied.ok());
  EXPECT_TRUE(*applied == "0" || *applied == "1") << *applied;
  ASSERT_TRUE(f_.target().Exec("ALTER TABLE uniq_t DROP CONSTRAINT uniq_t_code_key").ok());
  SluiceProcess again;
  ASSERT_TRUE(again.Start({"run", "--config", config_.path}, f_.dir().File("run.out"), Log()).ok());
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  EXPECT_EQ(f_.Diff({"public.uniq_t"}), "");
  (void)confirmed_before;
}

// Inserts of a large batch go to the target by COPY, which cannot upsert. On a target that
// already holds some of the streamed keys (written by someone else), the pipeline retries the
// batch with upserts and converges, without stopping.
TEST_F(PipelineSemanticsTest, TargetHoldingStreamedKeysConvergesThroughUpserts) {
  Source("CREATE TABLE pre_t (id int PRIMARY KEY, v text)");
  ASSERT_TRUE(f_.target()
                  .Exec("CREATE TABLE public.sluice_marker (id int PRIMARY KEY);"
                        "CREATE TABLE pre_t (id int PRIMARY KEY, v text);"
                        "INSERT INTO pre_t SELECT g, 'stale' FROM generate_series(1000, 1999) g")
                  .ok());
  StartRun("    snapshot: never\n");
  WaitForActiveSlot();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  Source("INSERT INTO pre_t SELECT g, 'fresh ' || g FROM generate_series(1, 5000) g");
  Source("UPDATE pre_t SET v = 'updated' WHERE id % 7 = 0");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  EXPECT_EQ(f_.Diff({"public.pre_t"}), "");
  const std::string log = ReadFile(Log());
  EXPECT_NE(log.find("gets upserts from now on"), std::string::npos) << log;
  run_.Kill(SIGTERM);
  auto exit_code = run_.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << log;
}

}  // namespace
}  // namespace sluice::testing
