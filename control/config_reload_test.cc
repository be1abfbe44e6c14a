#include "control/config_reload.h"

#include <gtest/gtest.h>

#include "config/config_loader.h"

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
  fresh.pipelines[0].target.postgres.compact = false;
  fresh.pipelines[0].target.postgres.flush_on_pause_bytes = 0;
  const ReloadPlan plan = PlanReload(Base(), fresh);
  EXPECT_EQ(plan.refused,
            (std::vector<std::string>{"pipelines[orders].target.postgres.compact",
                                      "pipelines[orders].target.postgres.flush_on_pause"}));
}

// The sink takes the policy when it is made (once per pipeline, kept across retries).
TEST(ConfigReloadTest, SchemaChangesNeedsARestart) {
  config::Config fresh = Base();
  fresh.pipelines[0].target.postgres.schema_changes = config::SchemaChanges::kAddColumns;
  const ReloadPlan plan = PlanReload(Base(), fresh);
  EXPECT_EQ(plan.refused,
            (std::vector<std::string>{"pipelines[orders].target.postgres.schema_changes"}));
  EXPECT_TRUE(plan.apply_limits.empty());
}

// The rest of a postgres target's options, the copy's parallelism and the target's type are
// read when the pipeline starts.
TEST(ConfigReloadTest, TargetOptionsNeedARestart) {
  config::Config fresh = Base();
  fresh.pipelines[0].target.type = config::TargetType::kRedis;
  fresh.pipelines[0].target.apply.copy_jobs = 7;
  fresh.pipelines[0].target.postgres.create_tables = true;
  fresh.pipelines[0].target.postgres.session_replication_role = "origin";
  const ReloadPlan plan = PlanReload(Base(), fresh);
  EXPECT_EQ(plan.refused,
            (std::vector<std::string>{
                "pipelines[orders].target.type", "pipelines[orders].target.apply.copy_jobs",
                "pipelines[orders].target.postgres.create_tables",
                "pipelines[orders].target.postgres.session_replication_role"}));
  EXPECT_TRUE(plan.apply_limits.empty());
}

// Moving a postgres option from target.apply to target.postgres changes nothing, so a reload
// after that edit refuses nothing.
TEST(ConfigReloadTest, MovingAnOptionToItsBlockIsNoChange) {
  const std::string head = R"(pipelines:
  - name: orders
    source: { dsn: "host=a", tables: [public.t] }
    target:
      dsn: host=b
)";
  auto running = config::ParseConfig(
      head + "      apply: { batch_max_delay: 5ms, compact: false, schema_changes: add_columns }\n",
      "sluice.yaml");
  auto fresh = config::ParseConfig(head +
                                       "      apply: { batch_max_delay: 5ms }\n"
                                       "      postgres: { compact: false, schema_changes: "
                                       "add_columns }\n",
                                   "sluice.yaml");
  ASSERT_TRUE(running.ok()) << running.status().message();
  ASSERT_TRUE(fresh.ok()) << fresh.status().message();
  const ReloadPlan plan = PlanReload(*running, *fresh);
  EXPECT_TRUE(plan.refused.empty());
  EXPECT_TRUE(plan.apply_limits.empty());
}

}  // namespace
}  // namespace sluice::control
