#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sluice::core {

using Oid = uint32_t;

// OIDs below this are assigned by PostgreSQL's own catalog files (FirstGenbkiObjectId): a
// built-in type has the same OID, and format_type() gives it the same name, on every server.
// Types at or above it (made by initdb, extensions or users) have OIDs of their own on each
// server, so a target can know them only by name (Column::type_schema / type_name).
constexpr Oid kFirstAssignedOid = 10000;

// A table's shape as the source described it in a pgoutput Relation message. Immutable once
// built: a later Relation message for the same OID (after ALTER TABLE) makes a new object, and
// changes decoded before it keep pointing at the version they were decoded with.
struct Column {
  Column() = default;
  // {name, type OID, typmod, key} as most code and tests spell a column; the type's name is
  // set where it is known (capture::RelationCache).
  Column(std::string name, Oid type_oid, int32_t type_modifier, bool is_key,
         std::string type_schema = {}, std::string type_name = {})
      : name(std::move(name)),
        type_oid(type_oid),
        type_modifier(type_modifier),
        is_key(is_key),
        type_schema(std::move(type_schema)),
        type_name(std::move(type_name)) {}

  std::string name;
  Oid type_oid = 0;
  int32_t type_modifier = -1;
  bool is_key = false;  // part of the replica identity
  // The type's schema and name on the source, for a type whose OID is kFirstAssignedOid or
  // above (enums, composites, arrays of them as "_name", extension types; a domain is named by
  // its base type, as pgoutput describes it); empty for built-in types and when the source did
  // not name the type.
  std::string type_schema;
  std::string type_name;

  bool HasFixedTypeOid() const { return type_oid < kFirstAssignedOid; }
  bool operator==(const Column&) const = default;
};

enum class ReplicaIdentity : char {
  kDefault = 'd',  // primary key
  kNothing = 'n',
  kFull = 'f',
  kIndex = 'i',
};

// Which version of a table's description a Relation is: what caches of anything built from a
// relation (prepared statements, a codec's relation table) are keyed by, instead of the
// object's address. Two Relation objects with the same id describe the table alike.
struct RelationId {
  Oid oid = 0;
  uint64_t version = 0;

  bool operator==(const RelationId&) const = default;
};

struct RelationIdHash {
  size_t operator()(const RelationId& id) const noexcept {
    return std::hash<uint64_t>{}(id.version ^ (uint64_t{id.oid} << 40));
  }
};

// The next number of a process-wide sequence (starting at 1; thread-safe), so that relation
// versions made anywhere in the process, by any RelationCache, never meet.
uint64_t NextRelationVersion();

struct Relation {
  Oid oid = 0;
  // Every Relation made gets a version of its own; a copy keeps it (it describes the table
  // alike). capture::RelationCache hands out the version it holds when the source describes a
  // table again unchanged, and a new one when the description changed (ALTER TABLE). Code that
  // changes a copy's description (tests above all) gives it `version = NextRelationVersion()`.
  uint64_t version = NextRelationVersion();
  std::string schema;
  std::string name;
  ReplicaIdentity replica_identity = ReplicaIdentity::kDefault;
  std::vector<Column> columns;

  // "schema.name" unquoted, for messages and JSON.
  std::string QualifiedName() const { return schema + "." + name; }
  RelationId id() const { return {oid, version}; }
  // Everything but the version is equal: the same description of the table.
  bool SameDescription(const Relation& other) const;
};

using RelationPtr = std::shared_ptr<const Relation>;

}  // namespace sluice::core
