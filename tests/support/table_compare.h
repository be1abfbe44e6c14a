#pragma once

#include <string>
#include <vector>

#include "tests/support/pg_cluster.h"

namespace sluice::testing {

// Compares a table on two clusters row by row: every row's full text form, as a multiset
// (duplicates count). Returns "" when identical, else a description of the first differences
// (rows only on one side, with counts), for a test failure message.
std::string DiffTable(const PgCluster& source, const PgCluster& target,
                      const std::string& qualified_table);

// The same over `select_list` (e.g. "id, a, b") instead of whole rows, for tables whose columns
// differ between the sides (order, columns only one side has).
std::string DiffTableColumns(const PgCluster& source, const PgCluster& target,
                             const std::string& qualified_table, const std::string& select_list);

// DiffTable over several tables; "" when all are identical.
std::string DiffTables(const PgCluster& source, const PgCluster& target,
                       const std::vector<std::string>& qualified_tables);

}  // namespace sluice::testing
