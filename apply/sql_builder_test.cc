#include "apply/sql_builder.h"

#include <gtest/gtest.h>

#include "core/test_builders.h"

namespace sluice::apply {
namespace {

using core::Change;
using core::Column;
using core::OldTupleKind;
using core::Operation;
using core::Relation;
using core::RelationPtr;
using core::ReplicaIdentity;
using core::Value;

RelationPtr MakeRelation(std::vector<Column> columns,
                         ReplicaIdentity identity = ReplicaIdentity::kDefault,
                         std::string schema = "public", std::string name = "orders") {
  auto relation = std::make_shared<Relation>();
  relation->oid = 16384;
  relation->schema = std::move(schema);
  relation->name = std::move(name);
  relation->replica_identity = identity;
  relation->columns = std::move(columns);
  return relation;
}

// orders(id int PK, note text, total numeric)
RelationPtr Orders() {
  return MakeRelation({{"id", 23, -1, true}, {"note", 25, -1, false}, {"total", 1700, -1, false}});
}

// A table under REPLICA IDENTITY FULL: pgoutput flags every column as key.
RelationPtr FullIdentity() {
  return MakeRelation({{"a", 23, -1, true}, {"doc", 114, -1, true}, {"b", 25, -1, true}},
                      ReplicaIdentity::kFull, "public", "events");
}

Change Insert(RelationPtr relation, core::Tuple tuple) {
  return core::testing::MakeInsert(std::move(relation), std::move(tuple));
}

Change Update(RelationPtr relation, OldTupleKind old_kind, core::Tuple old_tuple,
              core::Tuple new_tuple) {
  return core::testing::MakeUpdate(std::move(relation), std::move(new_tuple), old_kind,
                                   std::move(old_tuple));
}

Change Delete(RelationPtr relation, OldTupleKind old_kind, core::Tuple old_tuple) {
  return core::testing::MakeDelete(std::move(relation), std::move(old_tuple), old_kind);
}

RowStatement Build(const Change& change) {
  auto shape = ShapeOf(change);
  EXPECT_TRUE(shape.ok()) << shape.status().ToString();
  auto statement = BuildRowStatement(*change.relation, *shape);
  EXPECT_TRUE(statement.ok()) << statement.status().ToString();
  return statement.ok() ? *statement : RowStatement{};
}

using Side = ParamSource::Side;

TEST(SqlBuilderTest, InsertWithKeyUpserts) {
  auto change = Insert(Orders(), {Value::Text("1"), Value::Text("n"), Value::Null()});
  RowStatement s = Build(change);
  EXPECT_EQ(s.sql,
            "INSERT INTO \"public\".\"orders\" (\"id\", \"note\", \"total\") VALUES ($1, $2, $3) "
            "ON CONFLICT (\"id\") DO UPDATE SET \"note\" = EXCLUDED.\"note\", "
            "\"total\" = EXCLUDED.\"total\"");
  EXPECT_EQ(s.params,
            (std::vector<ParamSource>{{Side::kNew, 0}, {Side::kNew, 1}, {Side::kNew, 2}}));
}

TEST(SqlBuilderTest, InsertWhereEveryColumnIsKeyDoesNothingOnConflict) {
  auto relation = MakeRelation({{"a", 23, -1, true}, {"b", 23, -1, true}}, ReplicaIdentity::kIndex,
                               "public", "link");
  RowStatement s = Build(Insert(relation, {Value::Text("1"), Value::Text("2")}));
  EXPECT_EQ(s.sql,
            "INSERT INTO \"public\".\"link\" (\"a\", \"b\") VALUES ($1, $2) "
            "ON CONFLICT (\"a\", \"b\") DO NOTHING");
}

TEST(SqlBuilderTest, InsertUnderReplicaIdentityFullIsPlain) {
  auto change = Insert(FullIdentity(), {Value::Text("1"), Value::Text("{}"), Value::Null()});
  EXPECT_EQ(Build(change).sql,
            "INSERT INTO \"public\".\"events\" (\"a\", \"doc\", \"b\") VALUES ($1, $2, $3)");
  EXPECT_FALSE(HasUsableKey(*FullIdentity()));
  EXPECT_TRUE(HasUsableKey(*Orders()));
}

TEST(SqlBuilderTest, InsertWithoutKeyIsPlain) {
  auto relation = MakeRelation({{"a", 23, -1, false}}, ReplicaIdentity::kDefault, "s", "nokey");
  EXPECT_EQ(Build(Insert(relation, {Value::Text("1")})).sql,
            "INSERT INTO \"s\".\"nokey\" (\"a\") VALUES ($1)");
}

TEST(SqlBuilderTest, UpdateByNewKeyWhenKeyUnchangedSetsOnlyTheOtherColumns) {
  auto change = Update(Orders(), OldTupleKind::kNone, {},
                       {Value::Text("1"), Value::Text("x"), Value::Text("2.50")});
  RowStatement s = Build(change);
  EXPECT_EQ(s.sql,
            "UPDATE \"public\".\"orders\" SET \"note\" = $1, \"total\" = $2 "
            "WHERE \"id\" = $3");
  EXPECT_EQ(s.params.back(), (ParamSource{Side::kNew, 0}));
  // Nothing but the key: nothing to set.
  auto link = MakeRelation({{"a", 23, -1, true}, {"b", 23, -1, true}}, ReplicaIdentity::kIndex);
  EXPECT_EQ(Build(Update(link, OldTupleKind::kNone, {}, {Value::Text("1"), Value::Text("2")})).sql,
            "");
}

TEST(SqlBuilderTest, UpdateByOldKeyWhenKeyChanged) {
  auto change =
      Update(Orders(), OldTupleKind::kKey, {Value::Text("1"), Value::Null(), Value::Null()},
             {Value::Text("10"), Value::Text("x"), Value::Null()});
  RowStatement s = Build(change);
  EXPECT_EQ(s.sql,
            "UPDATE \"public\".\"orders\" SET \"id\" = $1, \"note\" = $2, \"total\" = $3 "
            "WHERE \"id\" = $4");
  EXPECT_EQ(s.params.back(), (ParamSource{Side::kOld, 0}));
}

TEST(SqlBuilderTest, UpdateLeavesUnchangedToastOutOfSet) {
  auto change = Update(Orders(), OldTupleKind::kNone, {},
                       {Value::Text("1"), Value::UnchangedToast(), Value::Text("3")});
  RowStatement s = Build(change);
  EXPECT_EQ(s.sql, "UPDATE \"public\".\"orders\" SET \"total\" = $1 WHERE \"id\" = $2");
  EXPECT_EQ(s.params, (std::vector<ParamSource>{{Side::kNew, 2}, {Side::kNew, 0}}));
  // A different unchanged-TOAST set is a different statement.
  auto other = Update(Orders(), OldTupleKind::kNone, {},
                      {Value::Text("1"), Value::Text("n"), Value::Text("3")});
  EXPECT_NE(ShapeCacheKey(change.relation->id(), *ShapeOf(change)),
            ShapeCacheKey(change.relation->id(), *ShapeOf(other)));
}

TEST(SqlBuilderTest, UpdateUnderFullIdentityMatchesOneRowByCtid) {
  auto change = Update(FullIdentity(), OldTupleKind::kFull,
                       {Value::Text("1"), Value::Text("{\"k\": 1}"), Value::UnchangedToast()},
                       {Value::Text("2"), Value::Text("{}"), Value::UnchangedToast()});
  RowStatement s = Build(change);
  EXPECT_EQ(s.sql,
            "UPDATE \"public\".\"events\" SET \"a\" = $1, \"doc\" = $2 WHERE ctid = "
            "(SELECT ctid FROM \"public\".\"events\" WHERE \"a\" IS NOT DISTINCT FROM $3 AND "
            "\"doc\"::text IS NOT DISTINCT FROM $4::text LIMIT 1)");
  EXPECT_EQ(s.params, (std::vector<ParamSource>{
                          {Side::kNew, 0}, {Side::kNew, 1}, {Side::kOld, 0}, {Side::kOld, 1}}));
}

TEST(SqlBuilderTest, DeleteByKeyAndByFullRow) {
  auto by_key =
      Delete(Orders(), OldTupleKind::kKey, {Value::Text("7"), Value::Null(), Value::Null()});
  EXPECT_EQ(Build(by_key).sql, "DELETE FROM \"public\".\"orders\" WHERE \"id\" = $1");
  auto by_row = Delete(FullIdentity(), OldTupleKind::kFull,
                       {Value::Text("1"), Value::Null(), Value::Text("b")});
  RowStatement s = Build(by_row);
  EXPECT_EQ(s.sql,
            "DELETE FROM \"public\".\"events\" WHERE ctid = (SELECT ctid FROM "
            "\"public\".\"events\" WHERE \"a\" IS NOT DISTINCT FROM $1 AND \"doc\"::text IS NOT "
            "DISTINCT FROM $2::text AND \"b\" IS NOT DISTINCT FROM $3 LIMIT 1)");
  EXPECT_EQ(s.params.size(), 3u);
}

TEST(SqlBuilderTest, CompositeKeyAndOddIdentifiers) {
  auto relation = MakeRelation(
      {{"Tenant \"Id\"", 23, -1, true}, {"ñame", 25, -1, true}, {"Value x", 25, -1, false}},
      ReplicaIdentity::kDefault, "Odd \"Schema\"", "Tab le");
  auto insert = Insert(relation, {Value::Text("1"), Value::Text("n"), Value::Text("v")});
  EXPECT_EQ(Build(insert).sql,
            "INSERT INTO \"Odd \"\"Schema\"\"\".\"Tab le\" (\"Tenant \"\"Id\"\"\", \"ñame\", "
            "\"Value x\") VALUES ($1, $2, $3) ON CONFLICT (\"Tenant \"\"Id\"\"\", \"ñame\") "
            "DO UPDATE SET \"Value x\" = EXCLUDED.\"Value x\"");
  auto del =
      Delete(relation, OldTupleKind::kKey, {Value::Text("1"), Value::Text("n"), Value::Null()});
  EXPECT_EQ(Build(del).sql,
            "DELETE FROM \"Odd \"\"Schema\"\"\".\"Tab le\" WHERE \"Tenant \"\"Id\"\"\" = $1 AND "
            "\"ñame\" = $2");
  EXPECT_EQ(DescribeKey(del), "(Tenant \"Id\", ñame)=(1, n)");
}

TEST(SqlBuilderTest, TruncateListsTablesAndRestartIdentityButNeverCascades) {
  Change change;
  change.op = Operation::kTruncate;
  change.truncated = {Orders(), FullIdentity()};
  EXPECT_EQ(BuildTruncate(change), "TRUNCATE \"public\".\"orders\", \"public\".\"events\"");
  change.truncate_restart_identity = true;
  change.truncate_cascade = true;  // the source's TRUNCATE ... CASCADE listed every table it hit
  EXPECT_EQ(BuildTruncate(change),
            "TRUNCATE \"public\".\"orders\", \"public\".\"events\" RESTART IDENTITY");
}

TEST(SqlBuilderTest, BinaryValuesAreRejectedNamingTheColumn) {
  auto change = Insert(Orders(), {Value::Text("1"), Value::Binary("\x01"), Value::Null()});
  auto shape = ShapeOf(change);
  ASSERT_FALSE(shape.ok());
  EXPECT_EQ(shape.status().code(), core::StatusCode::kUnsupported);
  EXPECT_NE(shape.status().message().find("binary-format values need source.binary: false"),
            std::string::npos);
  EXPECT_NE(shape.status().message().find("public.orders.\"note\""), std::string::npos);
}

TEST(SqlBuilderTest, MalformedChangesAreRejected) {
  // Tuple narrower than the relation.
  auto narrow = Insert(Orders(), {Value::Text("1")});
  EXPECT_EQ(ShapeOf(narrow).status().code(), core::StatusCode::kCorruption);
  // Insert with an unchanged TOAST value.
  auto toast_insert = Insert(Orders(), {Value::Text("1"), Value::UnchangedToast(), Value::Null()});
  EXPECT_EQ(ShapeOf(toast_insert).status().code(), core::StatusCode::kUnsupported);
  // Update without key nor old row cannot be located.
  auto keyless = MakeRelation({{"a", 23, -1, false}}, ReplicaIdentity::kNothing, "s", "t");
  auto update = Update(keyless, OldTupleKind::kNone, {}, {Value::Text("1")});
  auto shape = ShapeOf(update);
  EXPECT_EQ(shape.status().code(), core::StatusCode::kUnsupported);
  EXPECT_NE(shape.status().message().find("s.t"), std::string::npos);
  // Delete without old tuple.
  auto del = Delete(Orders(), OldTupleKind::kNone, {});
  EXPECT_EQ(ShapeOf(del).status().code(), core::StatusCode::kCorruption);
}

TEST(SqlBuilderTest, CacheKeyDistinguishesRelationVersionsAndOperations) {
  auto v1 = Orders();
  auto v2 = Orders();  // same OID, a later Relation message
  auto insert = Insert(v1, {Value::Text("1"), Value::Null(), Value::Null()});
  auto shape = *ShapeOf(insert);
  EXPECT_NE(ShapeCacheKey(v1->id(), shape), ShapeCacheKey(v2->id(), shape));
  auto del = Delete(v1, OldTupleKind::kKey, {Value::Text("1"), Value::Null(), Value::Null()});
  EXPECT_NE(ShapeCacheKey(v1->id(), shape), ShapeCacheKey(v1->id(), *ShapeOf(del)));
  EXPECT_EQ(ShapeCacheKey(v1->id(), shape), ShapeCacheKey(v1->id(), *ShapeOf(insert)));
}

// The statement cache follows relation identity, not the object's address: the same version
// held by another object (a copy, or the table described again unchanged) reuses the statement;
// a new version after ALTER TABLE gets a statement of its own, with the new column.
TEST(SqlBuilderTest, SameVersionReusesItsStatementAndANewVersionGetsItsOwn) {
  auto v1 = Orders();
  auto same = std::make_shared<Relation>(*v1);
  auto v2 = std::make_shared<Relation>(*v1);
  v2->columns.push_back({"added", 25, -1, false});
  v2->version = core::NextRelationVersion();
  auto insert_v1 = Insert(v1, {Value::Text("1"), Value::Null(), Value::Null()});
  auto insert_same = Insert(same, {Value::Text("1"), Value::Null(), Value::Null()});
  auto insert_v2 = Insert(v2, {Value::Text("1"), Value::Null(), Value::Null(), Value::Null()});
  const RowShape shape_v1 = *ShapeOf(insert_v1);
  const RowShape shape_v2 = *ShapeOf(insert_v2);
  EXPECT_EQ(ShapeCacheKey(same->id(), *ShapeOf(insert_same)), ShapeCacheKey(v1->id(), shape_v1));
  EXPECT_NE(ShapeCacheKey(v2->id(), shape_v2), ShapeCacheKey(v1->id(), shape_v1));
  // Even with a shape of the same width: the version alone tells them apart.
  EXPECT_NE(ShapeCacheKey(v2->id(), shape_v1), ShapeCacheKey(v1->id(), shape_v1));
  const auto statement_v1 = BuildRowStatement(*v1, shape_v1);
  const auto statement_v2 = BuildRowStatement(*v2, shape_v2);
  ASSERT_TRUE(statement_v1.ok() && statement_v2.ok());
  EXPECT_EQ(statement_v1->sql.find("added"), std::string::npos) << statement_v1->sql;
  EXPECT_NE(statement_v2->sql.find("\"added\""), std::string::npos) << statement_v2->sql;
}

TEST(SqlBuilderTest, DescribeKeyUsesKeyOrWholeRowAndCutsLongValues) {
  EXPECT_EQ(DescribeKey(Insert(Orders(), {Value::Text("7"), Value::Text("n"), Value::Null()})),
            "(id)=(7)");
  auto full = Delete(FullIdentity(), OldTupleKind::kFull,
                     {Value::Text("1"), Value::Null(), Value::Text(std::string(100, 'x'))});
  EXPECT_EQ(DescribeKey(full), "(a, doc, b)=(1, NULL, " + std::string(64, 'x') + "...)");
}

// --- Multi-row statements ---------------------------------------------------------------------

RowShape ShapeFor(const Change& change) {
  auto shape = ShapeOf(change);
  EXPECT_TRUE(shape.ok()) << shape.status().ToString();
  return shape.ok() ? *shape : RowShape{};
}

const TargetTable kOrderTarget = {{"integer", "text", "numeric"}, {false, false, false}, {}};

TEST(MultiRowTest, InsertsShareOneUpsertWithAValuesRowEach) {
  auto relation = Orders();
  auto change = Insert(relation, {Value::Text("1"), Value::Text("n"), Value::Null()});
  const RowShape shape = ShapeFor(change);
  ASSERT_TRUE(CanCoalesce(*relation, shape));
  EXPECT_TRUE(NeedsDistinctKeys(*relation, shape));
  auto s = BuildMultiRowStatement(*relation, shape, 2, &kOrderTarget);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->sql,
            "INSERT INTO \"public\".\"orders\" (\"id\", \"note\", \"total\") VALUES ($1, $2, $3), "
            "($4, $5, $6) ON CONFLICT (\"id\") DO UPDATE SET \"note\" = EXCLUDED.\"note\", "
            "\"total\" = EXCLUDED.\"total\"");
  EXPECT_EQ(s->params.size(), 3u);  // one row's
  // A single row is the one-row statement.
  EXPECT_EQ(BuildMultiRowStatement(*relation, shape, 1, &kOrderTarget)->sql,
            BuildRowStatement(*relation, shape)->sql);
}

TEST(MultiRowTest, InsertsWithoutKeyNeedNoDistinctKeys) {
  auto relation = FullIdentity();
  auto change = Insert(relation, {Value::Text("1"), Value::Text("{}"), Value::Null()});
  const RowShape shape = ShapeFor(change);
  EXPECT_TRUE(CanCoalesce(*relation, shape));
  EXPECT_FALSE(NeedsDistinctKeys(*relation, shape));
}

TEST(MultiRowTest, UpdatesJoinACastValuesListAndSkipUnchangedToast) {
  auto relation = Orders();
  auto change = Update(relation, OldTupleKind::kNone, {},
                       {Value::Text("1"), Value::UnchangedToast(), Value::Text("3")});
  const RowShape shape = ShapeFor(change);
  ASSERT_TRUE(CanCoalesce(*relation, shape));
  auto s = BuildMultiRowStatement(*relation, shape, 2, &kOrderTarget);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->sql,
            "UPDATE \"public\".\"orders\" AS sluice_t SET \"total\" = sluice_v.c1 FROM (VALUES "
            "($1::integer, $2::numeric), ($3::integer, $4::numeric)) AS sluice_v (c0, c1) WHERE "
            "sluice_t.\"id\" = sluice_v.c0");
  EXPECT_EQ(s->params,
            (std::vector<ParamSource>{{ParamSource::Side::kNew, 0}, {ParamSource::Side::kNew, 2}}));
  // Missing target types are an error, not a guess.
  EXPECT_FALSE(BuildMultiRowStatement(*relation, shape, 2, nullptr).ok());
  const TargetTable no_types;
  EXPECT_FALSE(BuildMultiRowStatement(*relation, shape, 2, &no_types).ok());
}

