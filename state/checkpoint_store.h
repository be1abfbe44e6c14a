#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/lsn.h"
#include "core/status.h"
#include "core/transaction.h"

namespace rocksdb {
class DB;
}

namespace sluice::state {

// Where a pipeline may resume: everything up to durable_lsn is durable on the target.
struct Checkpoint {
  core::Lsn durable_lsn;
  core::PgTimestamp commit_time = 0;  // commit time of the transaction that ended at durable_lsn
  int64_t updated_at_unix_ms = 0;     // wall clock when the checkpoint was saved

  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// The daemon's small persistent state, one RocksDB database per daemon in its state
// directory, shared by all pipelines.
//
// Key layout (bytes, all under one column family):
//   "meta/format_version"              -> decimal text, currently "1"
//   "pipeline/<name>/checkpoint"       -> checkpoint record (below)
//   "pipeline/<name>/kv/<key>"         -> caller's value for Put/Get/Delete/List, stored as is
// Pipeline names must be non-empty and contain no '/'; keys may be any non-empty bytes.
//
// Checkpoint record, 25 bytes, integers little-endian:
//   [0]      version byte, 1
//   [1..9)   durable_lsn (uint64)
//   [9..17)  commit_time (int64, microseconds since 2000-01-01 UTC as PostgreSQL sends it)
//   [17..25) updated_at_unix_ms (int64)
// Records with another version or size are reported as kCorruption, never guessed at.
//
// Durability: every write is synced (WriteOptions::sync), so a value is on disk when the
// call returns, and survives kill -9 of the process and a machine crash.
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
  core::Result<std::optional<Checkpoint>> LoadCheckpoint(const std::string& pipeline);

  // Generic per-pipeline values (migration phase, snapshot progress per table, counters).
  // Values are opaque bytes; the caller owns their format.
  core::Status Put(const std::string& pipeline, const std::string& key, const std::string& value);
  core::Result<std::optional<std::string>> Get(const std::string& pipeline, const std::string& key);
  // Deleting a missing key is Ok.
  core::Status Delete(const std::string& pipeline, const std::string& key);
  // All (key, value) pairs of the pipeline whose key starts with `key_prefix`, in byte order
  // of the key. An empty prefix lists everything the pipeline Put.
  core::Result<std::vector<std::pair<std::string, std::string>>> List(
      const std::string& pipeline, const std::string& key_prefix);

  // Names of all pipelines with a checkpoint or any value, sorted.
  core::Result<std::vector<std::string>> Pipelines();

  // Encoding of the checkpoint record described above; exposed for tests and tools.
  static std::string EncodeCheckpoint(const Checkpoint& checkpoint);
  static core::Result<Checkpoint> DecodeCheckpoint(const std::string& bytes);

 private:
  CheckpointStore(std::string dir, bool read_only, std::unique_ptr<rocksdb::DB> db);

  core::Status CheckWritable(const char* what) const;
  core::Status Write(const std::string& key, const std::string* value, const std::string& what);

  const std::string dir_;
  const bool read_only_;
  std::unique_ptr<rocksdb::DB> db_;
  std::mutex checkpoint_mu_;  // makes SaveCheckpoint's read-compare-write atomic
};

}  // namespace sluice::state
