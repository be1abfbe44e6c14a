// The initial copy against two real clusters: tables read at a slot's exported snapshot on the
// source and bulk-loaded into the target through PostgresSink, compared row by row.
#include "control/initial_copy.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "apply/postgres_sink.h"
#include "capture/logical_capture.h"
#include "capture/replication_connection.h"
#include "capture/snapshot_copier.h"
#include "tests/support/pg_cluster.h"

namespace sluice::testing {
namespace {

using capture::SnapshotCopier;

class InitialCopyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto source = PgCluster::Start();
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    source_ = std::move(source).value().release();
    auto target = PgCluster::Start();
    ASSERT_TRUE(target.ok()) << target.status().ToString();
    target_ = std::move(target).value().release();
  }
  static void TearDownTestSuite() {
    delete source_;
    delete target_;
    source_ = target_ = nullptr;
  }

  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "sluice-initial-copy-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    state_dir_ = pattern;
    auto store = state::CheckpointStore::Open(state_dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(state_dir_);
  }

  static void Exec(PgCluster* cluster, const std::string& sql) {
    auto st = cluster->Exec(sql);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static std::string Value(PgCluster* cluster, const std::string& sql) {
    auto v = cluster->QueryValue(sql);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : "<error: " + v.status().ToString() + ">";
  }
  // A fingerprint of `select`'s rows, independent of physical order.
  static std::string Fingerprint(PgCluster* cluster, const std::string& select) {
    return Value(cluster,
                 "SELECT count(*)::text || ':' || COALESCE(md5(string_agg(t::text, '|' "
                 "ORDER BY t::text)), '-') FROM (" +
                     select + ") t");
  }

  // Creates the slot (with its exported snapshot) for publication `publication`; the returned
  // capture keeps the creating connection idle, so the snapshot stays importable.
  static std::unique_ptr<capture::LogicalCapture> CreateSlot(const std::string& slot,
                                                             const std::string& publication) {
    capture::CaptureOptions options;
    options.pipeline = slot;
    options.dsn = source_->Dsn();
    options.slot = slot;
    options.publication = publication;
    options.create_publication = false;
    auto capture = capture::LogicalCapture::Open(options);
    EXPECT_TRUE(capture.ok()) << capture.status().ToString();
    if (!capture.ok()) return nullptr;
    EXPECT_TRUE((*capture)->slot_created());
    EXPECT_FALSE((*capture)->exported_snapshot().empty());
    return std::move(capture).value();
  }

  static config::PipelineConfig Pipeline(const std::string& name, const std::string& publication,
                                         bool create_tables) {
    config::PipelineConfig pipeline;
    pipeline.name = name;
    pipeline.source.dsn = source_->Dsn();
    pipeline.source.slot = name;
    pipeline.source.publication = publication;
    pipeline.target.dsn = target_->Dsn();
    pipeline.target.postgres.create_tables = create_tables;
    pipeline.target.apply.copy_jobs = 2;
    return pipeline;
  }

  core::Status Copy(const config::PipelineConfig& pipeline, const std::string& snapshot,
                    control::PipelineMetrics* metrics = nullptr,
                    const std::atomic<bool>* stop = nullptr) {
    apply::PostgresSinkOptions options;
    options.pipeline = pipeline.name;
    options.dsn = target_->Dsn();
    apply::PostgresSink sink(options);
    // As the pipeline does: the apply session is open while the copy runs beside it.
    auto opened = sink.Open();
    if (!opened.ok()) return opened.status();
    config::Config config;
    config.pipelines.push_back(pipeline);
    control::PipelineMetrics local_metrics;
    std::atomic<bool> no_stop{false};
    return control::RunInitialCopy(config, pipeline, snapshot, sink, *store_,
                                   metrics ? *metrics : local_metrics, stop ? *stop : no_stop,
                                   control::CopyScope{});
  }

  std::optional<state::TableCopyRecord> Progress(const std::string& pipeline,
                                                 const std::string& table) {
    auto record = store_->Load(state::TableCopyKey(pipeline, table));
    EXPECT_TRUE(record.ok()) << record.status().ToString();
    return record.ok() ? *record : std::nullopt;
  }

  static PgCluster* source_;
  static PgCluster* target_;
  std::string state_dir_;
  std::unique_ptr<state::CheckpointStore> store_;
};

PgCluster* InitialCopyTest::source_ = nullptr;
PgCluster* InitialCopyTest::target_ = nullptr;

constexpr char kOddTable[] = "\"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\"";
constexpr char kTypeColumns[] =
    "id, n, n2, f8, f4, ts, tsn, d, iv, ia, ta, j, jb, b, u, e, bo, inet_c, money_c, bits, c, tv";

TEST_F(InitialCopyTest, CopiesEveryPublishedTableExactlyAsOfTheSnapshot) {
  Exec(
      source_,
      "CREATE SCHEMA src;"
      "CREATE TYPE src.mood AS ENUM ('sad', 'ok', 'happy');"
      // Big enough (> 64 MB) to be split by primary key across the two workers.
      "CREATE TABLE src.big (id bigint PRIMARY KEY, payload text NOT NULL, n int);"
      "INSERT INTO src.big SELECT i, (SELECT string_agg(md5(random()::text || j || i), '')"
      " FROM generate_series(1, 20) j), CASE WHEN i % 7 = 0 THEN NULL ELSE i END"
      " FROM generate_series(1, 110000) i;"
      "CREATE TABLE src.nopk (a int, b text) WITH (autovacuum_enabled = off);"
      "ALTER TABLE src.nopk REPLICA IDENTITY FULL;"
      "INSERT INTO src.nopk VALUES (1, 'x'), (1, 'x'), (NULL, NULL), (2, E'tab\\there\\nnl\\\\');"
      "CREATE SCHEMA \"Odd Schema ü\";"
      "CREATE TABLE \"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\" (\"Id Col\" int PRIMARY KEY,"
      " \"MixedCase\" text, \"ç'quote\" text);"
      "INSERT INTO \"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\" VALUES (1, 'x', 'y'), (2, NULL, '''');"
      "CREATE TABLE src.types (id int PRIMARY KEY, dropped_soon int, n numeric,"
      " n2 numeric(30,10), f8 float8, f4 real, ts timestamptz, tsn timestamp, d date,"
      " iv interval, ia int[], ta text[], j json, jb jsonb, b bytea, u uuid, e src.mood,"
      " bo bool, inet_c inet, money_c money, bits bit varying(10), c char(3), tv tsvector,"
      " g int GENERATED ALWAYS AS (id * 2) STORED);"
      "ALTER TABLE src.types DROP COLUMN dropped_soon;"
      "INSERT INTO src.types (" +
          std::string(kTypeColumns) +
          ") VALUES (1, 12345678901234567890.123456789012345678901,"
          " 1.5, 1.0000000000000002, 3.4028235e38, '2026-11-22 06:01:02.123456+05:30',"
          " '1999-12-31 23:59:59.999999', '0044-03-15 BC', '1 year 2 mons -3 days 04:05:06.7',"
          " '{1,NULL,3}', '{\"a b\",\"c,d\",NULL,\"\\\"q\\\"\"}', '{\"k\": [1, 2.50]}',"
          " '{\"k\": [1, 2.50], \"a\": null}', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',"
          " 'happy', true, '192.168.0.1/24', '12.34', B'1011', 'ab', 'a fat cat'),"
          " (2, 'NaN', NULL, '-Infinity', 'NaN', 'infinity', NULL, NULL, NULL, '{}', NULL,"
          " NULL, 'null', '\\x', NULL, NULL, false, NULL, NULL, NULL, NULL, NULL);"
          "CREATE TABLE src.empty (id int PRIMARY KEY);"
          "CREATE TABLE src.unpublished (id int PRIMARY KEY);"
          "INSERT INTO src.unpublished VALUES (1);"
          "CREATE PUBLICATION pub_main FOR TABLE src.big, src.nopk, src.types, src.empty, "
          "\"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\";"
          "ANALYZE src.big;");
  // Types are the user's to create on the target; tables sluice creates.
  Exec(target_, "CREATE SCHEMA src; CREATE TYPE src.mood AS ENUM ('sad', 'ok', 'happy');");
  ASSERT_GT(std::stoull(Value(source_, "SELECT pg_table_size('src.big')")), 64ull << 20);

  const std::map<std::string, std::string> selects = {
      {"src.big", "SELECT id, payload, n FROM src.big"},
      {"src.nopk", "SELECT a, b FROM src.nopk"},
      {"src.types", std::string("SELECT ") + kTypeColumns + " FROM src.types"},
      {"src.empty", "SELECT id FROM src.empty"},
      {"odd", std::string("SELECT \"Id Col\", \"MixedCase\", \"ç'quote\" FROM ") + kOddTable},
  };
  std::map<std::string, std::string> at_snapshot;
  for (const auto& [name, select] : selects) at_snapshot[name] = Fingerprint(source_, select);

  auto capture = CreateSlot("copy_main", "pub_main");
  ASSERT_NE(capture, nullptr);

  // Changes after the slot's consistent point belong to the stream, never to the copy.
  Exec(source_,
       "INSERT INTO src.big VALUES (200001, 'after', 1), (-5, 'after', 2);"
       "UPDATE src.big SET payload = 'updated after' WHERE id % 1000 = 0;"
       "DELETE FROM src.big WHERE id BETWEEN 50000 AND 50100;"
       "INSERT INTO src.nopk VALUES (3, 'after');"
       "DELETE FROM src.nopk WHERE a = 1;"
       "UPDATE src.types SET n = 0;"
       "INSERT INTO src.empty VALUES (1);"
       "DELETE FROM \"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\";");
  for (const auto& [name, select] : selects) {
    ASSERT_NE(Fingerprint(source_, select), at_snapshot[name]) << name << " unchanged";
  }

  control::PipelineMetrics metrics;
  auto st = Copy(Pipeline("copy_main", "pub_main", /*create_tables=*/true),
                 capture->exported_snapshot(), &metrics);
  ASSERT_TRUE(st.ok()) << st.ToString();

  for (const auto& [name, select] : selects) {
    EXPECT_EQ(Fingerprint(target_, select), at_snapshot[name]) << name;
  }
  EXPECT_EQ(Value(target_, "SELECT count(*) FROM src.big"), "110000");
  EXPECT_EQ(Value(target_, "SELECT to_regclass('src.unpublished') IS NULL"), "t");

  // Created tables: the published columns (no dropped ones), NOT NULL and the key; generated
  // columns computed on the target too (never copied).
  EXPECT_EQ(Value(target_,
                  "SELECT string_agg(attname || ':' || format_type(atttypid, atttypmod) || ':' ||"
                  " attnotnull, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid ="
                  " 'src.big'::regclass AND attnum > 0 AND NOT attisdropped"),
            "id:bigint:true,payload:text:true,n:integer:false");
  EXPECT_EQ(Value(target_,
                  "SELECT string_agg(a.attname, ',') FROM pg_index i JOIN pg_attribute a ON"
                  " a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) WHERE i.indisprimary"
                  " AND i.indrelid = '\"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\"'::regclass"),
            "Id Col");
  EXPECT_EQ(Value(target_, "SELECT count(*) FROM pg_index WHERE indrelid = 'src.nopk'::regclass"),
            "0");
  EXPECT_EQ(Value(target_,
                  "SELECT string_agg(attname || ':' || attgenerated::text || ':' ||"
                  " pg_get_expr(adbin, adrelid), ',') FROM pg_attribute JOIN pg_attrdef ON"
                  " adrelid = attrelid AND adnum = attnum WHERE attrelid = 'src.types'::regclass"
                  " AND attnum > 0 AND NOT attisdropped"),
            "g:s:(id * 2)");
  EXPECT_EQ(Value(target_, "SELECT g FROM src.types WHERE id = 2"), "4");
  EXPECT_EQ(Value(target_,
                  "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE"
                  " attrelid = 'src.types'::regclass AND attname = 'n2'"),
            "numeric(30,10)");

  // Progress: every table done, the big one in several ranges; metrics agree.
  auto big = Progress("copy_main", "src.big");
  ASSERT_TRUE(big.has_value());
  EXPECT_TRUE(big->done);
  EXPECT_EQ(big->rows, 110000u);
  EXPECT_GT(big->ranges, 1);
  EXPECT_EQ(big->ranges_done, big->ranges);
  EXPECT_GT(big->estimated_rows, 100000u);
  for (const char* table : {"src.nopk", "src.types", "src.empty", "Odd Schema ü.Tab \"le\" Ñ"}) {
    auto progress = Progress("copy_main", table);
    ASSERT_TRUE(progress.has_value()) << table;
    EXPECT_TRUE(progress->done) << table;
    EXPECT_EQ(progress->ranges, 1) << table;
  }
  EXPECT_EQ(Progress("copy_main", "src.nopk")->rows, 4u);
  EXPECT_EQ(metrics.copy_tables_total.load(), 5u);
  EXPECT_EQ(metrics.copy_tables_done.load(), 5u);
  EXPECT_EQ(metrics.copy_rows.load(), 110000u + 4 + 2 + 0 + 2);
  EXPECT_GT(metrics.copy_bytes.load(), 64ull << 20);
}

TEST_F(InitialCopyTest, MissingTargetTableIsAnErrorWithoutCreateTables) {
  Exec(source_,
       "CREATE SCHEMA miss; CREATE TABLE miss.t (id int PRIMARY KEY);"
       "INSERT INTO miss.t VALUES (1); CREATE PUBLICATION pub_miss FOR TABLE miss.t;");
  auto capture = CreateSlot("copy_miss", "pub_miss");
  ASSERT_NE(capture, nullptr);
  auto st = Copy(Pipeline("copy_miss", "pub_miss", /*create_tables=*/false),
                 capture->exported_snapshot());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("target table miss.t does not exist (create it, or set "
                              "target.postgres.create_tables: true)"),
            std::string::npos)
      << st.ToString();
  EXPECT_EQ(Value(target_, "SELECT to_regclass('miss.t') IS NULL"), "t");
}

