#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/relation.h"
#include "core/status.h"
#include "pg/connection.h"

namespace sluice::apply {

// What a PostgreSQL sink does when a source table gains a column its target table lacks
// (target.postgres.schema_changes). Renames and type changes always stop the pipeline.
enum class SchemaChangePolicy {
  kStop,        // stop, naming the ALTER TABLE to run on the target
  kAddColumns,  // add the column on the target, in the target transaction of its first row
};

// How a source table changed between two versions the stream described for one OID (two
// pgoutput Relation messages), as far as those can tell. A Relation message lists the columns
// the source sends, in attribute order, without attribute numbers, so:
//  - ALTER TABLE ... ADD COLUMN appends; DROP COLUMN removes a column, keeping the others in
//    order; RENAME COLUMN keeps the column's place. Columns with the same name in both versions
//    anchor the comparison; between two anchors (and after the last), columns only the previous
//    version has and columns only the next one has are, pairwise, renames when their numbers
//    match. After the last anchor a pair may also be a drop followed by an add
//    (`renames_may_be_drop_and_add`); extra new columns there are additions.
//  - The same name with another type OID or type modifier is a type change.
//  - What cannot be told apart is `ambiguous`: kept names in another order (renamed to each
//    other's names, or dropped and added again), or gone and new columns in unequal numbers at
//    one place.
// Changes between two Relation messages for which no row came in between are seen as one.
struct RelationDiff {
  struct Rename {
    std::string from;
    std::string to;
    size_t column = 0;  // index of `to` in the next version's columns
  };
  std::vector<size_t> added;         // indexes into the next version's columns
  std::vector<std::string> dropped;  // names in the previous version only
  std::vector<Rename> renamed;
  std::vector<size_t> retyped;  // indexes into the next version's columns
  bool renames_may_be_drop_and_add = false;
  std::string ambiguous;  // what cannot be told apart; empty when nothing
};

RelationDiff CompareRelationVersions(const core::Relation& previous, const core::Relation& next);

// --- Types on the target -------------------------------------------------------------------

// Parameters of kTargetTypeSql (postgres_sink.cc) that find `column`'s type on the target: by
// schema and name when the source named it (core::Column::type_schema), else by OID for a
// built-in type. kUnsupported naming table and column when the type cannot be named: an OID
// of the source's own (kFirstAssignedOid or above) that no pgoutput Type message described.
core::Result<std::vector<std::optional<std::string>>> TargetTypeLookup(
    const core::Relation& relation, const core::Column& column);

// `column`'s type as the target knows it.
struct TargetType {
  bool exists = false;  // the target has the type
  // The type as DDL spells it: format_type() for built-in types (always visible), the quoted
  // schema-qualified name (plus any modifier) for others, so it means the same whatever the
  // search_path of whoever runs it. Also set when the type does not exist (the name to create).
  std::string sql;
  // format_type(oid, typmod) on the target: what TargetColumn::declared_type holds for a column
  // of this type there.
  std::string formatted;
};

// From the rows kTargetTypeSql returned for TargetTypeLookup(relation, column): none when the
// target lacks the type, else (format_type(oid, typmod), format_type(oid, -1)).
TargetType TargetTypeOf(const core::Column& column, const std::vector<pg::Row>& rows);

// --- DDL the target needs ---------------------------------------------------------------------

// ALTER TABLE "schema"."table" ADD COLUMN "name" <type_sql> (no trailing semicolon).
std::string AddColumnSql(const core::Relation& relation, const std::string& column,
                         const std::string& type_sql);
// ALTER TABLE "schema"."table" RENAME COLUMN "from" TO "to".
std::string RenameColumnSql(const core::Relation& relation, const std::string& from,
                            const std::string& to);
// ALTER TABLE "schema"."table" ALTER COLUMN "name" TYPE <type_sql> USING "name"::<type_sql>
// (USING: also where the target has no implicit cast, as the source's own ALTER may have had).
std::string AlterColumnTypeSql(const core::Relation& relation, const std::string& column,
                               const std::string& type_sql);

}  // namespace sluice::apply
