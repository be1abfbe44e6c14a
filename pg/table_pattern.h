#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice::pg {

// One entry of a table list, the one parser of config (`source.tables`, `migrations[].tables`),
// capture (publications) and `sluice snapshot --tables`:
//   schema.table  schema.*  "My Schema"."Odd ""Table"""
// Unquoted names are folded to lower case as PostgreSQL folds them; quoted names keep their
// spelling ("" is a quote). The schema is required (no search_path guess); "*" unquoted means
// every table of the schema, "*" quoted is a table named *.
struct TablePattern {
  std::string schema;
  std::string table;        // empty when all_tables
  bool all_tables = false;  // "schema.*"

  // Always-quoted SQL spelling: "schema"."table", or "schema".* for all tables.
  std::string ToString() const;
  // For messages: quoted only where PostgreSQL needs it (public.orders, "My Schema".*).
  std::string DisplayName() const;
  friend bool operator==(const TablePattern&, const TablePattern&) = default;
};

// kInvalidArgument naming what is wrong and where.
core::Result<TablePattern> ParseTablePattern(std::string_view text);

// `name` as PostgreSQL would print it: bare when it is a plain lower-case identifier, quoted
// otherwise.
std::string DisplayIdentifier(std::string_view name);

}  // namespace sluice::pg