TEST_F(InitialCopyTest, NonEmptyTargetIsRefusedUnlessAnEarlierCopyOfOursStarted) {
  Exec(source_,
       "CREATE SCHEMA ne; CREATE TABLE ne.t (id int PRIMARY KEY, v text);"
       "INSERT INTO ne.t SELECT i, 'v' || i FROM generate_series(1, 100) i;"
       "CREATE PUBLICATION pub_ne FOR TABLE ne.t;");
  Exec(target_,
       "CREATE SCHEMA ne; CREATE TABLE ne.t (id int PRIMARY KEY, v text);"
       "INSERT INTO ne.t VALUES (1000, 'someone else''s row');");
  auto capture = CreateSlot("copy_ne", "pub_ne");
  ASSERT_NE(capture, nullptr);
  const auto pipeline = Pipeline("copy_ne", "pub_ne", /*create_tables=*/false);

  auto st = Copy(pipeline, capture->exported_snapshot());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("target table ne.t is not empty; the initial copy needs empty "
                              "tables (or set snapshot: never)"),
            std::string::npos)
      << st.ToString();
  EXPECT_EQ(Value(target_, "SELECT string_agg(id::text, ',') FROM ne.t"), "1000");
  // Refused before anything was written, so no marker claims the table as ours.
  EXPECT_FALSE(Progress("copy_ne", "ne.t").has_value());

  // An earlier attempt of this pipeline left its marker: the rows there are its own, and go.
  // (Written as sluice before format version 2 wrote it: such a store still reads the same.)
  ASSERT_TRUE(store_->Put("copy_ne", "copy/ne.t", R"({"done":false})").ok());
  st = Copy(pipeline, capture->exported_snapshot());
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Fingerprint(target_, "SELECT id, v FROM ne.t"),
            Fingerprint(source_, "SELECT id, v FROM ne.t"));
  EXPECT_TRUE(Progress("copy_ne", "ne.t")->done);
}

