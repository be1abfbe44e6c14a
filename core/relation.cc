#include "core/relation.h"

#include <atomic>

namespace sluice::core {

uint64_t NextRelationVersion() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

bool Relation::SameDescription(const Relation& other) const {
  return oid == other.oid && schema == other.schema && name == other.name &&
         replica_identity == other.replica_identity && columns == other.columns;
}

}  // namespace sluice::core
