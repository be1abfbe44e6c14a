#include "config/schema_changes.h"

namespace sluice::config {

std::string_view SchemaChangesName(SchemaChanges policy) {
  switch (policy) {
    case SchemaChanges::kStop:
      return "stop";
    case SchemaChanges::kAddColumns:
      return "add_columns";
  }
  return "stop";  // not reached: the switch names every policy
}

std::optional<SchemaChanges> ParseSchemaChanges(std::string_view name) {
  for (SchemaChanges policy : kSchemaChanges) {
    if (SchemaChangesName(policy) == name) return policy;
  }
  return std::nullopt;
}

}  // namespace sluice::config