TEST(MultiRowTest, DeletesByKeyUseAValuesList) {
  auto relation = Orders();
  auto change =
      Delete(relation, OldTupleKind::kKey, {Value::Text("1"), Value::Null(), Value::Null()});
  const RowShape shape = ShapeFor(change);
  ASSERT_TRUE(CanCoalesce(*relation, shape));
  EXPECT_FALSE(NeedsDistinctKeys(*relation, shape));
  auto s = BuildMultiRowStatement(*relation, shape, 2, &kOrderTarget);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->sql,
            "DELETE FROM \"public\".\"orders\" AS sluice_t USING (VALUES ($1::integer), "
            "($2::integer)) AS sluice_v (c0) WHERE sluice_t.\"id\" = sluice_v.c0");
  EXPECT_EQ(s->params, (std::vector<ParamSource>{{ParamSource::Side::kOld, 0}}));
}

TEST(MultiRowTest, RowsLocatedByFullRowOrChangingKeyOrSettingOnlyKeysGoOneByOne) {
  auto full = FullIdentity();
  EXPECT_FALSE(CanCoalesce(
      *full, ShapeFor(Delete(full, OldTupleKind::kFull,
                             {Value::Text("1"), Value::Text("{}"), Value::Text("b")}))));
  auto orders = Orders();
  EXPECT_FALSE(CanCoalesce(
      *orders,
      ShapeFor(Update(orders, OldTupleKind::kKey, {Value::Text("1"), Value::Null(), Value::Null()},
                      {Value::Text("2"), Value::Text("x"), Value::Null()}))));
  EXPECT_FALSE(CanCoalesce(*orders, ShapeFor(Update(orders, OldTupleKind::kNone, {},
                                                    {Value::Text("1"), Value::UnchangedToast(),
                                                     Value::UnchangedToast()}))));
}

