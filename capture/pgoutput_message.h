#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/change.h"
#include "core/lsn.h"
#include "core/relation.h"
#include "core/transaction.h"

namespace sluice::capture {

// The messages of PostgreSQL's pgoutput logical replication protocol (versions 1 to 4), as
// decoded from the bytes of one CopyData 'w' payload. Tuples reference the relation by OID;
// resolving the OID against the relation cache is the assembler's job, not the decoder's.
//
// `xid` on row-level messages is set only inside a streamed block (between Stream Start and
// Stream Stop), where the protocol carries it; otherwise it is nullopt.

// One tuple as sent: a value per column (null, unchanged TOAST, text or binary).
struct TupleData {
  core::Tuple values;
};

struct BeginMessage {
  core::Lsn final_lsn;  // LSN of the commit record
  core::PgTimestamp commit_time = 0;
  uint32_t xid = 0;
};

struct CommitMessage {
  uint8_t flags = 0;
  core::Lsn commit_lsn;
  core::Lsn end_lsn;
  core::PgTimestamp commit_time = 0;
};

struct OriginMessage {
  core::Lsn origin_lsn;
  std::string name;
};

struct RelationMessage {
  std::optional<uint32_t> xid;
  core::Relation relation;  // oid, schema, name, replica identity, columns (is_key from flags)
};

struct TypeMessage {
  std::optional<uint32_t> xid;
  core::Oid oid = 0;
  std::string schema;
  std::string name;
};

struct InsertMessage {
  std::optional<uint32_t> xid;
  core::Oid relation_oid = 0;
  TupleData new_tuple;
};

struct UpdateMessage {
  std::optional<uint32_t> xid;
  core::Oid relation_oid = 0;
  core::OldTupleKind old_kind = core::OldTupleKind::kNone;  // 'K' -> kKey, 'O' -> kFull
  TupleData old_tuple;
  TupleData new_tuple;
};

struct DeleteMessage {
  std::optional<uint32_t> xid;
  core::Oid relation_oid = 0;
  core::OldTupleKind old_kind = core::OldTupleKind::kKey;
  TupleData old_tuple;
};

struct TruncateMessage {
  std::optional<uint32_t> xid;
  bool cascade = false;
  bool restart_identity = false;
  std::vector<core::Oid> relation_oids;
};

struct LogicalMessage {
  std::optional<uint32_t> xid;
  bool transactional = false;
  core::Lsn lsn;
  std::string prefix;
  std::string content;
};

struct StreamStartMessage {
  uint32_t xid = 0;
  bool first_segment = false;
};

struct StreamStopMessage {};

struct StreamCommitMessage {
  uint32_t xid = 0;
  uint8_t flags = 0;
  core::Lsn commit_lsn;
  core::Lsn end_lsn;
  core::PgTimestamp commit_time = 0;
};

struct StreamAbortMessage {
  uint32_t xid = 0;     // top-level transaction
  uint32_t subxid = 0;  // equals xid when the whole transaction aborted
};

using PgOutputMessage =
    std::variant<BeginMessage, CommitMessage, OriginMessage, RelationMessage, TypeMessage,
                 InsertMessage, UpdateMessage, DeleteMessage, TruncateMessage, LogicalMessage,
                 StreamStartMessage, StreamStopMessage, StreamCommitMessage, StreamAbortMessage>;

}  // namespace sluice::capture
