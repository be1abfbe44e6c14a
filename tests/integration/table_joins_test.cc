// Tables that join a running pipeline — added to `tables:` (restart or SIGHUP), or created later
// in a schema the pipeline follows (by a superuser or not, with create_tables) — are copied
// before they are streamed: the target ends up with every row they had before they joined,
// compared row by row.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "tests/support/run_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);

class TableJoinsTest : public SluiceRunTest {};

const char kTwoTables[] =
    "CREATE TABLE public.sluice_marker (id int PRIMARY KEY);"
    "CREATE TABLE public.a (id int PRIMARY KEY, v text);"
    "CREATE TABLE public.b (id int PRIMARY KEY, v text);"
    "INSERT INTO public.a SELECT g, 'a' || g FROM generate_series(1, 500) g;"
    "INSERT INTO public.b SELECT g, 'b' || g FROM generate_series(1, 500) g;";

TEST_F(TableJoinsTest, ATableAddedToTheConfigIsCopiedOnRestart) {
  Source(kTwoTables);
  const std::string apply = "      apply: { create_tables: true }\n";
  config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(),
                                {"public.a", "public.sluice_marker"}, apply);
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  Source("INSERT INTO public.b SELECT g, 'b late' FROM generate_series(501, 600) g");
  config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(),
                                {"public.a", "public.b", "public.sluice_marker"}, apply);
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  // Rows b had before it joined are there to be updated and deleted.
  Source("UPDATE public.b SET v = 'updated' WHERE id <= 50; DELETE FROM public.b WHERE id > 590");
  Source("INSERT INTO public.a VALUES (1000, 'a late')");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff({"public.a", "public.b"}), "");
  EXPECT_EQ(ReadFile(Log()).find("found no row"), std::string::npos) << ReadFile(Log());
}

TEST_F(TableJoinsTest, ATableAddedBySighupIsCopiedWhileTheOthersStream) {
  Source(kTwoTables);
  const std::string apply = "      apply: { create_tables: true }\n";
  config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(),
                                {"public.a", "public.sluice_marker"}, apply);
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  Source("INSERT INTO public.b SELECT g, 'b before the reload' FROM generate_series(501, 600) g");
  config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(),
                                {"public.a", "public.b", "public.sluice_marker"}, apply);
  run_.Kill(SIGHUP);
  // Writes to both tables while the reload lands.
  for (int i = 0; i < 20; ++i) {
    Source("INSERT INTO public.a VALUES (" + std::to_string(2000 + i) +
           ", 'during');"
           "UPDATE public.b SET v = 'during " +
           std::to_string(i) + "' WHERE id = " + std::to_string(i + 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(WaitForRows("public.b")) << ReadFile(Log());
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff({"public.a", "public.b"}), "");
  EXPECT_NE(ReadFile(Log()).find("tables now public.a, public.b"), std::string::npos)
      << ReadFile(Log());
}

// "public.*" means the same whoever the source role is: a table created later is picked up
// with its earlier rows, by a superuser (the publication follows the schema) and by a role that
// can only publish tables one by one.
class NewTableTest : public TableJoinsTest, public ::testing::WithParamInterface<bool> {};

TEST_P(NewTableTest, ANewTableInAFollowedSchemaIsCopiedThenStreamed) {
  const bool superuser = GetParam();
  std::string as_role;  // prefix making the source role own what it creates
  std::string dsn = f_.source().Dsn();
  if (!superuser) {
    Source(
        "CREATE ROLE app LOGIN REPLICATION;"
        "GRANT CREATE ON DATABASE " +
        f_.source().database() +
        " TO app;"
        "GRANT CREATE ON SCHEMA public TO app");
    as_role = "SET ROLE app;";
    dsn += " user=app";
  }
  Source(as_role + kTwoTables);
  config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(), {"public.*"},
                                "      apply: { create_tables: true }\n");
  std::string yaml = ReadFile(config_.path);
  const std::string source_dsn = nlohmann::json(f_.source().Dsn()).dump();
  yaml.replace(yaml.find(source_dsn), source_dsn.size(), nlohmann::json(dsn).dump());
  WriteFile(config_.path, yaml);
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());

  // Rows in the same transaction as the CREATE, then more over time, updates of early rows.
  Source(as_role +
         "BEGIN; CREATE TABLE public.c (id int PRIMARY KEY, v text);"
         "INSERT INTO public.c SELECT g, 'c' || g FROM generate_series(1, 300) g; COMMIT");
  Source(as_role + "INSERT INTO public.c SELECT g, 'c later' FROM generate_series(301, 400) g");
  ASSERT_TRUE(WaitForRows("public.c")) << ReadFile(Log());
  Source(as_role +
         "UPDATE public.c SET v = 'changed' WHERE id <= 10; DELETE FROM public.c WHERE id = 400");
  Source(as_role + "INSERT INTO public.a VALUES (9000, 'after c')");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff({"public.a", "public.b", "public.c"}), "");
}

INSTANTIATE_TEST_SUITE_P(SuperuserOrNot, NewTableTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Superuser" : "PlainRole"; });

// Without create_tables, a new table stops the pipeline with its name and the fix; once the
// operator creates it on the target, a restart copies it and nothing is lost.
TEST_F(TableJoinsTest, ANewTableWithoutCreateTablesIsNamedAndTakenOnceCreated) {
  Source(kTwoTables);
  Target(
      "CREATE TABLE public.sluice_marker (id int PRIMARY KEY);"
      "CREATE TABLE public.a (id int PRIMARY KEY, v text);"
      "CREATE TABLE public.b (id int PRIMARY KEY, v text)");
  config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(), {"public.*"});
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  Source(
      "CREATE TABLE public.d (id int PRIMARY KEY, v text);"
      "INSERT INTO public.d SELECT g, 'd' FROM generate_series(1, 50) g");
  auto exit_code = run_.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(exit_code.ok()) << ReadFile(Log());
  EXPECT_EQ(*exit_code, 78) << ReadFile(Log());
  EXPECT_NE(ReadFile(Log()).find("public.d"), std::string::npos) << ReadFile(Log());
  Source("INSERT INTO public.d SELECT g, 'd while stopped' FROM generate_series(51, 60) g");
  Target("CREATE TABLE public.d (id int PRIMARY KEY, v text)");
  StartRun();
  ASSERT_TRUE(WaitForRows("public.d")) << ReadFile(Log());
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff({"public.a", "public.b", "public.d"}), "");
}

}  // namespace
}  // namespace sluice::testing