TEST(MultiRowTest, RowKeysDifferExactlyWhenKeyValuesDiffer) {
  auto relation = MakeRelation({{"a", 25, -1, true}, {"b", 25, -1, true}, {"v", 25, -1, false}});
  auto key_of = [&](core::Tuple tuple) {
    std::string out;
    AppendRowKey(Insert(relation, std::move(tuple)), out);
    return out;
  };
  EXPECT_EQ(key_of({Value::Text("x"), Value::Text("y"), Value::Text("1")}),
            key_of({Value::Text("x"), Value::Text("y"), Value::Text("2")}));
  EXPECT_NE(key_of({Value::Text("xy"), Value::Text(""), Value::Null()}),
            key_of({Value::Text("x"), Value::Text("y"), Value::Null()}));
  EXPECT_NE(key_of({Value::Text(""), Value::Text("y"), Value::Null()}),
            key_of({Value::Null(), Value::Text("y"), Value::Null()}));
}

// --- Targets with GENERATED ALWAYS identity columns ---------------------------------------------

// items(id PK, seq, note) on a target where id and seq are GENERATED ALWAYS AS IDENTITY and
// which has a column of its own, "extra".
RelationPtr Items() {
  return MakeRelation({{"id", 20, -1, true}, {"seq", 20, -1, false}, {"note", 25, -1, false}},
                      ReplicaIdentity::kDefault, "public", "items");
}
const TargetTable kItemsTarget = {{"bigint", "bigint", "text"}, {true, true, false}, {"extra"}};
// The same where only the key is an ALWAYS identity.
const TargetTable kItemsKeyOnlyTarget = {
    {"bigint", "bigint", "text"}, {true, false, false}, {"extra"}};

