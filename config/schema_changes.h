#pragma once

#include <optional>
#include <string_view>

namespace sluice::config {

// What a PostgreSQL target does with a column the source adds that its table lacks (YAML:
// target.postgres.schema_changes). Renames and type changes stop the pipeline either way.
enum class SchemaChanges {
  kStop,        // stop, naming the ALTER TABLE to run on the target
  kAddColumns,  // add the column on the target (nullable, no default) with its first row
};

// Every policy, in the order messages list them.
inline constexpr SchemaChanges kSchemaChanges[] = {SchemaChanges::kStop,
                                                   SchemaChanges::kAddColumns};

// The YAML spelling: stop, add_columns.
std::string_view SchemaChangesName(SchemaChanges policy);

// The policy SchemaChangesName spells `name`; nullopt for any other text.
std::optional<SchemaChanges> ParseSchemaChanges(std::string_view name);

}  // namespace sluice::config
