// Capture against a real PostgreSQL: every pgoutput message type produced by real SQL, read back
// through `sluice tail --format jsonl`.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/support/pg_cluster.h"
#include "tests/support/sluice_fixture.h"
#include "tests/support/sluice_process.h"

namespace sluice::testing {
namespace {

class CaptureTailTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PgCluster::Options options;
    // Small enough that the large-transaction tests stream (and spill) for real.
    options.settings["logical_decoding_work_mem"] = "64kB";
    auto cluster = PgCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(cluster).value().release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void Exec(const std::string& sql) {
    auto st = cluster_->Exec(sql);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // Creates schema `schema` with `ddl`, and a pipeline over it whose slot exists from now on.
  TailConfig Prepare(const std::string& schema, const std::string& ddl,
                     const std::string& extra_yaml = "", const std::string& extra_source_yaml = "",
                     const std::string& pipeline = "") {
    Exec("CREATE SCHEMA " + schema + ";" + ddl);
    TailConfig config = WriteTailConfig(dir_, *cluster_, {schema + ".*"}, extra_yaml,
                                        pipeline.empty() ? schema : pipeline, extra_source_yaml);
    EXPECT_TRUE(TailUntilNow(*cluster_, config).empty());
    return config;
  }

  std::vector<nlohmann::json> Tail(const TailConfig& config) {
    return TailUntilNow(*cluster_, config);
  }

  static PgCluster* cluster_;
  TempDir dir_;
};

PgCluster* CaptureTailTest::cluster_ = nullptr;

TEST_F(CaptureTailTest, InsertUpdateDeleteIncludingPrimaryKeyChange) {
  auto config = Prepare("crud", "CREATE TABLE crud.t (id int PRIMARY KEY, v text);");
  // One Exec per statement: a multi-statement string would be one implicit transaction.
  Exec("INSERT INTO crud.t VALUES (1, 'a'), (2, NULL)");
  Exec("UPDATE crud.t SET v = 'b' WHERE id = 1");
  Exec("UPDATE crud.t SET id = 10 WHERE id = 2");
  Exec("DELETE FROM crud.t WHERE id = 1");
  auto lines = Tail(config);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0]["op"], "insert");
  EXPECT_EQ(lines[0]["relation"], "crud.t");
  EXPECT_EQ(lines[0]["new"], nlohmann::json({{"id", "1"}, {"v", "a"}}));
  EXPECT_TRUE(lines[1]["new"]["v"].is_null());
  EXPECT_EQ(lines[2]["op"], "update");
  EXPECT_EQ(lines[2]["key"], nlohmann::json({{"id", "1"}}));
  EXPECT_EQ(lines[2]["new"]["v"], "b");
  // A primary-key change sends the old key so the target can find the row.
  EXPECT_EQ(lines[3]["key"], nlohmann::json({{"id", "2"}}));
  EXPECT_EQ(lines[3]["new"]["id"], "10");
  EXPECT_EQ(lines[4]["op"], "delete");
  EXPECT_EQ(lines[4]["key"], nlohmann::json({{"id", "1"}}));
  // Each statement ran in its own transaction, in commit order.
  std::set<int> xids;
  for (const auto& l : lines) xids.insert(l["xid"].get<int>());
  EXPECT_EQ(xids.size(), 4u);
  EXPECT_LT(lines[0]["commit_lsn"].get<std::string>().size(), 20u);
}