RowShape TargetShape(const Change& change, const TargetTable& target) {
  auto shape = ShapeOf(change, &target);
  EXPECT_TRUE(shape.ok()) << shape.status().ToString();
  return shape.ok() ? *shape : RowShape{};
}

std::string TargetSql(const Change& change, const TargetTable& target) {
  auto statement = BuildRowStatement(*change.relation, TargetShape(change, target), &target);
  EXPECT_TRUE(statement.ok()) << statement.status().ToString();
  return statement.ok() ? statement->sql : "";
}

TEST(TargetIdentityTest, InsertsOverrideAndTheirUpsertLeavesAlwaysColumnsAlone) {
  auto insert = Insert(Items(), {Value::Text("1"), Value::Text("7"), Value::Text("n")});
  EXPECT_EQ(TargetSql(insert, kItemsTarget),
            "INSERT INTO \"public\".\"items\" (\"id\", \"seq\", \"note\") OVERRIDING SYSTEM "
            "VALUE VALUES ($1, $2, $3) ON CONFLICT (\"id\") DO UPDATE SET \"note\" = "
            "EXCLUDED.\"note\"");
  auto multi =
      BuildMultiRowStatement(*insert.relation, TargetShape(insert, kItemsTarget), 2, &kItemsTarget);
  ASSERT_TRUE(multi.ok()) << multi.status().ToString();
  EXPECT_NE(multi->sql.find("OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3), ($4, $5, $6) ON "
                            "CONFLICT (\"id\") DO UPDATE SET \"note\" = EXCLUDED.\"note\""),
            std::string::npos)
      << multi->sql;
  // Without ALWAYS identity columns the insert stays as it was.
  const TargetTable plain = {{"bigint", "bigint", "text"}, {false, false, false}, {}};
  EXPECT_EQ(TargetSql(insert, plain), Build(insert).sql);
}

