#pragma once

#include <cstdio>

#include "config/config.h"
#include "core/status.h"

namespace sluice::control {

// `sluice check`: before anything runs, checks the config and every pipeline against its
// servers and prints what `sluice run` would do. First what `run` refuses outright
// (config::CheckRunnable, with the message `run` gives); then per pipeline the source
// (connectivity, wal_level, replication privilege, free slots and WAL senders, each table's
// replica identity) and the target: its tables and columns, and what apply will do as the
// target's role, each reported ok or FAIL with the GRANT or ALTER that fixes it (replication
// origin functions, SET session_replication_role, schema sluice and sluice.applied, SELECT,
// INSERT, UPDATE, DELETE and TRUNCATE on each table, CREATE for the tables it would create)
// and room for one more replication origin (max_replication_slots).
// Writes a report to `out`; returns the first failure (its code gives the exit code: 69 a
// server unreachable, 78 a config `run` refuses or a server, role or table not ready), or Ok
// when every check passed. Changes nothing on any server. No output holds a password.
core::Status RunCheck(const config::Config& config, std::FILE* out);

}  // namespace sluice::control