TEST_F(CaptureTailTest, ReplicaIdentityFullAndUsingIndex) {
  auto config = Prepare("ident",
                        "CREATE TABLE ident.full_t (a int, b text);"
                        "ALTER TABLE ident.full_t REPLICA IDENTITY FULL;"
                        "CREATE TABLE ident.idx_t (id int PRIMARY KEY, code text NOT NULL, v int);"
                        "CREATE UNIQUE INDEX idx_code ON ident.idx_t (code);"
                        "ALTER TABLE ident.idx_t REPLICA IDENTITY USING INDEX idx_code;");
  Exec(
      "INSERT INTO ident.full_t VALUES (1, 'x'), (1, 'x');"
      "UPDATE ident.full_t SET b = 'y' WHERE ctid = (SELECT min(ctid) FROM ident.full_t);"
      "DELETE FROM ident.full_t WHERE b = 'y';"
      "INSERT INTO ident.idx_t VALUES (1, 'c1', 5);"
      "UPDATE ident.idx_t SET code = 'c2' WHERE id = 1;"
      "DELETE FROM ident.idx_t WHERE id = 1;");
  auto lines = Tail(config);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[2]["op"], "update");
  EXPECT_EQ(lines[2]["old"], nlohmann::json({{"a", "1"}, {"b", "x"}}));
  EXPECT_EQ(lines[2]["new"], nlohmann::json({{"a", "1"}, {"b", "y"}}));
  EXPECT_EQ(lines[3]["op"], "delete");
  EXPECT_EQ(lines[3]["old"], nlohmann::json({{"a", "1"}, {"b", "y"}}));
  EXPECT_EQ(lines[5]["key"], nlohmann::json({{"code", "c1"}}));
  EXPECT_EQ(lines[5]["new"]["code"], "c2");
  EXPECT_EQ(lines[6]["key"], nlohmann::json({{"code", "c2"}}));
}

TEST_F(CaptureTailTest, UpdateLeavingToastedColumnUnchanged) {
  auto config = Prepare("toast", "CREATE TABLE toast.t (id int PRIMARY KEY, big text, n int);");
  // Random text does not compress, so 20 kB goes out of line into TOAST.
  Exec(
      "INSERT INTO toast.t SELECT 1, string_agg(md5(g::text || random()::text), '') , 0 "
      "FROM generate_series(1, 700) g;"
      "UPDATE toast.t SET n = 1 WHERE id = 1;");
  auto lines = Tail(config);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["new"]["big"].get<std::string>().size(), 700u * 32);
  EXPECT_EQ(lines[1]["new"]["big"], nlohmann::json({{"unchanged_toast", true}}));
  EXPECT_EQ(lines[1]["new"]["n"], "1");
}

TEST_F(CaptureTailTest, TruncateOfSeveralTablesWithOptions) {
  auto config = Prepare("trunc",
                        "CREATE TABLE trunc.a (id serial PRIMARY KEY);"
                        "CREATE TABLE trunc.b (id int PRIMARY KEY, a_id int REFERENCES trunc.a);");
  Exec(
      "INSERT INTO trunc.a DEFAULT VALUES; INSERT INTO trunc.b VALUES (1, 1);"
      "TRUNCATE trunc.a, trunc.b RESTART IDENTITY;"
      "INSERT INTO trunc.a DEFAULT VALUES;"
      "TRUNCATE trunc.a CASCADE;");
  auto lines = Tail(config);
  std::vector<nlohmann::json> truncates;
  for (const auto& l : lines) {
    if (l["op"] == "truncate") truncates.push_back(l);
  }
  ASSERT_EQ(truncates.size(), 2u);
  EXPECT_EQ(
      std::set<std::string>(truncates[0]["relations"].begin(), truncates[0]["relations"].end()),
      (std::set<std::string>{"trunc.a", "trunc.b"}));
  EXPECT_EQ(truncates[0]["restart_identity"], true);
  EXPECT_EQ(truncates[0]["cascade"], false);
  EXPECT_EQ(truncates[1]["cascade"], true);
}

TEST_F(CaptureTailTest, LogicalMessagesTransactionalAndNot) {
  auto config = Prepare("msg", "CREATE TABLE msg.t (id int PRIMARY KEY);");
  Exec(
      "BEGIN; INSERT INTO msg.t VALUES (1);"
      "SELECT pg_logical_emit_message(true, 'sluice-test', 'in txn'); COMMIT;");
  Exec("SELECT pg_logical_emit_message(false, 'sluice-test', 'outside')");
  Exec("BEGIN; SELECT pg_logical_emit_message(true, 'sluice-test', 'rolled back'); ROLLBACK;");
  // PostgreSQL < 17 does not flush the WAL of a non-transactional message; a commit after it
  // does, so the walsender can read it.
  Exec("INSERT INTO msg.t VALUES (2)");
  auto lines = Tail(config);
  std::vector<std::string> contents;
  for (const auto& l : lines) {
    if (l["op"] == "message") {
      EXPECT_EQ(l["prefix"], "sluice-test");
      contents.push_back(l["content"].get<std::string>() +
                         (l["transactional"].get<bool>() ? "/t" : "/n"));
    }
  }
  EXPECT_EQ(contents, (std::vector<std::string>{"in txn/t", "outside/n"}));
}

