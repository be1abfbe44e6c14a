#pragma once

#include <string>
#include <vector>

#include "core/relation.h"

namespace sluice::core {

// A source table as its catalog describes it, for the initial copy: enough to create the table
// on a target that lacks it and to copy its rows column by column.
struct TableDefinition {
  Relation relation;                      // oid, schema, name, columns (is_key = primary key)
  std::vector<std::string> column_types;  // SQL type per column, format_type() text
  std::vector<bool> not_null;             // per column
  uint64_t estimated_rows = 0;            // pg_class.reltuples (an estimate, for progress)
  uint64_t estimated_bytes = 0;           // pg_table_size()
};

}  // namespace sluice::core
