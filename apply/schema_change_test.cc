#include "apply/schema_change.h"

#include <gtest/gtest.h>

namespace sluice::apply {
namespace {

constexpr core::Oid kInt4 = 23;
constexpr core::Oid kInt8 = 20;
constexpr core::Oid kText = 25;
constexpr core::Oid kVarchar = 1043;

core::Relation Table(std::vector<core::Column> columns) {
  core::Relation relation;
  relation.oid = 16500;
  relation.schema = "public";
  relation.name = "t";
  relation.columns = std::move(columns);
  return relation;
}

core::Column Col(const std::string& name, core::Oid type = kText, int32_t typmod = -1) {
  return core::Column(name, type, typmod, name == "id");
}

std::vector<std::string> Names(const core::Relation& relation, const std::vector<size_t>& columns) {
  std::vector<std::string> names;
  for (size_t i : columns) names.push_back(relation.columns[i].name);
  return names;
}

TEST(CompareRelationVersionsTest, SameColumnsNoChange) {
  const auto before = Table({Col("id", kInt4), Col("a")});
  const RelationDiff diff = CompareRelationVersions(before, before);
  EXPECT_TRUE(diff.added.empty());
  EXPECT_TRUE(diff.dropped.empty());
  EXPECT_TRUE(diff.renamed.empty());
  EXPECT_TRUE(diff.retyped.empty());
  EXPECT_EQ(diff.ambiguous, "");
}

TEST(CompareRelationVersionsTest, AddedColumnsComeLast) {
  const auto after = Table({Col("id", kInt4), Col("a"), Col("b"), Col("c", kInt8)});
  const RelationDiff diff = CompareRelationVersions(Table({Col("id", kInt4), Col("a")}), after);
  EXPECT_EQ(Names(after, diff.added), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(diff.renamed.empty());
  EXPECT_EQ(diff.ambiguous, "");
}

// Dropping shifts the later columns' places; names anchor them, so nothing looks renamed.
TEST(CompareRelationVersionsTest, DroppedColumnsAnywhere) {
  const RelationDiff diff =
      CompareRelationVersions(Table({Col("id", kInt4), Col("a"), Col("b"), Col("c"), Col("d")}),
                              Table({Col("id", kInt4), Col("c")}));
  EXPECT_EQ(diff.dropped, (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_TRUE(diff.renamed.empty());
  EXPECT_TRUE(diff.added.empty());
  EXPECT_EQ(diff.ambiguous, "");
}

// A rename keeps the column's place: between two kept columns it cannot be anything else.
TEST(CompareRelationVersionsTest, RenameBetweenKeptColumnsIsCertain) {
  const RelationDiff diff = CompareRelationVersions(Table({Col("id", kInt4), Col("a"), Col("z")}),
                                                    Table({Col("id", kInt4), Col("b"), Col("z")}));
  ASSERT_EQ(diff.renamed.size(), 1u);
  EXPECT_EQ(diff.renamed[0].from, "a");
  EXPECT_EQ(diff.renamed[0].to, "b");
  EXPECT_EQ(diff.renamed[0].column, 1u);
  EXPECT_FALSE(diff.renames_may_be_drop_and_add);
  EXPECT_EQ(diff.ambiguous, "");
}

// The last column renamed, or dropped with a new one added: the stream cannot tell; a rename
// is the guess that stops rather than writes a new column.
TEST(CompareRelationVersionsTest, RenameOfTheLastColumnMayBeDropAndAdd) {
  const auto after = Table({Col("id", kInt4), Col("b"), Col("c")});
  const RelationDiff diff = CompareRelationVersions(Table({Col("id", kInt4), Col("a")}), after);
  ASSERT_EQ(diff.renamed.size(), 1u);
  EXPECT_EQ(diff.renamed[0].from, "a");
  EXPECT_EQ(diff.renamed[0].to, "b");
  EXPECT_EQ(Names(after, diff.added), (std::vector<std::string>{"c"}));
  EXPECT_TRUE(diff.renames_may_be_drop_and_add);
}

TEST(CompareRelationVersionsTest, DropAndRenameTogether) {
  const RelationDiff diff =
      CompareRelationVersions(Table({Col("id", kInt4), Col("a"), Col("b"), Col("c")}),
                              Table({Col("id", kInt4), Col("b"), Col("d")}));
  EXPECT_EQ(diff.dropped, (std::vector<std::string>{"a"}));
  ASSERT_EQ(diff.renamed.size(), 1u);
  EXPECT_EQ(diff.renamed[0].from, "c");
  EXPECT_EQ(diff.renamed[0].to, "d");
}

TEST(CompareRelationVersionsTest, TypeAndModifierChanges) {
  const auto after =
      Table({Col("id", kInt8), Col("v", kVarchar, 24), Col("n", kInt4), Col("w", kVarchar, 14)});
  const RelationDiff diff = CompareRelationVersions(
      Table({Col("id", kInt4), Col("v", kVarchar, 14), Col("n", kInt4), Col("w", kVarchar, 14)}),
      after);
  EXPECT_EQ(Names(after, diff.retyped), (std::vector<std::string>{"id", "v"}));
  EXPECT_TRUE(diff.renamed.empty());
}

TEST(CompareRelationVersionsTest, WhatCannotBeToldApartIsAmbiguous) {
  // Two columns swapped names.
  RelationDiff diff = CompareRelationVersions(Table({Col("id", kInt4), Col("a"), Col("b")}),
                                              Table({Col("id", kInt4), Col("b"), Col("a")}));
  EXPECT_EQ(diff.ambiguous,
            "columns \"b\", \"a\" are in another order than before: renamed to each other's "
            "names, or dropped and added again");
  // Two gone, one new at their place: which one was renamed?
  diff = CompareRelationVersions(Table({Col("id", kInt4), Col("a"), Col("b"), Col("z")}),
                                 Table({Col("id", kInt4), Col("x"), Col("z")}));
  EXPECT_EQ(diff.ambiguous,
            "columns \"a\", \"b\" are gone and \"x\" are new in their place: renamed, or dropped "
            "and added");
}

TEST(TargetTypeTest, LookupByNameOrBuiltInOid) {
  const auto table = Table({Col("id", kInt4)});
  auto by_oid = TargetTypeLookup(table, core::Column("v", kVarchar, 14, false));
  ASSERT_TRUE(by_oid.ok());
  EXPECT_EQ(*by_oid,
            (std::vector<std::optional<std::string>>{std::nullopt, std::nullopt, "1043", "14"}));
  auto by_name = TargetTypeLookup(table, core::Column("m", 16403, -1, false, "public", "mood"));
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(*by_name,
            (std::vector<std::optional<std::string>>{"public", "mood", std::nullopt, "-1"}));
  auto unnamed = TargetTypeLookup(table, core::Column("odd", 16999, -1, false));
  ASSERT_FALSE(unnamed.ok());
  EXPECT_EQ(unnamed.status().code(), core::StatusCode::kUnsupported);
  EXPECT_NE(unnamed.status().message().find("public.t.\"odd\""), std::string::npos);
  EXPECT_NE(unnamed.status().message().find("OID 16999"), std::string::npos);
}

TEST(TargetTypeTest, DdlSpellingIsIndependentOfSearchPath) {
  // Built in: format_type() with the modifier.
  TargetType builtin = TargetTypeOf(core::Column("v", kVarchar, 14, false),
                                    {{"character varying(10)", "character varying"}});
  EXPECT_TRUE(builtin.exists);
  EXPECT_EQ(builtin.sql, "character varying(10)");
  EXPECT_EQ(builtin.formatted, "character varying(10)");
  // A user type: qualified and quoted, whatever format_type made of it.
  const core::Column mood("m", 16403, -1, false, "Sales", "mood");
  TargetType user = TargetTypeOf(mood, {{"\"Sales\".mood", "\"Sales\".mood"}});
  EXPECT_TRUE(user.exists);
  EXPECT_EQ(user.sql, "\"Sales\".\"mood\"");
  EXPECT_EQ(user.formatted, "\"Sales\".mood");
  // An array of it, by its array type's name.
  TargetType array =
      TargetTypeOf(core::Column("ms", 16402, -1, false, "public", "_mood"), {{"mood[]", "mood[]"}});
  EXPECT_EQ(array.sql, "\"public\".\"_mood\"");
  // An extension's type with a modifier keeps it.
  TargetType geometry = TargetTypeOf(core::Column("g", 17001, 1107460, false, "ext", "geometry"),
                                     {{"ext.geometry(Point,4326)", "ext.geometry"}});
  EXPECT_EQ(geometry.sql, "\"ext\".\"geometry\"(Point,4326)");
  // A domain over a built-in type comes as its base type in pg_catalog.
  TargetType base = TargetTypeOf(core::Column("d", 16408, -1, false, "pg_catalog", "varchar"),
                                 {{"character varying", "character varying"}});
  EXPECT_EQ(base.sql, "character varying");
  // Missing on the target: not there, but named, so the error can say what to create.
  TargetType missing = TargetTypeOf(mood, {});
  EXPECT_FALSE(missing.exists);
  EXPECT_EQ(missing.sql, "\"Sales\".\"mood\"");
  EXPECT_FALSE(TargetTypeOf(core::Column("x", 9999, -1, false), {}).exists);
}

TEST(SchemaDdlTest, StatementsQuoteEverything) {
  core::Relation relation = Table({Col("id", kInt4)});
  relation.schema = "Odd \"S\"";
  EXPECT_EQ(AddColumnSql(relation, "New Col", "integer"),
            "ALTER TABLE \"Odd \"\"S\"\"\".\"t\" ADD COLUMN \"New Col\" integer");
  EXPECT_EQ(RenameColumnSql(relation, "a", "b"),
            "ALTER TABLE \"Odd \"\"S\"\"\".\"t\" RENAME COLUMN \"a\" TO \"b\"");
  EXPECT_EQ(
      AlterColumnTypeSql(relation, "n", "bigint"),
      "ALTER TABLE \"Odd \"\"S\"\"\".\"t\" ALTER COLUMN \"n\" TYPE bigint USING \"n\"::bigint");
}

}  // namespace
}  // namespace sluice::apply
