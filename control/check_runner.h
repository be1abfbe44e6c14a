#pragma once

#include <cstdio>

#include "config/config.h"
#include "core/status.h"

namespace sluice::control {

// `sluice check`: before anything runs, checks every pipeline of the config against its servers
// (connectivity, wal_level, replication privilege, free slots and WAL senders, each table's
// replica identity, the target's tables and columns) and prints what `sluice run` would do.
// Writes a report to `out`; returns the first failure (its code gives the exit code: 69 a
// server unreachable, 78 a server or table not ready), or Ok when every check passed. Changes
// nothing on any server.
core::Status RunCheck(const config::Config& config, std::FILE* out);

}  // namespace sluice::control
