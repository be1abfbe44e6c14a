#include "state/state_keys.h"

namespace sluice::state {

std::string PipelineKeyRoot(const std::string& pipeline) {
  return kPipelineKeyRoot + pipeline + "/";
}

std::string PipelineValueRoot(const std::string& pipeline) {
  return PipelineKeyRoot(pipeline) + "kv/";
}

RecordKey<Checkpoint> CheckpointKey(const std::string& pipeline) {
  return {pipeline, PipelineKeyRoot(pipeline) + "checkpoint"};
}

RecordKey<SlotRecord> SlotKey(const std::string& pipeline) {
  return {pipeline, PipelineValueRoot(pipeline) + "slot"};
}

RecordKey<SnapshotRecord> SnapshotKey(const std::string& pipeline) {
  return {pipeline, PipelineValueRoot(pipeline) + "snapshot"};
}

RecordKey<TableCopyRecord> TableCopyKey(const std::string& pipeline, const std::string& table) {
  return {pipeline, TableCopyPrefix(pipeline).prefix() + table};
}

RecordPrefix<TableCopyRecord> TableCopyPrefix(const std::string& pipeline) {
  return {pipeline, PipelineValueRoot(pipeline) + "copy/"};
}

RecordKey<SnapshotRequest> SnapshotRequestKey(const std::string& pipeline) {
  return {pipeline, PipelineValueRoot(pipeline) + "resnapshot"};
}

RecordKey<PipelineErrorRecord> LastErrorKey(const std::string& pipeline) {
  return {pipeline, PipelineValueRoot(pipeline) + "last_error"};
}

RecordKey<MigrationRecord> MigrationKey(const std::string& migration) {
  return {migration, kMigrationKeyRoot + migration};
}

}  // namespace sluice::state
