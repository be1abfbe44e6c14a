#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

// The one policy for what a PostgreSQL error code (SQLSTATE) means to sluice: which kind of
// failure it is, and whether trying again later may succeed. Capture, apply and control all
// classify server errors here, so a walsender still holding a slot (55006) or a full connection
// table (53300) is transient everywhere, and a constraint the target adds is a data error.
namespace sluice::pg {

struct SqlStateMeaning {
  core::StatusCode code;
  bool retryable;
};

// Transient, retried with backoff:
//   ""      no server error at all: libpq lost the connection
//   08xxx   connection exceptions
//   40001 40P01  serialization failure, deadlock
//   53xxx   insufficient resources (too many connections, disk full, out of memory), except
//           53400 (a configured limit such as max_replication_slots: a person must act)
//   55006 55P03  object in use (a slot or origin still held by a backend going away), lock
//           not available
//   57014 57P01 57P02 57P03 57P05  query cancelled, shutdown, cannot connect now, idle timeout
// Permanent:
//   class 22 and 23, 42804   kDataRejected: the target refuses a value (type, range,
//                            constraint, datatype mismatch)
//   42704 42P01 42883 3F000 3D000  kNotFound (object, table, function, schema, database)
//   42710 42P06 42P07        kAlreadyExists
//   42601                    kInternal (sluice built bad syntax)
//   anything else            kFailedPrecondition (privileges, missing columns, read-only, ...)
SqlStateMeaning ClassifySqlState(std::string_view sqlstate);

// A Status for a server error: ClassifySqlState's code and retryability, `sqlstate` as the
// server code, and `message`.
core::Status StatusForSqlState(std::string_view sqlstate, std::string message);

}  // namespace sluice::pg