TEST(TargetIdentityTest, UpdateKeepingAnAlwaysKeyLeavesItOutOfSet) {
  auto update = Update(Items(), OldTupleKind::kNone, {},
                       {Value::Text("1"), Value::Text("7"), Value::Text("n")});
  const RowShape shape = TargetShape(update, kItemsKeyOnlyTarget);
  EXPECT_FALSE(shape.move);
  EXPECT_TRUE(CanCoalesce(*update.relation, shape));
  EXPECT_EQ(TargetSql(update, kItemsKeyOnlyTarget),
            "UPDATE \"public\".\"items\" SET \"seq\" = $1, \"note\" = $2 WHERE \"id\" = "
            "$3::bigint");
}

TEST(TargetIdentityTest, UpdateOfANonKeyAlwaysColumnMovesTheRow) {
  auto update = Update(Items(), OldTupleKind::kNone, {},
                       {Value::Text("1"), Value::Text("7"), Value::UnchangedToast()});
  const RowShape shape = TargetShape(update, kItemsTarget);
  EXPECT_TRUE(shape.move);
  EXPECT_FALSE(CanCoalesce(*update.relation, shape));
  EXPECT_NE(ShapeCacheKey(update.relation->id(), shape),
            ShapeCacheKey(update.relation->id(), TargetShape(update, kItemsKeyOnlyTarget)));
  auto statement = BuildRowStatement(*update.relation, shape, &kItemsTarget);
  ASSERT_TRUE(statement.ok()) << statement.status().ToString();
  // The unchanged TOAST value and the target's own column come from the deleted row.
  EXPECT_EQ(statement->sql,
            "WITH sluice_old AS (DELETE FROM \"public\".\"items\" WHERE \"id\" = $1::bigint "
            "RETURNING *) INSERT INTO \"public\".\"items\" (\"id\", \"seq\", \"note\", "
            "\"extra\") OVERRIDING SYSTEM VALUE SELECT $2, $3, sluice_old.\"note\", "
            "sluice_old.\"extra\" FROM sluice_old");
  EXPECT_EQ(statement->params,
            (std::vector<ParamSource>{{Side::kNew, 0}, {Side::kNew, 0}, {Side::kNew, 1}}));
}

