#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice::core {

// A position in PostgreSQL's write-ahead log. Printed as PostgreSQL does: "16/B374D848".
class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t value) : value_(value) {}

  static Result<Lsn> Parse(std::string_view text);

  constexpr uint64_t value() const { return value_; }
  constexpr bool valid() const { return value_ != 0; }
  std::string ToString() const;

  // clang-tidy 14 sees the 0 inside the defaulted comparison (llvm-project issue 53961).
  constexpr auto operator<=>(const Lsn&) const = default;  // NOLINT(modernize-use-nullptr)

 private:
  uint64_t value_ = 0;  // 0 is InvalidXLogRecPtr
};

constexpr Lsn kInvalidLsn{};

}  // namespace sluice::core
