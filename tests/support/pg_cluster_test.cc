// Self-test of the integration-test support library against real PostgreSQL servers.

#include "tests/support/pg_cluster.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "tests/support/sluice_process.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<PgCluster> MustStart(PgCluster::Options options = {}) {
  auto cluster = PgCluster::Start(std::move(options));
  if (!cluster.ok()) {
    ADD_FAILURE() << "cannot start test cluster: " << cluster.status().ToString();
    return nullptr;
  }
  return std::move(cluster).value();
}

bool CanConnect(int port) {
  const std::string dsn = "host=127.0.0.1 port=" + std::to_string(port) +
                          " user=postgres dbname=postgres "
                          "connect_timeout=5";
  PGconn* conn = PQconnectdb(dsn.c_str());
  const bool ok = PQstatus(conn) == CONNECTION_OK;
  PQfinish(conn);
  return ok;
}

TEST(PgClusterTest, StartsWithLogicalWalAndTestDatabase) {
  auto cluster = MustStart();
  ASSERT_NE(cluster, nullptr);
  EXPECT_GT(cluster->port(), 0);
  EXPECT_TRUE(cluster->running());
  EXPECT_TRUE(fs::exists(cluster->data_dir() + "/PG_VERSION"));

  auto wal_level = cluster->QueryValue("SHOW wal_level");
  ASSERT_TRUE(wal_level.ok()) << wal_level.status().ToString();
  EXPECT_EQ(*wal_level, "logical");
  auto database = cluster->QueryValue("SELECT current_database()");
  ASSERT_TRUE(database.ok()) << database.status().ToString();
  EXPECT_EQ(*database, "sluice_test");
  EXPECT_EQ(cluster->database(), "sluice_test");
  auto slots = cluster->QueryValue("SHOW max_replication_slots");
  ASSERT_TRUE(slots.ok()) << slots.status().ToString();
  EXPECT_EQ(*slots, "40");
  auto listen = cluster->QueryValue("SHOW listen_addresses");
  ASSERT_TRUE(listen.ok()) << listen.status().ToString();
  EXPECT_EQ(*listen, "127.0.0.1");
  auto encoding = cluster->QueryValue("SHOW server_encoding");
  ASSERT_TRUE(encoding.ok()) << encoding.status().ToString();
  EXPECT_EQ(*encoding, "UTF8");
  EXPECT_NE(cluster->ServerLog().find("ready to accept connections"), std::string::npos)
      << cluster->ServerLog();
}

TEST(PgClusterTest, OptionsSetDatabaseAndSettings) {
  PgCluster::Options options;
  options.database = "other db";  // a name needing quotes in SQL and conninfo
  options.settings["logical_decoding_work_mem"] = "64kB";
  options.settings["application_name"] = "it's quoted";
  auto cluster = MustStart(options);
  ASSERT_NE(cluster, nullptr);
  auto database = cluster->QueryValue("SELECT current_database()");
  ASSERT_TRUE(database.ok()) << database.status().ToString();
  EXPECT_EQ(*database, "other db");
  auto work_mem = cluster->QueryValue("SHOW logical_decoding_work_mem");
  ASSERT_TRUE(work_mem.ok()) << work_mem.status().ToString();
  EXPECT_EQ(*work_mem, "64kB");
  // The server default applies to sessions that do not set their own application_name.
  auto quoted = cluster->QueryValue(
      "SELECT reset_val FROM pg_settings "
      "WHERE name = 'application_name'");
  ASSERT_TRUE(quoted.ok()) << quoted.status().ToString();
  EXPECT_EQ(*quoted, "it's quoted");
}

TEST(PgClusterTest, StartFailureReportsServerLog) {
  PgCluster::Options options;
  options.settings["wal_level"] = "no_such_level";  // the server refuses to start
  auto cluster = PgCluster::Start(options);
  ASSERT_FALSE(cluster.ok());
  // The tail of the server log says why.
  EXPECT_NE(cluster.status().message().find("no_such_level"), std::string::npos)
      << cluster.status().ToString();
}

TEST(PgClusterTest, CreatesTableAndQueriesRowsWithNulls) {
  auto cluster = MustStart();
  ASSERT_NE(cluster, nullptr);
  ASSERT_TRUE(cluster
                  ->Exec("CREATE TABLE items (id int PRIMARY KEY, name text);"
                         "INSERT INTO items VALUES (1, 'one'), (2, NULL), (3, 'drei ü');")
                  .ok());
  auto rows = cluster->Query("SELECT id, name FROM items ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0][0], "1");
  EXPECT_EQ((*rows)[0][1], "one");
  EXPECT_EQ((*rows)[1][0], "2");
  EXPECT_FALSE((*rows)[1][1].has_value());
  EXPECT_EQ((*rows)[2][1], "drei ü");

  auto count = cluster->QueryValue("SELECT count(*) FROM items");
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(*count, "3");

  auto empty = cluster->Query("SELECT id FROM items WHERE id > 100");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());
}

