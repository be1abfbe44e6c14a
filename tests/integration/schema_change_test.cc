// Schema changes on the source while `sluice run` streams: added columns (stop and
// add_columns, under a write load, inside a streamed transaction, of a user type), dropped,
// renamed and retyped columns. Every case ends with source and target identical row by row,
// after the operator did what sluice's error said when it stopped.
#include <gtest/gtest.h>

#include <csignal>
#include <iostream>
#include <memory>
#include <thread>

#include "apply/postgres_sink.h"
#include "core/pg_time.h"
#include "tests/support/run_fixture.h"
#include "tests/support/table_compare.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);
constexpr auto kStop = std::chrono::seconds(120);

class SchemaChangeTest : public SluiceRunTest {
 protected:
  void SetUp() override {
    SluiceRunTest::SetUp();
    Source("CREATE TABLE public.sluice_marker (id int PRIMARY KEY)");
  }
  void TearDown() override {
    for (auto& load : loads_) load->Kill(SIGKILL);
  }

  // `sluice run` with target.postgres.schema_changes = `policy` (tables created by the initial
  // copy). Each call starts a new process; all write to one log.
  void StartRun(const std::string& policy, const std::string& extra_yaml = "") {
    const std::string yaml = "    target:\n      type: postgres\n      dsn: " +
                             nlohmann::json(f_.target().Dsn()).dump() +
                             "\n      postgres: { create_tables: true, schema_changes: " + policy +
                             " }\n" + extra_yaml;
    config_ = WriteTailConfig(f_.dir(), f_.source(), {"public.*"}, yaml, "sch");
    runs_.push_back(std::make_unique<SluiceProcess>());
    ASSERT_TRUE(runs_.back()
                    ->Start({"run", "--config", config_.path}, f_.dir().File("run.out"), Log())
                    .ok());
  }
  SluiceProcess& run() { return *runs_.back(); }

  // The run stops on its own (a schema change it does not follow): non-zero exit.
  void ExpectStopped() {
    auto exit_code = run().Wait(kStop);
    ASSERT_TRUE(exit_code.ok()) << "sluice run did not stop:\n" << ReadFile(Log());
    EXPECT_NE(*exit_code, 0) << ReadFile(Log());
    // What the operator reads, in the test's output.
    const std::string log = ReadFile(Log());
    const size_t line = log.rfind(" error ");
    if (line != std::string::npos) {
      std::cerr << "sluice stopped with:" << log.substr(line, log.find('\n', line) - line) << "\n";
    }
    const size_t committed = log.rfind("committed the batch up to");
    if (committed != std::string::npos) {
      std::cerr << "and first " << log.substr(committed, log.find('\n', committed) - committed)
                << "\n";
    }
  }
  void StopCleanly() {
    run().Kill(SIGTERM);
    auto exit_code = run().Wait(std::chrono::seconds(60));
    ASSERT_TRUE(exit_code.ok());
    EXPECT_EQ(*exit_code, 0) << ReadFile(Log());
  }

  // What the last error told the operator to run on the target: the statements between
  // "run on the target " and " then restart sluice".
  std::string DdlToRun() {
    const std::string log = ReadFile(Log());
    const size_t from = log.rfind("run on the target ");
    if (from == std::string::npos) {
      ADD_FAILURE() << "no statement to run in the log:\n" << log;
      return "";
    }
    const size_t begin = from + std::string("run on the target ").size();
    const size_t end = log.find(" then restart sluice", begin);
    if (end == std::string::npos) {
      ADD_FAILURE() << "no restart advice in the log:\n" << log;
      return "";
    }
    return log.substr(begin, end - begin);
  }

