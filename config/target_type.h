#pragma once

#include <optional>
#include <string_view>

namespace sluice::config {

// What a pipeline applies its stream to (YAML: target.type). kNone: a pipeline without a
// target, for `sluice tail`, which is then its consumer; `sluice run` skips it.
enum class TargetType { kPostgres, kRedis, kKafka, kNone };

// Every type, in the order messages list them.
inline constexpr TargetType kTargetTypes[] = {TargetType::kPostgres, TargetType::kRedis,
                                              TargetType::kKafka, TargetType::kNone};

// The YAML spelling: postgres, redis, kafka, none.
std::string_view TargetTypeName(TargetType type);

// The type TargetTypeName spells `name` (exactly, case included); nullopt for any other text.
std::optional<TargetType> ParseTargetType(std::string_view name);

}  // namespace sluice::config
