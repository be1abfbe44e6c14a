#include "tests/support/table_compare.h"

#include <map>
#include <sstream>

namespace sluice::testing {
namespace {

// Row text (of `row_expression` over alias t) -> occurrences; an error text in `error` if the
// query failed.
std::map<std::string, int> RowsOf(const PgCluster& cluster, const std::string& table,
                                  const std::string& row_expression, std::string* error) {
  std::map<std::string, int> rows;
  auto result = cluster.Query("SELECT (" + row_expression + ")::text FROM " + table + " t");
  if (!result.ok()) {
    *error = result.status().ToString();
    return rows;
  }
  for (const auto& row : *result) rows[row[0].value_or("<null>")]++;
  return rows;
}

std::string DiffRows(const PgCluster& source, const PgCluster& target,
                     const std::string& qualified_table, const std::string& row_expression) {
  std::string source_error, target_error;
  auto a = RowsOf(source, qualified_table, row_expression, &source_error);
  auto b = RowsOf(target, qualified_table, row_expression, &target_error);
  if (!source_error.empty()) return qualified_table + ": source query failed: " + source_error;
  if (!target_error.empty()) return qualified_table + ": target query failed: " + target_error;
  if (a == b) return "";
  std::ostringstream out;
  size_t only_source = 0, only_target = 0, shown = 0;
  for (const auto& [row, n] : a) {
    const int m = b.count(row) ? b[row] : 0;
    if (n > m) {
      only_source += n - m;
      if (shown++ < 5) out << "  missing on target (x" << n - m << "): " << row << "\n";
    }
  }
  for (const auto& [row, n] : b) {
    const int m = a.count(row) ? a[row] : 0;
    if (n > m) {
      only_target += n - m;
      if (shown++ < 10) out << "  extra on target (x" << n - m << "): " << row << "\n";
    }
  }
  return qualified_table + ": " + std::to_string(only_source) + " rows missing on target, " +
         std::to_string(only_target) + " extra\n" + out.str();
}

}  // namespace

std::string DiffTable(const PgCluster& source, const PgCluster& target,
                      const std::string& qualified_table) {
  return DiffRows(source, target, qualified_table, "t");
}

std::string DiffTableColumns(const PgCluster& source, const PgCluster& target,
                             const std::string& qualified_table, const std::string& select_list) {
  return DiffRows(source, target, qualified_table, "ROW(" + select_list + ")");
}

std::string DiffTables(const PgCluster& source, const PgCluster& target,
                       const std::vector<std::string>& qualified_tables) {
  std::string all;
  for (const auto& table : qualified_tables) all += DiffTable(source, target, table);
  return all;
}

}  // namespace sluice::testing
