#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/relation.h"
#include "core/status.h"

namespace sluice::apply {

// What a target table has that the apply statements for a source relation depend on. Built
// from the target's catalog (DescribeTargetTable), per relation column in relation order.
//
// The target may differ from the source: other column order, columns of its own, dropped
// columns, identity columns. Statements name every column, so order and dropped columns do not
// matter; columns of its own take their defaults on insert and keep their values otherwise.
struct TargetTable {
  // format_type(atttypid, -1) of each relation column on the target: VALUES lists of multi-row
  // statements cast to it (typmod -1, so a cast never truncates).
  std::vector<std::string> types;
  // Relation columns the target defines GENERATED ALWAYS AS IDENTITY: an INSERT must say
  // OVERRIDING SYSTEM VALUE, and an UPDATE cannot set them ("can only be updated to DEFAULT").
  std::vector<bool> identity_always;
  // Writable columns only the target has (not generated), in the target's column order: a row
  // moved by delete + insert (see RowShape::move) carries their values over.
  std::vector<std::string> own_columns;

  bool AnyIdentityAlways() const;
  // A column that is not part of `relation`'s key is GENERATED ALWAYS AS IDENTITY on the target.
  bool NonKeyIdentityAlways(const core::Relation& relation) const;
  bool IdentityAlways(size_t column) const {
    return column < identity_always.size() && identity_always[column];
  }
};

// One column of the target table as its catalog describes it (a row of kTargetColumnsSql in
// postgres_sink.cc).
struct TargetColumn {
  std::string name;
  std::string type;           // format_type(atttypid, -1)
  std::string declared_type;  // format_type(atttypid, atttypmod): with length, precision, ...
  char identity = '\0';       // attidentity: 'a' ALWAYS, 'd' BY DEFAULT, '\0' none
  char generated = '\0';      // attgenerated: 's' STORED, '\0' none
  bool not_null = false;      // attnotnull
  bool has_default = false;   // atthasdef
};

// Rows of (attname, format_type, attidentity, attgenerated, attnotnull, atthasdef,
// format_type with typmod) as text ('t'/'f' for booleans), in attnum order; a row with a NULL
// name (a table without columns) is skipped.
std::vector<TargetColumn> ParseTargetColumns(
    const std::vector<std::vector<std::optional<std::string>>>& rows);

// Checks that the target can take every row of `relation` and describes it. Permanent
// (kFailedPrecondition) errors, each naming table, column and the fix:
//  - a column the source sends is missing on the target;
//  - a column the source sends is generated on the target (the target would compute it, and
//    PostgreSQL refuses to have it written);
//  - a column only the target has is NOT NULL without a default (and is neither identity nor
//    generated): every insert would fail, unless `triggers_fire` (a trigger enabled for the
//    apply session may fill it). Columns in `dropped_on_source` (the source sent them in the
//    relation's previous version) are named as such: the target keeps them, but their values
//    stop coming.
core::Result<TargetTable> DescribeTargetTable(
    const core::Relation& relation, const std::vector<TargetColumn>& target_columns,
    bool triggers_fire, const std::vector<std::string>& dropped_on_source = {});

// The target's columns that `relation` does not send and that sluice could write (neither
// generated nor identity): where a column the source renamed would still be, under its old name.
std::vector<std::string> UnsentWritableColumns(const core::Relation& relation,
                                               const std::vector<TargetColumn>& target_columns);

// The target column named `name`, or null.
const TargetColumn* FindTargetColumn(const std::vector<TargetColumn>& columns,
                                     const std::string& name);

// For the initial copy: a column the source computes (GENERATED ALWAYS AS ... STORED, never
// sent by logical replication nor copied) must not be an ordinary column on the target, where
// it would stay NULL or take its default. kFailedPrecondition naming table, column and the fix.
core::Status CheckSourceGeneratedColumn(const core::Relation& relation, const std::string& column,
                                        const std::vector<TargetColumn>& target_columns);

}  // namespace sluice::apply