TEST(TargetIdentityTest, KeyChangeOfAnAlwaysKeyMovesTheRowFoundByTheOldKey) {
  auto update =
      Update(Items(), OldTupleKind::kKey, {Value::Text("1"), Value::Null(), Value::Null()},
             {Value::Text("2"), Value::Text("7"), Value::Text("n")});
  const RowShape shape = TargetShape(update, kItemsKeyOnlyTarget);
  EXPECT_TRUE(shape.move);
  auto statement = BuildRowStatement(*update.relation, shape, &kItemsKeyOnlyTarget);
  ASSERT_TRUE(statement.ok());
  EXPECT_EQ(statement->sql,
            "WITH sluice_old AS (DELETE FROM \"public\".\"items\" WHERE \"id\" = $1::bigint "
            "RETURNING *) INSERT INTO \"public\".\"items\" (\"id\", \"seq\", \"note\", "
            "\"extra\") OVERRIDING SYSTEM VALUE SELECT $2, $3, $4, sluice_old.\"extra\" FROM "
            "sluice_old");
  EXPECT_EQ(statement->params.front(), (ParamSource{Side::kOld, 0}));
  // An old key equal to the new one (sent for other reasons) changes nothing that needs a move.
  auto same = Update(Items(), OldTupleKind::kKey, {Value::Text("1"), Value::Null(), Value::Null()},
                     {Value::Text("1"), Value::Text("7"), Value::Text("n")});
  EXPECT_FALSE(TargetShape(same, kItemsKeyOnlyTarget).move);
  EXPECT_EQ(TargetSql(same, kItemsKeyOnlyTarget),
            "UPDATE \"public\".\"items\" SET \"seq\" = $1, \"note\" = $2 WHERE \"id\" = "
            "$3::bigint");
}

