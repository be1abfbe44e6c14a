// The runner's end position against real servers: the target holds the source exactly as of
// that position (what committed before it, nothing after), the position is durable and
// acknowledged, WaitUntilDurable sees it, and a later run streams on from it without a gap.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "config/config_loader.h"
#include "control/pipeline_runner.h"
#include "control/sink_factory.h"
#include "state/checkpoint_store.h"
#include "tests/support/run_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kBound = std::chrono::seconds(120);  // a bound, not an expectation

class StreamBoundsTest : public SluiceRunTest {};

TEST_F(StreamBoundsTest, EndPositionLeavesTheTargetExactlyAsOfIt) {
  Both("CREATE TABLE public.t (id int PRIMARY KEY, v text)");
  Source("INSERT INTO public.t SELECT g, 'before' FROM generate_series(1, 100) g");
  config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(), {"public.t"});
  StartRun();
  ASSERT_TRUE(WaitForRows("public.t")) << ReadFile(Log());
  // A row streamed after the copy: the copy is done and the pipeline has a position.
  Source("INSERT INTO public.t VALUES (0, 'before')");
  ASSERT_TRUE(WaitForRows("public.t")) << ReadFile(Log());
  StopRun();

  Source("INSERT INTO public.t SELECT g, 'a' FROM generate_series(101, 150) g");
  const std::string end_text = SourceValue("SELECT pg_current_wal_lsn()");
  Source(
      "BEGIN; INSERT INTO public.t SELECT g, 'b' FROM generate_series(151, 200) g; "
      "UPDATE public.t SET v = 'b' WHERE id = 1; COMMIT");
  auto end = core::Lsn::Parse(end_text);
  ASSERT_TRUE(end.ok());

  auto config = config::LoadConfigFile(config_.path);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  {
    auto store = state::CheckpointStore::Open(config->state_dir);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    const config::PipelineConfig& pipeline = config->pipelines.at(0);
    control::PipelineRunner runner(
        *config, pipeline, **store, [&] { return control::MakeSink(pipeline); },
        control::StreamBounds{core::Lsn(), *end});
    std::atomic<bool> stop{false};
    auto waiter =
        std::async(std::launch::async, [&] { return runner.WaitUntilDurable(*end, kBound); });
    auto run = std::async(std::launch::async, [&] { return runner.Run(stop); });
    if (run.wait_for(kBound) != std::future_status::ready) {
      stop = true;
      FAIL() << "the runner did not stop at its end position";
    }
    const core::Status status = run.get();
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_TRUE(waiter.get());

    auto checkpoint = (*store)->LoadCheckpoint(pipeline.name);
    ASSERT_TRUE(checkpoint.ok() && checkpoint->has_value());
    EXPECT_EQ((*checkpoint)->durable_lsn, *end);
  }
  // As of the end: transaction A whole, nothing of B.
  EXPECT_EQ(TargetValue("SELECT count(*) FROM public.t"), "151");
  EXPECT_EQ(TargetValue("SELECT count(*) FROM public.t WHERE v = 'a'"), "50");
  EXPECT_EQ(TargetValue("SELECT v FROM public.t WHERE id = 1"), "before");
  // The slot confirmed exactly the end, no further.
  EXPECT_EQ(SourceValue("SELECT confirmed_flush_lsn FROM pg_replication_slots"), end_text);

  // The daemon streams on from there: B arrives whole, nothing lost or doubled.
  StartRun();
  ASSERT_TRUE(WaitForRows("public.t")) << ReadFile(Log());
  for (int i = 0; i < 600 && TargetValue("SELECT v FROM public.t WHERE id = 1") != "b"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  StopRun();
  EXPECT_EQ(f_.Diff({"public.t"}), "");
}

}  // namespace
}  // namespace sluice::testing
