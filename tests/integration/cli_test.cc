// The command line as a user meets it: exit codes, configuration errors that name file, line
// and key, `sluice check` against real servers, and passwords that never reach any output.
#include <gtest/gtest.h>

#include <csignal>
#include <sstream>
#include <thread>

#include "tests/support/pipeline_fixture.h"

namespace sluice::testing {
namespace {

struct BadConfig {
  const char* name;
  std::string yaml;
  std::string expected;  // a fragment of stderr
};

TEST(CliTest, BadConfigsExitSeventyEightNamingFileLineAndKey) {
  TempDir dir;
  const std::string head =
      "state_dir: " + dir.File("state") + "\npipelines:\n  - name: p\n    source:\n";
  const std::vector<BadConfig> cases = {
      {"unknown key", head + "      dsn: host=x\n      slott: s\n",
       ":6:7: pipelines[0].source: unknown key 'slott' (did you mean 'slot'?)"},
      {"bad size", head + "      dsn: host=x\n    capture: { memory_limit: lots }\n",
       "pipelines[0].capture.memory_limit: expected a size like 64MB, got 'lots'"},
      {"missing dsn", head + "      tables: [public.t]\n", "pipelines[0].source"},
      {"bad name", "pipelines:\n  - name: Bad Name\n    source: { dsn: host=x }\n",
       "pipelines[0].name"},
      {"yaml syntax", "pipelines: [\n", "bad.yaml:"},
      {"missing env", head + "      dsn: \"host=x password=${SLUICE_TEST_UNSET_VAR}\"\n",
       "SLUICE_TEST_UNSET_VAR"},
  };
  for (const auto& c : cases) {
    const std::string path = dir.File("bad.yaml");
    WriteFile(path, c.yaml);
    SluiceRun result = RunSluice({"run", "--config", path});
    EXPECT_EQ(result.exit_code, 78) << c.name << ": " << result.err;
    EXPECT_NE(result.err.find(c.expected), std::string::npos)
        << c.name << ": expected '" << c.expected << "' in:\n"
        << result.err;
  }
  SluiceRun missing = RunSluice({"run", "--config", dir.File("nope.yaml")});
  EXPECT_EQ(missing.exit_code, 78);
  EXPECT_NE(missing.err.find("nope.yaml"), std::string::npos) << missing.err;
}

TEST(CliTest, UsageErrorsExitSixtyFour) {
  EXPECT_EQ(RunSluice({"run"}).exit_code, 64);
  EXPECT_EQ(RunSluice({"frobnicate"}).exit_code, 64);
  EXPECT_EQ(RunSluice({"--version"}).exit_code, 0);
}

TEST(CliTest, CheckReportsThePlanAndFailsWithTheRightExitCodes) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.source().Exec("CREATE TABLE public.good (id int PRIMARY KEY, v text)").ok());
  const std::string target_yaml =
      "    target:\n      type: postgres\n      dsn: " + nlohmann::json(f.target().Dsn()).dump() +
      "\n      apply: { create_tables: true }\n";
  TailConfig ok = WriteTailConfig(f.dir(), f.source(), {"public.good"}, target_yaml, "chk");
  SluiceRun passed = RunSluice({"check", "--config", ok.path});
  EXPECT_EQ(passed.exit_code, 0) << passed.out << passed.err;
  EXPECT_NE(passed.out.find("all checks passed"), std::string::npos) << passed.out;
  EXPECT_NE(passed.out.find("create logical slot sluice_chk"), std::string::npos) << passed.out;
  EXPECT_NE(passed.out.find("create 1 missing table(s) on the target"), std::string::npos)
      << passed.out;
  // check changes nothing.
  auto slots = f.source().QueryValue("SELECT count(*) FROM pg_replication_slots");
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ(*slots, "0");

  // A table without a replica identity, and a target missing a column.
  ASSERT_TRUE(f.source().Exec("CREATE TABLE public.nokey (a int)").ok());
  ASSERT_TRUE(f.target().Exec("CREATE TABLE public.good (id int PRIMARY KEY)").ok());
  TailConfig bad =
      WriteTailConfig(f.dir(), f.source(), {"public.good", "public.nokey"}, target_yaml, "chk2");
  SluiceRun failed = RunSluice({"check", "--config", bad.path});
  EXPECT_EQ(failed.exit_code, 78) << failed.out << failed.err;
  EXPECT_NE(failed.out.find("public.nokey"), std::string::npos) << failed.out;
  EXPECT_NE(failed.out.find("REPLICA IDENTITY FULL"), std::string::npos) << failed.out;
  EXPECT_NE(failed.out.find("has no column \"v\""), std::string::npos) << failed.out;

