#include "config/runnable.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::config {
namespace {

using ::testing::HasSubstr;

PipelineConfig Pipeline(const std::string& name, const std::string& target_type) {
  PipelineConfig p;
  p.name = name;
  p.target.type = *ParseTargetType(target_type);
  p.target.dsn = p.target.type == TargetType::kNone ? "" : "host=t";
  return p;
}

Config WithPipelines(std::vector<PipelineConfig> pipelines) {
  Config config;
  config.source_file = "sluice.yaml";
  config.pipelines = std::move(pipelines);
  return config;
}

TEST(RunnableTest, AcceptsAPipelineWithAPostgresTarget) {
  const Config config = WithPipelines({Pipeline("a", "postgres"), Pipeline("tail", "none")});
  EXPECT_TRUE(CheckRunnable(config).ok());
  EXPECT_TRUE(RunStartsPipeline(config.pipelines[0]));
  EXPECT_FALSE(RunStartsPipeline(config.pipelines[1]));
}

TEST(RunnableTest, RefusesAConfigWithNothingToRun) {
  const core::Status tail_only = CheckRunnable(WithPipelines({Pipeline("tail", "none")}));
  EXPECT_EQ(tail_only.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(tail_only.message(),
            "sluice run refuses sluice.yaml: no pipeline with a target to run (a pipeline "
            "without one is for `sluice tail`)");

  Config migrations_only = WithPipelines({});
  migrations_only.migrations.push_back({"move-app", "host=a", "host=b", {"public.*"}});
  const core::Status refused = CheckRunnable(migrations_only);
  EXPECT_EQ(refused.code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.message(),
            "sluice run refuses sluice.yaml: migrations (move-app) are not implemented in this "
            "version of sluice");
}

TEST(RunnableTest, RefusesMigrationsBesidePipelines) {
  Config config = WithPipelines({Pipeline("a", "postgres")});
  config.migrations.push_back({"m1", "host=a", "host=b", {"public.*"}});
  config.migrations.push_back({"m2", "host=a", "host=b", {"public.*"}});
  const core::Status refused = CheckRunnable(config);
  EXPECT_EQ(refused.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(),
              HasSubstr("migrations (m1, m2) are not implemented in this version of sluice; "
                        "remove the migrations: section to run the pipelines"));
}

TEST(RunnableTest, RefusesTargetTypesThisVersionDoesNotApply) {
  const core::Status refused = CheckRunnable(WithPipelines(
      {Pipeline("pg", "postgres"), Pipeline("cache", "redis"), Pipeline("ev", "kafka")}));
  EXPECT_EQ(refused.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(),
              HasSubstr("pipelines[1] (cache): target type 'redis' is not available"));
  EXPECT_THAT(refused.message(), HasSubstr("pipelines[2] (ev): target type 'kafka'"));
}

}  // namespace
}  // namespace sluice::config
