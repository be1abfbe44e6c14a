#include "apply/target_table.h"

#include <gtest/gtest.h>

namespace sluice::apply {
namespace {

using Row = std::vector<std::optional<std::string>>;

core::Relation Orders() {
  core::Relation relation;
  relation.oid = 16384;
  relation.schema = "public";
  relation.name = "orders";
  relation.columns = {{"id", 20, -1, true}, {"note", 25, -1, false}, {"total", 1700, -1, false}};
  return relation;
}

// The target's catalog rows: another column order, a generated column, an identity column of
// its own, a defaulted column of its own.
std::vector<Row> TargetRows() {
  return {{"total", "numeric", "", "", "f", "f"},
          {"id", "bigint", "a", "", "t", "f"},
          {"doubled", "numeric", "", "s", "f", "t"},
          {"note", "text", "", "", "f", "f"},
          {"row_no", "bigint", "d", "", "t", "f"},
          {"added", "timestamp with time zone", "", "", "t", "t"}};
}

TEST(TargetTableTest, DescribesRelationColumnsInRelationOrderAndKeepsOwnWritableColumns) {
  const auto columns = ParseTargetColumns(TargetRows());
  ASSERT_EQ(columns.size(), 6u);
  EXPECT_EQ(columns[1].identity, 'a');
  EXPECT_EQ(columns[2].generated, 's');
  EXPECT_TRUE(columns[5].not_null);
  EXPECT_TRUE(columns[5].has_default);
  auto table = DescribeTargetTable(Orders(), columns, /*triggers_fire=*/false);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ(table->types, (std::vector<std::string>{"bigint", "text", "numeric"}));
  EXPECT_EQ(table->identity_always, (std::vector<bool>{true, false, false}));
  // Generated columns are computed by the target, never carried over.
  EXPECT_EQ(table->own_columns, (std::vector<std::string>{"row_no", "added"}));
  EXPECT_TRUE(table->AnyIdentityAlways());
  EXPECT_FALSE(table->NonKeyIdentityAlways(Orders()));
  // A table without columns gives one row with a NULL name.
  EXPECT_TRUE(ParseTargetColumns({{std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                                   std::nullopt, std::nullopt}})
                  .empty());
}

TEST(TargetTableTest, MissingColumnNamesTableAndColumn) {
  auto rows = TargetRows();
  rows.erase(rows.begin() + 3);  // note
  auto table = DescribeTargetTable(Orders(), ParseTargetColumns(rows), false);
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(table.status().message(),
            "target table public.orders has no column \"note\" (the source sends it); add it or "
            "let sluice create tables");
}

TEST(TargetTableTest, ColumnGeneratedOnlyOnTheTargetIsRefusedWithTheFix) {
  auto rows = TargetRows();
  rows[3] = {"note", "text", "", "s", "f", "t"};
  auto table = DescribeTargetTable(Orders(), ParseTargetColumns(rows), false);
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(table.status().message().find("target column public.orders.\"note\" is generated"),
            std::string::npos)
      << table.status().ToString();
  EXPECT_NE(table.status().message().find(
                "ALTER TABLE \"public\".\"orders\" ALTER COLUMN \"note\" DROP EXPRESSION"),
            std::string::npos)
      << table.status().ToString();
}

TEST(TargetTableTest, OwnNotNullColumnWithoutDefaultIsRefusedUnlessATriggerMayFillIt) {
  auto rows = TargetRows();
  rows.push_back({"required", "text", "", "", "t", "f"});
  auto table = DescribeTargetTable(Orders(), ParseTargetColumns(rows), false);
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("target column public.orders.\"required\" is NOT NULL "
                                          "without a default"),
            std::string::npos)
      << table.status().ToString();
  EXPECT_NE(table.status().message().find("SET DEFAULT"), std::string::npos);
  EXPECT_TRUE(DescribeTargetTable(Orders(), ParseTargetColumns(rows), true).ok());
}

// A column dropped on the source stays on the target; only a NOT NULL one without default is
// refused, as dropped, with the fixes.
TEST(TargetTableTest, ColumnDroppedOnTheSourceIsKeptOrRefusedAsDropped) {
  auto rows = TargetRows();
  rows.push_back({"gone", "integer", "", "", "f", "f", "integer"});
  auto kept = DescribeTargetTable(Orders(), ParseTargetColumns(rows), false, {"gone"});
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->own_columns, (std::vector<std::string>{"row_no", "added", "gone"}));
  rows.back() = {"gone", "integer", "", "", "t", "f", "integer"};
  auto refused = DescribeTargetTable(Orders(), ParseTargetColumns(rows), false, {"gone"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(),
            "target column public.orders.\"gone\" is NOT NULL without a default, and the source "
            "dropped it (its values stop coming; the target keeps the column), so every insert "
            "would fail; give it a default (ALTER TABLE \"public\".\"orders\" ALTER COLUMN "
            "\"gone\" SET DEFAULT ...), drop NOT NULL (ALTER TABLE \"public\".\"orders\" ALTER "
            "COLUMN \"gone\" DROP NOT NULL), or drop the column on the target too, then restart "
            "sluice");
}

TEST(TargetTableTest, DeclaredTypeAndUnsentWritableColumns) {
  auto rows = TargetRows();
  rows[0].push_back("numeric(12,2)");
  const auto columns = ParseTargetColumns(rows);
  EXPECT_EQ(columns[0].declared_type, "numeric(12,2)");
  EXPECT_EQ(columns[1].declared_type, "");  // not in the row
  EXPECT_EQ(FindTargetColumn(columns, "note"), &columns[3]);
  EXPECT_EQ(FindTargetColumn(columns, "absent"), nullptr);
  // Not generated (doubled), not identity (row_no): where a renamed column may still be.
  EXPECT_EQ(UnsentWritableColumns(Orders(), columns), (std::vector<std::string>{"added"}));
}

TEST(TargetTableTest, SourceGeneratedColumnMustNotBeOrdinaryOnTheTarget) {
  const auto columns = ParseTargetColumns(TargetRows());
  EXPECT_TRUE(CheckSourceGeneratedColumn(Orders(), "doubled", columns).ok());  // generated too
  EXPECT_TRUE(CheckSourceGeneratedColumn(Orders(), "absent", columns).ok());   // not there
  core::Status status = CheckSourceGeneratedColumn(Orders(), "row_no", columns);
  EXPECT_EQ(status.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("source column public.orders.\"row_no\" is generated"),
            std::string::npos)
      << status.ToString();
}

}  // namespace
}  // namespace sluice::apply
