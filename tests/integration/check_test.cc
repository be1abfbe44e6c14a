// `sluice check` says what `sluice run` would say: the configs `run` refuses, and what apply
// will do on the target as its role, each privilege reported ok or FAIL with the statement that
// fixes it. The statements are taken from the output and run as printed, then `run` must work.
// Also: passwords that need quoting, given through ${VAR}, reach both servers.
#include <gtest/gtest.h>

#include <csignal>
#include <sstream>
#include <thread>

#include "config/config_loader.h"
#include "config/runnable.h"
#include "tests/support/pipeline_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);

// A one-pipeline config; DSNs are written as YAML strings, so ${VAR} stays for sluice.
std::string WriteConfig(const TempDir& dir, const std::string& name, const std::string& source_dsn,
                        const std::string& target_dsn, const std::vector<std::string>& tables) {
  const std::string path = dir.File(name + ".yaml");
  std::string yaml = "state_dir: " + nlohmann::json(dir.File(name + "-state")).dump() +
                     "\npipelines:\n  - name: " + name +
                     "\n    source:\n      dsn: " + nlohmann::json(source_dsn).dump() +
                     "\n      tables: [";
  for (size_t i = 0; i < tables.size(); ++i) yaml += (i ? ", " : "") + tables[i];
  yaml += "]\n    target:\n      dsn: " + nlohmann::json(target_dsn).dump() +
          "\n      apply: { create_tables: true }\n";
  WriteFile(path, yaml);
  return path;
}

// The statements check prints after FAIL lines ("...: GRANT ...; GRANT ..."), as printed.
std::vector<std::string> FixesIn(const std::string& check_output) {
  std::vector<std::string> fixes;
  std::istringstream in(check_output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("  FAIL  ", 0) != 0) continue;
    size_t at = line.find(": GRANT ");
    if (at == std::string::npos) at = line.find(": ALTER ");
    if (at == std::string::npos) continue;
    std::string rest = line.substr(at + 2);
    for (size_t end; (end = rest.find("; ")) != std::string::npos; rest.erase(0, end + 2)) {
      fixes.push_back(rest.substr(0, end));
    }
    fixes.push_back(rest);
  }
  return fixes;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Stops `run` with SIGTERM and expects a clean exit.
void StopRun(SluiceProcess& run, const std::string& err_path) {
  run.Kill(SIGTERM);
  auto exit_code = run.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << ReadFile(err_path);
}

TEST(CheckTest, RefusesWhatRunRefusesWithRunsMessage) {
  auto source = PgCluster::Start();
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ASSERT_TRUE((*source)->Exec("CREATE TABLE public.t (id int PRIMARY KEY)").ok());
  TempDir dir;
  const std::string dsn = (*source)->Dsn();
  WriteFile(dir.File("migrations.yaml"),
            "state_dir: " + dir.File("m-state") + "\nmigrations:\n  - name: move-app\n" +
                "    old: { dsn: " + nlohmann::json(dsn).dump() + " }\n    new: { dsn: " +
                nlohmann::json(dsn).dump() + " }\n    tables: [public.t]\n");
  const TailConfig tail_only = WriteTailConfig(dir, **source, {"public.t"}, "", "tailonly");
  for (const std::string& path : {dir.File("migrations.yaml"), tail_only.path}) {
    auto config = config::LoadConfigFile(path);
    ASSERT_TRUE(config.ok()) << config.status().message();
    const core::Status refusal = config::CheckRunnable(*config);
    ASSERT_FALSE(refusal.ok()) << path;

    SluiceRun check = RunSluice({"check", "--config", path});
    EXPECT_EQ(check.exit_code, 78) << check.out << check.err;
    EXPECT_TRUE(Contains(check.out, "  FAIL  " + refusal.message())) << check.out;
    EXPECT_TRUE(Contains(check.err, refusal.message())) << check.err;
    EXPECT_FALSE(Contains(check.out, "all checks passed")) << check.out;

    SluiceRun run = RunSluice({"run", "--config", path});
    EXPECT_EQ(run.exit_code, 78) << run.err;
    EXPECT_TRUE(Contains(run.err, refusal.message())) << run.err;
  }
  // Nothing was created on the source by either.
  auto slots = (*source)->QueryValue("SELECT count(*) FROM pg_replication_slots");
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ(*slots, "0");
}

