// sluice run end to end: source PostgreSQL -> initial copy + stream -> target PostgreSQL, under a
// pgbench load, then a row-by-row comparison of every table.
#include <gtest/gtest.h>

#include <csignal>
#include <random>
#include <thread>

#include "tests/support/pipeline_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);
// A function, not a namespace-scope copy: kPgbenchTables lives in another translation unit and
// was not yet initialized when this one's statics were, which left only the marker table here.
std::vector<std::string> AllTables() {
  auto t = kPgbenchTables;
  t.push_back("public.sluice_marker");
  return t;
}

const char kPipelineYaml[] =
    "    target:\n"
    "      type: postgres\n"
    "      dsn: \"%TARGET%\"\n"
    "      apply: { create_tables: true, copy_jobs: 2 }\n";

TailConfig WriteConfig(PipelineFixture& f, const std::string& extra = "") {
  std::string yaml = kPipelineYaml;
  yaml.replace(yaml.find("%TARGET%"), 8, f.target().Dsn());
  return WriteTailConfig(f.dir(), f.source(), {"public.*"}, yaml + extra, "pipe");
}

int CountOccurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(PipelineTest, CopyThenStreamUnderLoadConvergesRowByRow) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.InitPgbench(2).ok());
  TailConfig config = WriteConfig(f);

  SluiceProcess load;
  ASSERT_TRUE(f.StartLoad(load, 15).ok());  // the load runs during the copy and the stream
  SluiceProcess run;
  ASSERT_TRUE(
      run.Start({"run", "--config", config.path}, f.dir().File("run.out"), f.dir().File("run.err"))
          .ok());
  auto load_exit = load.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(load_exit.ok());
  EXPECT_EQ(*load_exit, 0) << ReadFile(f.dir().File("pgbench.err"));
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(f.dir().File("run.err"));

  run.Kill(SIGTERM);
  auto exit_code = run.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << ReadFile(f.dir().File("run.err"));
  EXPECT_EQ(f.Diff(AllTables()), "");
  // The load really overlapped the pipeline: history rows were streamed.
  auto history = f.target().QueryValue("SELECT count(*) FROM pgbench_history");
  ASSERT_TRUE(history.ok());
  EXPECT_GT(std::stoi(*history), 100);
}

TEST(PipelineTest, TwentyKillNinesDuringCopyAndStreamingLoseAndDoubleNothing) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.InitPgbench(5).ok());  // big enough that early kills land inside the copy
  TailConfig config = WriteConfig(f);
  // Held changes go out at nearly every pause of the stream, so kills also land between such
  // a send and its batch's commit.
  std::string text = ReadFile(config.path);
  text.replace(text.find("copy_jobs: 2 }"), 14, "copy_jobs: 2, flush_on_pause: 1KB }");
  WriteFile(config.path, text);

  SluiceProcess load;
  ASSERT_TRUE(f.StartLoad(load, 600).ok());  // stopped after the kills
  std::mt19937 random(42);                   // seeded: the same kill schedule every run
  std::uniform_int_distribution<int> early_ms(300, 1500), late_ms(100, 2500);
  const std::string log = f.dir().File("run.err");
  // The first kills land during the copy; from the 8th on, each waits until that run has
  // reached streaming (so the copy must have completed) and kills it some time later.
  for (int kill = 0; kill < 20; ++kill) {
    SluiceProcess run;
    const int streaming_before = CountOccurrences(ReadFile(log), "streaming from");
    ASSERT_TRUE(run.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());
    if (kill >= 8) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
      while (CountOccurrences(ReadFile(log), "streaming from") == streaming_before &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(kill < 8 ? early_ms(random) : late_ms(random)));
    run.Kill(SIGKILL);
    ASSERT_TRUE(run.Wait(std::chrono::seconds(10)).ok());
  }
  load.Kill(SIGTERM);
  ASSERT_TRUE(load.Wait(std::chrono::seconds(30)).ok());

  SluiceProcess run;
  ASSERT_TRUE(run.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(log).substr(0, 20000);
  run.Kill(SIGTERM);
  ASSERT_TRUE(run.Wait(std::chrono::seconds(30)).ok());
  EXPECT_EQ(f.Diff(AllTables()), "");

  text = ReadFile(log);
  // Some kills interrupted the copy (it was redone from a new snapshot) and some the stream.
  EXPECT_GE(CountOccurrences(text, "for a new snapshot"), 1) << text.substr(0, 20000);
  EXPECT_GE(CountOccurrences(text, "streaming from"), 12);
}

TEST(PipelineTest, TargetAndSourceRestartsAndAnUnreachableTarget) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.InitPgbench(1).ok());
  TailConfig config = WriteConfig(f);
  SluiceProcess run;
  const std::string log = f.dir().File("run.err");
  ASSERT_TRUE(run.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(log);

  SluiceProcess load;
  ASSERT_TRUE(f.StartLoad(load, 40).ok());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  // Target restarted mid-stream.
  ASSERT_TRUE(f.target().Stop(/*immediate=*/true).ok());
  ASSERT_TRUE(f.target().StartAgain().ok());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  // Target unreachable for a while.
  ASSERT_TRUE(f.target().Stop().ok());
  std::this_thread::sleep_for(std::chrono::seconds(6));
  ASSERT_TRUE(f.target().StartAgain().ok());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  // Source restarted mid-stream (the load's connections die with it).
  load.Kill(SIGTERM);
  ASSERT_TRUE(load.Wait(std::chrono::seconds(30)).ok());
  SluiceProcess load2;
  ASSERT_TRUE(f.StartLoad(load2, 8).ok());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_TRUE(f.source().Stop(/*immediate=*/true).ok());
  ASSERT_TRUE(f.source().StartAgain().ok());
  ASSERT_TRUE(load2.Wait(std::chrono::seconds(60)).ok());

  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(log).substr(0, 20000);
  EXPECT_TRUE(run.running());
  run.Kill(SIGTERM);
  auto exit_code = run.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);
  EXPECT_EQ(f.Diff(AllTables()), "");
  EXPECT_GE(CountOccurrences(ReadFile(log), "retrying in"), 2);
}

}  // namespace
}  // namespace sluice::testing
