#include "control/pipeline_state.h"

namespace sluice::control {

core::Result<std::optional<state::SlotRecord>> PipelineState::LoadSlot() {
  return store_.Load(state::SlotKey(pipeline_));
}

core::Status PipelineState::SaveSlot(const state::SlotRecord& record) {
  return store_.Save(state::SlotKey(pipeline_), record);
}

core::Result<bool> PipelineState::SnapshotDone() {
  SLUICE_ASSIGN_OR_RETURN(auto record, store_.Load(state::SnapshotKey(pipeline_)));
  return record && record->done;
}

core::Status PipelineState::MarkSnapshotDone(std::optional<state::Checkpoint> checkpoint) {
  state::StateBatch batch;
  if (checkpoint) batch.SaveCheckpoint(pipeline_, *checkpoint);
  batch.Put(state::SnapshotKey(pipeline_), state::SnapshotRecord{true});
  return store_.Commit(batch);
}

core::Result<std::map<std::string, state::TableCopyRecord>> PipelineState::LoadTables() {
  return store_.LoadAll(state::TableCopyPrefix(pipeline_));
}

core::Status PipelineState::MarkTablesCopied(const std::set<std::string>& tables,
                                             core::Lsn snapshot_lsn) {
  SLUICE_ASSIGN_OR_RETURN(auto records, LoadTables());
  state::StateBatch batch;
  for (const std::string& table : tables) {
    state::TableCopyRecord record = records[table];
    record.done = true;
    if (snapshot_lsn.valid()) record.snapshot_lsn = snapshot_lsn;
    batch.Put(state::TableCopyKey(pipeline_, table), record);
  }
  return store_.Commit(batch);
}

core::Status PipelineState::MarkTablesForCopy(const std::vector<std::string>& tables) {
  state::StateBatch batch;
  // A record that is not done is what the copy reads as "the target's rows are sluice's".
  for (const std::string& table : tables) {
    batch.Put(state::TableCopyKey(pipeline_, table), state::TableCopyRecord{});
  }
  return store_.Commit(batch);
}

core::Status PipelineState::ForgetPosition() {
  SLUICE_ASSIGN_OR_RETURN(auto tables, LoadTables());
  state::StateBatch batch;
  batch.Delete(state::SlotKey(pipeline_))
      .DeleteCheckpoint(pipeline_)
      .Delete(state::SnapshotKey(pipeline_));
  for (const auto& [table, record] : tables) {
    (void)record;
    batch.Delete(state::TableCopyKey(pipeline_, table));
  }
  return store_.Commit(batch);
}

core::Result<std::optional<state::SnapshotRequest>> PipelineState::LoadRequest() {
  return store_.Load(state::SnapshotRequestKey(pipeline_));
}

core::Status PipelineState::SaveRequest(const state::SnapshotRequest& request) {
  return store_.Save(state::SnapshotRequestKey(pipeline_), request);
}

core::Status PipelineState::ClearRequest() {
  return store_.Erase(state::SnapshotRequestKey(pipeline_));
}

core::Result<bool> PipelineState::HasPosition() {
  SLUICE_ASSIGN_OR_RETURN(auto checkpoint, store_.LoadCheckpoint(pipeline_));
  if (checkpoint) return true;
  SLUICE_ASSIGN_OR_RETURN(bool done, SnapshotDone());
  if (done) return true;
  SLUICE_ASSIGN_OR_RETURN(auto tables, LoadTables());
  return !tables.empty();
}

}  // namespace sluice::control