TEST(PgClusterTest, QueryValueFailsOnNoRowOrNull) {
  auto cluster = MustStart();
  ASSERT_NE(cluster, nullptr);
  auto no_row = cluster->QueryValue("SELECT 1 WHERE false");
  ASSERT_FALSE(no_row.ok());
  EXPECT_NE(no_row.status().message().find("SELECT 1 WHERE false"), std::string::npos)
      << no_row.status().ToString();
  auto null_value = cluster->QueryValue("SELECT NULL::text");
  EXPECT_FALSE(null_value.ok());
}

TEST(PgClusterTest, BadSqlErrorNamesTheSqlAndServerError) {
  auto cluster = MustStart();
  ASSERT_NE(cluster, nullptr);
  const core::Status status = cluster->Exec("SELEC 1 FROM nowhere");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("SELEC 1 FROM nowhere"), std::string::npos) << status.ToString();
  EXPECT_NE(status.message().find("syntax error"), std::string::npos) << status.ToString();

  auto missing = cluster->Query("SELECT * FROM no_such_table");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no_such_table"), std::string::npos);
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos)
      << missing.status().ToString();

  // Long SQL is cut in the message.
  const std::string long_sql = "SELECT " + std::string(1000, '1') + " +";
  const core::Status long_status = cluster->Exec(long_sql);
  ASSERT_FALSE(long_status.ok());
  EXPECT_LT(long_status.message().size(), 600u) << long_status.ToString();
}

TEST(PgClusterTest, StopAndStartAgainKeepsDataAndPort) {
  auto cluster = MustStart();
  ASSERT_NE(cluster, nullptr);
  const int port = cluster->port();
  ASSERT_TRUE(cluster->Exec("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42);").ok());

  ASSERT_TRUE(cluster->Stop().ok());
  EXPECT_FALSE(cluster->running());
  EXPECT_FALSE(cluster->Exec("SELECT 1").ok());
  ASSERT_TRUE(cluster->StartAgain().ok());
  EXPECT_TRUE(cluster->running());
  EXPECT_EQ(cluster->port(), port);
  auto value = cluster->QueryValue("SELECT v FROM kept");
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(*value, "42");

  // A crash (immediate stop) keeps committed data too: synchronous_commit stays on.
  ASSERT_TRUE(cluster->Exec("INSERT INTO kept VALUES (43)").ok());
  ASSERT_TRUE(cluster->Stop(/*immediate=*/true).ok());
  ASSERT_TRUE(cluster->StartAgain().ok());
  auto sum = cluster->QueryValue("SELECT sum(v) FROM kept");
  ASSERT_TRUE(sum.ok()) << sum.status().ToString();
  EXPECT_EQ(*sum, "85");
  EXPECT_FALSE(cluster->StartAgain().ok()) << "starting a running cluster must fail";
}

TEST(PgClusterTest, TwoClustersAtOnceAreIndependent) {
  auto first = MustStart();
  auto second = MustStart();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_NE(first->port(), second->port());
  EXPECT_NE(first->data_dir(), second->data_dir());
  ASSERT_TRUE(first->Exec("CREATE TABLE only_in_first (v int)").ok());
  EXPECT_TRUE(first->Exec("SELECT * FROM only_in_first").ok());
  EXPECT_FALSE(second->Exec("SELECT * FROM only_in_first").ok());
}

TEST(PgClusterTest, DestructionStopsServerAndRemovesDirectory) {
  auto cluster = MustStart();
  ASSERT_NE(cluster, nullptr);
  const std::string data_dir = cluster->data_dir();
  const int port = cluster->port();
  ASSERT_TRUE(fs::exists(data_dir));
  ASSERT_TRUE(CanConnect(port));
  cluster.reset();
  EXPECT_FALSE(fs::exists(data_dir));
  EXPECT_FALSE(fs::exists(fs::path(data_dir).parent_path()));
  EXPECT_FALSE(CanConnect(port));
}

TEST(PgClusterDeathTest, TerminationSignalStopsAndRemovesLiveClusters) {
  GTEST_FLAG_SET(death_test_style, "fast");  // the child must see `shared`
  TempDir shared;
  const std::string report = shared.File("cluster");
  // The child starts a cluster, reports where it is, and is terminated by SIGTERM.
  EXPECT_EXIT(
      {
        auto cluster = PgCluster::Start();
        if (!cluster.ok()) std::_Exit(3);
        WriteFile(report, (*cluster)->data_dir() + "\n" + std::to_string((*cluster)->port()));
        raise(SIGTERM);
        std::_Exit(4);  // not reached: the handler re-raises with the default action
      },
      ::testing::KilledBySignal(SIGTERM), "");
  const std::string reported = ReadFile(report);
  const size_t newline = reported.find('\n');
  ASSERT_NE(newline, std::string::npos) << "child did not report its cluster: " << reported;
  const std::string data_dir = reported.substr(0, newline);
  const int port = std::stoi(reported.substr(newline + 1));
  EXPECT_FALSE(fs::exists(data_dir)) << data_dir;
  EXPECT_FALSE(CanConnect(port)) << "postmaster on port " << port << " survived SIGTERM";
}