  // An unreachable source: 69.
  const std::string dead = "host=127.0.0.1 port=" + std::to_string(FreeLoopbackPort()) +
                           " dbname=x user=postgres connect_timeout=2";
  WriteFile(f.dir().File("dead.yaml"),
            "state_dir: " + f.dir().File("dead-state") +
                "\npipelines:\n  - name: dead\n    source:\n      dsn: \"" + dead +
                "\"\n      tables: [public.t]\n" + target_yaml);
  SluiceRun unreachable = RunSluice({"check", "--config", f.dir().File("dead.yaml")});
  EXPECT_EQ(unreachable.exit_code, 69) << unreachable.out << unreachable.err;
}

TEST(CliTest, WalLevelReplicaIsNamedWithItsFix) {
  PgCluster::Options options;
  options.settings["wal_level"] = "replica";
  auto cluster = PgCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  ASSERT_TRUE((*cluster)->Exec("CREATE TABLE public.t (id int PRIMARY KEY)").ok());
  TempDir dir;
  // With a target, so that check's 78 is about the source, not a config `run` refuses.
  const std::string target_yaml =
      "    target: { dsn: " + nlohmann::json((*cluster)->Dsn()).dump() + " }\n";
  TailConfig config = WriteTailConfig(dir, **cluster, {"public.t"}, target_yaml);
  SluiceRun check = RunSluice({"check", "--config", config.path});
  EXPECT_EQ(check.exit_code, 78);
  EXPECT_EQ(check.out.find("sluice run refuses"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("wal_level=replica; set wal_level=logical"), std::string::npos)
      << check.out;
  SluiceRun tail = RunSluice({"tail", "--config", config.path});
  EXPECT_EQ(tail.exit_code, 78) << tail.err;
  EXPECT_NE(tail.err.find("wal_level"), std::string::npos) << tail.err;
}

TEST(CliTest, PasswordsNeverAppearInAnyOutput) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  const std::string secret = "S3cret-Passw0rd-x9";
  ASSERT_TRUE(f.source().Exec("CREATE TABLE public.t (id int PRIMARY KEY)").ok());
  const std::string source_dsn = f.source().Dsn() + " password=" + secret;
  const std::string target_dsn = f.target().Dsn() + " password=" + secret;
  const std::string dead_dsn = "host=127.0.0.1 port=" + std::to_string(FreeLoopbackPort()) +
                               " dbname=x user=postgres connect_timeout=2 password=" + secret;
  auto write = [&](const std::string& name, const std::string& src, const std::string& dst) {
    const std::string path = f.dir().File(name + ".yaml");
    WriteFile(path, "state_dir: " + f.dir().File(name + "-state") + "\nlog: { level: debug }\n" +
                        "pipelines:\n  - name: " + name + "\n    source:\n      dsn: \"" + src +
                        "\"\n      tables: [public.t]\n    target:\n      type: postgres\n" +
                        "      dsn: \"" + dst + "\"\n      apply: { create_tables: true }\n");
    return path;
  };
  const std::string good = write("pw", source_dsn, target_dsn);
  const std::string dead = write("pwdead", dead_dsn, dead_dsn);
  std::string everything;
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"check", "--config", good},
                                             {"check", "--config", dead},
                                             {"tail", "--config", dead},
                                             {"tail", "--config", good, "--endpos", "0/1"}}) {
    SluiceRun r = RunSluice(args, std::chrono::seconds(60));
    everything += r.out + r.err;
  }
  SluiceProcess run;
  ASSERT_TRUE(run.Start({"run", "--config", dead}, f.dir().File("o"), f.dir().File("e")).ok());
  std::this_thread::sleep_for(std::chrono::seconds(3));  // a few failed connection attempts
  run.Kill(SIGTERM);
  ASSERT_TRUE(run.Wait(std::chrono::seconds(30)).ok());
  everything += ReadFile(f.dir().File("o")) + ReadFile(f.dir().File("e"));
  EXPECT_FALSE(everything.empty());
  EXPECT_EQ(everything.find(secret), std::string::npos) << everything;
}

TEST(CliTest, JsonLogLinesAreValidJson) {
  TempDir dir;
  const std::string dsn = "host=127.0.0.1 port=" + std::to_string(FreeLoopbackPort()) +
                          " dbname=x user=postgres connect_timeout=2";
  WriteFile(dir.File("j.yaml"), "state_dir: " + dir.File("state") +
                                    "\nlog: { level: info, format: json }\npipelines:\n"
                                    "  - name: j\n    source:\n      dsn: \"" +
                                    dsn + "\"\n      tables: [\"public.\\\"quoted\\\"\"]\n");
  SluiceRun r = RunSluice({"tail", "--config", dir.File("j.yaml")});
  EXPECT_EQ(r.exit_code, 69) << r.err;
  size_t lines = 0;
  std::istringstream in(r.err);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("message")) << line;
    ++lines;
  }
  EXPECT_GE(lines, 1u);
}

}  // namespace
}  // namespace sluice::testing
