// sluice run with values of tens of megabytes: the target gets them exactly, and the peak
// memory of sluice stays within the bound README states for them.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "tests/support/pipeline_fixture.h"
#include "tests/support/table_compare.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(300);
constexpr long kMiB = 1024 * 1024;
constexpr long kMemoryLimit = 64 * kMiB;  // capture.memory_limit of every run here
// The largest value as the walsender sends it: a 50 MiB text, or a 25 MiB bytea (its hex text
// form, "\x" and two digits a byte, is as long).
constexpr long kLargestValue = 50 * kMiB + 2;

// Peak resident memory of a process in bytes (VmHWM), or -1.
long PeakRssBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) * 1024;
  }
  return -1;
}

// SQL for 1638400 md5 digests (50 MiB of hex digits, which compress badly, so TOAST does not
// make the test easy), different for each `seed`.
std::string Md5Digests(int seed) {
  return "(SELECT string_agg(md5(g::text || '-" + std::to_string(seed) +
         "'), '') FROM generate_series(1, 1638400) g)";
}
// SQL for a text of exactly 50 MiB holding tabs, backslashes and newlines, which COPY and the
// statements must carry exactly.
std::string FiftyMiBText(int seed) {
  return "translate(" + Md5Digests(seed) + ", 'abc', E'\\t\\\\\\n')";
}
// SQL for a bytea of 25 MiB.
std::string TwentyFiveMiBBytea(int seed) { return "decode(" + Md5Digests(seed) + ", 'hex')"; }

std::string InOneTransaction(const std::vector<std::string>& statements) {
  std::string sql = "BEGIN;";
  for (const std::string& statement : statements) sql += statement + ";";
  return sql + "COMMIT";
}

class LargeValuesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(f_.ok()) << f_.error();
    Source("CREATE TABLE public.sluice_marker (id int PRIMARY KEY)");
    Source("CREATE TABLE public.big (id int PRIMARY KEY, note text, body text, data bytea)");
  }
  void Source(const std::string& sql) {
    auto st = f_.source().Exec(sql);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  // `capture` must keep memory_limit at kMemoryLimit; it sets the queue's bounds. `apply` is
  // added to the target's apply options.
  void StartRun(const config::CaptureConfig& capture = {}, const std::string& apply = "") {
    queue_bytes_ = capture.queue_bytes();
    const std::string yaml = "    target:\n      type: postgres\n      dsn: " +
                             nlohmann::json(f_.target().Dsn()).dump() +
                             "\n      apply: { create_tables: true" + apply +
                             " }\n"
                             "    capture: { memory_limit: 64MB, max_fragment_bytes: " +
                             std::to_string(capture.max_fragment_bytes) +
                             ", queue_capacity: " + std::to_string(capture.queue_capacity) + " }\n";
    config_ = WriteTailConfig(f_.dir(), f_.source(), {"public.*"}, yaml, "large");
    ASSERT_TRUE(
        run_.Start({"run", "--config", config_.path}, f_.dir().File("run.out"), Log()).ok());
    ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
    std::cerr << "peak RSS of sluice run before the large values: "
              << PeakRssBytes(run_.pid()) / kMiB << " MiB\n";
  }
  std::string Log() const { return f_.dir().File("run.err"); }

  // Waits for the target, compares public.big row by row (lengths and digests of the large
  // columns, so that a failure message stays readable) and checks the peak memory of sluice.
  void ExpectExactAndWithinBound(int rows) {
    ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
    const long peak = PeakRssBytes(run_.pid());
    EXPECT_EQ(DiffTableColumns(f_.source(), f_.target(), "public.big",
                               "id, note, length(body), md5(body), length(data), md5(data)"),
              "");
    auto count = f_.target().QueryValue("SELECT count(*) FROM public.big");
    ASSERT_TRUE(count.ok()) << count.status().ToString();
    EXPECT_EQ(*count, std::to_string(rows));
    std::cerr << "peak RSS of sluice run: " << peak / kMiB << " MiB (largest value "
              << kLargestValue / kMiB << " MiB, memory_limit " << kMemoryLimit / kMiB
              << " MiB, queue " << queue_bytes_ / kMiB << " MiB)\n";
    // README, "Memory": memory_limit + the queue's bytes + 4 x the largest value + what sluice
    // needs whatever the data (about 20 MiB measured, plus up to 24 MiB the sink keeps for a
    // batch: compactor, replay copy, unsent statements; 48 allowed).
    const long bound =
        kMemoryLimit + static_cast<long>(queue_bytes_) + 4 * kLargestValue + 48 * kMiB;
    EXPECT_GT(peak, 0);
    EXPECT_LT(peak, bound) << "peak RSS " << peak / kMiB << " MiB, bound " << bound / kMiB
                           << " MiB";
    run_.Kill(SIGTERM);
    auto exit_code = run_.Wait(std::chrono::seconds(30));
    ASSERT_TRUE(exit_code.ok());
    EXPECT_EQ(*exit_code, 0) << ReadFile(Log());
  }

  PipelineFixture f_;
  TailConfig config_;
  SluiceProcess run_;
  uint64_t queue_bytes_ = 0;
};

