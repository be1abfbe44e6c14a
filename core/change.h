#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/lsn.h"
#include "core/relation.h"
#include "core/value.h"

namespace sluice::core {

using Tuple = std::vector<Value>;  // one Value per column of the change's Relation

enum class Operation : uint8_t { kInsert, kUpdate, kDelete, kTruncate, kMessage };

const char* OperationName(Operation op);

// What the old tuple of an update or delete holds.
enum class OldTupleKind : uint8_t {
  kNone,  // not sent: update that did not change the key (identity default / index)
  kKey,   // only replica-identity columns are meaningful (others are null)
  kFull,  // the whole old row (REPLICA IDENTITY FULL)
};

// One row change (or truncate, or logical message) inside a transaction.
struct Change {
  Operation op = Operation::kInsert;
  Lsn lsn;  // WAL position of the change where known (streamed changes), else the commit LSN

  // Insert, Update, Delete: the table and its tuples.
  RelationPtr relation;
  OldTupleKind old_kind = OldTupleKind::kNone;
  Tuple old_tuple;  // Update/Delete when old_kind != kNone
  Tuple new_tuple;  // Insert/Update

  // Truncate: every table truncated together, and the options used.
  std::vector<RelationPtr> truncated;
  bool truncate_cascade = false;
  bool truncate_restart_identity = false;

  // Message (pg_logical_emit_message).
  bool message_transactional = false;
  std::string message_prefix;
  std::string message_content;

  // Rough in-memory size, used for memory bounds.
  size_t ApproximateBytes() const;
};

}  // namespace sluice::core