// A target role without any privilege: every one apply needs is named with its GRANT; once the
// printed statements ran, check passes and run copies and streams as that role.
// One resolution of table patterns serves both: a schema that does not exist fails `check`
// as it fails `run`, and a partitioned table counts as its partitions, which is what `run`
// publishes, copies and streams.
TEST(CheckTest, CheckAndRunAgreeOnWhatAPatternCovers) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.source()
                  .Exec("CREATE SCHEMA shop;"
                        "CREATE TABLE shop.orders (id int, region text, PRIMARY KEY (id, region))"
                        " PARTITION BY LIST (region);"
                        "CREATE TABLE shop.orders_eu PARTITION OF shop.orders FOR VALUES IN ('eu');"
                        "CREATE TABLE shop.orders_us PARTITION OF shop.orders FOR VALUES IN ('us');"
                        "CREATE TABLE shop.items (id int PRIMARY KEY);"
                        "INSERT INTO shop.orders SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE "
                        "'us' END FROM generate_series(1, 100) g;"
                        "INSERT INTO shop.items SELECT generate_series(1, 10)")
                  .ok());
  ASSERT_TRUE(f.target().Exec("CREATE SCHEMA shop").ok());

  const std::string missing =
      WriteConfig(f.dir(), "missing", f.source().Dsn(), f.target().Dsn(), {"nosuch.*"});
  SluiceRun check = RunSluice({"check", "--config", missing});
  EXPECT_EQ(check.exit_code, 78) << check.out << check.err;
  EXPECT_TRUE(Contains(check.out, "schema nosuch (from 'nosuch.*') not found")) << check.out;
  SluiceRun run = RunSluice({"run", "--config", missing}, std::chrono::seconds(60));
  EXPECT_EQ(run.exit_code, 78) << run.err;
  EXPECT_TRUE(Contains(run.err, "schema nosuch (from 'nosuch.*') not found")) << run.err;

  const std::string shop =
      WriteConfig(f.dir(), "shop", f.source().Dsn(), f.target().Dsn(), {"shop.*"});
  check = RunSluice({"check", "--config", shop});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_TRUE(Contains(check.out, "3 table(s), each with a usable replica identity")) << check.out;

  // What run copies and streams is those three tables.
  SluiceProcess daemon;
  const std::string err = f.dir().File("shop-run.err");
  ASSERT_TRUE(daemon.Start({"run", "--config", shop}, f.dir().File("shop-run.out"), err).ok());
  ASSERT_TRUE(f.source().Exec("INSERT INTO shop.orders VALUES (101, 'eu'), (102, 'us')").ok());
  std::string orders;
  for (int i = 0; i < 600 && orders != "102"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto count = f.target().QueryValue(
        "SELECT (SELECT count(*) FROM shop.orders_eu) + (SELECT count(*) FROM shop.orders_us)");
    orders = count.ok() ? *count : "";
  }
  StopRun(daemon, err);
  EXPECT_EQ(orders, "102") << ReadFile(err);
  EXPECT_EQ(f.Diff({"shop.orders_eu", "shop.orders_us", "shop.items"}), "");
}