TEST_F(InitialCopyTest, TargetMissingAColumnFailsBeforeAnyRowIsWritten) {
  Exec(source_,
       "CREATE SCHEMA col; CREATE TABLE col.a (id int PRIMARY KEY, v text);"
       "CREATE TABLE col.b (id int PRIMARY KEY, v text, extra int);"
       "INSERT INTO col.a SELECT i, 'a' FROM generate_series(1, 50) i;"
       "INSERT INTO col.b SELECT i, 'b', i FROM generate_series(1, 50) i;"
       "CREATE PUBLICATION pub_col FOR TABLE col.a, col.b;");
  Exec(target_,
       "CREATE SCHEMA col; CREATE TABLE col.a (id int PRIMARY KEY, v text);"
       "CREATE TABLE col.b (id int PRIMARY KEY, v text);");
  auto capture = CreateSlot("copy_col", "pub_col");
  ASSERT_NE(capture, nullptr);
  auto st =
      Copy(Pipeline("copy_col", "pub_col", /*create_tables=*/true), capture->exported_snapshot());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("target table col.b has no column \"extra\""), std::string::npos)
      << st.ToString();
  EXPECT_EQ(Value(target_, "SELECT (SELECT count(*) FROM col.a) + (SELECT count(*) FROM col.b)"),
            "0");
}