// Checks that the stream holds exactly rows [1, n] minus `missing` for table `relation`.
void ExpectInsertedIds(const std::vector<nlohmann::json>& lines, const std::string& relation, int n,
                       const std::set<int>& missing) {
  std::vector<int> ids;
  for (const auto& l : lines) {
    if (l["relation"] == relation && l["op"] == "insert") {
      ids.push_back(std::stoi(l["new"]["id"].get<std::string>()));
    }
  }
  std::vector<int> expected;
  for (int i = 1; i <= n; ++i) {
    if (!missing.count(i)) expected.push_back(i);
  }
  EXPECT_EQ(ids, expected);
}

TEST_F(CaptureTailTest, LargeTransactionsStreamSpillAbortAndRollBackSavepoints) {
  // 256 kB of memory for a 2 MB+ transaction: the assembler must spill to disk.
  auto config = Prepare("big", "CREATE TABLE big.t (id int PRIMARY KEY, pad text);",
                        "    capture: { memory_limit: 256kB, max_fragment_changes: 1000 }\n");
  Exec(
      "BEGIN;"
      "INSERT INTO big.t SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g;"
      "SAVEPOINT s1;"
      "INSERT INTO big.t SELECT g, repeat('y', 100) FROM generate_series(5001, 6000) g;"
      "ROLLBACK TO SAVEPOINT s1;"
      "SAVEPOINT s2;"
      "INSERT INTO big.t SELECT g, repeat('z', 100) FROM generate_series(6001, 20000) g;"
      "RELEASE SAVEPOINT s2;"
      "COMMIT;"
      "BEGIN;"
      "INSERT INTO big.t SELECT g, 'aborted' FROM generate_series(20001, 40000) g;"
      "ROLLBACK;"
      "INSERT INTO big.t VALUES (20001, 'after');");
  auto lines = Tail(config);
  std::set<int> rolled_back;
  for (int i = 5001; i <= 6000; ++i) rolled_back.insert(i);
  ExpectInsertedIds(lines, "big.t", 20001, rolled_back);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["new"]["pad"], "after");
  // The first 19000 lines are one transaction: one xid, one commit LSN.
  EXPECT_EQ(lines.front()["xid"], lines[18999]["xid"]);
  EXPECT_NE(lines.front()["xid"], lines.back()["xid"]);
}

TEST_F(CaptureTailTest, ProtocolVersionOneDeliversLargeTransactionsInFragments) {
  auto config =
      Prepare("v1", "CREATE TABLE v1.t (id int PRIMARY KEY);",
              "    capture: { max_fragment_changes: 100 }\n", "      protocol_version: 1\n");
  Exec("INSERT INTO v1.t SELECT g FROM generate_series(1, 3000) g;");
  ExpectInsertedIds(Tail(config), "v1.t", 3000, {});
}

TEST_F(CaptureTailTest, AlterTableBetweenTransactionsSendsNewRelation) {
  auto config = Prepare("altr", "CREATE TABLE altr.t (id int PRIMARY KEY);");
  Exec(
      "INSERT INTO altr.t VALUES (1);"
      "ALTER TABLE altr.t ADD COLUMN note text DEFAULT 'd';"
      "INSERT INTO altr.t VALUES (2, 'n');"
      "ALTER TABLE altr.t DROP COLUMN note;"
      "INSERT INTO altr.t VALUES (3);");
  auto lines = Tail(config);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["new"], nlohmann::json({{"id", "1"}}));
  EXPECT_EQ(lines[1]["new"], nlohmann::json({{"id", "2"}, {"note", "n"}}));
  EXPECT_EQ(lines[2]["new"], nlohmann::json({{"id", "3"}}));
}