TEST(TargetIdentityTest, FullOldRowTellsWhetherAnAlwaysColumnChanged) {
  auto events = FullIdentity();  // a, doc, b; the target has b as GENERATED ALWAYS identity
  const TargetTable target = {{"integer", "json", "bigint"}, {false, false, true}, {}};
  auto kept =
      Update(events, OldTupleKind::kFull, {Value::Text("1"), Value::Text("{}"), Value::Text("5")},
             {Value::Text("2"), Value::Text("{}"), Value::Text("5")});
  EXPECT_FALSE(TargetShape(kept, target).move);
  EXPECT_EQ(TargetSql(kept, target),
            "UPDATE \"public\".\"events\" SET \"a\" = $1, \"doc\" = $2 WHERE ctid = "
            "(SELECT ctid FROM \"public\".\"events\" WHERE \"a\" IS NOT DISTINCT FROM "
            "$3::integer AND \"doc\"::text IS NOT DISTINCT FROM ($4::json)::text AND \"b\" IS NOT "
            "DISTINCT FROM $5::bigint LIMIT 1)");
  auto changed =
      Update(events, OldTupleKind::kFull, {Value::Text("1"), Value::Text("{}"), Value::Text("5")},
             {Value::Text("1"), Value::Text("{}"), Value::Text("6")});
  EXPECT_TRUE(TargetShape(changed, target).move);
  EXPECT_EQ(TargetSql(changed, target),
            "WITH sluice_old AS (DELETE FROM \"public\".\"events\" WHERE ctid = (SELECT ctid "
            "FROM \"public\".\"events\" WHERE \"a\" IS NOT DISTINCT FROM $1::integer AND "
            "\"doc\"::text IS NOT DISTINCT FROM ($2::json)::text AND \"b\" IS NOT DISTINCT FROM "
            "$3::bigint LIMIT 1) RETURNING *) "
            "INSERT INTO \"public\".\"events\" (\"a\", \"doc\", \"b\") OVERRIDING SYSTEM VALUE "
            "SELECT $4, $5, $6 FROM sluice_old");
}

}  // namespace
}  // namespace sluice::apply
