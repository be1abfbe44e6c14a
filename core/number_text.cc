#include "core/number_text.h"

#include <charconv>
#include <limits>
#include <string>

namespace sluice::core {
namespace {

template <typename T>
Result<T> Parse(std::string_view text, std::string_view what) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Corruption(std::string(what) + ": expected a whole number, got '" +
                      std::string(text.substr(0, 64)) + "'");
  }
  return value;
}

}  // namespace

Result<int64_t> ParseInt64(std::string_view text, std::string_view what) {
  return Parse<int64_t>(text, what);
}

Result<uint32_t> ParseUint32(std::string_view text, std::string_view what) {
  return Parse<uint32_t>(text, what);
}

}  // namespace sluice::core
