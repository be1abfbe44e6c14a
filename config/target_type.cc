#include "config/target_type.h"

namespace sluice::config {

std::string_view TargetTypeName(TargetType type) {
  switch (type) {
    case TargetType::kPostgres:
      return "postgres";
    case TargetType::kRedis:
      return "redis";
    case TargetType::kKafka:
      return "kafka";
    case TargetType::kNone:
      return "none";
  }
  return "none";  // not reached: the switch names every type
}

std::optional<TargetType> ParseTargetType(std::string_view name) {
  for (TargetType type : kTargetTypes) {
    if (TargetTypeName(type) == name) return type;
  }
  return std::nullopt;
}

}  // namespace sluice::config