  // A pgbench client load running `script` (-t transactions per client) on the source.
  SluiceProcess& StartLoad(const std::string& name, const std::string& script, int transactions,
                           int clients = 2) {
    const std::string path = f_.dir().File(name + ".sql");
    WriteFile(path, script);
    loads_.push_back(std::make_unique<SluiceProcess>());
    auto bin = PostgresBinDir();
    EXPECT_TRUE(bin.ok());
    auto st = loads_.back()->StartProgram(
        *bin + "/pgbench",
        {"-n", "-f", path, "-c", std::to_string(clients), "-j", "1", "-t",
         std::to_string(transactions), "-h", "127.0.0.1", "-p", std::to_string(f_.source().port()),
         "-U", "postgres", f_.source().database()},
        f_.dir().File(name + ".out"), f_.dir().File(name + ".err"));
    EXPECT_TRUE(st.ok()) << st.ToString();
    return *loads_.back();
  }
  void WaitForLoad(SluiceProcess& load, const std::string& name) {
    auto exit_code = load.Wait(std::chrono::seconds(600));
    ASSERT_TRUE(exit_code.ok()) << "load " << name << " did not finish";
    EXPECT_EQ(*exit_code, 0) << ReadFile(f_.dir().File(name + ".err"));
  }
  // Until `sql` on the source returns at least `count` (the load has made progress).
  void WaitForSourceCount(const std::string& sql, long count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
    while (std::chrono::steady_clock::now() < deadline) {
      auto value = f_.source().QueryValue(sql);
      if (value.ok() && std::stol(*value) >= count) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the load did not reach " << count << " for: " << sql;
  }
  void CatchUpAndCompare(const std::vector<std::string>& tables) {
    ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
    EXPECT_EQ(f_.Diff(tables), "") << ReadFile(Log());
  }

  // A column added to `items` while two loads write to it: one that knows only the old
  // columns and keeps running across the ALTER, and one started after it that writes the new
  // column.
  void CreateItems() {
    Source(
        "CREATE TABLE items (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v int NOT "
        "NULL, note text);"
        "INSERT INTO items (v, note) SELECT g, 'seed' FROM generate_series(1, 1000) g");
  }
  void AddColumnUnderLoad() {
    SluiceProcess& before = StartLoad("before",
                                      "\\set id random(1, 1000)\n"
                                      "UPDATE items SET v = v + 1 WHERE id = :id;\n"
                                      "INSERT INTO items (v, note) VALUES (:id, 'before');\n",
                                      10000);
    WaitForSourceCount("SELECT count(*) FROM items WHERE note = 'before'", 3000);
    Source("ALTER TABLE items ADD COLUMN c bigint");
    SluiceProcess& after = StartLoad("after",
                                     "\\set id random(1, 1000)\n"
                                     "UPDATE items SET c = :id * 3, v = v + 1 WHERE id = :id;\n"
                                     "INSERT INTO items (v, note, c) VALUES (1, 'after', :id);\n",
                                     3000);
    WaitForLoad(before, "before");
    WaitForLoad(after, "after");
  }

  std::vector<std::unique_ptr<SluiceProcess>> runs_;
  std::vector<std::unique_ptr<SluiceProcess>> loads_;
};

TEST_F(SchemaChangeTest, AddColumnUnderLoadWithAddColumnsContinuesByItself) {
  CreateItems();
  StartRun("add_columns");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  AddColumnUnderLoad();
  CatchUpAndCompare({"public.items"});
  EXPECT_NE(SourceValue("SELECT count(*) FROM items WHERE c IS NOT NULL"), "0");
  const std::string log = ReadFile(Log());
  EXPECT_NE(log.find("ALTER TABLE \"public\".\"items\" ADD COLUMN \"c\" bigint"), std::string::npos)
      << log;
  auto type = f_.target().QueryValue(
      "SELECT format_type(atttypid, atttypmod) || ' ' || attnotnull || ' ' || atthasdef FROM "
      "pg_attribute WHERE attrelid = 'items'::regclass AND attname = 'c'");
  ASSERT_TRUE(type.ok()) << type.status().ToString();
  EXPECT_EQ(*type, "bigint false false");  // the source's type, nullable, no default
  StopCleanly();
}

TEST_F(SchemaChangeTest, AddColumnUnderLoadWithStopNamesTheAlterAndRestartLosesNothing) {
  CreateItems();
  StartRun("stop");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  AddColumnUnderLoad();
  ExpectStopped();
  const std::string ddl = DdlToRun();
  EXPECT_EQ(ddl, "ALTER TABLE \"public\".\"items\" ADD COLUMN \"c\" bigint;");
  const std::string log = ReadFile(Log());
  EXPECT_NE(log.find("nothing is lost"), std::string::npos) << log;
  EXPECT_NE(log.find("schema_changes is stop"), std::string::npos) << log;
  Target(ddl);
  StartRun("stop");
  CatchUpAndCompare({"public.items"});
  StopCleanly();
}

// pgoutput streams the transaction while it is in progress (logical_decoding_work_mem 64kB);
// the ALTER and the rows on both sides of it arrive in one streamed transaction.
TEST_F(SchemaChangeTest, AddColumnInsideAStreamedTransaction) {
  Source("ALTER SYSTEM SET logical_decoding_work_mem = '64kB'");
  Source("SELECT pg_reload_conf()");
  Source("CREATE TABLE big (id int PRIMARY KEY, pad text)");
  StartRun("add_columns", "    capture: { max_fragment_changes: 1000 }\n");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  Source(
      "BEGIN;"
      "INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g;"
      "ALTER TABLE big ADD COLUMN extra text;"
      "INSERT INTO big SELECT g, repeat('y', 200), 'e' || g FROM generate_series(5001, 10000) g;"
      "UPDATE big SET extra = 'u' || id WHERE id % 10 = 0;"
      "COMMIT");
  CatchUpAndCompare({"public.big"});
  EXPECT_EQ(SourceValue("SELECT stream_txns > 0 FROM pg_stat_replication_slots "
                        "WHERE slot_name = 'sluice_sch'"),
            "t");
  StopCleanly();
}

// The same with stop: the restart after the ALTER applies the whole transaction.
TEST_F(SchemaChangeTest, AddColumnInsideAStreamedTransactionWithStop) {
  Source("ALTER SYSTEM SET logical_decoding_work_mem = '64kB'");
  Source("SELECT pg_reload_conf()");
  Source("CREATE TABLE big (id int PRIMARY KEY, pad text)");
  StartRun("stop", "    capture: { max_fragment_changes: 1000 }\n");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  Source("INSERT INTO big VALUES (0, 'before')");
  Source(
      "BEGIN;"
      "INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g;"
      "ALTER TABLE big ADD COLUMN extra text;"
      "INSERT INTO big SELECT g, repeat('y', 200), 'e' || g FROM generate_series(5001, 10000) g;"
      "COMMIT");
  ExpectStopped();
  // Nothing of the transaction.
  auto part = f_.target().QueryValue("SELECT count(*) FROM big WHERE id > 0");
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(*part, "0");
  Target(DdlToRun());
  StartRun("stop", "    capture: { max_fragment_changes: 1000 }\n");
  CatchUpAndCompare({"public.big"});
  StopCleanly();
}

// A dropped source column: its values stop coming, the target keeps it and what it held; a
// NOT NULL one without default on the target stops the pipeline naming it and the fixes.
TEST_F(SchemaChangeTest, DroppedColumnIsKeptOnTheTarget) {
  Source(
      "CREATE TABLE kept (id int PRIMARY KEY, a text, b int, c text);"
      "CREATE TABLE strict (id int PRIMARY KEY, a text, b int, c text);"
      "INSERT INTO kept SELECT g, 'a' || g, g * 2, 'c' FROM generate_series(1, 100) g;"
      "INSERT INTO strict SELECT g, 'a' || g, g * 2, 'c' FROM generate_series(1, 100) g");
  StartRun("add_columns");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  Target("ALTER TABLE strict ALTER COLUMN b SET NOT NULL");
  Source("UPDATE kept SET a = 'before' WHERE id <= 10");
  Source("ALTER TABLE kept DROP COLUMN b");
  Source("INSERT INTO kept SELECT g, 'new', 'c' FROM generate_series(101, 150) g");
  Source("UPDATE kept SET a = 'after', c = 'd' WHERE id % 3 = 0");
  Source("DELETE FROM kept WHERE id % 7 = 0");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  EXPECT_EQ(DiffTableColumns(f_.source(), f_.target(), "public.kept", "id, a, c"), "");
  auto held = f_.target().QueryValue(
      "SELECT count(*) FILTER (WHERE b = id * 2) || ' ' || count(*) FILTER (WHERE b IS NULL) "
      "FROM kept");
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(*held, "86 43");  // the old rows keep b, the new ones have none

  Source("UPDATE strict SET a = 'before' WHERE id <= 10");  // its version before the drop
  Source("ALTER TABLE strict DROP COLUMN b");
  Source("INSERT INTO strict VALUES (101, 'new', 'c')");
  ExpectStopped();
  const std::string log = ReadFile(Log());
  EXPECT_NE(log.find("target column public.strict.\"b\" is NOT NULL without a default, and the "
                     "source dropped it"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("ALTER TABLE \"public\".\"strict\" ALTER COLUMN \"b\" DROP NOT NULL"),
            std::string::npos)
      << log;
  Target("ALTER TABLE strict ALTER COLUMN b DROP NOT NULL");
  StartRun("add_columns");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  EXPECT_EQ(DiffTableColumns(f_.source(), f_.target(), "public.strict", "id, a, c"), "");
  EXPECT_EQ(DiffTableColumns(f_.source(), f_.target(), "public.kept", "id, a, c"), "");
  StopCleanly();
}

TEST_F(SchemaChangeTest, RenamedColumnStopsNamingTheRenameAndRestartLosesNothing) {
  Source(
      "CREATE TABLE r (id int PRIMARY KEY, a text, z int NOT NULL);"
      "INSERT INTO r SELECT g, 'a' || g, 0 FROM generate_series(1, 1000) g");
  StartRun("add_columns");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  // A load that never names the renamed column keeps writing across the ALTER, so batches
  // hold transactions from both sides of it.
  SluiceProcess& load = StartLoad("touch",
                                  "\\set id random(1, 1000)\n"
                                  "\\set fresh 1000 + :client_id * 100000 + :id * 10 + "
                                  "random(0, 9)\n"
                                  "UPDATE r SET z = z + 1 WHERE id = :id;\n"
                                  "INSERT INTO r (id, z) VALUES (:fresh, 1) ON CONFLICT DO "
                                  "NOTHING;\n",
                                  3000);
  WaitForSourceCount("SELECT count(*) FROM r WHERE id > 1000", 500);
  Source("ALTER TABLE r RENAME COLUMN a TO b");
  Source("UPDATE r SET b = 'renamed ' || id WHERE id % 5 = 0");
  WaitForLoad(load, "touch");
  ExpectStopped();
  const std::string ddl = DdlToRun();
  EXPECT_EQ(ddl, "ALTER TABLE \"public\".\"r\" RENAME COLUMN \"a\" TO \"b\";");
  EXPECT_NE(ReadFile(Log()).find("column \"a\" was renamed to \"b\""), std::string::npos);
  Target(ddl);
  StartRun("add_columns");
  CatchUpAndCompare({"public.r"});
  StopCleanly();
}

TEST_F(SchemaChangeTest, RetypedColumnStopsNamingTheAlterAndRestartLosesNothing) {
  Source(
      "CREATE TABLE ty (id int PRIMARY KEY, n int, s varchar(10), z int NOT NULL);"
      "INSERT INTO ty SELECT g, g, 's' || g, 0 FROM generate_series(1, 1000) g");
  StartRun("stop");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  SluiceProcess& load = StartLoad("touch",
                                  "\\set id random(1, 1000)\n"
                                  "UPDATE ty SET z = z + 1 WHERE id = :id;\n",
                                  3000);
  WaitForSourceCount("SELECT sum(z) FROM ty", 1000);
  Source("ALTER TABLE ty ALTER COLUMN n TYPE bigint, ALTER COLUMN s TYPE varchar(40)");
  Source("UPDATE ty SET n = n * 10000000000, s = repeat('w', 30) WHERE id % 4 = 0");
  WaitForLoad(load, "touch");
  ExpectStopped();
  const std::string ddl = DdlToRun();
  EXPECT_EQ(ddl,
            "ALTER TABLE \"public\".\"ty\" ALTER COLUMN \"n\" TYPE bigint USING \"n\"::bigint; "
            "ALTER TABLE \"public\".\"ty\" ALTER COLUMN \"s\" TYPE character varying(40) USING "
            "\"s\"::character varying(40);");
  Target(ddl);
  StartRun("stop");
  CatchUpAndCompare({"public.ty"});
  StopCleanly();
}

// A column of an enum (and an array of it) added with add_columns: the target needs the type;
// without it sluice stops naming it, and once it exists there sluice adds the columns itself.
TEST_F(SchemaChangeTest, EnumColumnAddedNeedsTheTypeOnTheTarget) {
  Source(
      "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');"
      "CREATE TABLE e (id int PRIMARY KEY, v text);"
      "INSERT INTO e SELECT g, 'v' FROM generate_series(1, 50) g");
  StartRun("add_columns");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  Source("INSERT INTO e VALUES (51, 'before')");
  Source("ALTER TABLE e ADD COLUMN m mood, ADD COLUMN ms mood[]");
  Source("INSERT INTO e VALUES (52, 'after', 'happy', '{sad,ok}')");
  Source("UPDATE e SET m = 'ok' WHERE id % 2 = 0");
  ExpectStopped();
  const std::string log = ReadFile(Log());
  EXPECT_NE(log.find("of a type the target does not have: create \"public\".\"mood\" on the "
                     "target"),
            std::string::npos)
      << log;
  auto rows = f_.target().QueryValue("SELECT count(*) FROM e WHERE id > 51");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(*rows, "0");  // nothing from the change on
  Target("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
  StartRun("add_columns");
  CatchUpAndCompare({"public.e"});
  StopCleanly();
}

// --- The sink's side, step by step, against a real target -------------------------------------

core::RelationPtr Version(std::vector<core::Column> columns) {
  auto relation = std::make_shared<core::Relation>();
  relation->oid = 40001;
  relation->schema = "public";
  relation->name = "s";
  relation->columns = std::move(columns);
  return relation;
}

core::RelationPtr Other() {
  auto relation = std::make_shared<core::Relation>();
  relation->oid = 40002;
  relation->schema = "public";
  relation->name = "o";
  relation->columns = {core::Column("id", 23, -1, true)};
  return relation;
}

core::Change Insert(core::RelationPtr relation, std::vector<std::string> values) {
  core::Change change;
  change.op = core::Operation::kInsert;
  change.relation = std::move(relation);
  for (auto& value : values) change.new_tuple.push_back(core::Value::Text(std::move(value)));
  return change;
}

// Fragment `fragment` of the transaction ending at `end` (last when `last`).
core::Transaction Fragment(uint64_t end, uint32_t fragment, bool last,
                           std::vector<core::Change> changes) {
  core::Transaction txn;
  txn.xid = static_cast<uint32_t>(end);
  txn.commit_lsn = core::Lsn(end - 8);
  txn.end_lsn = last ? core::Lsn(end) : core::Lsn();
  txn.commit_time = core::PgNow();
  txn.fragment = fragment;
  txn.last_fragment = last;
  uint64_t lsn = end - 4096 + 64 * fragment;
  for (auto& change : changes) change.lsn = core::Lsn(lsn += 8);
  txn.changes = std::move(changes);
  return txn;
}

class SchemaChangeSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cluster = PgCluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    target_ = std::move(cluster).value();
    Exec("CREATE TABLE s (id int PRIMARY KEY, a text); CREATE TABLE o (id int PRIMARY KEY)");
  }
  void Exec(const std::string& sql) {
    auto st = target_->Exec(sql);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::string Value(const std::string& sql) {
    auto value = target_->QueryValue(sql);
    EXPECT_TRUE(value.ok()) << value.status().ToString();
    return value.ok() ? *value : "<error>";
  }
  std::unique_ptr<apply::PostgresSink> Sink(apply::SchemaChangePolicy policy) {
    apply::PostgresSinkOptions options;
    options.pipeline = "sch";
    options.dsn = target_->Dsn();
    options.schema_changes = policy;
    auto sink = std::make_unique<apply::PostgresSink>(std::move(options));
    auto opened = sink->Open();
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return sink;
  }

  std::unique_ptr<PgCluster> target_;
};

// The rename first shows in a later fragment of a transaction whose start is in the batch: the
// batch fails as retryable, and the next attempt commits what precedes that transaction and
// stops at its start. After the RENAME on the target the transaction applies whole.
TEST_F(SchemaChangeSinkTest, RenameInALaterFragmentStopsAtTheTransactionStart) {
  const auto before = Version({core::Column("id", 23, -1, true), core::Column("a", 25, -1, false)});
  const auto after = Version({core::Column("id", 23, -1, true), core::Column("b", 25, -1, false)});
  const core::Transaction t0 = Fragment(100000, 0, true, {Insert(before, {"1", "one"})});
  const core::Transaction t1_start = Fragment(200000, 0, false, {Insert(Other(), {"7"})});
  const core::Transaction t1_rest = Fragment(200000, 1, true, {Insert(after, {"2", "two"})});
  auto sink = Sink(apply::SchemaChangePolicy::kAddColumns);
  ASSERT_TRUE(sink->BeginBatch().ok());
  ASSERT_TRUE(sink->Apply(t0).ok());
  ASSERT_TRUE(sink->Apply(t1_start).ok());
  core::Status first = sink->Apply(t1_rest);
  EXPECT_TRUE(first.retryable()) << first.ToString();
  EXPECT_NE(first.message().find("stopping at the start of the source transaction that commits "
                                 "at 0/30D38"),
            std::string::npos)
      << first.ToString();
  sink->AbortBatch();
  EXPECT_EQ(Value("SELECT count(*) FROM s"), "0");

  // The next attempt, as the pipeline makes it: the same stream from the same position.
  auto opened = sink->Open();
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_FALSE(opened->end_lsn.valid());
  ASSERT_TRUE(sink->BeginBatch().ok());
  ASSERT_TRUE(sink->Apply(t0).ok());
  core::Status stop = sink->Apply(t1_start);
  EXPECT_EQ(stop.code(), core::StatusCode::kFailedPrecondition) << stop.ToString();
  EXPECT_NE(stop.message().find("column \"a\" was renamed to \"b\"; sluice does not rename or "
                                "retype target columns: run on the target ALTER TABLE "
                                "\"public\".\"s\" RENAME COLUMN \"a\" TO \"b\"; then restart"),
            std::string::npos)
      << stop.ToString();
  // The last column: a drop followed by an add would look the same.
  EXPECT_NE(stop.message().find("(if the source dropped a column and added a new one instead of "
                                "renaming, run ALTER TABLE \"public\".\"s\" ADD COLUMN \"b\" "
                                "text; in place of the RENAME)"),
            std::string::npos)
      << stop.ToString();
  sink->AbortBatch();
  EXPECT_EQ(Value("SELECT string_agg(id || ':' || a, ',') FROM s"), "1:one");
  EXPECT_EQ(Value("SELECT end_lsn::text FROM sluice.applied WHERE pipeline = 'sch'"), "0/186A0");
  EXPECT_EQ(Value("SELECT count(*) FROM o"), "0");

  // The operator's ALTER, and a restart: the stream resumes after t0.
  Exec("ALTER TABLE s RENAME COLUMN a TO b");
  sink.reset();  // one session at a time holds the origin
  sink = Sink(apply::SchemaChangePolicy::kAddColumns);
  ASSERT_TRUE(sink->BeginBatch().ok());
  ASSERT_TRUE(sink->Apply(t1_start).ok());
  ASSERT_TRUE(sink->Apply(t1_rest).ok());
  ASSERT_TRUE(sink->CommitBatch({t1_rest.end_lsn, t1_rest.commit_time}).ok());
  EXPECT_EQ(Value("SELECT string_agg(id || ':' || b, ',' ORDER BY id) FROM s"), "1:one,2:two");
  EXPECT_EQ(Value("SELECT count(*) FROM o"), "1");
}

// add_columns alters the target inside the batch, before the first row that needs it: a
// rolled back batch takes the column with it, and applying the batch again adds it again.
TEST_F(SchemaChangeSinkTest, AddedColumnBelongsToTheBatchOfItsFirstRow) {
  const auto before = Version({core::Column("id", 23, -1, true), core::Column("a", 25, -1, false)});
  const auto after = Version({core::Column("id", 23, -1, true), core::Column("a", 25, -1, false),
                              core::Column("c", 20, -1, false)});
  const core::Transaction t0 = Fragment(100000, 0, true, {Insert(before, {"1", "one"})});
  const core::Transaction t1 = Fragment(200000, 0, true, {Insert(after, {"2", "two", "22"})});
  const std::string has_c =
      "SELECT count(*) FROM pg_attribute WHERE attrelid = 's'::regclass AND attname = 'c'";
  auto sink = Sink(apply::SchemaChangePolicy::kAddColumns);
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSERT_TRUE(sink->BeginBatch().ok());
    ASSERT_TRUE(sink->Apply(t0).ok());
    core::Status applied = sink->Apply(t1);
    ASSERT_TRUE(applied.ok()) << applied.ToString();
    if (attempt == 0) {
      sink->AbortBatch();  // e.g. the process died before the commit
      EXPECT_EQ(Value(has_c), "0");
    }
  }
  ASSERT_TRUE(sink->CommitBatch({t1.end_lsn, t1.commit_time}).ok());
  EXPECT_EQ(Value(has_c), "1");
  EXPECT_EQ(Value("SELECT string_agg(id || ':' || a || ':' || coalesce(c::text, '-'), ',' "
                  "ORDER BY id) FROM s"),
            "1:one:-,2:two:22");
}

// With stop, the error names the statement; outside the pipeline the same applies to a table
// met for the first time (no earlier version known): a target column the source does not send
// may be a renamed one, which the error mentions.
TEST_F(SchemaChangeSinkTest, StopNamesTheAddAndARenameCandidate) {
  Exec("ALTER TABLE s ADD COLUMN old_name numeric(12,2)");
  const auto relation = Version({core::Column("id", 23, -1, true), core::Column("a", 25, -1, false),
                                 core::Column("amount", 1700, (12 << 16 | 2) + 4, false)});
  auto sink = Sink(apply::SchemaChangePolicy::kStop);
  ASSERT_TRUE(sink->BeginBatch().ok());
  core::Status stop =
      sink->Apply(Fragment(100000, 0, true, {Insert(relation, {"1", "one", "1.50"})}));
  EXPECT_EQ(stop.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(stop.message().find("run on the target ALTER TABLE \"public\".\"s\" ADD COLUMN "
                                "\"amount\" numeric(12,2); then restart sluice"),
            std::string::npos)
      << stop.ToString();
  EXPECT_NE(stop.message().find("(if one of them is a column the target has under an older "
                                "name, \"old_name\", rename that one instead"),
            std::string::npos)
      << stop.ToString();
  sink->AbortBatch();
  // add_columns will not guess either, without the earlier version.
  sink.reset();  // one session at a time holds the origin
  sink = Sink(apply::SchemaChangePolicy::kAddColumns);
  ASSERT_TRUE(sink->BeginBatch().ok());
  stop = sink->Apply(Fragment(100000, 0, true, {Insert(relation, {"1", "one", "1.50"})}));
  EXPECT_EQ(stop.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(stop.message().find("cannot tell new columns from renamed ones"), std::string::npos)
      << stop.ToString();
  sink->AbortBatch();
}

}  // namespace
}  // namespace sluice::testing