TEST(PgClusterSupportTest, RunAsPostgresRunsAsPostgresWhenRoot) {
  const CommandResult result = RunAsPostgres({"id", "-un"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::string expected = "postgres";
  if (geteuid() != 0) expected = getpwuid(geteuid())->pw_name;
  EXPECT_EQ(result.output, expected + "\n");

  const CommandResult failing = RunAsPostgres({"false"});
  EXPECT_EQ(failing.exit_code, 1);
}

TEST(PgClusterSupportTest, FreeLoopbackPortsAreUsable) {
  const int port = FreeLoopbackPort();
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
}

// --- SluiceProcess, RunSluice, TempDir -----------------------------------------------------

TEST(SluiceProcessTest, SluiceBinaryRunsToCompletion) {
  EXPECT_TRUE(fs::exists(SluiceBinary())) << SluiceBinary();
  const SluiceRun run = RunSluice({"--help"});
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
}

// Runs another program in place of sluice (SLUICE_BINARY override) to exercise the process
// machinery independently of what the sluice binary currently does.
class ScopedSluiceBinary {
 public:
  explicit ScopedSluiceBinary(const char* path) { setenv("SLUICE_BINARY", path, 1); }
  ~ScopedSluiceBinary() { unsetenv("SLUICE_BINARY"); }
};

TEST(SluiceProcessTest, RunSluiceCapturesStdoutStderrAndExitCode) {
  ScopedSluiceBinary shell("/bin/sh");
  const SluiceRun run = RunSluice({"-c", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(run.exit_code, 7);
  EXPECT_EQ(run.out, "out\n");
  EXPECT_EQ(run.err, "err\n");
}

TEST(SluiceProcessTest, RunSluiceKillsAfterTimeout) {
  ScopedSluiceBinary sleeper("/bin/sleep");
  const SluiceRun run = RunSluice({"600"}, std::chrono::milliseconds(200));
  EXPECT_EQ(run.exit_code, 128 + SIGKILL);
}

TEST(SluiceProcessTest, KillWaitAndAppendingOutput) {
  ScopedSluiceBinary shell("/bin/sh");
  TempDir dir;
  const std::string out = dir.File("out.log");
  const std::string err = dir.File("err.log");
  WriteFile(out, "earlier\n");

  SluiceProcess process;
  ASSERT_TRUE(process.Start({"-c", "echo started; exec sleep 600"}, out, err).ok());
  EXPECT_TRUE(process.running());
  EXPECT_GT(process.pid(), 0);
  EXPECT_FALSE(process.Start({"-c", "true"}, out, err).ok()) << "second Start while running";
  auto still_running = process.Wait(std::chrono::milliseconds(50));
  EXPECT_FALSE(still_running.ok());
  process.Kill(SIGTERM);
  auto exit_code = process.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status().ToString();
  EXPECT_EQ(*exit_code, 128 + SIGTERM);
  EXPECT_FALSE(process.running());
  // "started" may be written after "earlier" only: the file is appended to, never truncated.
  EXPECT_EQ(ReadFile(out).rfind("earlier\n", 0), 0u) << ReadFile(out);

  ASSERT_TRUE(process.Start({"-c", "exit 0"}, out, err).ok());
  auto clean = process.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_EQ(*clean, 0);
}

TEST(SluiceProcessTest, DestructorKillsRunningProcess) {
  ScopedSluiceBinary sleeper("/bin/sleep");
  TempDir dir;
  pid_t pid = -1;
  {
    SluiceProcess process;
    ASSERT_TRUE(process.Start({"600"}, dir.File("out"), dir.File("err")).ok());
    pid = process.pid();
  }
  // Reaped by the destructor: the pid no longer names our child.
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1);
}

TEST(TempDirTest, WritableByEveryoneAndRemoved) {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    ASSERT_TRUE(fs::is_directory(path));
    EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::all);
    WriteFile(dir.File("a.txt"), "hello\nworld");
    EXPECT_EQ(ReadFile(dir.File("a.txt")), "hello\nworld");
    // The postgres user can write into it (the server writes COPY output, logs).
    const CommandResult touch = RunAsPostgres({"touch", dir.File("by_postgres")});
    EXPECT_EQ(touch.exit_code, 0) << touch.output;
    EXPECT_TRUE(fs::exists(dir.File("by_postgres")));
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(ReadFile(path + "/a.txt"), "");
}

}  // namespace
}  // namespace sluice::testing
