#pragma once

#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace sluice::core {

// A whole decimal number from text a server sent (a catalog column, a setting), without
// exceptions: kCorruption naming `what` and the text when it is not one, or out of range.
Result<int64_t> ParseInt64(std::string_view text, std::string_view what);
Result<uint32_t> ParseUint32(std::string_view text, std::string_view what);

}  // namespace sluice::core
