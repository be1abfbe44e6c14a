#pragma once

#include <string>
#include <unordered_map>

#include "core/relation.h"
#include "core/status.h"

namespace sluice::capture {

// The relations and types the source described in pgoutput Relation and Type messages, by OID.
//
// A Relation message that changes the description replaces the entry with a new immutable
// object of a new version (core::Relation::version): changes already built keep the shared_ptr
// to the version they were decoded with, so an ALTER TABLE in the middle of the stream never
// changes the meaning of earlier changes.
//
// Not thread-safe: owned and used by the capture thread only.
class RelationCache {
 public:
  struct TypeName {
    std::string schema;
    std::string name;
  };

  // Stores `relation` as the current version for its OID and returns it; when it describes the
  // table exactly as the current version does, returns that one instead (same object, same
  // core::RelationId), else gives it a new version number. Columns whose type a
  // Type message described get its name (core::Column::type_schema / type_name): pgoutput
  // sends a Type message for every column type at or above core::kFirstAssignedOid before the
  // Relation message that uses it.
  core::RelationPtr Put(core::Relation relation);

  // The current version for `oid`; kCorruption naming the OID when the source never described
  // it (pgoutput always sends a Relation message before the first change of a table).
  core::Result<core::RelationPtr> Get(core::Oid oid) const;

  // `schema` as sent: pgoutput sends an empty one for pg_catalog (a domain over a built-in type
  // is described by its base type's name).
  void PutType(core::Oid oid, std::string schema, std::string name);

  // The type's name; kNotFound naming the OID when no Type message described it (built-in
  // types are never described).
  core::Result<TypeName> GetType(core::Oid oid) const;

  size_t relation_count() const { return relations_.size(); }
  size_t type_count() const { return types_.size(); }

 private:
  std::unordered_map<core::Oid, core::RelationPtr> relations_;
  std::unordered_map<core::Oid, TypeName> types_;
};

}  // namespace sluice::capture
