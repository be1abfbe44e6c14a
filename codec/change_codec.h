#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/change.h"
#include "core/relation.h"
#include "core/status.h"

namespace sluice::codec {

// The relation versions referenced by the encoded changes of one transaction. An encoded
// change names its relation by index into this table instead of repeating the relation, and
// a relation replaced mid-transaction (a new version, core::RelationId) gets a new index,
// so every change decodes back to the exact version it was built with.
//
// Not thread-safe. Indexes are stable for the table's lifetime.
class RelationTable {
 public:
  // Index of `relation` (must not be null), adding it on first use.
  uint32_t IndexOf(const core::RelationPtr& relation);

  // The relation at `index`; kCorruption when out of range.
  core::Result<core::RelationPtr> At(uint64_t index) const;

  size_t size() const { return relations_.size(); }

 private:
  std::vector<core::RelationPtr> relations_;
  std::unordered_map<core::RelationId, uint32_t, core::RelationIdHash> index_of_;
};

// Appends the compact binary form of `change` to `*out`, registering its relations in
// `relations`. Self-delimiting only together with an outer length (the spill file frames
// each record).
void EncodeChange(const core::Change& change, RelationTable& relations, std::string* out);

// Decodes exactly `bytes` (one record) back into a Change. Every length and index is checked
// against the input and `relations`: malformed input is kCorruption naming the byte offset,
// never a crash or an over-read. Tuple sizes are checked against the relation's columns.
core::Result<core::Change> DecodeChange(std::string_view bytes, const RelationTable& relations);

}  // namespace sluice::codec
