#include "core/lsn.h"

#include <charconv>
#include <cstdio>

namespace sluice::core {

Result<Lsn> Lsn::Parse(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) {
    return InvalidArgument("LSN '" + std::string(text) + "' is not of the form X/Y");
  }
  uint32_t hi = 0, lo = 0;
  const char* hi_end = text.data() + slash;
  const char* lo_begin = hi_end + 1;
  const char* lo_end = text.data() + text.size();
  auto r1 = std::from_chars(text.data(), hi_end, hi, 16);
  auto r2 = std::from_chars(lo_begin, lo_end, lo, 16);
  if (r1.ec != std::errc() || r1.ptr != hi_end || r2.ec != std::errc() || r2.ptr != lo_end) {
    return InvalidArgument("LSN '" + std::string(text) + "' is not of the form X/Y (hex)");
  }
  return Lsn((static_cast<uint64_t>(hi) << 32) | lo);
}

std::string Lsn::ToString() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<uint32_t>(value_ >> 32),
                static_cast<uint32_t>(value_));
  return buf;
}

}  // namespace sluice::core
