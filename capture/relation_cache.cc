#include "capture/relation_cache.h"

#include <memory>
#include <utility>

namespace sluice::capture {

core::RelationPtr RelationCache::Put(core::Relation relation) {
  for (core::Column& column : relation.columns) {
    auto type = types_.find(column.type_oid);
    if (type == types_.end()) continue;
    column.type_schema = type->second.schema.empty() ? "pg_catalog" : type->second.schema;
    column.type_name = type->second.name;
  }
  const core::Oid oid = relation.oid;
  auto current = relations_.find(oid);
  // pgoutput describes a table again after every reconnection and cache invalidation, mostly
  // unchanged: the version stays, and with it whatever was built for it.
  if (current != relations_.end() && current->second->SameDescription(relation)) {
    return current->second;
  }
  relation.version = core::NextRelationVersion();
  auto version = std::make_shared<const core::Relation>(std::move(relation));
  relations_[oid] = version;
  return version;
}

core::Result<core::RelationPtr> RelationCache::Get(core::Oid oid) const {
  auto it = relations_.find(oid);
  if (it == relations_.end()) {
    return core::Corruption("relation OID " + std::to_string(oid) +
                            " used before any Relation message described it");
  }
  return it->second;
}

void RelationCache::PutType(core::Oid oid, std::string schema, std::string name) {
  types_[oid] = TypeName{std::move(schema), std::move(name)};
}

core::Result<RelationCache::TypeName> RelationCache::GetType(core::Oid oid) const {
  auto it = types_.find(oid);
  if (it == types_.end()) {
    return core::NotFound("type OID " + std::to_string(oid) + " not described by a Type message");
  }
  return it->second;
}

}  // namespace sluice::capture
