#pragma once

#include <chrono>

#include "core/status.h"

namespace sluice::pg {

// Waits for `events` (poll(2) flags) on `fd` until `deadline`, resuming after signals. Returns
// the revents, 0 on timeout. Used to bound every wait on a libpq socket.
core::Result<short> PollSocket(int fd, short events,
                               std::chrono::steady_clock::time_point deadline);

}  // namespace sluice::pg
