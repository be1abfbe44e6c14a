#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::core {

using Oid = uint32_t;

// A table's shape as the source described it in a pgoutput Relation message. Immutable once
// built: a later Relation message for the same OID (after ALTER TABLE) makes a new object, and
// changes decoded before it keep pointing at the version they were decoded with.
struct Column {
  std::string name;
  Oid type_oid = 0;
  int32_t type_modifier = -1;
  bool is_key = false;  // part of the replica identity
};

enum class ReplicaIdentity : char {
  kDefault = 'd',  // primary key
  kNothing = 'n',
  kFull = 'f',
  kIndex = 'i',
};

struct Relation {
  Oid oid = 0;
  std::string schema;
  std::string name;
  ReplicaIdentity replica_identity = ReplicaIdentity::kDefault;
  std::vector<Column> columns;

  // "schema.name" unquoted, for messages and JSON.
  std::string QualifiedName() const { return schema + "." + name; }
};

using RelationPtr = std::shared_ptr<const Relation>;

}  // namespace sluice::core
