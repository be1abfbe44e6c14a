#pragma once

#include <optional>
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

// A slot as pg_replication_slots shows it.
struct SlotState {
  std::string name;
  std::string endpoint;   // host:port of the server it was read from
  std::string plugin;     // "" for a physical slot
  std::string slot_type;  // "logical" | "physical"
  std::string database;   // "" for a physical slot
  bool temporary = false;
  bool active = false;
  int active_pid = 0;             // 0 when not active
  core::Lsn restart_lsn;          // invalid when the slot has none (lost)
  core::Lsn confirmed_flush_lsn;  // invalid for a physical slot
  std::string wal_status;         // reserved | extended | unreserved | lost ("" before 13)
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

  // The slot named `name`, or nullopt when there is none.
  core::Result<std::optional<SlotState>> InspectSlot(const std::string& name);

  // Reuses slot `name` when it exists as a pgoutput slot of the connected database (no
  // snapshot); creates it (exporting a snapshot if asked) when missing and `may_create`, else
  // a missing slot is kNotFound. A slot of another plugin or database → kFailedPrecondition;
  // no free slot → kResourceExhausted naming max_replication_slots. Runs Preflight() first.
  core::Result<SlotInfo> EnsureSlot(const std::string& name, bool export_snapshot,
                                    bool may_create = true);

  // Creates a TEMPORARY pgoutput slot exporting a snapshot: the server drops it when this
  // connection closes, so nothing is left behind whatever happens to sluice. For copying
  // tables at a consistent point while the pipeline's own slot stays where it is.
  core::Result<SlotInfo> CreateTemporarySlot(const std::string& name);

  // Drops the slot. Missing → kNotFound; in use by another process → kFailedPrecondition.
  core::Status DropSlot(const std::string& name);

 private:
  core::Result<SlotInfo> Create(const std::string& name, bool export_snapshot, bool temporary);
  core::Result<pg::QueryResult> Sql(const std::string& sql, const std::string& what);

  ReplicationConnection& connection_;
};

}  // namespace sluice::capture
