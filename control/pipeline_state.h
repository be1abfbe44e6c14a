#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/lsn.h"
#include "core/status.h"
#include "state/checkpoint_store.h"

namespace sluice::control {

// What a pipeline's records in the state store (state/state_keys.h) say about its slot and its
// tables, and the changes to them that must land together (one StateBatch each):
//   "slot"          SlotRecord: the slot this state directory made (or took over once it
//                   proved safe). sluice only ever drops a slot recorded here.
//   "snapshot"      SnapshotRecord: the initial copy finished (or for snapshot: never, the slot
//                   exists).
//   "copy/<s>.<t>"  TableCopyRecord: one table's copy: progress, done, and the stream position
//                   its copy was taken at. The table's changes in transactions committed
//                   before it are in the copy, so the stream skips them.
//   "resnapshot"    SnapshotRequest: what `sluice snapshot` asked for and is not finished yet;
//                   kept until the copy it asked for is done.
class PipelineState {
 public:
  PipelineState(state::CheckpointStore& store, std::string pipeline)
      : store_(store), pipeline_(std::move(pipeline)) {}

  core::Result<std::optional<state::SlotRecord>> LoadSlot();
  core::Status SaveSlot(const state::SlotRecord& record);

  core::Result<bool> SnapshotDone();
  // The initial copy is done (or the `snapshot: never` slot exists), together with the
  // checkpoint it starts the stream at, when given.
  core::Status MarkSnapshotDone(std::optional<state::Checkpoint> checkpoint);

  // Every table's copy record, by table name ("schema.name").
  core::Result<std::map<std::string, state::TableCopyRecord>> LoadTables();
  // Marks the tables as copied at `snapshot_lsn` (keeping any progress fields already there).
  core::Status MarkTablesCopied(const std::set<std::string>& tables, core::Lsn snapshot_lsn);
  // Marks the tables as to be copied again: not done, and their target rows are sluice's to
  // drop.
  core::Status MarkTablesForCopy(const std::vector<std::string>& tables);

  // Forgets everything that points into the old slot's stream: the slot record, the checkpoint,
  // the finished copy and every table's record; for `sluice snapshot` of every table, which
  // starts over from a new slot. Leaves the request that asked for it.
  core::Status ForgetPosition();

  core::Result<std::optional<state::SnapshotRequest>> LoadRequest();
  core::Status SaveRequest(const state::SnapshotRequest& request);
  core::Status ClearRequest();

  // Whether the pipeline has anything a new slot could lose: a checkpoint, a finished
  // initial copy, or any table copy started.
  core::Result<bool> HasPosition();

 private:
  state::CheckpointStore& store_;
  const std::string pipeline_;
};

}  // namespace sluice::control