TEST(CheckTest, TargetPrivilegesAreNamedWithTheirGrantAndTheGrantsAreEnoughForRun) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.source()
                  .Exec("CREATE TABLE public.t (id int PRIMARY KEY, v text);"
                        "INSERT INTO public.t SELECT g, 'row ' || g FROM generate_series(1, 500) g;"
                        "CREATE TABLE public.sluice_marker (id int PRIMARY KEY)")
                  .ok());
  ASSERT_TRUE(f.target()
                  .Exec("CREATE TABLE public.t (id int PRIMARY KEY, v text);"
                        "CREATE ROLE app LOGIN")
                  .ok());
  const std::string path =
      WriteConfig(f.dir(), "priv", f.source().Dsn(), f.target().Dsn() + " user=app",
                  {"public.t", "public.sluice_marker"});
  const std::string endpoint = "127.0.0.1:" + std::to_string(f.target().port());

  SluiceRun refused = RunSluice({"check", "--config", path});
  EXPECT_EQ(refused.exit_code, 78) << refused.out << refused.err;
  EXPECT_FALSE(Contains(refused.out, "all checks passed")) << refused.out;
  const std::string expected_fails[] = {
      "role app on target " + endpoint +
          " may not use replication origins, which apply needs for origin sluice_priv: GRANT "
          "EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create(text), "
          "pg_catalog.pg_replication_origin_session_setup(text), "
          "pg_catalog.pg_replication_origin_xact_setup(pg_lsn, timestamp with time zone) TO app",
      "role app on target " + endpoint +
          " may not SET session_replication_role (target.postgres.session_replication_role: "
          "replica): GRANT SET ON PARAMETER session_replication_role TO app",
      "role app on target " + endpoint +
          " may not create schema sluice and sluice.applied (CREATE SCHEMA IF NOT EXISTS sluice, "
          "then the table): GRANT CREATE ON DATABASE sluice_test TO app",
      "role app on target " + endpoint +
          " may not write target table public.t: GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE "
          "ON public.t TO app",
      "role app on target " + endpoint +
          " may not create the missing tables in schema public (target.postgres.create_tables): "
          "GRANT CREATE, USAGE ON SCHEMA public TO app",
  };
  for (const std::string& fail : expected_fails) {
    EXPECT_TRUE(Contains(refused.out, "  FAIL  " + fail + "\n")) << fail << "\nin:\n"
                                                                 << refused.out;
  }
  EXPECT_TRUE(Contains(refused.out, "  ok    room for replication origin sluice_priv"))
      << refused.out;

  const std::vector<std::string> fixes = FixesIn(refused.out);
  EXPECT_EQ(fixes.size(), 5u) << refused.out;
  for (const std::string& fix : fixes) ASSERT_TRUE(f.target().Exec(fix).ok()) << fix;

  SluiceRun passed = RunSluice({"check", "--config", path});
  EXPECT_EQ(passed.exit_code, 0) << passed.out << passed.err;
  for (const char* ok :
       {"role app may use replication origins (apply records origin sluice_priv)",
        "role app may SET session_replication_role (to replica)",
        "role app may create schema sluice and table sluice.applied",
        "role app may SELECT, INSERT, UPDATE, DELETE and TRUNCATE the 1 existing target table(s)",
        "role app may create the 1 missing target table(s)",
        "room for replication origin sluice_priv on the target (0 of max_replication_slots = "}) {
    EXPECT_TRUE(Contains(passed.out, std::string("\n  ok    ") + ok)) << ok << "\nin:\n"
                                                                      << passed.out;
  }
  EXPECT_TRUE(Contains(passed.out, "all checks passed")) << passed.out;

  // What check passed, run does as that role: copy, stream, row for row.
  SluiceProcess run;
  ASSERT_TRUE(
      run.Start({"run", "--config", path}, f.dir().File("run.out"), f.dir().File("run.err")).ok());
  ASSERT_TRUE(f.source()
                  .Exec("UPDATE public.t SET v = 'changed' WHERE id % 7 = 0;"
                        "DELETE FROM public.t WHERE id % 11 = 0;"
                        "INSERT INTO public.t SELECT g, 'new' FROM generate_series(501, 600) g")
                  .ok());
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(f.dir().File("run.err"));
  StopRun(run, f.dir().File("run.err"));
  EXPECT_EQ(f.Diff({"public.t", "public.sluice_marker"}), "");
  auto owner = f.target().QueryValue(
      "SELECT tableowner FROM pg_tables WHERE schemaname = 'sluice' AND tablename = 'applied'");
  ASSERT_TRUE(owner.ok());
  EXPECT_EQ(*owner, "app");

  // Now the origin exists and sluice.applied is app's; take one privilege back.
  ASSERT_TRUE(f.target().Exec("REVOKE UPDATE ON sluice.applied FROM app").ok());
  SluiceRun after = RunSluice({"check", "--config", path});
  EXPECT_EQ(after.exit_code, 78) << after.out << after.err;
  EXPECT_TRUE(Contains(after.out, "  ok    replication origin sluice_priv exists on the target\n"))
      << after.out;
  EXPECT_TRUE(Contains(after.out, "  FAIL  role app on target " + endpoint +
                                      " may not write sluice.applied, where apply records its "
                                      "position: GRANT UPDATE ON sluice.applied TO app\n"))
      << after.out;
}