TEST_F(CaptureTailTest, EveryTypeKeepsItsExactTextForm) {
  auto config =
      Prepare("types",
              "CREATE TYPE types.mood AS ENUM ('sad', 'ok', 'happy');"
              "CREATE DOMAIN types.posint AS int CHECK (VALUE > 0);"
              "CREATE TABLE types.t (id int PRIMARY KEY, n numeric, n2 numeric(30,10), f8 float8,"
              " f4 real, ts timestamptz, tsn timestamp, d date, iv interval, ia int[], ta text[],"
              " j json, jb jsonb, b bytea, u uuid, e types.mood, dm types.posint, bo bool,"
              " inet_c inet, money_c money, bits bit varying(10), c char(3), tv tsvector);");
  Exec(
      "INSERT INTO types.t VALUES (1, 12345678901234567890.123456789012345678901,"
      " 1.5, 1.0000000000000002, 3.4028235e38, '2026-11-22 06:01:02.123456+05:30',"
      " '1999-12-31 23:59:59.999999', '0044-03-15 BC', '1 year 2 mons -3 days 04:05:06.7',"
      " '{1,NULL,3}', '{\"a b\",\"c,d\",NULL,\"\\\"q\\\"\"}', '{\"k\": [1, 2.50]}',"
      " '{\"k\": [1, 2.50], \"a\": null}', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',"
      " 'happy', 42, true, '192.168.0.1/24', '12.34', B'1011', 'ab', 'a fat cat');"
      "INSERT INTO types.t (id, n, f8) VALUES (2, 'NaN', '-Infinity');");
  auto lines = Tail(config);
  ASSERT_EQ(lines.size(), 2u);
  // The stream must carry exactly what PostgreSQL prints for each value.
  // format('%s') prints through each type's output function, as the walsender does (a cast to
  // text would not: bool::text is 'true', the output function says 't').
  const std::vector<std::string> columns = {
      "id", "n", "n2", "f8", "f4", "ts", "tsn",    "d",       "iv",   "ia", "ta", "j",
      "jb", "b", "u",  "e",  "dm", "bo", "inet_c", "money_c", "bits", "c",  "tv"};
  std::string select = "SELECT ";
  for (size_t c = 0; c < columns.size(); ++c) {
    select += (c ? ", " : "") + std::string("CASE WHEN ") + columns[c] +
              " IS NULL THEN NULL ELSE format('%s', " + columns[c] + ") END";
  }
  auto rows = cluster_->Query(select + " FROM types.t ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    for (size_t c = 0; c < columns.size(); ++c) {
      const auto& expected = (*rows)[i][c];
      const auto& actual = lines[i]["new"][columns[c]];
      if (!expected) {
        EXPECT_TRUE(actual.is_null()) << "column " << columns[c];
      } else {
        EXPECT_EQ(actual, *expected) << "column " << columns[c];
      }
    }
  }
  EXPECT_EQ(lines[0]["new"]["b"], "\\x00ff10");
  EXPECT_EQ(lines[0]["new"]["e"], "happy");
}

TEST_F(CaptureTailTest, OddIdentifiersQuotesSpacesMixedCaseAndNonAscii) {
  auto config =
      Prepare("\"Odd Schema ü\"",
              "CREATE TABLE \"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\" (\"Id Col\" int PRIMARY KEY,"
              " \"MixedCase\" text, \"ç'quote\" text);",
              "", "", "odd");
  Exec(
      "INSERT INTO \"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\" VALUES (1, 'x', 'y');"
      "UPDATE \"Odd Schema ü\".\"Tab \"\"le\"\" Ñ\" SET \"Id Col\" = 2;");
  auto lines = Tail(config);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["relation"], "Odd Schema ü.Tab \"le\" Ñ");
  EXPECT_EQ(lines[0]["new"],
            nlohmann::json({{"Id Col", "1"}, {"MixedCase", "x"}, {"ç'quote", "y"}}));
  EXPECT_EQ(lines[1]["key"], nlohmann::json({{"Id Col", "1"}}));
}

TEST_F(CaptureTailTest, BinaryFormatValuesAreShownAsHex) {
  auto config = Prepare("bin", "CREATE TABLE bin.t (id int PRIMARY KEY, v text);", "",
                        "      binary: true\n");
  Exec("INSERT INTO bin.t VALUES (1, 'ab')");
  auto lines = Tail(config);
  ASSERT_EQ(lines.size(), 1u);
  // int4 send format: 4 bytes big-endian; text send format: the bytes themselves.
  EXPECT_EQ(lines[0]["new"]["id"], nlohmann::json({{"binary", "00000001"}}));
  EXPECT_EQ(lines[0]["new"]["v"], nlohmann::json({{"binary", "6162"}}));
}

}  // namespace
}  // namespace sluice::testing
