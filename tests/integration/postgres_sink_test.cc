// PostgresSink against a real PostgreSQL target: fragments built by hand from core types, applied
// through the Sink interface, and the target's tables read back.
#include "apply/postgres_sink.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>

#include "core/pg_time.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/shared_cluster_test.h"

namespace sluice::testing {
namespace {

using apply::AppliedPosition;
using apply::PostgresSink;
using apply::PostgresSinkOptions;
using core::Change;
using core::Lsn;
using core::OldTupleKind;
using core::Operation;
using core::RelationPtr;
using core::ReplicaIdentity;
using core::Transaction;
using core::Value;

using Cell = std::optional<std::string>;  // nullopt = NULL

struct Col {
  std::string name;
  bool key = false;
  core::Oid type_oid = 25;  // text; the sink cares only where a type lacks equality (json)
};

RelationPtr Rel(core::Oid oid, std::string schema, std::string name, std::vector<Col> columns,
                ReplicaIdentity identity = ReplicaIdentity::kDefault) {
  auto relation = std::make_shared<core::Relation>();
  relation->oid = oid;
  relation->schema = std::move(schema);
  relation->name = std::move(name);
  relation->replica_identity = identity;
  for (auto& c : columns) {
    core::Column column;
    column.name = c.name;
    column.is_key = c.key || identity == ReplicaIdentity::kFull;
    column.type_oid = c.type_oid;
    relation->columns.push_back(column);
  }
  return relation;
}

core::Tuple Tup(const std::vector<Cell>& cells) {
  core::Tuple tuple;
  for (const auto& c : cells) tuple.push_back(c ? Value::Text(*c) : Value::Null());
  return tuple;
}

Change Ins(RelationPtr relation, const std::vector<Cell>& cells) {
  Change change;
  change.op = Operation::kInsert;
  change.relation = std::move(relation);
  change.new_tuple = Tup(cells);
  return change;
}

Change Upd(RelationPtr relation, OldTupleKind old_kind, core::Tuple old_tuple,
           core::Tuple new_tuple) {
  Change change;
  change.op = Operation::kUpdate;
  change.relation = std::move(relation);
  change.old_kind = old_kind;
  change.old_tuple = std::move(old_tuple);
  change.new_tuple = std::move(new_tuple);
  return change;
}

Change Del(RelationPtr relation, OldTupleKind old_kind, const std::vector<Cell>& old_cells) {
  Change change;
  change.op = Operation::kDelete;
  change.relation = std::move(relation);
  change.old_kind = old_kind;
  change.old_tuple = Tup(old_cells);
  return change;
}

// A transaction ending at `end`; its changes carry LSNs just below it.
Transaction Txn(uint64_t end, std::vector<Change> changes) {
  Transaction txn;
  txn.xid = static_cast<uint32_t>(end);
  txn.commit_lsn = Lsn(end - 8);
  txn.end_lsn = Lsn(end);
  txn.commit_time = core::PgNow();
  uint64_t lsn = end - 8 - 8 * changes.size();
  for (auto& change : changes) {
    change.lsn = Lsn(lsn);
    lsn += 8;
  }
  txn.changes = std::move(changes);
  return txn;
}

AppliedPosition PositionOf(const Transaction& txn) { return {txn.end_lsn, txn.commit_time}; }

class PostgresSinkTest : public SharedClusterTest {
 public:  // shared by the tests and their helpers below
  static PostgresSinkOptions Options(const std::string& pipeline) {
    PostgresSinkOptions options;
    options.pipeline = pipeline;
    options.dsn = cluster_->Dsn();
    return options;
  }

  // Opens a sink; the position it reports goes to `position` when given.
  static std::unique_ptr<PostgresSink> OpenSink(const PostgresSinkOptions& options,
                                                AppliedPosition* position = nullptr) {
    auto sink = std::make_unique<PostgresSink>(options);
    auto opened = sink->Open();
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (position != nullptr && opened.ok()) *position = *opened;
    return sink;
  }

  // One batch of `txns`, committed at the last one's position; the first error, if any (and
  // then the batch is aborted).
  static core::Status ApplyBatch(PostgresSink& sink, const std::vector<Transaction>& txns) {
    core::Status status = sink.BeginBatch();
    for (const auto& txn : txns) {
      if (status.ok()) status = sink.Apply(txn);
    }
    if (status.ok()) status = sink.CommitBatch(PositionOf(txns.back()));
    if (!status.ok()) sink.AbortBatch();
    return status;
  }