// A schema sluice made by someone else: its privileges, before and after sluice.applied exists.
TEST(CheckTest, SluiceSchemaOfAnotherRoleNeedsItsOwnGrants) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.source().Exec("CREATE TABLE public.t (id int PRIMARY KEY)").ok());
  ASSERT_TRUE(f.target()
                  .Exec("CREATE TABLE public.t (id int PRIMARY KEY); CREATE ROLE app LOGIN;"
                        "CREATE SCHEMA sluice;"
                        "GRANT EXECUTE ON FUNCTION pg_replication_origin_create(text),"
                        " pg_replication_origin_session_setup(text),"
                        " pg_replication_origin_xact_setup(pg_lsn, timestamptz) TO app;"
                        "GRANT SET ON PARAMETER session_replication_role TO app;"
                        "GRANT ALL ON public.t TO app")
                  .ok());
  const std::string path = WriteConfig(f.dir(), "schema", f.source().Dsn(),
                                       f.target().Dsn() + " user=app", {"public.t"});
  SluiceRun no_table = RunSluice({"check", "--config", path});
  EXPECT_EQ(no_table.exit_code, 78) << no_table.out << no_table.err;
  EXPECT_TRUE(Contains(no_table.out,
                       "may not create sluice.applied (CREATE SCHEMA IF NOT EXISTS sluice, then "
                       "the table): GRANT CREATE ON DATABASE sluice_test TO app; GRANT CREATE, "
                       "USAGE ON SCHEMA sluice TO app\n"))
      << no_table.out;

  ASSERT_TRUE(f.target()
                  .Exec("CREATE TABLE sluice.applied (pipeline text PRIMARY KEY, end_lsn pg_lsn "
                        "NOT NULL, commit_time timestamptz, updated_at timestamptz NOT NULL "
                        "DEFAULT now())")
                  .ok());
  SluiceRun no_grants = RunSluice({"check", "--config", path});
  EXPECT_EQ(no_grants.exit_code, 78) << no_grants.out << no_grants.err;
  EXPECT_TRUE(Contains(no_grants.out,
                       "may not write sluice.applied, where apply records its position: GRANT "
                       "USAGE ON SCHEMA sluice TO app; GRANT SELECT, INSERT, UPDATE ON "
                       "sluice.applied TO app\n"))
      << no_grants.out;
  for (const std::string& fix : FixesIn(no_grants.out)) {
    ASSERT_TRUE(f.target().Exec(fix).ok()) << fix;
  }
  SluiceRun passed = RunSluice({"check", "--config", path});
  EXPECT_EQ(passed.exit_code, 0) << passed.out << passed.err;
  EXPECT_TRUE(Contains(passed.out, "  ok    role app may write sluice.applied")) << passed.out;
}

