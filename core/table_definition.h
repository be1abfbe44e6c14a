#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/relation.h"

namespace sluice::core {

// A column the source computes (GENERATED ALWAYS AS (expression) STORED). Logical replication
// neither sends nor copies it: a target computes its own.
struct GeneratedColumn {
  std::string name;
  std::string type;        // format_type() text
  std::string expression;  // pg_get_expr() text
  // Its place among the table's columns: before relation.columns[position] (== columns.size():
  // after the last); generated columns of one table are in column order.
  size_t position = 0;
};

// A source table as its catalog describes it, for the initial copy: enough to create the table
// on a target that lacks it and to copy its rows column by column.
struct TableDefinition {
  Relation relation;                      // oid, schema, name, columns (is_key = primary key)
  std::vector<std::string> column_types;  // SQL type per column, format_type() text
  std::vector<bool> not_null;             // per column
  // Columns not in `relation` because the source generates them; not copied.
  std::vector<GeneratedColumn> generated_columns;
  uint64_t estimated_rows = 0;   // pg_class.reltuples (an estimate, for progress)
  uint64_t estimated_bytes = 0;  // pg_table_size()
};

}  // namespace sluice::core
