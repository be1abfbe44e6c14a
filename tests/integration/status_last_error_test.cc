// Why a pipeline stopped must outlive the daemon: a permanent failure (a row the target's CHECK
// constraint refuses) shows in /healthz while the daemon runs, as phase "failed" with the error
// in `sluice status` once it has exited non-zero, and goes away only after the pipeline, run
// again on a fixed target, makes progress.
#include <gtest/gtest.h>
#include <httplib.h>

#include <csignal>
#include <thread>

#include "tests/support/pipeline_fixture.h"
#include "tests/support/table_compare.h"

namespace sluice::testing {
namespace {

constexpr auto kPatience = std::chrono::seconds(120);

nlohmann::json PipelineStatusJson(const std::string& config, const std::string& pipeline) {
  SluiceRun r = RunSluice({"status", "--config", config, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  if (j.is_discarded()) return {};
  for (auto& p : j["pipelines"]) {
    if (p["name"] == pipeline) {
      p["daemon"] = j["daemon"];
      return p;
    }
  }
  ADD_FAILURE() << "no pipeline " << pipeline << " in " << r.out;
  return {};
}

bool WaitForCount(const PgCluster& cluster, const std::string& table, int rows) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    auto n = cluster.QueryValue("SELECT count(*) FROM " + table);
    if (n.ok() && std::stoi(*n) == rows) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(StatusLastErrorTest, APermanentFailureStaysInStatusUntilProgressClearsIt) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.source()
                  .Exec("CREATE TABLE public.items (id int PRIMARY KEY, v int);"
                        "CREATE TABLE public.other (id int PRIMARY KEY);"
                        "INSERT INTO public.items VALUES (1, 5)")
                  .ok());
  // Two pipelines: `items` will fail, `other` keeps the daemon (and /healthz) running.
  const int admin_port = FreeLoopbackPort();
  const std::string target_yaml =
      "    target:\n      type: postgres\n      dsn: " + nlohmann::json(f.target().Dsn()).dump() +
      "\n      apply: { create_tables: true }\n";
  TailConfig config = WriteTailConfig(f.dir(), f.source(), {"public.items"}, target_yaml, "items");
  WriteFile(config.path, "admin: { listen: \"127.0.0.1:" + std::to_string(admin_port) + "\" }\n" +
                             ReadFile(config.path) + "  - name: other\n    source:\n      dsn: " +
                             nlohmann::json(f.source().Dsn()).dump() +
                             "\n      tables: [\"public.other\"]\n" + target_yaml);

  const std::string log = f.dir().File("run.err");
  SluiceProcess run;
  ASSERT_TRUE(run.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());
  ASSERT_TRUE(WaitForCount(f.target(), "public.items", 1)) << ReadFile(log);

  // The target now refuses what the source will send: a permanent error.
  ASSERT_TRUE(
      f.target().Exec("ALTER TABLE public.items ADD CONSTRAINT v_small CHECK (v < 100)").ok());
  ASSERT_TRUE(f.source().Exec("INSERT INTO public.items VALUES (2, 500)").ok());

  nlohmann::json failed;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    failed = PipelineStatusJson(config.path, "items");
    if (failed["phase"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(failed["phase"], "failed") << failed.dump() << "\n" << ReadFile(log);
  EXPECT_NE(failed["last_error"].get<std::string>().find("v_small"), std::string::npos)
      << failed.dump();
  httplib::Client admin("127.0.0.1", admin_port);
  admin.set_read_timeout(std::chrono::seconds(30));
  auto health = admin.Get("/healthz");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 503) << health->body;
  EXPECT_NE(health->body.find("pipeline items: failed: "), std::string::npos) << health->body;
  EXPECT_NE(health->body.find("v_small"), std::string::npos) << health->body;
  EXPECT_EQ(health->body.find("pipeline other"), std::string::npos) << health->body;

  // Stopped, the daemon exits with the failure; status, asked with the daemon down, still
  // says the pipeline failed and why.
  run.Kill(SIGTERM);
  auto exit_code = run.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_NE(*exit_code, 0) << ReadFile(log);
  const nlohmann::json down = PipelineStatusJson(config.path, "items");
  EXPECT_EQ(down["daemon"], "down") << down.dump();
  EXPECT_EQ(down["phase"], "failed") << down.dump();
  EXPECT_NE(down["last_error"].get<std::string>().find("v_small"), std::string::npos)
      << down.dump();
  EXPECT_GT(down["last_error_unix_ms"].get<int64_t>(), 0) << down.dump();
  EXPECT_EQ(PipelineStatusJson(config.path, "other")["phase"], "stopped");
  SluiceRun table = RunSluice({"status", "--config", config.path});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("items     failed"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("pipeline items: apply to public.items failed"), std::string::npos)
      << table.out;  // the table cuts long errors; the JSON above has all of it

  // Fixed target, run again: the refused row goes in, and the error goes once it has.
  ASSERT_TRUE(f.target().Exec("ALTER TABLE public.items DROP CONSTRAINT v_small").ok());
  SluiceProcess again;
  ASSERT_TRUE(again.Start({"run", "--config", config.path}, f.dir().File("run.out"), log).ok());
  ASSERT_TRUE(WaitForCount(f.target(), "public.items", 2)) << ReadFile(log);
  nlohmann::json recovered;
  const auto until = std::chrono::steady_clock::now() + kPatience;
  while (std::chrono::steady_clock::now() < until) {
    recovered = PipelineStatusJson(config.path, "items");
    if (recovered["phase"] == "streaming" && recovered["last_error"] == "") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(recovered["phase"], "streaming") << recovered.dump();
  EXPECT_EQ(recovered["last_error"], "") << recovered.dump();
  ASSERT_TRUE(f.source().Exec("INSERT INTO public.items VALUES (3, 7)").ok());
  ASSERT_TRUE(WaitForCount(f.target(), "public.items", 3)) << ReadFile(log);
  EXPECT_EQ(DiffTables(f.source(), f.target(), {"public.items", "public.other"}), "");
  again.Kill(SIGTERM);
  auto clean_exit = again.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(clean_exit.ok());
  EXPECT_EQ(*clean_exit, 0) << ReadFile(log);
  const nlohmann::json after = PipelineStatusJson(config.path, "items");
  EXPECT_EQ(after["phase"], "stopped") << after.dump();
  EXPECT_EQ(after["last_error"], "") << after.dump();
}

}  // namespace
}  // namespace sluice::testing
