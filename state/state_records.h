#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/lsn.h"
#include "core/status.h"
#include "core/transaction.h"

namespace sluice::state {

// The typed records of the state store. Where each lives is state_keys.h; every one is written
// in the encoding of record_codec.h (a version byte, then its fields in the order listed here).
// DecodeRecord reports damage, a wrong size and a version this sluice does not know as
// kCorruption, never guessing. Records written before the store's format version 2 (JSON text,
// and "done" for SnapshotRecord) are still read, as they were; they are rewritten in this
// encoding when next saved.

// Where a pipeline may resume: everything up to durable_lsn is durable on the target.
// Version 1: durable_lsn, commit_time, updated_at_unix_ms (25 bytes).
struct Checkpoint {
  static constexpr char kRecordName[] = "checkpoint record";
  core::Lsn durable_lsn;
  core::PgTimestamp commit_time = 0;  // commit time of the transaction that ended at durable_lsn
  int64_t updated_at_unix_ms = 0;     // wall clock when the checkpoint was saved

  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// Whose the pipeline's slot is. sluice only ever drops a slot recorded here.
enum class SlotState : uint8_t {
  kCreating = 1,  // recorded before the slot is made: a crash right after still leaves it ours
  kCreated = 2,   // made by this state directory
  kAdopted = 3,   // made elsewhere, taken over once it passed every check
};
const char* SlotStateName(SlotState state);

// Version 1: name, state (byte), consistent_point.
struct SlotRecord {
  static constexpr char kRecordName[] = "slot record";
  std::string name;
  SlotState state = SlotState::kCreating;
  core::Lsn consistent_point;  // invalid while creating

  friend bool operator==(const SlotRecord&, const SlotRecord&) = default;
};

// The initial copy of the whole pipeline finished (or, for `snapshot: never`, the slot exists).
// Version 1: done.
struct SnapshotRecord {
  static constexpr char kRecordName[] = "snapshot record";
  bool done = false;

  friend bool operator==(const SnapshotRecord&, const SnapshotRecord&) = default;
};

// One table's copy: progress while it runs, then done and the stream position it was taken at.
// A record that is not done says the target table's rows are sluice's (a copy started there).
// Version 1: rows, bytes, estimated_rows, estimated_bytes, ranges, ranges_done, done,
// updated_at_unix_ms, snapshot_lsn.
struct TableCopyRecord {
  static constexpr char kRecordName[] = "table copy record";
  uint64_t rows = 0;
  uint64_t bytes = 0;
  uint64_t estimated_rows = 0;
  uint64_t estimated_bytes = 0;
  int64_t ranges = 0;  // key ranges the copy is split into
  int64_t ranges_done = 0;
  bool done = false;
  int64_t updated_at_unix_ms = 0;
  // The table's changes in transactions committed before it are in the copy, so the stream
  // skips them. Invalid: unknown (copied before sluice recorded it).
  core::Lsn snapshot_lsn;

  friend bool operator==(const TableCopyRecord&, const TableCopyRecord&) = default;
};

// What `sluice snapshot` asked for and is not finished yet; kept until the copy it asked for
// is done. Version 1: tables.
struct SnapshotRequest {
  static constexpr char kRecordName[] = "snapshot request";
  std::vector<std::string> tables;  // "schema.name"; empty: every table, from a new slot
  bool all() const { return tables.empty(); }

  friend bool operator==(const SnapshotRequest&, const SnapshotRequest&) = default;
};

// A pipeline's last error, kept so it outlives the daemon: `sluice status` shows it with the
// daemon down (a permanent one as phase "failed"), and a restarted daemon shows it until the
// pipeline makes progress again, which deletes it. Version 1: message, at_unix_ms, permanent.
struct PipelineErrorRecord {
  static constexpr char kRecordName[] = "last error record";
  std::string message;     // the error as the runner reported it (no password)
  int64_t at_unix_ms = 0;  // when it happened
  bool permanent = false;  // the pipeline stopped on it (not retryable)

  friend bool operator==(const PipelineErrorRecord&, const PipelineErrorRecord&) = default;
};

// A migration's phase (the phase machine of `sluice migrate`, DESIGN.md).
enum class MigrationPhase : uint8_t {
  kCopy = 1,   // initial copy old -> new
  kFollow,     // forward stream old -> new
  kCutover,    // old being fenced, forward stream drained, reverse slot made on new
  kReversed,   // new is the primary; the reverse stream keeps old current
  kRollback,   // the mirror of cutover
  kFinalized,  // old retired (irreversible)
  kAbandoned,  // what sluice made removed; old stays the primary
};
const char* MigrationPhaseName(MigrationPhase phase);

// A migration's phase and the positions a crashed transition needs to complete or undo it.
// Saved in one StateBatch with the pipelines' checkpoints it refers to.
// Version 1: phase (byte), fence_lsn, reverse_start_lsn, updated_at_unix_ms.
struct MigrationRecord {
  static constexpr char kRecordName[] = "migration record";
  MigrationPhase phase = MigrationPhase::kCopy;
  core::Lsn fence_lsn;          // old's WAL position once fenced: the forward stream drains to it
  core::Lsn reverse_start_lsn;  // the reverse slot's consistent point on new
  int64_t updated_at_unix_ms = 0;

  friend bool operator==(const MigrationRecord&, const MigrationRecord&) = default;
};

std::string EncodeRecord(const Checkpoint& record);
std::string EncodeRecord(const SlotRecord& record);
std::string EncodeRecord(const SnapshotRecord& record);
std::string EncodeRecord(const TableCopyRecord& record);
std::string EncodeRecord(const SnapshotRequest& record);
std::string EncodeRecord(const PipelineErrorRecord& record);
std::string EncodeRecord(const MigrationRecord& record);

core::Status DecodeRecord(std::string_view bytes, Checkpoint* record);
core::Status DecodeRecord(std::string_view bytes, SlotRecord* record);
core::Status DecodeRecord(std::string_view bytes, SnapshotRecord* record);
core::Status DecodeRecord(std::string_view bytes, TableCopyRecord* record);
core::Status DecodeRecord(std::string_view bytes, SnapshotRequest* record);
core::Status DecodeRecord(std::string_view bytes, PipelineErrorRecord* record);
core::Status DecodeRecord(std::string_view bytes, MigrationRecord* record);

}  // namespace sluice::state
