#pragma once

// Builders of the change model for tests of every module (header only, no I/O): relations,
// changes of each kind, transactions. Production code never includes this.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/change.h"
#include "core/relation.h"
#include "core/transaction.h"

namespace sluice::core::testing {

inline constexpr Oid kInt4Oid = 23;
inline constexpr Oid kTextOid = 25;

// A relation in schema "public" with `columns` (use KeyColumn / PlainColumn).
inline RelationPtr MakeRelation(Oid oid, std::string name, std::vector<Column> columns,
                                ReplicaIdentity identity = ReplicaIdentity::kDefault) {
  auto relation = std::make_shared<Relation>();
  relation->oid = oid;
  relation->schema = "public";
  relation->name = std::move(name);
  relation->replica_identity = identity;
  relation->columns = std::move(columns);
  return relation;
}

inline Column KeyColumn(std::string name, Oid type_oid = kInt4Oid) {
  return Column(std::move(name), type_oid, -1, /*is_key=*/true);
}
inline Column PlainColumn(std::string name, Oid type_oid = kInt4Oid) {
  return Column(std::move(name), type_oid, -1, /*is_key=*/false);
}

inline Change MakeInsert(RelationPtr relation, std::vector<Value> new_tuple) {
  Change change;
  change.op = Operation::kInsert;
  change.relation = std::move(relation);
  change.new_tuple = std::move(new_tuple);
  return change;
}

// An update; `old_kind` kNone means the key did not change and no old tuple was sent.
inline Change MakeUpdate(RelationPtr relation, std::vector<Value> new_tuple,
                         OldTupleKind old_kind = OldTupleKind::kNone,
                         std::vector<Value> old_tuple = {}) {
  Change change = MakeInsert(std::move(relation), std::move(new_tuple));
  change.op = Operation::kUpdate;
  change.old_kind = old_kind;
  change.old_tuple = std::move(old_tuple);
  return change;
}

inline Change MakeDelete(RelationPtr relation, std::vector<Value> old_tuple,
                         OldTupleKind old_kind = OldTupleKind::kKey) {
  Change change;
  change.op = Operation::kDelete;
  change.relation = std::move(relation);
  change.old_kind = old_kind;
  change.old_tuple = std::move(old_tuple);
  return change;
}

// A committed transaction whose commit record is at `commit_lsn` (and ends 8 bytes later).
inline Transaction MakeTransaction(uint64_t commit_lsn, std::vector<Change> changes) {
  Transaction txn;
  txn.commit_lsn = Lsn(commit_lsn);
  txn.end_lsn = Lsn(commit_lsn + 8);
  txn.changes = std::move(changes);
  return txn;
}

}  // namespace sluice::core::testing
