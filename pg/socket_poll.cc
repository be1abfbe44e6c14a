#include "pg/socket_poll.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace sluice::pg {
namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds until `until`, rounded up so a sub-millisecond remainder still waits.
int MillisUntil(Clock::time_point until) {
  const auto now = Clock::now();
  if (until <= now) return 0;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(until - now).count();
  const int64_t ms = (us + 999) / 1000;
  return static_cast<int>(std::min<int64_t>(ms, int64_t{24} * 3600 * 1000));
}

}  // namespace

core::Result<short> PollSocket(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd pfd{};
    pfd.fd = fd;
    pfd.events = events;
    const int rc = poll(&pfd, 1, MillisUntil(deadline));
    if (rc >= 0) return static_cast<short>(rc == 0 ? 0 : pfd.revents);
    if (errno != EINTR) {
      return core::Internal(std::string("poll() on the PostgreSQL socket failed: ") +
                            std::strerror(errno));
    }
  }
}

}  // namespace sluice::pg
