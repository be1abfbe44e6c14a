#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "core/lsn.h"
#include "state/state_keys.h"
#include "state/state_records.h"

namespace sluice::state {

// Writes to the state store that land together or not at all: CheckpointStore::Commit writes
// them as one synced RocksDB WriteBatch, so a crash (kill -9, power loss) leaves either every
// write of the batch or none. For records that only mean something together: a checkpoint and
// the copy it ends, a forgotten position and everything that pointed into it, a migration's
// phase and the positions it refers to.
//
// Writes apply in the order they were added. A checkpoint never moves backwards, in a batch as
// alone: a SaveCheckpoint behind the pipeline's stored checkpoint (or behind an earlier one in
// the same batch) is left out, and the rest of the batch is still written; after a
// DeleteCheckpoint any position is taken.
//
// Threads: a batch is a plain value; build it on one thread.
class StateBatch {
 public:
  template <typename Record>
  StateBatch& Put(const RecordKey<Record>& key, const Record& record) {
    static_assert(!std::is_same_v<Record, Checkpoint>,
                  "use SaveCheckpoint: a checkpoint never moves backwards");
    writes_.push_back(
        {Kind::kPut, key.owner(), key.key(), EncodeRecord(record), {}, Record::kRecordName});
    return *this;
  }
  // Deleting a missing record is fine.
  template <typename Record>
  StateBatch& Delete(const RecordKey<Record>& key) {
    writes_.push_back({Kind::kDelete, key.owner(), key.key(), {}, {}, Record::kRecordName});
    return *this;
  }
  StateBatch& SaveCheckpoint(const std::string& pipeline, const Checkpoint& checkpoint);
  // The one way a position goes back: `sluice snapshot` starts the pipeline over.
  StateBatch& DeleteCheckpoint(const std::string& pipeline);

  bool empty() const { return writes_.empty(); }
  size_t size() const { return writes_.size(); }

 private:
  friend class CheckpointStore;
  enum class Kind { kPut, kDelete, kSaveCheckpoint, kDeleteCheckpoint };
  struct Write {
    Kind kind;
    std::string owner;  // pipeline or migration
    std::string key;
    std::string value;         // kPut, kSaveCheckpoint
    core::Lsn checkpoint_lsn;  // kSaveCheckpoint
    const char* record_name;   // for messages
  };
  std::vector<Write> writes_;
};

}  // namespace sluice::state
