#pragma once

#include <chrono>
#include <cstdint>

namespace sluice::core {

// Milliseconds since the Unix epoch by the wall clock: what records and status show as "when".
inline int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice::core
