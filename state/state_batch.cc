#include "state/state_batch.h"

namespace sluice::state {

StateBatch& StateBatch::SaveCheckpoint(const std::string& pipeline, const Checkpoint& checkpoint) {
  writes_.push_back({Kind::kSaveCheckpoint, pipeline, CheckpointKey(pipeline).key(),
                     EncodeRecord(checkpoint), checkpoint.durable_lsn, Checkpoint::kRecordName});
  return *this;
}

StateBatch& StateBatch::DeleteCheckpoint(const std::string& pipeline) {
  writes_.push_back({Kind::kDeleteCheckpoint,
                     pipeline,
                     CheckpointKey(pipeline).key(),
                     {},
                     {},
                     Checkpoint::kRecordName});
  return *this;
}

}  // namespace sluice::state