TEST_F(InitialCopyTest, StopBeforeTheCopyLeavesTheTargetUntouched) {
  Exec(source_,
       "CREATE SCHEMA stp; CREATE TABLE stp.t (id int PRIMARY KEY);"
       "INSERT INTO stp.t VALUES (1); CREATE PUBLICATION pub_stp FOR TABLE stp.t;");
  auto capture = CreateSlot("copy_stp", "pub_stp");
  ASSERT_NE(capture, nullptr);
  std::atomic<bool> stop{true};
  control::PipelineMetrics metrics;
  auto st = Copy(Pipeline("copy_stp", "pub_stp", /*create_tables=*/true),
                 capture->exported_snapshot(), &metrics, &stop);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(metrics.copy_tables_done.load(), 0u);
  EXPECT_EQ(Value(target_, "SELECT to_regclass('stp.t') IS NULL"), "t");
}

// --- SnapshotCopier on its own ---------------------------------------------------------------

class SnapshotCopierTest : public InitialCopyTest {
 protected:
  // A snapshot exported by a transaction kept open on `holder`.
  static std::string ExportSnapshot(std::unique_ptr<pg::Connection>* holder) {
    auto conn = pg::Connection::Connect(source_->Dsn(), {.timeout = std::chrono::seconds(10)});
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return "";
    EXPECT_TRUE((*conn)->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ").ok());
    auto name = (*conn)->Query("SELECT pg_export_snapshot()");
    EXPECT_TRUE(name.ok()) << name.status().ToString();
    *holder = std::move(conn).value();
    return name.ok() ? *name->rows[0][0] : "";
  }

  static std::vector<std::string> CopyRows(SnapshotCopier& copier,
                                           const core::TableDefinition& table,
                                           const capture::CopyRange& range) {
    std::vector<std::string> rows;
    capture::CopyCounters counters;
    auto st = copier.CopyOut(
        table, range,
        [&](std::string_view chunk) {
          rows.emplace_back(chunk);
          return core::Status::Ok();
        },
        &counters);
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(counters.rows, rows.size());
    return rows;
  }
};

TEST_F(SnapshotCopierTest, DescribesPublishedTablesColumnByColumn) {
  Exec(source_,
       "CREATE SCHEMA dsc; CREATE TABLE dsc.t (a int, gone int, b varchar(12) NOT NULL,"
       " c numeric(8,2), g int GENERATED ALWAYS AS (a + 1) STORED, PRIMARY KEY (b, a));"
       "ALTER TABLE dsc.t DROP COLUMN gone;"
       "CREATE TABLE dsc.f (x text); ALTER TABLE dsc.f REPLICA IDENTITY FULL;"
       "CREATE PUBLICATION pub_dsc FOR TABLE dsc.t, dsc.f;");
  std::unique_ptr<pg::Connection> holder;
  const std::string snapshot = ExportSnapshot(&holder);
  auto copier = SnapshotCopier::Open(source_->Dsn(), snapshot, std::chrono::seconds(10));
  ASSERT_TRUE(copier.ok()) << copier.status().ToString();
  auto tables = (*copier)->DescribeTables("pub_dsc");
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  ASSERT_EQ(tables->size(), 2u);
  const core::TableDefinition& f = (*tables)[0];
  const core::TableDefinition& t = (*tables)[1];
  EXPECT_EQ(f.relation.QualifiedName(), "dsc.f");
  EXPECT_EQ(f.relation.replica_identity, core::ReplicaIdentity::kFull);
  ASSERT_EQ(f.relation.columns.size(), 1u);
  EXPECT_FALSE(f.relation.columns[0].is_key);

  EXPECT_EQ(t.relation.QualifiedName(), "dsc.t");
  EXPECT_EQ(t.relation.replica_identity, core::ReplicaIdentity::kDefault);
  EXPECT_EQ(t.relation.oid, std::stoul(Value(source_, "SELECT 'dsc.t'::regclass::oid")));
  ASSERT_EQ(t.relation.columns.size(), 3u);
  EXPECT_EQ(t.relation.columns[0].name, "a");
  EXPECT_EQ(t.relation.columns[1].name, "b");
  EXPECT_EQ(t.relation.columns[2].name, "c");
  EXPECT_TRUE(t.relation.columns[0].is_key);
  EXPECT_TRUE(t.relation.columns[1].is_key);
  EXPECT_FALSE(t.relation.columns[2].is_key);
  EXPECT_EQ(t.relation.columns[0].type_oid, 23u);
  EXPECT_EQ(t.relation.columns[1].type_oid, 1043u);
  EXPECT_EQ(t.relation.columns[1].type_modifier, 12 + 4);
  EXPECT_EQ(t.column_types,
            (std::vector<std::string>{"integer", "character varying(12)", "numeric(8,2)"}));
  EXPECT_EQ(t.not_null, (std::vector<bool>{true, true, false}));
  ASSERT_EQ(t.generated_columns.size(), 1u);  // after c, the last copied column
  EXPECT_EQ(t.generated_columns[0].name, "g");
  EXPECT_EQ(t.generated_columns[0].type, "integer");
  EXPECT_EQ(t.generated_columns[0].expression, "(a + 1)");
  EXPECT_EQ(t.generated_columns[0].position, 3u);
  EXPECT_TRUE(f.generated_columns.empty());

  auto missing = (*copier)->DescribeTables("no_such_pub");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kNotFound);
}

