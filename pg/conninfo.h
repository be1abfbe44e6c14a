#pragma once

#include <string>
#include <vector>

namespace sluice::pg {

// Session settings of the walsender, which prints pgoutput's text values in its own output
// formats: the same unambiguous forms PostgreSQL's own subscriber asks for (dates and intervals
// that mean the same under every target setting, floats that round-trip), whatever DateStyle,
// IntervalStyle and extra_float_digits the source has in postgresql.conf. A later -c wins over
// an earlier one, so these follow the user's options.
inline constexpr char kWalsenderSessionOptions[] =
    "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3";

// The libpq keyword/value pairs a connection is opened with: the caller's conninfo (key=value
// or URI) expanded as `dbname`, then `fallback_application_name`, then (for replication)
// `replication=database` and `options` = the conninfo's own options (or PGOPTIONS) followed by
// kWalsenderSessionOptions. libpq processes pairs in order and keeps the last value of a
// keyword, so replication=database always wins over whatever the conninfo says, while an
// application_name in the conninfo wins over the fallback.
struct ConninfoParams {
  std::vector<std::string> keywords;
  std::vector<std::string> values;
};
ConninfoParams BuildConninfoParams(const std::string& dsn, bool replication,
                                   const std::string& fallback_application_name = "sluice");

}  // namespace sluice::pg