// Replication origins take replication state slots on the target: max_replication_slots bounds
// them there, whatever the target's own slots.
TEST(CheckTest, TargetNeedsRoomForOneMoreReplicationOrigin) {
  auto source = PgCluster::Start();
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  PgCluster::Options options;
  options.settings["max_replication_slots"] = "1";
  auto target = PgCluster::Start(options);
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  ASSERT_TRUE((*source)->Exec("CREATE TABLE public.t (id int PRIMARY KEY)").ok());
  ASSERT_TRUE((*target)->Exec("SELECT pg_replication_origin_create('other')").ok());
  TempDir dir;
  const std::string path =
      WriteConfig(dir, "orig", (*source)->Dsn(), (*target)->Dsn(), {"public.t"});
  const std::string endpoint = "127.0.0.1:" + std::to_string((*target)->port());

  SluiceRun full = RunSluice({"check", "--config", path});
  EXPECT_EQ(full.exit_code, 78) << full.out << full.err;
  EXPECT_TRUE(Contains(full.out, "  FAIL  no room for replication origin sluice_orig on target " +
                                     endpoint +
                                     ": 1 replication origin(s) exist and max_replication_slots = "
                                     "1 (each origin takes a replication state slot); raise it "
                                     "and restart the target: ALTER SYSTEM SET "
                                     "max_replication_slots = 2\n"))
      << full.out;

  // The pipeline's own origin already holds its slot.
  ASSERT_TRUE((*target)
                  ->Exec("SELECT pg_replication_origin_drop('other');"
                         "SELECT pg_replication_origin_create('sluice_orig');"
                         "SELECT pg_replication_origin_create('other')")
                  .ok());
  SluiceRun own = RunSluice({"check", "--config", path});
  EXPECT_EQ(own.exit_code, 0) << own.out << own.err;
  EXPECT_TRUE(Contains(own.out, "  ok    replication origin sluice_orig exists on the target\n"))
      << own.out;

  // The printed fix, applied as printed.
  ASSERT_TRUE((*target)->Exec("SELECT pg_replication_origin_drop('sluice_orig')").ok());
  const std::vector<std::string> fixes = FixesIn(RunSluice({"check", "--config", path}).out);
  ASSERT_EQ(fixes.size(), 1u);
  ASSERT_TRUE((*target)->Exec(fixes[0]).ok()) << fixes[0];
  ASSERT_TRUE((*target)->Stop().ok());
  ASSERT_TRUE((*target)->StartAgain().ok());
  SluiceRun room = RunSluice({"check", "--config", path});
  EXPECT_EQ(room.exit_code, 0) << room.out << room.err;
  EXPECT_TRUE(Contains(room.out,
                       "  ok    room for replication origin sluice_orig on the target "
                       "(1 of max_replication_slots = 2 in use)\n"))
      << room.out;
}

// Makes `role` log in with `password` over scram-sha-256 (ahead of the clusters' trust lines),
// as superuser; replication connections too.
void AddPasswordRole(PgCluster& cluster, const std::string& role, const std::string& password) {
  // Dollar quoting takes the password as written, quotes and backslashes included.
  ASSERT_EQ(password.find("$pw$"), std::string::npos);
  ASSERT_TRUE(cluster
                  .Exec("SET password_encryption = 'scram-sha-256'; CREATE ROLE " + role +
                        " LOGIN SUPERUSER REPLICATION PASSWORD $pw$" + password + "$pw$")
                  .ok());
  const std::string hba = cluster.data_dir() + "/pg_hba.conf";
  WriteFile(hba, "host all " + role + " 127.0.0.1/32 scram-sha-256\nhost replication " + role +
                     " 127.0.0.1/32 scram-sha-256\n" + ReadFile(hba));
  ASSERT_TRUE(cluster.Exec("SELECT pg_reload_conf()").ok());
}