TEST_F(SnapshotCopierTest, RangesOfABigIntegerKeyCoverEveryRowExactlyOnce) {
  Exec(source_,
       "CREATE SCHEMA rng; CREATE TABLE rng.t (id int8 PRIMARY KEY, v text);"
       // Negative, sparse and extreme keys.
       "INSERT INTO rng.t SELECT i * 7 - 3000, 'v' || i FROM generate_series(1, 5000) i;"
       "INSERT INTO rng.t VALUES (-9223372036854775808, 'min'), (9223372036854775807, 'max');"
       "CREATE TABLE rng.small (id int2 PRIMARY KEY); INSERT INTO rng.small VALUES (1), (2), (3);"
       "CREATE TABLE rng.composite (a int, b int, PRIMARY KEY (a, b));"
       "INSERT INTO rng.composite SELECT i, i FROM generate_series(1, 100) i;"
       "CREATE TABLE rng.textkey (k text PRIMARY KEY); INSERT INTO rng.textkey VALUES ('a');"
       "CREATE PUBLICATION pub_rng FOR TABLE rng.t, rng.small, rng.composite, rng.textkey;");
  std::unique_ptr<pg::Connection> holder;
  const std::string snapshot = ExportSnapshot(&holder);
  // Rows added after the snapshot was exported stay invisible to the copier.
  Exec(source_, "INSERT INTO rng.t VALUES (1, 'later'), (100000, 'later')");

  auto copier = SnapshotCopier::Open(source_->Dsn(), snapshot, std::chrono::seconds(10));
  ASSERT_TRUE(copier.ok()) << copier.status().ToString();
  auto tables = (*copier)->DescribeTables("pub_rng");
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  ASSERT_EQ(tables->size(), 4u);
  std::map<std::string, const core::TableDefinition*> by_name;
  for (const auto& def : *tables) by_name[def.relation.name] = &def;

  // Over the threshold: split; under it (the default 64 MB): one range.
  const core::TableDefinition& t = *by_name["t"];
  auto whole = (*copier)->PlanRanges(t, 4);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  ASSERT_EQ(whole->size(), 1u);
  EXPECT_TRUE((*whole)[0].predicate.empty());

  auto ranges = (*copier)->PlanRanges(t, 4, /*split_threshold_bytes=*/0);
  ASSERT_TRUE(ranges.ok()) << ranges.status().ToString();
  ASSERT_EQ(ranges->size(), 4u);
  std::multiset<std::string> seen;
  size_t non_empty = 0;
  for (const auto& range : *ranges) {
    EXPECT_FALSE(range.predicate.empty());
    EXPECT_EQ(range.count, 4);
    auto rows = CopyRows(**copier, t, range);
    if (!rows.empty()) ++non_empty;
    seen.insert(rows.begin(), rows.end());
  }
  EXPECT_EQ(seen.size(), 5002u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 5002u);  // no duplicates
  EXPECT_EQ(seen.count("-9223372036854775808\tmin\n"), 1u);
  EXPECT_EQ(seen.count("9223372036854775807\tmax\n"), 1u);
  EXPECT_EQ(seen.count("1\tlater\n"), 0u);
  EXPECT_EQ(seen.count("-2993\tv1\n"), 1u);
  EXPECT_GE(non_empty, 2u);

  // A key span smaller than the pieces: fewer ranges, still every row once.
  auto small = (*copier)->PlanRanges(*by_name["small"], 8, 0);
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(small->size(), 2u);
  std::vector<std::string> small_rows;
  for (const auto& range : *small) {
    auto rows = CopyRows(**copier, *by_name["small"], range);
    small_rows.insert(small_rows.end(), rows.begin(), rows.end());
  }
  std::sort(small_rows.begin(), small_rows.end());
  EXPECT_EQ(small_rows, (std::vector<std::string>{"1\n", "2\n", "3\n"}));

  // Composite and non-integer keys are never split.
  for (const char* name : {"composite", "textkey"}) {
    auto one = (*copier)->PlanRanges(*by_name[name], 4, 0);
    ASSERT_TRUE(one.ok()) << one.status().ToString();
    EXPECT_EQ(one->size(), 1u) << name;
  }
  EXPECT_EQ(CopyRows(**copier, *by_name["composite"], capture::CopyRange{}).size(), 100u);
}

