#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/lsn.h"
#include "core/status.h"
#include "state/checkpoint_store.h"

namespace sluice::control {

// The records a pipeline keeps in the checkpoint store beside its checkpoint, and what they say
// about its slot and its tables. Keys (under the pipeline):
//   "slot"          {"name", "state": "creating" | "created" | "adopted", "consistent_point"}:
//                   the slot this state directory made (or took over once it proved safe).
//                   sluice only ever drops a slot recorded here.
//   "snapshot"      "done" once the initial copy finished (or for snapshot: never, once the slot
//                   exists).
//   "copy/<s>.<t>"  one table's copy: progress, "done", and "snapshot_lsn": the stream position
//                   its copy was taken at. The table's changes in transactions committed before
//                   it are in the copy, so the stream skips them.
//   "resnapshot"    {"tables": [...]} (empty: all): what `sluice snapshot` asked for and is not
//                   finished yet; kept until the copy it asked for is done.
struct SlotRecord {
  std::string name;
  std::string state;  // creating | created | adopted
  core::Lsn consistent_point;
};

struct TableRecord {
  std::string table;  // "schema.name", unquoted (core::Relation::QualifiedName)
  bool done = false;
  core::Lsn snapshot_lsn;  // invalid: unknown (copied before sluice recorded it)
};

struct SnapshotRequest {
  std::vector<std::string> tables;  // empty: every table, from a new slot
  bool all() const { return tables.empty(); }
};

class PipelineState {
 public:
  PipelineState(state::CheckpointStore& store, std::string pipeline)
      : store_(store), pipeline_(std::move(pipeline)) {}

  core::Result<std::optional<SlotRecord>> LoadSlot();
  core::Status SaveSlot(const SlotRecord& record);
  core::Status ForgetSlot();

  core::Result<bool> SnapshotDone();
  core::Status MarkSnapshotDone();

  // Every table record, by table name.
  core::Result<std::map<std::string, TableRecord>> LoadTables();
  // Marks the table as copied at `snapshot_lsn` (keeps any progress fields already there).
  core::Status MarkTableCopied(const std::string& table, core::Lsn snapshot_lsn);
  // Marks the table as to be copied again: not done, and its target rows are sluice's to drop.
  core::Status MarkTableForCopy(const std::string& table);
  core::Status ForgetTables();

  core::Result<std::optional<SnapshotRequest>> LoadRequest();
  core::Status SaveRequest(const SnapshotRequest& request);
  core::Status ClearRequest();

  // Whether the pipeline has anything a new slot could lose: a checkpoint, a finished
  // initial copy, or any table copy started.
  core::Result<bool> HasPosition();

  // The store key of a table's copy record.
  static std::string TableKey(const std::string& table) { return "copy/" + table; }

 private:
  state::CheckpointStore& store_;
  const std::string pipeline_;
};

}  // namespace sluice::control
