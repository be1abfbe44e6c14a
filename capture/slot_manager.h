#pragma once

#include <string>

#include "capture/replication_connection.h"
#include "core/lsn.h"
#include "core/status.h"

namespace sluice::capture {

struct SlotInfo {
  std::string name;
  bool created = false;  // true: created by this call (then snapshot_name may be set)
  // For a new slot: the LSN from which the slot's stream is consistent (start streaming here
  // after a snapshot copy). For a reused slot: its confirmed_flush_lsn.
  core::Lsn consistent_point;
  // The exported snapshot of a newly created slot (export_snapshot = true), else empty. It is
  // valid only until the next command on the creating connection (or its close): import it with
  // SET TRANSACTION SNAPSHOT on other connections before calling anything else on this one.
  std::string snapshot_name;
  bool active = false;  // a reused slot currently streamed by another process
};

// Logical slot management over a replication=database connection (which accepts both
// replication commands and SQL). The connection is borrowed and must outlive the manager and
// must not be streaming.
//
// Threads: as the connection (one thread).
class SlotManager {
 public:
  explicit SlotManager(ReplicationConnection& connection) : connection_(connection) {}

  // Checks the source can host a logical slot: wal_level=logical and the role may replicate.
  // kFailedPrecondition with the remedy otherwise. (A full WAL sender table or a role without
  // REPLICATION already fails ReplicationConnection::Connect.)
  core::Status Preflight();

  // Reuses slot `name` when it exists as a pgoutput slot of the connected database (no
  // snapshot); creates it (exporting a snapshot if asked) when missing. A slot of another plugin
  // or database → kFailedPrecondition; no free slot → kResourceExhausted naming
  // max_replication_slots. Runs Preflight() first.
  core::Result<SlotInfo> EnsureSlot(const std::string& name, bool export_snapshot);

  // Drops the slot. Missing → kNotFound; in use by another process → kFailedPrecondition.
  core::Status DropSlot(const std::string& name);

 private:
  core::Result<QueryResult> Sql(const std::string& sql, const std::string& what);

  ReplicationConnection& connection_;
};

}  // namespace sluice::capture
