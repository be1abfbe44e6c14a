#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "capture/replication_connection.h"
#include "core/status.h"
#include "core/table_definition.h"

namespace sluice::capture {

// One slice of a table for the initial copy. Ranges planned for a table are disjoint and
// together hold every row of it (at the snapshot), so copying each exactly once copies the
// table exactly once.
struct CopyRange {
  // SQL boolean expression selecting the slice (a primary-key interval and/or the publication's
  // row filter); empty selects the whole table.
  std::string predicate;
  // Read with `COPY (SELECT ...)` even without a predicate (a partitioned table published via
  // its root: plain `COPY table TO` refuses those).
  bool select_form = false;
  // For messages and logs: "whole table" or "id >= 100 AND id < 200".
  std::string description = "whole table";
  int index = 0;  // position among the table's ranges (0-based)
  int count = 1;  // how many ranges the table was split into
};

// What one CopyOut produced.
struct CopyCounters {
  uint64_t rows = 0;   // COPY data rows (libpq hands out one row per PQgetCopyData)
  uint64_t bytes = 0;  // COPY text bytes
};

// Reads tables at a slot's exported snapshot, for the initial copy. Source side only: it knows
// PostgreSQL's catalog and COPY, nothing of targets.
//
// Open() starts a REPEATABLE READ READ ONLY transaction and imports the snapshot; every read of
// this copier then sees the source exactly as it was at the slot's consistent point. Several
// copiers (one per worker) may import the same snapshot, as long as the slot's creating
// replication connection has not run another command yet (that ends the export).
//
// Session settings (DateStyle ISO, IntervalStyle postgres, extra_float_digits 3, UTF8) make the
// COPY text unambiguous and exact for any PostgreSQL target.
//
// Threads: one thread at a time per copier; distinct copiers are independent.
class SnapshotCopier {
 public:
  // Tables whose pg_table_size is above this are split by primary key in PlanRanges().
  static constexpr uint64_t kDefaultSplitThresholdBytes = 64ull << 20;

  // Connects with a regular connection and imports `snapshot_name`. A snapshot that is gone →
  // kFailedPrecondition "the exported snapshot X no longer exists (...)".
  static core::Result<std::unique_ptr<SnapshotCopier>> Open(
      const std::string& dsn, const std::string& snapshot_name,
      std::chrono::milliseconds connect_timeout);
  ~SnapshotCopier();
  SnapshotCopier(const SnapshotCopier&) = delete;
  SnapshotCopier& operator=(const SnapshotCopier&) = delete;

  // Every table `publication` publishes, ordered by schema and name: columns in attnum order
  // (dropped columns skipped; on PostgreSQL 15+ only the publication's column list),
  // format_type text, NOT NULL, primary-key membership as Column::is_key, type oid and typmod,
  // replica identity, reltuples (0 when never analyzed) and pg_table_size. Generated columns
  // are not among the columns (neither copied nor streamed) but in generated_columns, with
  // their expressions. Missing publication → kNotFound. Remembers per table what PlanRanges() needs
  // (relkind, row filter).
  core::Result<std::vector<core::TableDefinition>> DescribeTables(const std::string& publication);

  // Slices of `table` to copy (in parallel). Split into up to `pieces` contiguous primary-key
  // intervals when the primary key is one int2/int4/int8 column and estimated_bytes exceeds
  // `split_threshold_bytes`: the first interval is open below, the last open above, so every row
  // lands in exactly one. Otherwise (or for an empty table) one range for the whole table.
  // The publication's row filter (PostgreSQL 15+) is part of every predicate, as pgoutput would
  // filter the stream. Call DescribeTables() on this copier first.
  core::Result<std::vector<CopyRange>> PlanRanges(
      const core::TableDefinition& table, int pieces,
      uint64_t split_threshold_bytes = kDefaultSplitThresholdBytes);

  // Streams `range` of `table` as COPY text: each row goes to `on_chunk` as libpq returned it.
  // When `on_chunk` fails the COPY is cancelled and its status returned as is (return
  // core::Aborted to stop); the copier is unusable afterwards. `counters` (may be null) is
  // increased as data arrives, so it is accurate also after a failure. Errors name the table
  // and the range.
  core::Status CopyOut(const core::TableDefinition& table, const CopyRange& range,
                       const std::function<core::Status(std::string_view)>& on_chunk,
                       CopyCounters* counters);

  // The COPY command CopyOut() runs (exposed for tests and logs).
  static std::string CopyCommand(const core::TableDefinition& table, const CopyRange& range);

  const std::string& snapshot_name() const { return snapshot_name_; }
  const std::string& endpoint() const { return connection_->endpoint(); }

 private:
  struct TableExtra {
    char relkind = 'r';
    std::string row_filter;  // publication row filter (PostgreSQL 15+), empty when none
  };

  SnapshotCopier(std::unique_ptr<pg::Connection> connection, std::string snapshot_name);
  core::Status Usable(const std::string& what) const;

  std::unique_ptr<pg::Connection> connection_;
  std::string snapshot_name_;
  std::unordered_map<uint32_t, TableExtra> extras_;  // by table OID, from DescribeTables()
  bool broken_ = false;  // a COPY was cancelled: the transaction is gone
};

}  // namespace sluice::capture
