#pragma once

#include <chrono>
#include <string>

#include "core/transaction.h"

namespace sluice::core {

// Seconds between the Unix epoch and PostgreSQL's (2000-01-01).
inline constexpr int64_t kPgEpochOffsetSeconds = 946684800;

PgTimestamp PgTimestampFromSystem(std::chrono::system_clock::time_point t);
std::chrono::system_clock::time_point SystemFromPgTimestamp(PgTimestamp ts);
PgTimestamp PgNow();

// RFC 3339 in UTC with microseconds: "2026-11-22T06:01:02.123456Z".
std::string FormatPgTimestamp(PgTimestamp ts);

}  // namespace sluice::core
