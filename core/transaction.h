#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/change.h"
#include "core/lsn.h"

namespace sluice::core {

// Microseconds since 2000-01-01 00:00:00 UTC, PostgreSQL's TimestampTz epoch.
using PgTimestamp = int64_t;

// A committed source transaction, or one fragment of it.
//
// Memory is bounded by configuration, not by transaction size: a transaction with more changes
// than the fragment bound is delivered as several Transaction values with the same xid and
// commit_lsn, numbered by `fragment`, the last one with `last_fragment` set. Consumers that
// must not show part of a transaction (apply) keep the target transaction open until the last
// fragment. Fragments of one transaction are never interleaved with another transaction.
struct Transaction {
  uint32_t xid = 0;
  Lsn commit_lsn;  // LSN of the commit record (pgoutput Begin's final_lsn)
  Lsn end_lsn;     // end of the commit record: the position to confirm once durable
  PgTimestamp commit_time = 0;

  // Set when the transaction was replayed from another node (pgoutput Origin message).
  std::string origin;
  Lsn origin_lsn;

  uint32_t fragment = 0;
  bool last_fragment = true;
  std::vector<Change> changes;

  bool is_first_fragment() const { return fragment == 0; }

  // What the fragment's changes hold in memory, about (Change::ApproximateBytes).
  uint64_t ApproximateBytes() const {
    uint64_t bytes = 0;
    for (const Change& change : changes) bytes += change.ApproximateBytes();
    return bytes;
  }
};

}  // namespace sluice::core
