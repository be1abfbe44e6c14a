#include "control/config_reload.h"

#include <gtest/gtest.h>

namespace sluice::control {
namespace {

config::Config Base() {
  config::Config c;
  c.state_dir = "/var/lib/sluice";
  config::PipelineConfig p;
  p.name = "orders";
  p.source.dsn = "host=a";
  p.target.dsn = "host=b";
  c.pipelines.push_back(p);
  return c;
}

TEST(ConfigReloadTest, NothingChangedPlansNothing) {
  const ReloadPlan plan = PlanReload(Base(), Base());
  EXPECT_TRUE(plan.log_level.empty());
  EXPECT_TRUE(plan.apply_limits.empty());
  EXPECT_TRUE(plan.refused.empty());
}

TEST(ConfigReloadTest, LogLevelAndBatchLimitsApply) {
  config::Config fresh = Base();
  fresh.log.level = "debug";
  fresh.pipelines[0].target.apply.batch_max_transactions = 50;
  fresh.pipelines[0].target.apply.batch_max_delay = std::chrono::milliseconds(5);
  const ReloadPlan plan = PlanReload(Base(), fresh);
  EXPECT_EQ(plan.log_level, "debug");
  ASSERT_EQ(plan.apply_limits.count("orders"), 1u);
  EXPECT_EQ(plan.apply_limits.at("orders").batch_max_transactions, 50u);
  EXPECT_TRUE(plan.refused.empty());
}

TEST(ConfigReloadTest, EverythingElseIsRefusedByKey) {
  config::Config fresh = Base();
  fresh.pipelines[0].source.dsn = "host=c";
  fresh.pipelines[0].capture.queue_capacity = 3;
  fresh.state_dir = "/tmp/x";
  fresh.nice = 0;
  config::PipelineConfig extra;
  extra.name = "new";
  fresh.pipelines.push_back(extra);
  const ReloadPlan plan = PlanReload(Base(), fresh);
  EXPECT_EQ(plan.refused,
            (std::vector<std::string>{"state_dir", "nice", "pipelines[orders].source.dsn",
                                      "pipelines[orders].capture.queue_capacity",
                                      "pipelines[new] (added)"}));
}

// New tables are copied before they are streamed, so the pipeline can take them while it runs.
TEST(ConfigReloadTest, TablesApplyAtTheNextBoundary) {
  config::Config running = Base();
  running.pipelines[0].source.tables = {"public.a"};
  config::Config fresh = running;
  fresh.pipelines[0].source.tables = {"public.a", "public.b"};
  const ReloadPlan plan = PlanReload(running, fresh);
  EXPECT_TRUE(plan.refused.empty());
  ASSERT_EQ(plan.tables.count("orders"), 1u);
  EXPECT_EQ(plan.tables.at("orders"), (std::vector<std::string>{"public.a", "public.b"}));
  EXPECT_TRUE(PlanReload(running, running).tables.empty());
}

// The sink is built once per pipeline (and kept across retries): its options need a restart.
TEST(ConfigReloadTest, CompactionNeedsARestart) {
  config::Config fresh = Base();
  fresh.pipelines[0].target.apply.compact = false;
  fresh.pipelines[0].target.apply.flush_on_pause_bytes = 0;
  const ReloadPlan plan = PlanReload(Base(), fresh);
  EXPECT_EQ(plan.refused,
            (std::vector<std::string>{"pipelines[orders].target.apply.compact",
                                      "pipelines[orders].target.apply.flush_on_pause"}));
}

// The sink takes the policy when it is made (once per pipeline, kept across retries).
TEST(ConfigReloadTest, SchemaChangesNeedsARestart) {
  config::Config fresh = Base();
  fresh.pipelines[0].target.apply.schema_changes = "add_columns";
  const ReloadPlan plan = PlanReload(Base(), fresh);
  EXPECT_EQ(plan.refused,
            (std::vector<std::string>{"pipelines[orders].target.apply.schema_changes"}));
  EXPECT_TRUE(plan.apply_limits.empty());
}

}  // namespace
}  // namespace sluice::control