TEST_F(SnapshotCopierTest, AStopFromTheCallbackCancelsTheCopy) {
  Exec(source_,
       "CREATE SCHEMA cancel; CREATE TABLE cancel.t (id int PRIMARY KEY);"
       "INSERT INTO cancel.t SELECT generate_series(1, 100000);"
       "CREATE PUBLICATION pub_cancel FOR TABLE cancel.t;");
  std::unique_ptr<pg::Connection> holder;
  const std::string snapshot = ExportSnapshot(&holder);
  auto copier = SnapshotCopier::Open(source_->Dsn(), snapshot, std::chrono::seconds(10));
  ASSERT_TRUE(copier.ok()) << copier.status().ToString();
  auto tables = (*copier)->DescribeTables("pub_cancel");
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  capture::CopyCounters counters;
  int calls = 0;
  auto st = (*copier)->CopyOut((*tables)[0], capture::CopyRange{},
                               [&](std::string_view) {
                                 return ++calls == 10 ? core::Aborted("stop requested")
                                                      : core::Status::Ok();
                               },
                               &counters);
  EXPECT_EQ(st.code(), core::StatusCode::kAborted) << st.ToString();
  EXPECT_EQ(calls, 10);
  EXPECT_LT(counters.rows, 100000u);
  // The copier is done for; it says so instead of reading outside the snapshot.
  auto again = (*copier)->PlanRanges((*tables)[0], 2, 0);
  EXPECT_FALSE(again.ok());
}

TEST_F(SnapshotCopierTest, AGoneSnapshotIsNamedInTheError) {
  std::unique_ptr<pg::Connection> holder;
  const std::string snapshot = ExportSnapshot(&holder);
  ASSERT_TRUE(holder->Exec("COMMIT").ok());  // ends the export
  auto copier = SnapshotCopier::Open(source_->Dsn(), snapshot, std::chrono::seconds(10));
  ASSERT_FALSE(copier.ok());
  EXPECT_EQ(copier.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(copier.status().message().find("the exported snapshot " + snapshot +
                                           " no longer exists (the slot's creating connection "
                                           "moved on)"),
            std::string::npos)
      << copier.status().ToString();
}

}  // namespace
}  // namespace sluice::testing
