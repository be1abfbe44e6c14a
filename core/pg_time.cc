#include "core/pg_time.h"

#include <cstdio>
#include <ctime>

namespace sluice::core {

PgTimestamp PgTimestampFromSystem(std::chrono::system_clock::time_point t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
  return us.count() - kPgEpochOffsetSeconds * 1000000;
}

std::chrono::system_clock::time_point SystemFromPgTimestamp(PgTimestamp ts) {
  return std::chrono::system_clock::time_point(
      std::chrono::microseconds(ts + kPgEpochOffsetSeconds * 1000000));
}

PgTimestamp PgNow() { return PgTimestampFromSystem(std::chrono::system_clock::now()); }

std::string FormatPgTimestamp(PgTimestamp ts) {
  const int64_t unix_us = ts + kPgEpochOffsetSeconds * 1000000;
  int64_t secs = unix_us / 1000000;
  int64_t micros = unix_us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    secs -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buf;
}

}  // namespace sluice::core