TEST_F(LargeValuesTest, OneFiftyMegabyteValueArrivesExactlyWithinTheMemoryBound) {
  StartRun();
  Source("INSERT INTO public.big VALUES (1, 'one', " + FiftyMiBText(1) + ", '\\x00ff')");
  ExpectExactAndWithinBound(1);
}

TEST_F(LargeValuesTest, FourFiftyMegabyteValuesInOneTransactionStayWithinTheMemoryBound) {
  // Inserts of text and bytea, and an update that replaces a large value: four values of
  // 50 MiB as sent, in one source transaction. The small rows before the first make its insert
  // go by COPY with them (netted inserts of a table, 2000 and more, held to the batch's end or
  // 8 MB).
  StartRun({}, ", flush_on_pause: 0");
  Source(InOneTransaction({
      "INSERT INTO public.big SELECT g, 'small', 'x', NULL FROM generate_series(100, 2599) g",
      "INSERT INTO public.big VALUES (1, 'one', " + FiftyMiBText(1) + ", NULL)",
      "INSERT INTO public.big VALUES (2, 'two', " + FiftyMiBText(2) + ", '\\x01')",
      "INSERT INTO public.big VALUES (3, 'three', 'small', " + TwentyFiveMiBBytea(3) + ")",
      "UPDATE public.big SET body = " + FiftyMiBText(4) + ", note = 'one again' WHERE id = 1",
  }));
  ExpectExactAndWithinBound(2503);
}

TEST_F(LargeValuesTest, StreamedTransactionWithLargeValuesStaysWithinTheMemoryBound) {
  // The walsender streams the transaction while it is in progress; sluice holds it (up to
  // memory_limit in memory, then in a spill file) until its commit.
  Source("ALTER SYSTEM SET logical_decoding_work_mem = '64kB'");
  Source("SELECT pg_reload_conf()");
  // A queue far smaller than a value: each large fragment goes alone and is handed over.
  config::CaptureConfig capture;
  capture.max_fragment_bytes = 1 << 20;
  capture.queue_capacity = 4;
  StartRun(capture);
  Source(InOneTransaction({
      "INSERT INTO public.big SELECT g, 'small ' || g, repeat('x', 100), NULL"
      " FROM generate_series(100, 20099) g",
      "INSERT INTO public.big VALUES (1, 'one', " + FiftyMiBText(1) + ", NULL)",
      "INSERT INTO public.big VALUES (2, 'two', " + FiftyMiBText(2) + ", '\\x01')",
      "UPDATE public.big SET note = 'touched' WHERE id BETWEEN 100 AND 5099",
      "INSERT INTO public.big VALUES (3, 'three', 'small', " + TwentyFiveMiBBytea(3) + ")",
      "UPDATE public.big SET body = " + FiftyMiBText(4) + " WHERE id = 1",
  }));
  ExpectExactAndWithinBound(20003);
  // It was streamed indeed (the slot's statistics count it).
  auto streamed = f_.source().QueryValue(
      "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'sluice_large'");
  ASSERT_TRUE(streamed.ok()) << streamed.status().ToString();
  EXPECT_NE(*streamed, "0");
}

}  // namespace
}  // namespace sluice::testing
