#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/lsn.h"
#include "core/status.h"
#include "state/state_batch.h"
#include "state/state_keys.h"
#include "state/state_records.h"

namespace rocksdb {
class DB;
}

namespace sluice::state {

// The daemon's small persistent state, one RocksDB database per daemon in its state
// directory, shared by all pipelines. What it holds and where is state_keys.h; the records and
// their encoding are state_records.h. Sluice's own records are read and written only as their
// types (Load, Save, StateBatch); the raw Put/Get/Delete/List below are for tools and tests.
//
// Durability: every write is synced (WriteOptions::sync), so a value is on disk when the
// call returns, and survives kill -9 of the process and a machine crash. A StateBatch is
// written all or nothing.
//
// Format versions: a store of format 1 (records as JSON) opens and reads the same; a writable
// open marks it format 2, which an older sluice refuses, since records saved from then on are
// in the new encoding. A store of a format this sluice does not know is refused.
//
// Locking: a writable store holds RocksDB's LOCK file; a second writable Open of the same
// directory (from this or another process) fails with kFailedPrecondition. A read-only store
// takes no lock, so `sluice status` can open it while the daemon runs; it sees the data as of
// its Open (reopen to refresh) and every write through it fails with kFailedPrecondition.
//
// Threads: all methods may be called concurrently from several threads.
class CheckpointStore {
 public:
  // Opens (creating when writable and missing) the store in `dir`. A read-only open of a
  // directory that holds no store fails with kNotFound.
  static core::Result<std::unique_ptr<CheckpointStore>> Open(const std::string& dir,
                                                             bool read_only = false);

  ~CheckpointStore();  // closes the database and releases the lock
  CheckpointStore(const CheckpointStore&) = delete;
  CheckpointStore& operator=(const CheckpointStore&) = delete;

  const std::string& dir() const { return dir_; }
  bool read_only() const { return read_only_; }

  // Records the pipeline's checkpoint durably. Checkpoints never move backwards: when
  // `checkpoint.durable_lsn` is lower than the stored one the call changes nothing and
  // returns Ok (a late or replayed acknowledgement is harmless, not an error). An equal LSN
  // overwrites the record (refreshing commit_time / updated_at_unix_ms).
  core::Status SaveCheckpoint(const std::string& pipeline, const Checkpoint& checkpoint);

  // Forgets the pipeline's checkpoint (missing is Ok): the one way a position goes back, for
  // `sluice snapshot`, which starts the pipeline over from a new slot.
  core::Status DeleteCheckpoint(const std::string& pipeline);

  // The pipeline's checkpoint, or nullopt if it never saved one.
  core::Result<std::optional<Checkpoint>> LoadCheckpoint(const std::string& pipeline) {
    return Load(CheckpointKey(pipeline));
  }

  // Writes every write of `batch` durably, all or nothing (see StateBatch). An empty batch is
  // Ok; a bad pipeline name anywhere in it writes nothing (kInvalidArgument).
  core::Status Commit(const StateBatch& batch);

  // The record at `key`, nullopt when there is none; kCorruption when its bytes do not decode.
  template <typename Record>
  core::Result<std::optional<Record>> Load(const RecordKey<Record>& key) {
    SLUICE_ASSIGN_OR_RETURN(std::optional<std::string> bytes,
                            ReadKey(key.owner(), key.key(), Record::kRecordName));
    if (!bytes) return std::optional<Record>();
    Record record;
    SLUICE_RETURN_IF_ERROR(InContext(DecodeRecord(*bytes, &record), key.owner(), key.key()));
    return std::optional<Record>(std::move(record));
  }
  // Every record under `prefix`, by the rest of its key (for table copies: the table name).
  template <typename Record>
  core::Result<std::map<std::string, Record>> LoadAll(const RecordPrefix<Record>& prefix) {
    SLUICE_ASSIGN_OR_RETURN(auto rows,
                            ScanPrefix(prefix.owner(), prefix.prefix(), Record::kRecordName));
    std::map<std::string, Record> records;
    for (const auto& [rest, bytes] : rows) {
      Record record;
      SLUICE_RETURN_IF_ERROR(
          InContext(DecodeRecord(bytes, &record), prefix.owner(), prefix.prefix() + rest));
      records.emplace(rest, std::move(record));
    }
    return records;
  }
  // One record alone (a batch of one).
  template <typename Record>
  core::Status Save(const RecordKey<Record>& key, const Record& record) {
    StateBatch batch;
    batch.Put(key, record);
    return Commit(batch);
  }
  template <typename Record>
  core::Status Erase(const RecordKey<Record>& key) {
    StateBatch batch;
    batch.Delete(key);
    return Commit(batch);
  }

  // Raw values under "pipeline/<name>/kv/<key>", stored as given: for tools and tests (sluice's
  // own records go through the typed keys of state_keys.h).
  core::Status Put(const std::string& pipeline, const std::string& key, const std::string& value);
  core::Result<std::optional<std::string>> Get(const std::string& pipeline, const std::string& key);
  // Deleting a missing key is Ok.
  core::Status Delete(const std::string& pipeline, const std::string& key);
  // All (key, value) pairs of the pipeline whose key starts with `key_prefix`, in byte order
  // of the key. An empty prefix lists every record and value of the pipeline but its checkpoint.
  core::Result<std::vector<std::pair<std::string, std::string>>> List(
      const std::string& pipeline, const std::string& key_prefix);

  // Names of all pipelines with a checkpoint or any value, sorted.
  core::Result<std::vector<std::string>> Pipelines();

 private:
  CheckpointStore(std::string dir, bool read_only, std::unique_ptr<rocksdb::DB> db);

  core::Status CheckWritable(const char* what) const;
  core::Status Write(const std::string& key, const std::string* value, const std::string& what);
  // The bytes at `key` of `owner` (a pipeline or migration name, checked).
  core::Result<std::optional<std::string>> ReadKey(const std::string& owner, const std::string& key,
                                                   const char* what);
  // (rest of key, bytes) for every key of `owner` that starts with `prefix`.
  core::Result<std::vector<std::pair<std::string, std::string>>> ScanPrefix(
      const std::string& owner, const std::string& prefix, const char* what);
  // `status` with the store, owner and key in front (Ok stays Ok).
  core::Status InContext(const core::Status& status, const std::string& owner,
                         const std::string& key) const;

  const std::string dir_;
  const bool read_only_;
  std::unique_ptr<rocksdb::DB> db_;
  std::mutex checkpoint_mu_;  // makes a batch's checkpoint read-compare-write atomic
};

}  // namespace sluice::state
