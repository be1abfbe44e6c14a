// The initial copy's two bulk paths into a real PostgreSQL target: the source's COPY text as is
// (PostgreSQL's fast path) and rows parsed from it (the path every other target takes), fed
// through control::BulkLoadFeed as the initial copy does. Both must load the same table as the
// source holds, for values that COPY text has to escape.
#include "apply/postgres_bulk_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "apply/postgres_sink.h"
#include "control/bulk_load_feed.h"
#include "pg/connection.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/shared_cluster_test.h"

namespace sluice::testing {
namespace {

// Hides a loader's COPY text path, so the feed parses the text into rows (as for a target that
// has no COPY).
class RowsOnly : public apply::BulkLoader {
 public:
  explicit RowsOnly(std::unique_ptr<apply::BulkLoader> inner) : inner_(std::move(inner)) {}
  core::Status WriteRows(std::span<const core::Tuple> rows) override {
    return inner_->WriteRows(rows);
  }
  core::Status Finish() override { return inner_->Finish(); }

 private:
  std::unique_ptr<apply::BulkLoader> inner_;
};

constexpr char kColumns[] = "id, \"t\tx\", b, j, a, n, ts, e";

class PostgresBulkLoaderTest : public SharedClusterTest {
 protected:
  static std::unique_ptr<apply::PostgresSink> Sink() {
    apply::PostgresSinkOptions options;
    options.pipeline = "bulk";
    options.dsn = cluster_->Dsn();
    return std::make_unique<apply::PostgresSink>(options);
  }

  static core::RelationPtr Relation(const std::string& table) {
    auto relation = std::make_shared<core::Relation>();
    relation->oid = 30000;
    relation->schema = "awk";
    relation->name = table;
    for (const char* name : {"id", "t\tx", "b", "j", "a", "n", "ts", "e"}) {
      relation->columns.emplace_back(name, 0, -1, std::string(name) == "id");
    }
    return relation;
  }

  // What `COPY awk.src TO STDOUT` sends, chunk by chunk as libpq returns it (a row each).
  static std::vector<std::string> SourceCopyText() {
    std::vector<std::string> chunks;
    auto conn = pg::Connection::Connect(cluster_->Dsn(), {});
    EXPECT_TRUE(conn.ok()) << conn.status().ToString();
    if (!conn.ok()) return chunks;
    EXPECT_TRUE((*conn)->Exec("SET client_encoding = 'UTF8'").ok());
    const std::string sql = std::string("COPY awk.src (") + kColumns + ") TO STDOUT";
    pg::ResultPtr started(PQexec((*conn)->raw(), sql.c_str()));
    EXPECT_EQ(PQresultStatus(started.get()), PGRES_COPY_OUT);
    char* buffer = nullptr;
    int length = 0;
    while ((length = PQgetCopyData((*conn)->raw(), &buffer, 0)) > 0) {
      chunks.emplace_back(buffer, static_cast<size_t>(length));
      PQfreemem(buffer);
    }
    EXPECT_EQ(length, -1);
    while (PGresult* result = PQgetResult((*conn)->raw())) PQclear(result);
    return chunks;
  }

  // Loads `chunks` into awk.`table` through `loader`, as the initial copy does.
  static void Load(apply::BulkLoader& loader, const std::string& table,
                   const std::vector<std::string>& chunks) {
    control::BulkLoadFeed feed(loader, *Relation(table));
    for (const std::string& chunk : chunks) {
      core::Status written = feed.Write(chunk);
      ASSERT_TRUE(written.ok()) << written.ToString();
    }
    core::Status finished = feed.Finish();
    ASSERT_TRUE(finished.ok()) << finished.ToString();
  }

  static std::vector<PgCluster::Row> Table(const std::string& table) {
    return Rows(std::string("SELECT ") + kColumns + " FROM awk." + table + " ORDER BY id");
  }

