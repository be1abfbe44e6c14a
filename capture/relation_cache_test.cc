#include "capture/relation_cache.h"

#include <gtest/gtest.h>

namespace sluice::capture {
namespace {

core::Relation Events() {
  core::Relation relation;
  relation.oid = 16500;
  relation.schema = "public";
  relation.name = "events";
  relation.columns = {{"id", 23, -1, true},
                      {"mood", 16403, -1, false},
                      {"moods", 16402, -1, false},
                      {"short", 16408, -1, false},
                      {"odd", 16999, -1, false}};
  return relation;
}

// pgoutput names every type at or above FirstGenbkiObjectId in a Type message before the
// Relation message: the relation's columns carry those names, so a target can find the type.
TEST(RelationCacheTest, ColumnsCarryTheNamesOfDescribedTypes) {
  RelationCache cache;
  cache.PutType(16403, "public", "mood");
  cache.PutType(16402, "public", "_mood");  // the array type of the enum
  cache.PutType(16408, "", "varchar");      // a domain: its base type, in pg_catalog ("")
  core::RelationPtr relation = cache.Put(Events());
  const auto& columns = relation->columns;
  EXPECT_EQ(columns[0].type_schema, "");  // built in: known by OID
  EXPECT_EQ(columns[0].type_name, "");
  EXPECT_TRUE(columns[0].HasFixedTypeOid());
  EXPECT_EQ(columns[1].type_schema, "public");
  EXPECT_EQ(columns[1].type_name, "mood");
  EXPECT_EQ(columns[2].type_name, "_mood");
  EXPECT_EQ(columns[3].type_schema, "pg_catalog");
  EXPECT_EQ(columns[3].type_name, "varchar");
  // Never described: nothing to name it by (apply refuses to guess).
  EXPECT_EQ(columns[4].type_name, "");
  EXPECT_FALSE(columns[4].HasFixedTypeOid());
}

// A type renamed on the source is described again before the next Relation message.
TEST(RelationCacheTest, LaterTypeMessageRenamesForLaterVersionsOnly) {
  RelationCache cache;
  cache.PutType(16403, "public", "mood");
  core::RelationPtr first = cache.Put(Events());
  cache.PutType(16403, "app", "feeling");
  core::RelationPtr second = cache.Put(Events());
  EXPECT_EQ(first->columns[1].type_schema + "." + first->columns[1].type_name, "public.mood");
  EXPECT_EQ(second->columns[1].type_schema + "." + second->columns[1].type_name, "app.feeling");
  auto current = cache.Get(16500);
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->get(), second.get());
}

// The source describes a table again after every reconnection: unchanged, it stays the same
// version; changed (ALTER TABLE), it becomes a new one, and the old one keeps its identity.
TEST(RelationCacheTest, VersionChangesOnlyWhenTheDescriptionDoes) {
  RelationCache cache;
  core::RelationPtr first = cache.Put(Events());
  core::RelationPtr again = cache.Put(Events());
  EXPECT_EQ(again.get(), first.get());
  EXPECT_EQ(again->id(), first->id());

  core::Relation altered = Events();
  altered.columns.push_back({"added", 25, -1, false});
  core::RelationPtr second = cache.Put(std::move(altered));
  EXPECT_EQ(second->oid, first->oid);
  EXPECT_NE(second->id(), first->id());

  core::Relation rekeyed = *second;  // a copy keeps the version: only the cache renumbers
  rekeyed.replica_identity = core::ReplicaIdentity::kFull;
  core::RelationPtr third = cache.Put(std::move(rekeyed));
  EXPECT_NE(third->id(), second->id());
  EXPECT_NE(third->id(), first->id());
}

}  // namespace
}  // namespace sluice::capture