// The README's pattern, password=${VAR}, with passwords holding spaces and quotes: check and run
// connect with them (source by URI, target by key/value); a wrong one is refused and no output
// ever shows a password.
TEST(CheckTest, PasswordsWithSpacesAndQuotesFromTheEnvironmentConnect) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  const std::string source_password = R"(s0urce pa'ss "q" \ #=ü/@:?&%)";
  const std::string target_password = R"(t4rget pa'ss "q" \ #=ü)";
  AddPasswordRole(f.source(), "srcpw", source_password);
  AddPasswordRole(f.target(), "tgtpw", target_password);
  ASSERT_TRUE(f.source()
                  .Exec("CREATE TABLE public.t (id int PRIMARY KEY, v text);"
                        "INSERT INTO public.t SELECT g, 'r' || g FROM generate_series(1, 100) g;"
                        "CREATE TABLE public.sluice_marker (id int PRIMARY KEY)")
                  .ok());
  setenv("SLUICE_TEST_SOURCE_PW", source_password.c_str(), 1);
  setenv("SLUICE_TEST_TARGET_PW", target_password.c_str(), 1);
  const std::string path = WriteConfig(
      f.dir(), "pw",
      "postgresql://srcpw:${SLUICE_TEST_SOURCE_PW}@127.0.0.1:" + std::to_string(f.source().port()) +
          "/sluice_test?connect_timeout=10",
      "host=127.0.0.1 port=" + std::to_string(f.target().port()) +
          " dbname=sluice_test user=tgtpw password=${SLUICE_TEST_TARGET_PW}",
      {"public.t", "public.sluice_marker"});
  std::string everything;

  SluiceRun check = RunSluice({"check", "--config", path});
  everything += check.out + check.err;
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_TRUE(Contains(check.out, "role srcpw")) << check.out;
  EXPECT_TRUE(Contains(check.out, "role tgtpw")) << check.out;

  SluiceProcess run;
  ASSERT_TRUE(
      run.Start({"run", "--config", path}, f.dir().File("run.out"), f.dir().File("run.err")).ok());
  ASSERT_TRUE(f.source().Exec("UPDATE public.t SET v = 'x' WHERE id < 10").ok());
  ASSERT_TRUE(f.WaitForCatchUp(kCatchUp)) << ReadFile(f.dir().File("run.err"));
  StopRun(run, f.dir().File("run.err"));
  everything += ReadFile(f.dir().File("run.out")) + ReadFile(f.dir().File("run.err"));
  EXPECT_EQ(f.Diff({"public.t", "public.sluice_marker"}), "");
  auto applied_by = f.target().QueryValue(
      "SELECT tableowner FROM pg_tables WHERE schemaname = 'sluice' AND tablename = 'applied'");
  ASSERT_TRUE(applied_by.ok());
  EXPECT_EQ(*applied_by, "tgtpw");

  // A wrong password (as awkward) is refused, and shown nowhere.
  const std::string wrong = R"(wr0ng pa'ss "q" \ x)";
  setenv("SLUICE_TEST_TARGET_PW", wrong.c_str(), 1);
  SluiceRun refused = RunSluice({"check", "--config", path});
  everything += refused.out + refused.err;
  EXPECT_EQ(refused.exit_code, 69) << refused.out << refused.err;
  EXPECT_TRUE(Contains(refused.out, "password authentication failed for user \"tgtpw\""))
      << refused.out;
  SluiceProcess wrong_run;
  ASSERT_TRUE(
      wrong_run
          .Start({"run", "--config", path}, f.dir().File("wrong.out"), f.dir().File("wrong.err"))
          .ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!Contains(ReadFile(f.dir().File("wrong.err")), "password authentication failed") &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  StopRun(wrong_run, f.dir().File("wrong.err"));
  const std::string wrong_err = ReadFile(f.dir().File("wrong.err"));
  EXPECT_TRUE(Contains(wrong_err, "password authentication failed for user \"tgtpw\""))
      << wrong_err;
  everything += ReadFile(f.dir().File("wrong.out")) + wrong_err;
  unsetenv("SLUICE_TEST_SOURCE_PW");
  unsetenv("SLUICE_TEST_TARGET_PW");

  for (const std::string& secret : {source_password, target_password, wrong}) {
    EXPECT_FALSE(Contains(everything, secret)) << secret;
    EXPECT_FALSE(Contains(everything, secret.substr(0, 6))) << secret << " in:\n" << everything;
  }
  EXPECT_FALSE(Contains(everything, "pa'ss")) << everything;
}

}  // namespace
}  // namespace sluice::testing