  // "" when awk.`table` holds the same rows as awk.src (text forms, by id), else the first
  // difference, shortened (a value here may be a megabyte long).
  static std::string DiffWithSource(const std::string& table) {
    const std::vector<PgCluster::Row> source = Table("src");
    const std::vector<PgCluster::Row> copy = Table(table);
    auto show = [](const PgCluster::Row& row) {
      std::string out;
      for (const auto& cell : row) {
        out += (out.empty() ? "" : " | ") + (cell ? cell->substr(0, 60) : "NULL");
      }
      return out;
    };
    for (size_t i = 0; i < std::min(source.size(), copy.size()); ++i) {
      if (source[i] != copy[i]) {
        return "row " + std::to_string(i) + ": source " + show(source[i]) + "\n  " + table + " " +
               show(copy[i]);
      }
    }
    if (source.size() != copy.size()) {
      return std::to_string(source.size()) + " source rows, " + std::to_string(copy.size()) +
             " in " + table;
    }
    return "";
  }
};

TEST_F(PostgresBulkLoaderTest, RowPathLoadsTheSameTableAsTheCopyTextPath) {
  Exec(
      "CREATE SCHEMA awk;"
      "CREATE TYPE awk.mood AS ENUM ('ok', 'tab\there', 'back\\slash');"
      "CREATE TABLE awk.src (id int PRIMARY KEY, \"t\tx\" text, b bytea, j jsonb, a text[],"
      " n numeric, ts timestamptz, e awk.mood);"
      "CREATE TABLE awk.fast (LIKE awk.src INCLUDING ALL);"
      "CREATE TABLE awk.rows (LIKE awk.src INCLUDING ALL);"
      // NULLs and empty strings; every character COPY escapes; the NULL marker and the
      // end-of-data marker as text; backslashes before escape letters and digits.
      "INSERT INTO awk.src VALUES (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
      " (2, '', '', '{}', '{}', 0, 'epoch', 'ok'),"
      " (3, E'tab\\there\\nnew\\rret\\bbs\\fff\\x0bvt\\\\back', E'\\\\x00ff5c0a09',"
      "  '{\"k\\\\t\": \"v\\\\n\\\\u0001\\\\\\\\\"}', ARRAY[NULL, 'a\\b', E'c\\td', '\"q\"', ''],"
      "  -1.5e-20, '2000-01-01 00:00:00.000001+00', E'tab\\there'),"
      " (4, '\\N', E'\\\\x5c4e', 'null', ARRAY['\\N'], 'NaN', 'infinity', E'back\\\\slash'),"
      " (5, '\\.', E'\\\\x5c2e0a', '\"\\\\\\\\.\"', ARRAY['\\.'], 1e100, '-infinity', 'ok'),"
      " (6, E'\\\\n\\\\t\\\\101\\\\x41\\\\\\\\', E'\\\\x', '[1, 2.50, \"x\"]', NULL, NULL, NULL,"
      "  NULL),"
      // Unicode: accents, CJK, an emoji, a combining mark, a right-to-left mark; control bytes.
      " (7, 'ü 漢字 🐘 e\u0301 \u200f', convert_to('ü🐘', 'UTF8'), '{\"ü\": \"🐘\"}',"
      "  ARRAY['漢', '🐘'], NULL, NULL, NULL),"
      " (8, E'\\x01\\x1f\\x7f', NULL, NULL, NULL, NULL, NULL, NULL);"
      // Every byte value in a bytea, and a value larger than a loader's send piece.
      "INSERT INTO awk.src (id, b) SELECT 9, string_agg(set_byte('\\x00'::bytea, 0, g), ''"
      " ORDER BY g) FROM generate_series(0, 255) g;"
      "INSERT INTO awk.src (id, \"t\tx\") SELECT 10, repeat(E'\\t\\\\\\nü', 200000);"
      // Many ordinary rows, so the row path writes several batches.
      "INSERT INTO awk.src (id, \"t\tx\", n) SELECT g, 'row ' || g, g / 7.0"
      " FROM generate_series(100, 3100) g;");

  const std::vector<std::string> chunks = SourceCopyText();
  ASSERT_EQ(chunks.size(), 3011u);

  auto sink = Sink();
  auto fast = sink->OpenBulkLoad(*Relation("fast"));
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();
  ASSERT_TRUE((*fast)->TakesCopyText());
  Load(**fast, "fast", chunks);

  auto inner = sink->OpenBulkLoad(*Relation("rows"));
  ASSERT_TRUE(inner.ok()) << inner.status().ToString();
  RowsOnly rows_only(std::move(inner).value());
  Load(rows_only, "rows", chunks);

  ASSERT_EQ(Table("src").size(), 3011u);
  EXPECT_EQ(DiffWithSource("fast"), "");
  EXPECT_EQ(DiffWithSource("rows"), "");
  // The awkward values themselves, compared on the server with the source's.
  EXPECT_EQ(Rows("SELECT count(*) FROM awk.src s JOIN awk.rows r USING (id) WHERE"
                 " s.\"t\tx\" IS NOT DISTINCT FROM r.\"t\tx\" AND s.b IS NOT DISTINCT FROM r.b"
                 " AND s.j IS NOT DISTINCT FROM r.j AND s.a IS NOT DISTINCT FROM r.a"
                 " AND s.n IS NOT DISTINCT FROM r.n AND s.ts IS NOT DISTINCT FROM r.ts"
                 " AND s.e IS NOT DISTINCT FROM r.e"),
            (std::vector<PgCluster::Row>{{"3011"}}));
  EXPECT_EQ(
      Rows("SELECT length(b), length(\"t\tx\") FROM awk.rows WHERE id IN (9, 10) ORDER BY id"),
      (std::vector<PgCluster::Row>{{"256", std::nullopt}, {std::nullopt, "800000"}}));
}

TEST_F(PostgresBulkLoaderTest, RowsWithoutATextFormAreRefusedAndNothingIsLoaded) {
  Exec("CREATE SCHEMA IF NOT EXISTS refuse; CREATE TABLE refuse.t (id int, v text)");
  auto relation = std::make_shared<core::Relation>();
  relation->schema = "refuse";
  relation->name = "t";
  relation->columns = {{"id", 23, -1, true}, {"v", 25, -1, false}};
  auto sink = Sink();
  {
    auto loader = sink->OpenBulkLoad(*relation);
    ASSERT_TRUE(loader.ok()) << loader.status().ToString();
    const std::vector<core::Tuple> rows = {{core::Value::Text("1"), core::Value::Text("a")},
                                           {core::Value::Text("2"), core::Value::Binary("\x01")}};
    core::Status status = (*loader)->WriteRows(rows);
    EXPECT_EQ(status.code(), core::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find("refuse.t: row 2"), std::string::npos) << status.ToString();
    const std::vector<core::Tuple> short_row = {{core::Value::Text("3")}};
    EXPECT_FALSE((*loader)->WriteRows(short_row).ok());
  }  // dropped unfinished: rolled back
  EXPECT_EQ(Rows("SELECT count(*) FROM refuse.t"), (std::vector<PgCluster::Row>{{"0"}}));
}

}  // namespace
}  // namespace sluice::testing