  // The same, with the stream pausing after every transaction (Sink::StreamPaused).
  static core::Status ApplyBatchWithPauses(PostgresSink& sink,
                                           const std::vector<Transaction>& txns) {
    core::Status status = sink.BeginBatch();
    for (const auto& txn : txns) {
      if (status.ok()) status = sink.Apply(txn);
      if (status.ok()) status = sink.StreamPaused();
    }
    if (status.ok()) status = sink.CommitBatch(PositionOf(txns.back()));
    if (!status.ok()) sink.AbortBatch();
    return status;
  }
};

TEST_F(PostgresSinkTest, InsertsAreIdempotentAcrossACrashAndAReplay) {
  Exec("CREATE SCHEMA ins; CREATE TABLE ins.t (id int PRIMARY KEY, v text, n numeric)");
  auto t = Rel(20001, "ins", "t", {{"id", true}, {"v"}, {"n"}});
  const Transaction txn = Txn(0x10000, {Ins(t, {"1", "a", "1.5"}), Ins(t, {"2", "b", std::nullopt}),
                                        Ins(t, {"3", "c", "3"})});
  const auto options = Options("ins");

  {  // Applied but never committed: a crash before the commit shows nothing.
    AppliedPosition position;
    auto sink = OpenSink(options, &position);
    EXPECT_FALSE(position.end_lsn.valid());
    ASSERT_TRUE(sink->BeginBatch().ok());
    ASSERT_TRUE(sink->Apply(txn).ok());
  }
  EXPECT_EQ(Value1("SELECT count(*) FROM ins.t"), "0");

  {
    AppliedPosition position;
    auto sink = OpenSink(options, &position);
    EXPECT_FALSE(position.end_lsn.valid());
    auto st = ApplyBatch(*sink, {txn});
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(sink->stats().rows_applied, 3u);
  }
  // The next sink sees the position; replaying the batch anyway (ON CONFLICT) changes nothing.
  AppliedPosition position;
  auto sink = OpenSink(options, &position);
  EXPECT_EQ(position.end_lsn, txn.end_lsn);
  EXPECT_EQ(position.commit_time, txn.commit_time);
  auto st = ApplyBatch(*sink, {txn});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(
      Rows("SELECT id::text, v, n::text FROM ins.t ORDER BY id"),
      (std::vector<PgCluster::Row>{{"1", "a", "1.5"}, {"2", "b", std::nullopt}, {"3", "c", "3"}}));
  // An insert of an existing key takes the new values (the upsert path).
  st = ApplyBatch(*sink, {Txn(0x10100, {Ins(t, {"2", "b2", "22"})})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT v || '/' || n FROM ins.t WHERE id = 2"), "b2/22");
  EXPECT_EQ(Value1("SELECT end_lsn::text FROM sluice.applied WHERE pipeline = 'ins'"), "0/10100");
}

TEST_F(PostgresSinkTest, UpdatesByKeyAndByOldKey) {
  Exec(
      "CREATE SCHEMA upd; CREATE TABLE upd.t (id int PRIMARY KEY, v text);"
      "INSERT INTO upd.t VALUES (1, 'a'), (2, 'b')");
  auto t = Rel(20002, "upd", "t", {{"id", true}, {"v"}});
  auto sink = OpenSink(Options("upd"));
  auto st = ApplyBatch(
      *sink,
      {Txn(0x20000, {Upd(t, OldTupleKind::kNone, {}, Tup({"1", "a2"}))}),
       // Primary-key change: the old key finds the row.
       Txn(0x20100, {Upd(t, OldTupleKind::kKey, Tup({"2", std::nullopt}), Tup({"20", "b2"}))})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Rows("SELECT id::text, v FROM upd.t ORDER BY id"),
            (std::vector<PgCluster::Row>{{"1", "a2"}, {"20", "b2"}}));
  EXPECT_EQ(sink->stats().rows_not_found, 0u);
}

TEST_F(PostgresSinkTest, UpdateWithUnchangedToastKeepsTheTargetValue) {
  Exec("CREATE SCHEMA toast; CREATE TABLE toast.t (id int PRIMARY KEY, big text, v text)");
  auto t = Rel(20003, "toast", "t", {{"id", true}, {"big"}, {"v"}});
  std::string big;
  for (int i = 0; big.size() < 300000; ++i) big += std::to_string(i * 7919 % 100003) + ",";
  auto sink = OpenSink(Options("toast"));
  auto st = ApplyBatch(*sink, {Txn(0x30000, {Ins(t, {"1", big, "old"})})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  core::Tuple update_tuple = {Value::Text("1"), Value::UnchangedToast(), Value::Text("new")};
  st = ApplyBatch(*sink, {Txn(0x30100, {Upd(t, OldTupleKind::kNone, {}, update_tuple)})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT v FROM toast.t WHERE id = 1"), "new");
  EXPECT_EQ(Value1("SELECT length(big) FROM toast.t WHERE id = 1"), std::to_string(big.size()));
  EXPECT_EQ(Value1("SELECT big FROM toast.t WHERE id = 1"), big);
}

TEST_F(PostgresSinkTest, DeletesAndMissingRowsAreCountedNotFatal) {
  Exec(
      "CREATE SCHEMA del; CREATE TABLE del.t (id int PRIMARY KEY, v text);"
      "INSERT INTO del.t VALUES (1, 'a'), (2, 'b')");
  auto t = Rel(20004, "del", "t", {{"id", true}, {"v"}});
  auto sink = OpenSink(Options("del"));
  auto st = ApplyBatch(*sink, {Txn(0x40000, {Del(t, OldTupleKind::kKey, {"1", std::nullopt}),
                                             Del(t, OldTupleKind::kKey, {"99", std::nullopt}),
                                             Upd(t, OldTupleKind::kNone, {}, Tup({"98", "x"}))})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT string_agg(id::text, ',') FROM del.t"), "2");
  EXPECT_EQ(sink->stats().rows_not_found, 2u);
}

TEST_F(PostgresSinkTest, ReplicaIdentityFullChangesOneOfIdenticalRows) {
  Exec(
      "CREATE SCHEMA full_; CREATE TABLE full_.t (a int, doc json, b text);"
      "ALTER TABLE full_.t REPLICA IDENTITY FULL;"
      "INSERT INTO full_.t VALUES (1, '{\"k\": 1}', 'x'), (1, '{\"k\": 1}', 'x'),"
      "(2, NULL, 'y'), (2, NULL, 'y')");
  auto t = Rel(20005, "full_", "t", {{"a"}, {"doc", false, 114}, {"b"}}, ReplicaIdentity::kFull);
  auto sink = OpenSink(Options("full"));
  auto st =
      ApplyBatch(*sink, {Txn(0x50000, {Del(t, OldTupleKind::kFull, {"1", "{\"k\": 1}", "x"}),
                                       Upd(t, OldTupleKind::kFull, Tup({"2", std::nullopt, "y"}),
                                           Tup({"3", "[1]", "z"})),
                                       Ins(t, {"4", std::nullopt, "w"})})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Rows("SELECT a::text, doc::text, b FROM full_.t ORDER BY a, b"),
            (std::vector<PgCluster::Row>{{"1", "{\"k\": 1}", "x"},
                                         {"2", std::nullopt, "y"},
                                         {"3", "[1]", "z"},
                                         {"4", std::nullopt, "w"}}));
}

TEST_F(PostgresSinkTest, TruncateOfTwoTablesRestartsIdentity) {
  Exec(
      "CREATE SCHEMA trunc; CREATE TABLE trunc.a (id serial PRIMARY KEY, v text);"
      "CREATE TABLE trunc.b (id int PRIMARY KEY);"
      "INSERT INTO trunc.a (v) VALUES ('x'), ('y'); INSERT INTO trunc.b VALUES (1), (2);"
      "CREATE TABLE trunc.keep (id int PRIMARY KEY); INSERT INTO trunc.keep VALUES (1)");
  auto a = Rel(20006, "trunc", "a", {{"id", true}, {"v"}});
  auto b = Rel(20007, "trunc", "b", {{"id", true}});
  Change truncate;
  truncate.op = Operation::kTruncate;
  truncate.truncated = {a, b};
  truncate.truncate_restart_identity = true;
  Change message;
  message.op = Operation::kMessage;
  message.message_prefix = "p";
  message.message_content = "ignored";
  auto sink = OpenSink(Options("trunc"));
  auto st = ApplyBatch(*sink, {Txn(0x60000, {truncate, message})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT count(*) FROM trunc.a"), "0");
  EXPECT_EQ(Value1("SELECT count(*) FROM trunc.b"), "0");
  EXPECT_EQ(Value1("SELECT count(*) FROM trunc.keep"), "1");
  Exec("INSERT INTO trunc.a (v) VALUES ('z')");
  EXPECT_EQ(Value1("SELECT id FROM trunc.a"), "1");  // RESTART IDENTITY
}

TEST_F(PostgresSinkTest, OddIdentifiersAreQuotedEverywhere) {
  Exec(
      "CREATE SCHEMA \"Odd \"\"Schema\"\" ü\";"
      "CREATE TABLE \"Odd \"\"Schema\"\" ü\".\"Tab le\"\"x\" ("
      "\"Id\" int, \"ñame\" text, \"col \"\"q\"\"\" text, PRIMARY KEY (\"Id\", \"ñame\"))");
  const std::string schema = "Odd \"Schema\" ü";
  auto t = Rel(20008, schema, "Tab le\"x", {{"Id", true}, {"ñame", true}, {"col \"q\""}});
  auto sink = OpenSink(Options("odd"));
  auto st = ApplyBatch(
      *sink, {Txn(0x70000,
                  {Ins(t, {"1", "añ", "v1"}), Ins(t, {"2", "b", "v2"}), Ins(t, {"3", "c", "v3"})}),
              Txn(0x70100, {Upd(t, OldTupleKind::kNone, {}, Tup({"1", "añ", "it's \"q\""})),
                            Del(t, OldTupleKind::kKey, {"2", "b", std::nullopt}),
                            Upd(t, OldTupleKind::kKey, Tup({"3", "c", std::nullopt}),
                                Tup({"4", "d", "v4"}))})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Rows("SELECT \"Id\"::text, \"ñame\", \"col \"\"q\"\"\" FROM "
                 "\"Odd \"\"Schema\"\" ü\".\"Tab le\"\"x\" ORDER BY 1"),
            (std::vector<PgCluster::Row>{{"1", "añ", "it's \"q\""}, {"4", "d", "v4"}}));
}

TEST_F(PostgresSinkTest, ManyTypesTravelAsText) {
  Exec(
      "CREATE SCHEMA types; CREATE TYPE types.mood AS ENUM ('sad', 'happy');"
      "CREATE DOMAIN types.posint AS int CHECK (VALUE > 0);"
      "CREATE TABLE types.t (id int PRIMARY KEY, n numeric(20,6), ts timestamptz, "
      "ints int[], texts text[], j json, jb jsonb, by bytea, u uuid, m types.mood, "
      "d types.posint, f float8, iv interval, bo boolean, inet_ inet)");
  auto t = Rel(20009, "types", "t",
               {{"id", true},
                {"n"},
                {"ts"},
                {"ints"},
                {"texts"},
                {"j"},
                {"jb"},
                {"by"},
                {"u"},
                {"m"},
                {"d"},
                {"f"},
                {"iv"},
                {"bo"},
                {"inet_"}});
  // Values as the source's text output would carry them.
  const std::vector<Cell> row = {"1",
                                 "12345678901234.123456",
                                 "2024-02-29 23:59:59.123456+00",
                                 "{1,2,NULL,4}",
                                 "{\"a b\",\"q\\\"uote\",NULL}",
                                 "{\"k\":  [1, 2]}",
                                 "{\"a\": 1, \"b\": [true, null]}",
                                 "\\x00ff10",
                                 "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                                 "happy",
                                 "42",
                                 "0.1",
                                 "1 day 02:03:04",
                                 "t",
                                 "192.168.0.1/24"};
  auto sink = OpenSink(Options("types"));
  auto st = ApplyBatch(*sink, {Txn(0x80000, {Ins(t, row)})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto back =
      Rows("SET TIME ZONE 'UTC'; SELECT * FROM types.t");  // each column in its type's text output
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0], (PgCluster::Row{row.begin(), row.end()}));
  // A domain's check still applies: the error is permanent and names table and key.
  st = ApplyBatch(
      *sink,
      {Txn(0x80100, {Ins(t, {"2", std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                             std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                             "-1", std::nullopt, std::nullopt, std::nullopt, std::nullopt})})});
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(st.retryable());
  EXPECT_NE(st.message().find("types.t"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("(id)=(2)"), std::string::npos) << st.ToString();
}

TEST_F(PostgresSinkTest, BatchOfFiveTransactionsIsAtomicAndAKilledConnectionIsRetryable) {
  Exec("CREATE SCHEMA atom; CREATE TABLE atom.t (id int PRIMARY KEY, v text)");
  auto t = Rel(20010, "atom", "t", {{"id", true}, {"v"}});
  std::vector<Transaction> txns;
  for (int i = 0; i < 5; ++i) {
    txns.push_back(Txn(0xA0000 + 0x100 * i, {Ins(t, {std::to_string(2 * i), "x"}),
                                             Ins(t, {std::to_string(2 * i + 1), "y"})}));
  }
  const auto options = Options("atom");
  auto sink = OpenSink(options);

  // Killed in the middle of a batch: retryable, and nothing of the batch is visible.
  ASSERT_TRUE(sink->BeginBatch().ok());
  core::Status status = sink->Apply(txns[0]);
  if (status.ok()) status = sink->Apply(txns[1]);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(Value1("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                   "WHERE application_name = 'sluice-apply-atom'"),
            "1");
  for (size_t i = 2; i < txns.size() && status.ok(); ++i) status = sink->Apply(txns[i]);
  if (status.ok()) status = sink->CommitBatch(PositionOf(txns.back()));
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(status.retryable()) << status.ToString();
  std::cout << "[ killed ] " << status.ToString() << "\n";
  sink->AbortBatch();
  EXPECT_EQ(Value1("SELECT count(*) FROM atom.t"), "0");
  EXPECT_EQ(Value1("SELECT count(*) FROM sluice.applied WHERE pipeline = 'atom'"), "0");

  // Open() reconnects; the whole batch commits with the last end LSN, atomically.
  auto reopened = sink->Open();
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_FALSE(reopened->end_lsn.valid());
  status = ApplyBatch(*sink, txns);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(Value1("SELECT count(*) FROM atom.t"), "10");
  EXPECT_EQ(Value1("SELECT end_lsn::text FROM sluice.applied WHERE pipeline = 'atom'"),
            txns.back().end_lsn.ToString());
  EXPECT_EQ(Value1("SELECT (commit_time IS NOT NULL)::text FROM sluice.applied "
                   "WHERE pipeline = 'atom'"),
            "true");
}

TEST_F(PostgresSinkTest, MissingColumnFailsBeforeAnyRowIsWritten) {
  Exec(
      "CREATE SCHEMA miss; CREATE TABLE miss.good (id int PRIMARY KEY);"
      "CREATE TABLE miss.orders (id int PRIMARY KEY, total numeric)");
  auto good = Rel(20011, "miss", "good", {{"id", true}});
  auto orders = Rel(20012, "miss", "orders", {{"id", true}, {"total"}, {"note"}});
  auto sink = OpenSink(Options("miss"));
  ASSERT_TRUE(sink->BeginBatch().ok());
  ASSERT_TRUE(sink->Apply(Txn(0xB0000, {Ins(good, {"1"})})).ok());
  auto st = sink->Apply(Txn(0xB0100, {Ins(good, {"2"}), Ins(orders, {"1", "2", "n"})}));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.message(),
            "source table miss.orders has a new column \"note\" (first change at source LSN "
            "0/B00F0) that target table miss.orders lacks, and target.postgres.schema_changes is "
            "stop: run on the target ALTER TABLE \"miss\".\"orders\" ADD COLUMN \"note\" text; "
            "then restart sluice: it continues from the last source transaction it applied before "
            "the change, and nothing is lost (with schema_changes: add_columns sluice adds such "
            "columns itself)");
  EXPECT_FALSE(sink->CommitBatch(PositionOf(Txn(0xB0100, {}))).ok());
  sink->AbortBatch();
  EXPECT_EQ(Value1("SELECT count(*) FROM miss.good"), "0");
  EXPECT_EQ(Value1("SELECT count(*) FROM miss.orders"), "0");

  // Also when asked directly, and for a missing table.
  st = sink->CheckRelation(*orders);
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition) << st.ToString();
  st = sink->CheckRelation(*Rel(20013, "miss", "absent", {{"id", true}}));
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("miss.absent does not exist"), std::string::npos) << st.ToString();

  // Once the target has the column, a batch goes through on the same sink.
  Exec("ALTER TABLE miss.orders ADD COLUMN note text");
  st = ApplyBatch(*sink, {Txn(0xB0200, {Ins(good, {"3"}), Ins(orders, {"1", "2", "n"})})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  // A new Relation object for the same OID (source ALTER TABLE) is checked again.
  auto orders_v2 = Rel(20012, "miss", "orders", {{"id", true}, {"total"}, {"note"}, {"extra"}});
  ASSERT_TRUE(sink->BeginBatch().ok());
  st = sink->Apply(Txn(0xB0300, {Ins(orders_v2, {"2", "1", "m", "e"})}));
  EXPECT_NE(st.message().find("has a new column \"extra\""), std::string::npos) << st.ToString();
  sink->AbortBatch();
  EXPECT_EQ(Value1("SELECT count(*) FROM miss.orders"), "1");
}

TEST_F(PostgresSinkTest, ConstraintViolationIsPermanentAndNamesTableLsnAndKey) {
  Exec("CREATE SCHEMA cons; CREATE TABLE cons.orders (id int PRIMARY KEY, email text UNIQUE)");
  auto orders = Rel(20014, "cons", "orders", {{"id", true}, {"email"}});
  // With a sync after every statement, later statements fail as "transaction aborted" rather
  // than being skipped; the first error is the one reported either way.
  for (size_t depth : {size_t{1000}, size_t{1}}) {
    SCOPED_TRACE("pipeline_depth " + std::to_string(depth));
    auto options = Options("cons" + std::to_string(depth));
    options.pipeline_depth = depth;
    auto sink = OpenSink(options);
    // The delete's statement is prepared after the failure: its Parse never runs.
    Transaction txn = Txn(0xC0000, {Ins(orders, {"1", "a@x"}), Ins(orders, {"7", "a@x"}),
                                    Del(orders, OldTupleKind::kKey, {"1", std::nullopt})});
    auto st = ApplyBatch(*sink, {txn});
    ASSERT_FALSE(st.ok());
    // A value the target refuses: a data error (exit 65), permanent, with the server's code.
    EXPECT_EQ(st.code(), core::StatusCode::kDataRejected) << st.ToString();
    EXPECT_FALSE(st.retryable());
    EXPECT_EQ(st.server_code(), "23505");
    const std::string expected_prefix = "apply to cons.orders failed at source LSN " +
                                        txn.changes[1].lsn.ToString() +
                                        " for key (id)=(7): duplicate key value violates unique "
                                        "constraint";
    EXPECT_EQ(st.message().substr(0, expected_prefix.size()), expected_prefix) << st.ToString();
    // The change's context, set when it was queued, names its source transaction too.
    EXPECT_NE(st.message().find("; in source transaction " + std::to_string(txn.xid) +
                                ", committed at " + txn.commit_lsn.ToString()),
              std::string::npos)
        << st.ToString();
    EXPECT_EQ(Value1("SELECT count(*) FROM cons.orders"), "0");
    // The sink stays usable after the rollback, and re-prepares what never reached the server.
    st = ApplyBatch(*sink, {Txn(0xC0100, {Ins(orders, {"1", "a@x"}), Ins(orders, {"7", "b@x"}),
                                          Del(orders, OldTupleKind::kKey, {"1", std::nullopt})})});
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(Value1("SELECT string_agg(id::text, ',') FROM cons.orders"), "7");
    Exec("TRUNCATE cons.orders");
  }
}

TEST_F(PostgresSinkTest, FiftyThousandInsertsThroughThePipeline) {
  Exec("CREATE SCHEMA big; CREATE TABLE big.t (id int PRIMARY KEY, v text, n int)");
  auto t = Rel(20015, "big", "t", {{"id", true}, {"v"}, {"n"}});
  constexpr int kRows = 50000;
  std::vector<Transaction> txns;
  for (int txn = 0; txn < 50; ++txn) {
    std::vector<Change> changes;
    for (int i = 0; i < kRows / 50; ++i) {
      const int id = txn * (kRows / 50) + i;
      changes.push_back(
          Ins(t, {std::to_string(id), "row " + std::to_string(id) + std::string(40, 'x'),
                  std::to_string(id % 97)}));
    }
    txns.push_back(Txn(0x1000000 + 0x10000 * txn, std::move(changes)));
  }
  auto sink = OpenSink(Options("big"));
  const auto start = std::chrono::steady_clock::now();
  auto st = ApplyBatch(*sink, txns);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT count(*) FROM big.t"), std::to_string(kRows));
  EXPECT_EQ(Value1("SELECT sum(n) FROM big.t"), [] {
    long long sum = 0;
    for (int id = 0; id < kRows; ++id) sum += id % 97;
    return std::to_string(sum);
  }());
  // Prepared once per shape and row count, not per row: the batch goes out as multi-row
  // statements of at most 1024 rows (one statement per bucket size: 1024, 256, 64, 16, 4, 1).
  EXPECT_LE(sink->stats().statements_prepared, 1u);
  EXPECT_LE(sink->stats().multi_row_statements_prepared, 5u);
  EXPECT_EQ(sink->stats().changes_compacted, static_cast<uint64_t>(kRows));
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::cout << "[ throughput ] " << kRows << " inserts in one batch: " << seconds << " s, "
            << static_cast<long long>(kRows / seconds) << " rows/s\n";
  RecordProperty("rows_per_second", static_cast<int>(kRows / seconds));
}

TEST_F(PostgresSinkTest, OriginProgressAndReplicaRole) {
  Exec(
      "CREATE SCHEMA orig; CREATE TABLE orig.t (id int PRIMARY KEY, v text);"
      "CREATE TABLE orig.log (msg text);"
      "CREATE FUNCTION orig.trg() RETURNS trigger LANGUAGE plpgsql AS "
      "$$BEGIN INSERT INTO orig.log VALUES ('fired'); RETURN NEW; END$$;"
      "CREATE TRIGGER t_trg BEFORE INSERT OR UPDATE ON orig.t "
      "FOR EACH ROW EXECUTE FUNCTION orig.trg()");
  auto t = Rel(20016, "orig", "t", {{"id", true}, {"v"}});
  auto options = Options("orig");
  auto sink = OpenSink(options);
  EXPECT_EQ(sink->origin_name(), "sluice_orig");
  Transaction txn =
      Txn(0x2A0000, {Ins(t, {"1", "a"}), Upd(t, OldTupleKind::kNone, {}, Tup({"1", "b"}))});
  auto st = ApplyBatch(*sink, {txn});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT v FROM orig.t"), "b");
  // session_replication_role = replica: ordinary triggers do not fire.
  EXPECT_EQ(Value1("SELECT count(*) FROM orig.log"), "0");
  EXPECT_EQ(Value1("SELECT count(*) FROM pg_replication_origin WHERE roname = 'sluice_orig'"), "1");
  EXPECT_EQ(Value1("SELECT pg_replication_origin_progress('sluice_orig', false)::text"),
            txn.end_lsn.ToString());
  // The commit was recorded with the origin (local_lsn is the target's commit position).
  EXPECT_EQ(Value1("SELECT (s.local_lsn <> '0/0')::text FROM pg_replication_origin_status s "
                   "JOIN pg_replication_origin o ON o.roident = s.local_id "
                   "WHERE o.roname = 'sluice_orig'"),
            "true");
  // Without the role, the same trigger fires (the sink really did change the role).
  Exec("INSERT INTO orig.t VALUES (2, 'direct')");
  EXPECT_EQ(Value1("SELECT count(*) FROM orig.log"), "1");

  // A later batch moves the origin forward; a custom origin name is honoured.
  Transaction later = Txn(0x2B0000, {Ins(t, {"3", "c"})});
  st = ApplyBatch(*sink, {later});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT pg_replication_origin_progress('sluice_orig', false)::text"),
            later.end_lsn.ToString());
  sink.reset();
  options.pipeline = "orig2";
  options.origin_name = "custom origin";
  options.session_replication_role = "";
  sink = OpenSink(options);
  st = ApplyBatch(*sink, {Txn(0x2C0000, {Ins(t, {"4", "d"})})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT pg_replication_origin_progress('custom origin', false)::text"),
            "0/2C0000");
  EXPECT_EQ(Value1("SELECT count(*) FROM orig.log"), "2");  // origin role: trigger fired
}

TEST_F(PostgresSinkTest, BulkLoadCopiesRowsOnItsOwnConnection) {
  Exec("CREATE SCHEMA bulk; CREATE TABLE bulk.\"T x\" (id int PRIMARY KEY, \"v q\" text)");
  auto t = Rel(20017, "bulk", "T x", {{"id", true}, {"v q"}});
  auto sink = OpenSink(Options("bulk"));
  {
    auto loader = sink->OpenBulkLoad(*t);
    ASSERT_TRUE(loader.ok()) << loader.status().ToString();
    ASSERT_TRUE((*loader)->WriteCopyText("1\tone\n2\t\\N\n").ok());
    ASSERT_TRUE((*loader)->WriteCopyText("3\tthr").ok());
    ASSERT_TRUE((*loader)->WriteCopyText("ee\n").ok());
    auto st = (*loader)->Finish();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_EQ(Rows("SELECT id::text, \"v q\" FROM bulk.\"T x\" ORDER BY id"),
            (std::vector<PgCluster::Row>{{"1", "one"}, {"2", std::nullopt}, {"3", "three"}}));
  {  // Abandoned without Finish(): nothing is loaded.
    auto loader = sink->OpenBulkLoad(*t);
    ASSERT_TRUE(loader.ok()) << loader.status().ToString();
    ASSERT_TRUE((*loader)->WriteCopyText("4\tfour\n").ok());
  }
  {  // Bad data: Finish fails, naming the table.
    auto loader = sink->OpenBulkLoad(*t);
    ASSERT_TRUE(loader.ok()) << loader.status().ToString();
    ASSERT_TRUE((*loader)->WriteCopyText("x\ty\n").ok());
    auto st = (*loader)->Finish();
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("bulk.T x"), std::string::npos) << st.ToString();
  }
  EXPECT_EQ(Value1("SELECT count(*) FROM bulk.\"T x\""), "3");
}

TEST_F(PostgresSinkTest, ConnectFailureNamesTheEndpointNotThePassword) {
  PostgresSinkOptions options;
  options.pipeline = "nowhere";
  const int port = FreeLoopbackPort();
  options.dsn = "host=127.0.0.1 port=" + std::to_string(port) + " user=u password=s3cr3t";
  options.connect_timeout = std::chrono::milliseconds(2000);
  PostgresSink sink(options);
  auto opened = sink.Open();
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(opened.status().retryable()) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << opened.status().ToString();
  EXPECT_EQ(opened.status().message().find("s3cr3t"), std::string::npos);
  // Nothing works before Open() succeeds, and the failure says so.
  EXPECT_TRUE(sink.BeginBatch().retryable());
}

TEST_F(PostgresSinkTest, OriginSetupWithoutPrivilegeFailsClearly) {
  Exec(
      "CREATE ROLE weak LOGIN; CREATE SCHEMA IF NOT EXISTS sluice;"
      "CREATE TABLE IF NOT EXISTS sluice.applied (pipeline text PRIMARY KEY, end_lsn pg_lsn NOT "
      "NULL, commit_time timestamptz, updated_at timestamptz NOT NULL DEFAULT now());"
      "GRANT USAGE ON SCHEMA sluice TO weak; GRANT ALL ON sluice.applied TO weak");
  PostgresSinkOptions options = Options("weak");
  options.dsn += " user=weak";
  options.session_replication_role = "";
  PostgresSink sink(options);
  auto opened = sink.Open();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), core::StatusCode::kFailedPrecondition)
      << opened.status().ToString();
  EXPECT_NE(opened.status().message().find("replication origin \"sluice_weak\""), std::string::npos)
      << opened.status().ToString();
  EXPECT_NE(opened.status().message().find("needs superuser"), std::string::npos);

  options.session_replication_role = "replica";
  PostgresSink with_role(options);
  opened = with_role.Open();
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("session_replication_role"), std::string::npos)
      << opened.status().ToString();
}

TEST_F(PostgresSinkTest, BinaryValuesAreRejectedNamingTheColumn) {
  Exec("CREATE SCHEMA bin; CREATE TABLE bin.t (id int PRIMARY KEY, payload bytea)");
  auto t = Rel(20018, "bin", "t", {{"id", true}, {"payload"}});
  Change change = Ins(t, {"1", std::nullopt});
  change.new_tuple[1] = Value::Binary(std::string("\x00\x01", 2));
  auto sink = OpenSink(Options("bin"));
  auto st = ApplyBatch(*sink, {Txn(0xD0000, {change})});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), core::StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("bin.t.\"payload\""), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("source.binary: false"), std::string::npos);
}

// --- Multi-row statements (coalesced runs) ------------------------------------------------------

TEST_F(PostgresSinkTest, CoalescedRunsGiveTheSameRowsAsOneStatementPerRow) {
  Exec(
      "CREATE SCHEMA mix; "
      "CREATE TABLE mix.a (id int PRIMARY KEY, v text, n int, big text);"
      "CREATE TABLE mix.b (id int PRIMARY KEY, v text);"
      "CREATE TABLE mix.a2 (LIKE mix.a INCLUDING ALL); CREATE TABLE mix.b2 (LIKE mix.b "
      "INCLUDING ALL)");
  // The same stream applied to (a, b) with coalescing and to (a2, b2) without.
  auto make = [](std::string a_name, std::string b_name, core::Oid base) {
    auto a = Rel(base, "mix", a_name, {{"id", true}, {"v"}, {"n"}, {"big"}});
    auto b = Rel(base + 1, "mix", b_name, {{"id", true}, {"v"}});
    std::vector<Transaction> txns;
    std::vector<Change> c;
    for (int i = 1; i <= 300; ++i) {
      c.push_back(Ins(a, {std::to_string(i), "v" + std::to_string(i), std::to_string(i),
                          std::string(50, 'a' + i % 26)}));
    }
    c.push_back(Ins(b, {"1", "b1"}));  // another relation breaks the run
    for (int i = 301; i <= 310; ++i) c.push_back(Ins(a, {std::to_string(i), "w", "0", "z"}));
    // Updates of two unchanged-TOAST shapes, interleaved, and one key updated twice in a row.
    for (int i = 1; i <= 40; ++i) {
      const bool keep_big = i % 3 != 0;
      c.push_back(Upd(a, OldTupleKind::kNone, {},
                      {Value::Text(std::to_string(i)), Value::Text("u" + std::to_string(i)),
                       Value::Text(std::to_string(i * 10)),
                       keep_big ? Value::UnchangedToast() : Value::Text("B" + std::to_string(i))}));
    }
    for (int round = 0; round < 3; ++round) {
      c.push_back(Upd(a, OldTupleKind::kNone, {},
                      {Value::Text("7"), Value::Text("again" + std::to_string(round)),
                       Value::Text(std::to_string(700 + round)), Value::UnchangedToast()}));
      c.push_back(Upd(a, OldTupleKind::kNone, {},
                      {Value::Text("8"), Value::Text("x" + std::to_string(round)),
                       Value::Text(std::to_string(800 + round)), Value::UnchangedToast()}));
    }
    // An insert of a key twice in one run (the upsert takes the second), a key change.
    c.push_back(Ins(a, {"500", "first", "1", "q"}));
    c.push_back(Ins(a, {"501", "other", "1", "q"}));
    c.push_back(Ins(a, {"500", "second", "2", "r"}));
    c.push_back(Upd(a, OldTupleKind::kKey, Tup({"501", std::nullopt, std::nullopt, std::nullopt}),
                    Tup({"502", "moved", "5", "m"})));
    txns.push_back(Txn(base * 0x100 + 0x10000, std::move(c)));
    c.clear();
    // Deletes (one of a missing row, one twice), then re-inserting a deleted key.
    for (int i = 100; i < 150; ++i) {
      c.push_back(Del(a, OldTupleKind::kKey,
                      {std::to_string(i), std::nullopt, std::nullopt, std::nullopt}));
    }
    c.push_back(Del(a, OldTupleKind::kKey, {"9999", std::nullopt, std::nullopt, std::nullopt}));
    c.push_back(Del(a, OldTupleKind::kKey, {"120", std::nullopt, std::nullopt, std::nullopt}));
    c.push_back(Ins(a, {"120", "back", "120", "again"}));
    c.push_back(Upd(b, OldTupleKind::kNone, {}, Tup({"1", "b1-updated"})));
    txns.push_back(Txn(base * 0x100 + 0x20000, std::move(c)));
    return txns;
  };
  Exec(
      "CREATE TABLE mix.a3 (LIKE mix.a INCLUDING ALL); CREATE TABLE mix.b3 (LIKE mix.b "
      "INCLUDING ALL)");
  auto options = Options("mix");
  options.compact = false;  // adjacent runs only
  auto coalesced = OpenSink(options);
  auto st = ApplyBatch(*coalesced, make("a", "b", 20100));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(coalesced->stats().multi_row_statements_sent, 0u);
  EXPECT_EQ(coalesced->stats().row_by_row_replays, 0u);
  EXPECT_EQ(coalesced->stats().changes_compacted, 0u);
  options = Options("mix_single");
  options.coalesce = false;
  auto single = OpenSink(options);
  st = ApplyBatch(*single, make("a2", "b2", 20200));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(single->stats().multi_row_statements_sent, 0u);
  auto compacted = OpenSink(Options("mix_compacted"));  // the default: netted per row
  st = ApplyBatch(*compacted, make("a3", "b3", 20300));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(compacted->stats().changes_netted, 0u);
  EXPECT_EQ(compacted->stats().row_by_row_replays, 0u);

  EXPECT_EQ(Rows("SELECT * FROM mix.a ORDER BY id"), Rows("SELECT * FROM mix.a2 ORDER BY id"));
  EXPECT_EQ(Rows("SELECT * FROM mix.b ORDER BY id"), Rows("SELECT * FROM mix.b2 ORDER BY id"));
  EXPECT_EQ(Rows("SELECT * FROM mix.a ORDER BY id"), Rows("SELECT * FROM mix.a3 ORDER BY id"));
  EXPECT_EQ(Rows("SELECT * FROM mix.b ORDER BY id"), Rows("SELECT * FROM mix.b3 ORDER BY id"));
  EXPECT_EQ(Value1("SELECT count(*) FROM mix.a"), "263");
  EXPECT_EQ(Value1("SELECT v || n FROM mix.a WHERE id = 7"), "again2702");
  EXPECT_EQ(Value1("SELECT v || n || big FROM mix.a WHERE id = 500"), "second2r");
  EXPECT_EQ(Value1("SELECT big FROM mix.a WHERE id = 4"), std::string(50, 'a' + 4));
  EXPECT_EQ(Value1("SELECT big FROM mix.a WHERE id = 3"), "B3");
  EXPECT_EQ(Value1("SELECT v FROM mix.a WHERE id = 120"), "back");
  // The same changes counted: rows applied, and two deletes that found nothing.
  EXPECT_EQ(coalesced->stats().rows_applied, single->stats().rows_applied);
  EXPECT_EQ(coalesced->stats().rows_not_found, 2u);
  EXPECT_EQ(single->stats().rows_not_found, 2u);
}

TEST_F(PostgresSinkTest, ErrorInTheMiddleOfACoalescedRunNamesTheRow) {
  Exec(
      "CREATE SCHEMA mid; CREATE TABLE mid.t (id int PRIMARY KEY, n int CHECK (n >= 0), "
      "v text)");
  auto t = Rel(20300, "mid", "t", {{"id", true}, {"n"}, {"v"}});
  auto sink = OpenSink(Options("mid"));
  // A good transaction first, then one whose run of inserts has one bad row.
  std::vector<Change> good;
  for (int i = 0; i < 100; ++i) good.push_back(Ins(t, {std::to_string(i), "1", "g"}));
  std::vector<Change> bad;
  for (int i = 100; i < 400; ++i) {
    bad.push_back(Ins(t, {std::to_string(i), i == 257 ? "-5" : "1", "b"}));
  }
  const Transaction bad_txn = Txn(0x3010000, std::move(bad));
  auto st = ApplyBatch(*sink, {Txn(0x3000000, std::move(good)), bad_txn});
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(st.retryable()) << st.ToString();
  const std::string expected_prefix = "apply to mid.t failed at source LSN " +
                                      bad_txn.changes[157].lsn.ToString() +
                                      " for key (id)=(257): new row for relation \"t\" violates "
                                      "check constraint";
  EXPECT_EQ(st.message().substr(0, expected_prefix.size()), expected_prefix) << st.ToString();
  // Found by the row-by-row replay: the row's own source transaction.
  EXPECT_NE(st.message().find("; in source transaction " + std::to_string(bad_txn.xid) +
                              ", committed at " + bad_txn.commit_lsn.ToString()),
            std::string::npos)
      << st.ToString();
  EXPECT_EQ(sink->stats().row_by_row_replays, 1u);
  EXPECT_EQ(Value1("SELECT count(*) FROM mid.t"), "0");

  // An update run with a value its column type rejects (the VALUES list casts it): the error
  // names that update's key, found after the batch's commit was asked for.
  Exec("INSERT INTO mid.t SELECT g, 1, 'x' FROM generate_series(1, 50) g");
  std::vector<Change> updates;
  for (int i = 1; i <= 50; ++i) {
    updates.push_back(
        Upd(t, OldTupleKind::kNone, {}, Tup({std::to_string(i), i == 33 ? "lots" : "2", "y"})));
  }
  const Transaction update_txn = Txn(0x3020000, std::move(updates));
  st = ApplyBatch(*sink, {update_txn});
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(st.retryable()) << st.ToString();
  EXPECT_NE(st.message().find("at source LSN " + update_txn.changes[32].lsn.ToString() +
                              " for key (id)=(33)"),
            std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("invalid input syntax for type integer"), std::string::npos)
      << st.ToString();
  EXPECT_EQ(Value1("SELECT sum(n) FROM mid.t"), "50");

  // The sink stays usable and coalesces again in the next batch.
  const uint64_t sent = sink->stats().multi_row_statements_sent;
  std::vector<Change> fixed;
  for (int i = 1; i <= 50; ++i) {
    fixed.push_back(Upd(t, OldTupleKind::kNone, {}, Tup({std::to_string(i), "3", "z"})));
  }
  st = ApplyBatch(*sink, {Txn(0x3030000, std::move(fixed))});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(sink->stats().multi_row_statements_sent, sent);
  EXPECT_EQ(Value1("SELECT sum(n) FROM mid.t"), "150");
}

// --- Compaction (changes netted per row within a batch) ----------------------------------------

// Many small transactions over four tables, as pgbench's TPC-B writes them: the compacting sink
// leaves exactly the rows that one statement per change leaves, with far fewer statements.
TEST_F(PostgresSinkTest, CompactedBatchesLeaveTheSameRowsAsOneStatementPerChange) {
  for (const char* schema : {"tpc1", "tpc2"}) {
    const std::string s = schema;
    Exec("CREATE SCHEMA " + s + "; CREATE TABLE " + s +
         ".acc (id int PRIMARY KEY, bal int, filler text); CREATE TABLE " + s +
         ".tel (id int PRIMARY KEY, bal int); CREATE TABLE " + s +
         ".br (id int PRIMARY KEY, bal int); CREATE TABLE " + s +
         ".hist (tid int, bid int, aid int, delta int); INSERT INTO " + s +
         ".acc SELECT g, 0, 'f' FROM generate_series(1, 200) g; INSERT INTO " + s +
         ".tel SELECT g, 0 FROM generate_series(1, 10) g; INSERT INTO " + s +
         ".br SELECT g, 0 FROM generate_series(1, 2) g");
  }
  auto make = [](const std::string& schema, core::Oid base) {
    auto acc = Rel(base, schema, "acc", {{"id", true}, {"bal"}, {"filler"}});
    auto tel = Rel(base + 1, schema, "tel", {{"id", true}, {"bal"}});
    auto br = Rel(base + 2, schema, "br", {{"id", true}, {"bal"}});
    auto hist = Rel(base + 3, schema, "hist", {{"tid"}, {"bid"}, {"aid"}, {"delta"}},
                    ReplicaIdentity::kFull);
    std::vector<Transaction> txns;
    std::map<int, int> acc_bal, tel_bal, br_bal;
    uint32_t seed = 7;
    auto next = [&seed](int n) {
      seed = seed * 1103515245u + 12345u;
      return static_cast<int>((seed >> 8) % static_cast<uint32_t>(n)) + 1;
    };
    for (int t = 0; t < 600; ++t) {
      const int aid = next(200), tid = next(10), bid = next(2), delta = next(1000) - 500;
      acc_bal[aid] += delta;
      tel_bal[tid] += delta;
      br_bal[bid] += delta;
      std::vector<Change> c;
      c.push_back(Upd(acc, OldTupleKind::kNone, {},
                      Tup({std::to_string(aid), std::to_string(acc_bal[aid]), "f"})));
      c.push_back(Upd(tel, OldTupleKind::kNone, {},
                      Tup({std::to_string(tid), std::to_string(tel_bal[tid])})));
      c.push_back(Upd(br, OldTupleKind::kNone, {},
                      Tup({std::to_string(bid), std::to_string(br_bal[bid])})));
      c.push_back(Ins(hist, {std::to_string(tid), std::to_string(bid), std::to_string(aid),
                             std::to_string(delta)}));
      if (t % 100 == 99) {  // now and then a new account, and one that goes away
        c.push_back(Ins(acc, {std::to_string(1000 + t), "1", "new"}));
        c.push_back(Del(acc, OldTupleKind::kKey,
                        {std::to_string(t / 100 + 1), std::nullopt, std::nullopt}));
      }
      txns.push_back(Txn(0x5000000 + base * 0x10000 + 0x100 * t, std::move(c)));
    }
    return txns;
  };
  auto options = Options("tpc_single");
  options.coalesce = false;
  auto single = OpenSink(options);
  auto st = ApplyBatch(*single, make("tpc1", 20400));
  ASSERT_TRUE(st.ok()) << st.ToString();
  // Held to the batch's end (no early sends while the target idles), so the statement count
  // below shows the netting alone.
  auto compacted_options = Options("tpc_compacted");
  compacted_options.flush_on_pause_bytes = 0;
  auto compacted = OpenSink(compacted_options);
  st = ApplyBatch(*compacted, make("tpc2", 20500));
  ASSERT_TRUE(st.ok()) << st.ToString();

  for (const char* table : {"acc", "tel", "br", "hist"}) {
    SCOPED_TRACE(table);
    const std::string order = std::string(table) == "hist" ? "1, 2, 3, 4" : "1";
    EXPECT_EQ(Rows("SELECT * FROM tpc1." + std::string(table) + " ORDER BY " + order),
              Rows("SELECT * FROM tpc2." + std::string(table) + " ORDER BY " + order));
  }
  EXPECT_EQ(Value1("SELECT count(*) FROM tpc2.hist"), "600");
  const apply::PostgresSinkStats& stats = compacted->stats();
  EXPECT_EQ(stats.changes_compacted, 600u * 4 + 12);
  // 600 updates each of 10 tellers and 2 branches net to one per row.
  EXPECT_GE(stats.changes_netted, 600u * 2 - 12);
  EXPECT_EQ(stats.row_by_row_replays, 0u);
  EXPECT_LT(stats.rows_applied, single->stats().rows_applied);
  EXPECT_LT(stats.multi_row_statements_sent, 20u);
}

// Held changes sent before the batch's end (while the stream pauses, or once the target has
// caught up), then changed again, end up as if held to the end; none of it shows before the
// commit.
TEST_F(PostgresSinkTest, ChangesSentBeforeTheBatchEndsLeaveTheSameRows) {
  for (const char* schema : {"pause1", "pause2", "pause3"}) {
    const std::string s = schema;
    Exec("CREATE SCHEMA " + s + "; CREATE TABLE " + s + ".acc (id int PRIMARY KEY, bal int); " +
         "INSERT INTO " + s + ".acc SELECT g, 0 FROM generate_series(1, 50) g");
  }
  auto make = [](const std::string& schema, core::Oid base) {
    auto acc = Rel(base, schema, "acc", {{"id", true}, {"bal"}});
    std::vector<Transaction> txns;
    std::map<int, int> bal;
    for (int t = 0; t < 300; ++t) {
      const int id = 1 + (t * 7) % 50;  // every row, again and again, across pauses
      bal[id] += t;
      std::vector<Change> c;
      c.push_back(
          Upd(acc, OldTupleKind::kNone, {}, Tup({std::to_string(id), std::to_string(bal[id])})));
      if (t % 30 == 29) {  // a row that comes and goes within the batch, across a pause
        c.push_back(Ins(acc, {std::to_string(1000 + t), "1"}));
        if (t >= 59)
          c.push_back(Del(acc, OldTupleKind::kKey, {std::to_string(1000 + t - 30), std::nullopt}));
      }
      txns.push_back(Txn(0x9000000 + base * 0x10000 + 0x100 * t, std::move(c)));
    }
    return txns;
  };
  auto held = OpenSink(Options("pause_held"));
  auto st = ApplyBatch(*held, make("pause1", 20900));
  ASSERT_TRUE(st.ok()) << st.ToString();

  // Sends early at every chance (threshold 1 byte), with the stream pausing after each
  // transaction or never; nothing shows before the commit, and the rows end up as held ones.
  auto send_early = [&](const std::string& schema, core::Oid base, bool pauses) {
    auto options = Options(schema + "_sink");
    options.flush_on_pause_bytes = 1;
    auto sink = OpenSink(options);
    const std::vector<Transaction> txns = make(schema, base);
    core::Status status = sink->BeginBatch();
    for (const auto& txn : txns) {
      if (status.ok()) status = sink->Apply(txn);
      if (status.ok() && pauses) status = sink->StreamPaused();
    }
    EXPECT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(Value1("SELECT sum(bal) FROM " + schema + ".acc"), "0");  // sent, not committed
    if (status.ok()) status = sink->CommitBatch(PositionOf(txns.back()));
    EXPECT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(Rows("SELECT * FROM pause1.acc ORDER BY 1"),
              Rows("SELECT * FROM " + schema + ".acc ORDER BY 1"));
    EXPECT_EQ(Value1("SELECT count(*) FROM " + schema + ".acc WHERE id >= 1000"), "1");
    return sink;
  };
  EXPECT_EQ(held->stats().early_flushes, 0u);

  auto sent = send_early("pause2", 21000, /*pauses=*/true);
  // Once per transaction: by Apply when the target had caught up, else by the pause.
  EXPECT_EQ(sent->stats().early_flushes, 300u);
  EXPECT_GT(sent->stats().rows_applied, held->stats().rows_applied);  // the price of sending early

  // No pauses at all (the stream always busy): held changes go out whenever the target has
  // done all it was sent, at least once (at the start it has nothing to do).
  auto idle = send_early("pause3", 21050, /*pauses=*/false);
  EXPECT_GE(idle->stats().early_flushes, 1u);
  EXPECT_LE(idle->stats().early_flushes, 300u);

  // Below the threshold (the default, 256 KB) a pause sends nothing.
  auto small = OpenSink(Options("pause_small"));
  st = ApplyBatchWithPauses(
      *small, {Txn(0x9F00000, {Upd(Rel(21100, "pause1", "acc", {{"id", true}, {"bal"}}),
                                   OldTupleKind::kNone, {}, Tup({"1", "7"}))})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(small->stats().early_flushes, 0u);
  EXPECT_EQ(Value1("SELECT bal FROM pause1.acc WHERE id = 1"), "7");
}

// A unique index besides the key can see the order of rows: such a table keeps the source's
// order (a swap through a temporary value would otherwise collide).
TEST_F(PostgresSinkTest, SecondUniqueIndexKeepsTheSourceOrder) {
  Exec(
      "CREATE SCHEMA swap; CREATE TABLE swap.u (id int PRIMARY KEY, email text UNIQUE); "
      "INSERT INTO swap.u VALUES (1, 'a'), (2, 'b')");
  auto u = Rel(20600, "swap", "u", {{"id", true}, {"email"}});
  auto sink = OpenSink(Options("swap"));
  auto st = ApplyBatch(*sink, {Txn(0x6000000, {Upd(u, OldTupleKind::kNone, {}, Tup({"1", "tmp"})),
                                               Upd(u, OldTupleKind::kNone, {}, Tup({"2", "a"}))}),
                               Txn(0x6000100, {Upd(u, OldTupleKind::kNone, {}, Tup({"1", "b"}))})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT string_agg(id || email, ',' ORDER BY id) FROM swap.u"), "1b,2a");
  EXPECT_EQ(sink->stats().changes_compacted, 0u);
}

// A trigger enabled ALWAYS fires for the apply session: every change reaches it, in order.
TEST_F(PostgresSinkTest, FiringTriggerSeesEveryChange) {
  Exec(
      "CREATE SCHEMA trig; CREATE TABLE trig.t (id int PRIMARY KEY, n int); "
      "CREATE TABLE trig.audit (seq serial, n int); "
      "CREATE FUNCTION trig.log() RETURNS trigger LANGUAGE plpgsql AS "
      "$$ BEGIN INSERT INTO trig.audit (n) VALUES (NEW.n); RETURN NEW; END $$; "
      "CREATE TRIGGER log AFTER INSERT OR UPDATE ON trig.t FOR EACH ROW EXECUTE FUNCTION "
      "trig.log(); ALTER TABLE trig.t ENABLE ALWAYS TRIGGER log");
  auto t = Rel(20700, "trig", "t", {{"id", true}, {"n"}});
  auto sink = OpenSink(Options("trig"));
  auto st = ApplyBatch(*sink, {Txn(0x7000000, {Ins(t, {"1", "1"})}),
                               Txn(0x7000100, {Upd(t, OldTupleKind::kNone, {}, Tup({"1", "2"}))}),
                               Txn(0x7000200, {Upd(t, OldTupleKind::kNone, {}, Tup({"1", "3"}))})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT string_agg(n::text, ',' ORDER BY seq) FROM trig.audit"), "1,2,3");
  EXPECT_EQ(sink->stats().changes_compacted, 0u);
}

// A netted statement that fails is replayed change by change, so the error names the source's
// change (here an update of a row inserted earlier in the batch, netted into one upsert).
// When the held changes of a batch go out.
enum class Sends {
  kAtCommit,         // held to the batch's end (the default threshold is not reached)
  kOnStreamPauses,   // the stream pauses after each transaction, threshold 1 byte
  kWhenTargetIdles,  // no pauses, threshold 1 byte: sent whenever the target has caught up
};

// 50 netted inserts and an update of one of them that a CHECK refuses, in one batch: the error
// names the update's LSN and key, found by replaying the batch row by row, and nothing is
// written.
void ExpectTheFailingChangeNamed(const std::string& schema, core::Oid oid, Sends sends) {
  PostgresSinkTest::Exec("CREATE SCHEMA " + schema + "; CREATE TABLE " + schema +
                         ".t (id int PRIMARY KEY, n int CHECK (n >= 0))");
  auto t = Rel(oid, schema, "t", {{"id", true}, {"n"}});
  auto options = PostgresSinkTest::Options(schema);
  if (sends != Sends::kAtCommit) options.flush_on_pause_bytes = 1;
  const bool pauses = sends == Sends::kOnStreamPauses;
  auto sink = PostgresSinkTest::OpenSink(options);
  std::vector<Change> inserts;
  for (int i = 1; i <= 50; ++i) inserts.push_back(Ins(t, {std::to_string(i), "1"}));
  const Transaction update = Txn(0x8000100, {Upd(t, OldTupleKind::kNone, {}, Tup({"20", "-5"}))});
  const std::vector<Transaction> batch = {Txn(0x8000000, std::move(inserts)), update};
  auto st = pauses ? PostgresSinkTest::ApplyBatchWithPauses(*sink, batch)
                   : PostgresSinkTest::ApplyBatch(*sink, batch);
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(st.retryable());
  const std::string expected_prefix = "apply to " + schema + ".t failed at source LSN " +
                                      update.changes[0].lsn.ToString() + " for key (id)=(20)";
  EXPECT_EQ(st.message().substr(0, expected_prefix.size()), expected_prefix) << st.ToString();
  EXPECT_EQ(sink->stats().row_by_row_replays, 1u);
  EXPECT_EQ(sink->stats().early_flushes > 0, sends != Sends::kAtCommit);
  EXPECT_EQ(PostgresSinkTest::Value1("SELECT count(*) FROM " + schema + ".t"), "0");
}

TEST_F(PostgresSinkTest, ErrorInACompactedStatementNamesTheSourceChange) {
  ExpectTheFailingChangeNamed("cerr", 20800, Sends::kAtCommit);
}

// The same when the statements went out while the stream paused.
TEST_F(PostgresSinkTest, ErrorInChangesSentWhileTheStreamPausesNamesTheSourceChange) {
  ExpectTheFailingChangeNamed("perr", 21200, Sends::kOnStreamPauses);
}

// The same when they went out because the target had caught up.
TEST_F(PostgresSinkTest, ErrorInChangesSentWhileTheTargetIdlesNamesTheSourceChange) {
  ExpectTheFailingChangeNamed("ierr", 21300, Sends::kWhenTargetIdles);
}

// Large groups of netted inserts go by COPY: values needing COPY's escapes arrive intact.
TEST_F(PostgresSinkTest, InsertsWrittenByCopyKeepEveryByte) {
  Exec("CREATE SCHEMA cp; CREATE TABLE cp.t (id int PRIMARY KEY, v text, n numeric)");
  auto t = Rel(20900, "cp", "t", {{"id", true}, {"v"}, {"n"}});
  const std::vector<std::string> odd = {"tab\there",  "new\nline", "cr\rhere", "back\\slash",
                                        "\\N",        "\\.",       "",         "ünïcödé",
                                        "trailing\\", "a\\tb"};
  std::vector<Change> changes;
  for (int i = 0; i < 3000; ++i) {
    Cell v =
        i % 7 == 0 ? Cell() : Cell(odd[static_cast<size_t>(i) % odd.size()] + std::to_string(i));
    changes.push_back(Ins(t, {std::to_string(i), v, i % 5 == 0 ? Cell() : Cell("1.50")}));
  }
  auto sink = OpenSink(Options("cp"));
  auto st = ApplyBatch(*sink, {Txn(0x9000000, changes)});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(sink->stats().copies, 1u);
  auto rows = Rows("SELECT id, v, n FROM cp.t ORDER BY id");
  ASSERT_EQ(rows.size(), 3000u);
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(rows[i][1], changes[i].new_tuple[1].is_null()
                              ? std::optional<std::string>()
                              : std::optional<std::string>(changes[i].new_tuple[1].data));
    EXPECT_EQ(rows[i][2], changes[i].new_tuple[2].is_null() ? std::optional<std::string>()
                                                            : std::optional<std::string>("1.50"));
  }
}

// COPY cannot upsert: when a key the stream inserts exists on the target already, the batch
// fails retryably, and applied again by the same sink (reopened, as the pipeline does) it
// upserts that table from then on.
TEST_F(PostgresSinkTest, CopyMeetingAnExistingKeyFallsBackToUpserts) {
  Exec(
      "CREATE SCHEMA cpk; CREATE TABLE cpk.t (id int PRIMARY KEY, v text); "
      "INSERT INTO cpk.t VALUES (1500, 'already here')");
  auto t = Rel(21000, "cpk", "t", {{"id", true}, {"v"}});
  std::vector<Change> changes;
  for (int i = 0; i < 2500; ++i) changes.push_back(Ins(t, {std::to_string(i), "new"}));
  const Transaction txn = Txn(0xA000000, changes);
  auto sink = OpenSink(Options("cpk"));
  auto st = ApplyBatch(*sink, {txn});
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.retryable()) << st.ToString();
  EXPECT_NE(st.message().find("cpk.t"), std::string::npos) << st.ToString();
  EXPECT_EQ(sink->stats().copy_key_conflicts, 1u);
  EXPECT_EQ(Value1("SELECT count(*) FROM cpk.t"), "1");  // the batch rolled back

  ASSERT_TRUE(sink->Open().ok());
  st = ApplyBatch(*sink, {txn});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(sink->stats().copies, 0u);
  EXPECT_EQ(Value1("SELECT count(*) FROM cpk.t WHERE v = 'new'"), "2500");
  EXPECT_EQ(Value1("SELECT max(end_lsn)::text FROM sluice.applied WHERE pipeline = 'cpk'"),
            txn.end_lsn.ToString());
}

// A keyless table cannot upsert: a unique index of the target's own that the COPY violates is a
// permanent error, replayed change by change to name the row.
TEST_F(PostgresSinkTest, CopyIntoKeylessTableMeetingATargetUniqueIndexIsPermanent) {
  Exec("CREATE SCHEMA cpn; CREATE TABLE cpn.t (a int, b text); CREATE UNIQUE INDEX ON cpn.t (a)");
  auto t = Rel(21100, "cpn", "t", {{"a"}, {"b"}}, ReplicaIdentity::kFull);
  std::vector<Change> changes;
  for (int i = 0; i < 2500; ++i) {
    changes.push_back(Ins(t, {std::to_string(i == 2100 ? 7 : i), "x"}));
  }
  const Transaction txn = Txn(0xB000000, changes);
  auto sink = OpenSink(Options("cpn"));
  auto st = ApplyBatch(*sink, {txn});
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(st.retryable()) << st.ToString();
  EXPECT_NE(st.message().find("at source LSN " + txn.changes[2100].lsn.ToString()),
            std::string::npos)
      << st.ToString();
  EXPECT_EQ(sink->stats().copy_key_conflicts, 0u);
  EXPECT_EQ(sink->stats().row_by_row_replays, 1u);
  EXPECT_EQ(Value1("SELECT count(*) FROM cpn.t"), "0");
}

// A target whose tables have GENERATED ALWAYS identity columns (as `pg_dump -s` of the source
// makes them) and columns of their own: every write path keeps the source's values there.
TEST_F(PostgresSinkTest, AlwaysIdentityColumnsTakeEveryWritePath) {
  Exec(
      "CREATE SCHEMA ident;"
      "CREATE TABLE ident.k (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);"
      "CREATE TABLE ident.t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
      " seq bigint GENERATED ALWAYS AS IDENTITY, big text, v text, own text DEFAULT 'd',"
      " own_id bigint GENERATED ALWAYS AS IDENTITY, gen text GENERATED ALWAYS AS (v || '!') "
      "STORED)");
  auto k = Rel(20101, "ident", "k", {{"id", true}, {"v"}});
  auto t = Rel(20102, "ident", "t", {{"id", true}, {"seq"}, {"big"}, {"v"}});
  auto sink = OpenSink(Options("ident"));

  // Netted inserts of a table whose only ALWAYS column is its key go by COPY; the other table
  // (an ALWAYS column outside the key) is not netted and gets multi-row INSERTs.
  std::vector<Change> inserts;
  for (int i = 1; i <= 2500; ++i) inserts.push_back(Ins(k, {std::to_string(i), "v"}));
  for (int i = 1; i <= 20; ++i) {
    inserts.push_back(
        Ins(t, {std::to_string(i), std::to_string(100 + i), "b" + std::to_string(i), "v"}));
  }
  auto st = ApplyBatch(*sink, {Txn(0x900000, std::move(inserts))});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(sink->stats().copies, 1u);
  EXPECT_EQ(Value1("SELECT count(*) || ' ' || max(id) FROM ident.k"), "2500 2500");
  EXPECT_EQ(Rows("SELECT id::text, seq::text, big, v, own, gen FROM ident.t WHERE id = 5"),
            (std::vector<PgCluster::Row>{{"5", "105", "b5", "v", "d", "v!"}}));
  Exec("UPDATE ident.t SET own = 'mine' WHERE id = 5");
  const std::string own_id = Value1("SELECT own_id FROM ident.t WHERE id = 5");
  const uint64_t multi_row_before = sink->stats().multi_row_statements_sent;

  std::vector<Change> changes;
  // Sets seq: moved by delete + insert; the unchanged TOAST value and the target's own columns
  // come from the old row, the generated column is computed again.
  changes.push_back(
      Upd(t, OldTupleKind::kNone, {},
          {Value::Text("5"), Value::Text("205"), Value::UnchangedToast(), Value::Text("v5")}));
  // Key change of an ALWAYS key: moved, found by the old key.
  changes.push_back(Upd(k, OldTupleKind::kKey, Tup({"7", std::nullopt}), Tup({"7007", "moved"})));
  for (int i = 100; i < 200; ++i) {  // netted updates: multi-row UPDATEs that leave id alone
    changes.push_back(Upd(k, OldTupleKind::kNone, {}, Tup({std::to_string(i), "u"})));
  }
  changes.push_back(Ins(k, {"1", "again"}));  // an existing key: the upsert path
  changes.push_back(Upd(t, OldTupleKind::kNone, {}, Tup({"999", "1", "b", "none"})));  // missing
  changes.push_back(Del(t, OldTupleKind::kKey, {"6", std::nullopt, std::nullopt, std::nullopt}));
  st = ApplyBatch(*sink, {Txn(0x910000, std::move(changes))});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Rows("SELECT id::text, seq::text, big, v, own, own_id::text, gen FROM ident.t WHERE "
                 "id = 5"),
            (std::vector<PgCluster::Row>{{"5", "205", "b5", "v5", "mine", own_id, "v5!"}}));
  EXPECT_EQ(Value1("SELECT count(*) FROM ident.t"), "19");
  EXPECT_EQ(Value1("SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM ident.k WHERE id IN "
                   "(1, 7, 7007, 100, 199, 200)"),
            "1=again,100=u,199=u,200=v,7007=moved");
  EXPECT_GT(sink->stats().multi_row_statements_sent, multi_row_before);
  EXPECT_EQ(sink->stats().rows_not_found, 1u);

  // The initial copy's loader writes the source's identity values too.
  Exec("CREATE TABLE ident.bulk (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)");
  auto loader = sink->OpenBulkLoad(*Rel(20103, "ident", "bulk", {{"id", true}, {"v"}}));
  ASSERT_TRUE(loader.ok()) << loader.status().ToString();
  ASSERT_TRUE((*loader)->WriteCopyText("41\ta\n42\tb\n").ok());
  st = (*loader)->Finish();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT string_agg(id::text, ',' ORDER BY id) FROM ident.bulk"), "41,42");
}

// Columns the target computes, or that nothing the source sends can fill, stop the pipeline
// before any row is written, with an error naming table, column and the fix.
TEST_F(PostgresSinkTest, TargetColumnsTheSourceCannotFillAreRefusedBeforeAnyRowIsWritten) {
  Exec(
      "CREATE SCHEMA refuse;"
      "CREATE TABLE refuse.gen (id int PRIMARY KEY, a int,"
      " d int GENERATED ALWAYS AS (a * 2) STORED);"
      "CREATE TABLE refuse.req (id int PRIMARY KEY, need text NOT NULL)");
  auto gen = Rel(20111, "refuse", "gen", {{"id", true}, {"a"}, {"d"}});
  auto req = Rel(20112, "refuse", "req", {{"id", true}});
  auto sink = OpenSink(Options("refuse"));
  core::Status st = sink->CheckRelation(*gen);
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("target column refuse.gen.\"d\" is generated"), std::string::npos)
      << st.ToString();
  st = ApplyBatch(*sink, {Txn(0xA00000, {Ins(req, {"1"})})});
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("target column refuse.req.\"need\" is NOT NULL without a default"),
            std::string::npos)
      << st.ToString();
  EXPECT_EQ(Value1("SELECT count(*) FROM refuse.req"), "0");
  // A trigger that fires for the apply session may fill it: then it is the trigger's business.
  Exec(
      "CREATE FUNCTION refuse.fill() RETURNS trigger LANGUAGE plpgsql AS"
      " $$ BEGIN NEW.need := 'filled'; RETURN NEW; END $$;"
      "CREATE TRIGGER fill BEFORE INSERT ON refuse.req FOR EACH ROW EXECUTE FUNCTION refuse.fill();"
      "ALTER TABLE refuse.req ENABLE ALWAYS TRIGGER fill");
  auto req_v2 = Rel(20112, "refuse", "req", {{"id", true}});
  st = ApplyBatch(*sink, {Txn(0xA10000, {Ins(req_v2, {"1"})})});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Value1("SELECT need FROM refuse.req"), "filled");

  // Initial copy: a column the source generates must be generated on the target as well.
  core::TableDefinition def;
  def.relation = *Rel(20113, "refuse", "plain", {{"id", true}, {"a"}});
  def.column_types = {"integer", "integer"};
  def.not_null = {true, false};
  def.generated_columns = {{"mid", "integer", "(a + 1)", 1},
                           {"last", "text", "('#'::text || id)", 2}};
  Exec("CREATE TABLE refuse.plain (id int PRIMARY KEY, a int, mid int, last text)");
  st = sink->PrepareCopyTarget(def, /*create_missing=*/false, /*truncate_first=*/false);
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("source column refuse.plain.\"mid\" is generated"), std::string::npos)
      << st.ToString();
  // Created by sluice, the table computes them, in the source's column order.
  Exec("DROP TABLE refuse.plain");
  st = sink->PrepareCopyTarget(def, /*create_missing=*/true, /*truncate_first=*/false);
  ASSERT_TRUE(st.ok()) << st.ToString();
  Exec("INSERT INTO refuse.plain (id, a) VALUES (7, 1)");
  EXPECT_EQ(Value1("SELECT p::text FROM refuse.plain p"), "(7,2,1,#7)");
}

}  // namespace
}  // namespace sluice::testing
