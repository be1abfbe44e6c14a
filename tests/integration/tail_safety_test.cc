// `sluice tail` and `sluice run` cannot harm each other: tail on a pipeline with a target
// confirms and checkpoints nothing, whether run is stopped (tail reads the pipeline's slot) or
// streaming (tail reads a temporary slot of its own); run then applies every row, compared row
// by row.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "tests/support/run_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);
const std::vector<std::string> kTables = {"public.items", "public.sluice_marker"};

class TailSafetyTest : public SluiceRunTest {
 protected:
  void SetUp() override {
    SluiceRunTest::SetUp();
    Source(
        "CREATE TABLE public.sluice_marker (id int PRIMARY KEY);"
        "CREATE TABLE public.items (id int PRIMARY KEY, note text);"
        "INSERT INTO public.items SELECT g, 'before' FROM generate_series(1, 20) g");
    config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(), {"public.*"},
                                  "      apply: { create_tables: true }\n");
  }
  std::string Confirmed() {
    auto lsn = f_.source().QueryValue(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = "
        "'sluice_pipe'");
    EXPECT_TRUE(lsn.ok()) << lsn.status().ToString();
    return lsn.ok() ? *lsn : "";
  }
  // Starts tail, inserts rows 1001..1000+n, and waits until tail printed them all.
  void TailWhileInserting(int n) {
    SluiceProcess tail;
    const std::string out = f_.dir().File("tail.out");
    ASSERT_TRUE(tail.Start({"tail", "--config", config_.path, "--pipeline", "pipe"}, out,
                           f_.dir().File("tail.err"))
                    .ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // tail is reading
    for (int i = 1; i <= n; ++i) {
      Source("INSERT INTO public.items VALUES (" + std::to_string(1000 + i) + ", 'tailed')");
    }
    bool printed = false;
    for (int i = 0; i < 300 && !printed; ++i) {
      printed =
          ReadFile(out).find("\"id\":\"" + std::to_string(1000 + n) + "\"") != std::string::npos;
      if (!printed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(printed) << ReadFile(out) << ReadFile(f_.dir().File("tail.err"));
    tail.Kill(SIGTERM);
    auto exit_code = tail.Wait(std::chrono::seconds(30));
    ASSERT_TRUE(exit_code.ok());
    EXPECT_EQ(*exit_code, 0) << ReadFile(f_.dir().File("tail.err"));
  }
};

TEST_F(TailSafetyTest, TailOnAStoppedPipelineMovesNothingRunDependsOn) {
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  const std::string before = Confirmed();
  TailWhileInserting(80);
  EXPECT_EQ(Confirmed(), before) << "tail confirmed a position to the pipeline's slot";
  EXPECT_NE(ReadFile(f_.dir().File("tail.err")).find("without confirming anything"),
            std::string::npos)
      << ReadFile(f_.dir().File("tail.err"));
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff(kTables), "");
  auto tailed = f_.target().QueryValue("SELECT count(*) FROM public.items WHERE note = 'tailed'");
  ASSERT_TRUE(tailed.ok());
  EXPECT_EQ(*tailed, "80");
}

TEST_F(TailSafetyTest, TailWhileRunStreamsReadsATemporarySlotOfItsOwn) {
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  TailWhileInserting(30);
  EXPECT_NE(ReadFile(f_.dir().File("tail.err")).find("temporary slot"), std::string::npos)
      << ReadFile(f_.dir().File("tail.err"));
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff(kTables), "");
  auto slots = f_.source().QueryValue("SELECT count(*) FROM pg_replication_slots");
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ(*slots, "1") << "tail left a slot behind";
}

}  // namespace
}  // namespace sluice::testing
