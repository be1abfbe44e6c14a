#pragma once

#include <string>
#include <utility>

#include "state/state_records.h"

namespace sluice::state {

// Every key of the state store, in one place. One RocksDB database per daemon, one column
// family, keys as bytes:
//
//   meta/format_version                     decimal text: "2" (format 1 kept records as JSON)
//   pipeline/<name>/checkpoint              Checkpoint
//   pipeline/<name>/kv/slot                 SlotRecord
//   pipeline/<name>/kv/snapshot             SnapshotRecord
//   pipeline/<name>/kv/copy/<schema>.<tab>  TableCopyRecord, one per table ("schema.name" as
//                                           core::Relation::QualifiedName, unquoted)
//   pipeline/<name>/kv/resnapshot           SnapshotRequest
//   pipeline/<name>/kv/last_error           PipelineErrorRecord
//   pipeline/<name>/kv/<other>              raw values of CheckpointStore::Put (tools, tests)
//   migration/<name>                        MigrationRecord
//
// Pipeline and migration names are non-empty and contain no '/' (the store checks); a table
// name may be any bytes. The records' encoding is state_records.h.

// Where a record of type Record lives: the store reads and writes it only as that type.
template <typename Record>
class RecordKey {
 public:
  RecordKey(std::string owner, std::string key) : owner_(std::move(owner)), key_(std::move(key)) {}
  // The pipeline or migration the record belongs to (checked by the store).
  const std::string& owner() const { return owner_; }
  // The RocksDB key.
  const std::string& key() const { return key_; }

 private:
  std::string owner_;
  std::string key_;
};

// Where a family of records of type Record lives: every key that starts with prefix().
template <typename Record>
class RecordPrefix {
 public:
  RecordPrefix(std::string owner, std::string prefix)
      : owner_(std::move(owner)), prefix_(std::move(prefix)) {}
  const std::string& owner() const { return owner_; }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string owner_;
  std::string prefix_;
};

inline constexpr char kFormatVersionKey[] = "meta/format_version";
inline constexpr char kPipelineKeyRoot[] = "pipeline/";
inline constexpr char kMigrationKeyRoot[] = "migration/";

// "pipeline/<name>/": every key of the pipeline starts with it.
std::string PipelineKeyRoot(const std::string& pipeline);
// "pipeline/<name>/kv/": the pipeline's records besides its checkpoint, and raw values.
std::string PipelineValueRoot(const std::string& pipeline);

RecordKey<Checkpoint> CheckpointKey(const std::string& pipeline);
RecordKey<SlotRecord> SlotKey(const std::string& pipeline);
RecordKey<SnapshotRecord> SnapshotKey(const std::string& pipeline);
RecordKey<TableCopyRecord> TableCopyKey(const std::string& pipeline, const std::string& table);
// Listed by table name ("schema.name").
RecordPrefix<TableCopyRecord> TableCopyPrefix(const std::string& pipeline);
RecordKey<SnapshotRequest> SnapshotRequestKey(const std::string& pipeline);
RecordKey<PipelineErrorRecord> LastErrorKey(const std::string& pipeline);
RecordKey<MigrationRecord> MigrationKey(const std::string& migration);

}  // namespace sluice::state
