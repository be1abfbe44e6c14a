#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "capture/pgoutput_message.h"
#include "capture/relation_cache.h"
#include "capture/spill_file.h"
#include "core/lsn.h"
#include "core/status.h"
#include "core/transaction.h"

namespace sluice::capture {

struct AssemblerOptions {
  // Bound on the changes of open streamed transactions held in memory (sum of
  // Change::ApproximateBytes); beyond it the largest transaction is spilled to disk.
  uint64_t memory_limit_bytes = 64ull << 20;
  // Where streamed transactions spill. Must be private to this assembler: spill files found
  // there at construction are deleted as stale. Empty: spilling is an error.
  std::string spill_dir;
  // Bounds of one emitted fragment (a fragment may exceed max_fragment_bytes by one change).
  size_t max_fragment_changes = 10000;
  uint64_t max_fragment_bytes = 8ull << 20;
  // Transactions whose pgoutput Origin is one of these are emitted without changes (loop
  // prevention: sluice's own apply origins).
  std::set<std::string> skip_origins;
};

// Turns decoded pgoutput messages into committed transactions in commit order.
//
// Emission (through EmitFn, on the calling thread, in order):
// * A transaction is emitted as one or more fragments (core::Transaction with the same xid,
//   commit_lsn, commit_time, origin and origin_lsn; fragment = 0, 1, ...; the last one has
//   last_fragment set). Only the last fragment carries end_lsn; earlier ones have an invalid
//   end_lsn. A transaction without changes (including a skipped origin) is one empty last
//   fragment, so consumers can still advance their position past it.
// * Non-streamed transactions are never buffered whole: a fragment full by count is emitted
//   as soon as another change arrives, one full by bytes at once (so a huge value is handed
//   on before the next message is read; the last fragment may then be empty). Streamed
//   (proto v2) transactions are buffered (in memory up to memory_limit_bytes in total, then
//   spilled) and emitted at Stream Commit, in fragments cut the same way.
// * A non-transactional logical message is emitted as its own transaction: xid 0, one kMessage
//   change, commit_lsn = the message's LSN, and an INVALID end_lsn, because it is not ordered
//   with the transactions still open on the source: consumers must not checkpoint (or confirm
//   to the source) an invalid end_lsn. One arriving inside a non-streamed transaction is held
//   back until that transaction's last fragment has been emitted, so fragments of one
//   transaction are never interleaved with anything else.
// * Change::lsn is the start LSN of the XLogData frame that carried the change (the commit LSN
//   when that is invalid in a non-streamed transaction).
//
// Errors: protocol violations (Begin inside a transaction, Commit without Begin, row messages
// outside a transaction or stream block, unknown xid in Stream Commit, tuple size not matching
// the relation, ...) are kCorruption naming the message and LSN. An error returned by the
// emit callback is returned as is. After any error the assembler's state is unspecified: the
// caller must stop and discard it (a restarted stream is assembled by a new assembler).
//
// Not thread-safe: one capture thread feeds it.
class TransactionAssembler {
 public:
  using EmitFn = std::function<core::Status(core::Transaction&&)>;

  TransactionAssembler(AssemblerOptions options, EmitFn emit);
  ~TransactionAssembler();

  // Feeds one decoded message; `wal_lsn` is the start LSN of the XLogData frame carrying it.
  core::Status Process(PgOutputMessage&& message, core::Lsn wal_lsn);

  // Bytes of changes of open streamed transactions held in memory; never above
  // memory_limit_bytes after Process returns. (The fragment being filled for a non-streamed
  // transaction is bounded by the fragment limits instead and not counted here.)
  uint64_t buffered_bytes() const { return streamed_memory_bytes_; }
  // Bytes currently in spill files of open streamed transactions.
  uint64_t spilled_bytes() const;

  const RelationCache& relations() const { return relations_; }
  size_t open_streamed_transactions() const { return streamed_.size(); }
  // True between Begin and Commit, or inside a stream block: a message is still due.
  bool in_transaction() const { return open_ != nullptr || stream_xid_.has_value(); }

 private:
  struct Fragmenter;
  struct OpenTransaction;
  struct StreamedTransaction;

  core::Status OnBegin(BeginMessage& m, core::Lsn wal_lsn);
  core::Status OnCommit(CommitMessage& m, core::Lsn wal_lsn);
  core::Status OnOrigin(OriginMessage& m, core::Lsn wal_lsn);
  core::Status OnLogicalMessage(LogicalMessage& m, core::Lsn wal_lsn);
  core::Status OnStreamStart(StreamStartMessage& m, core::Lsn wal_lsn);
  core::Status OnStreamStop(core::Lsn wal_lsn);
  core::Status OnStreamCommit(StreamCommitMessage& m, core::Lsn wal_lsn);
  core::Status OnStreamAbort(StreamAbortMessage& m, core::Lsn wal_lsn);

  // Routes a built change to the open transaction or stream block. `xid` is the message's.
  core::Status AddChange(const char* message_name, std::optional<uint32_t> xid,
                         core::Change&& change, core::Lsn wal_lsn);
  core::Status AddStreamedChange(StreamedTransaction& txn, uint32_t xid, core::Change&& change);
  core::Status EnforceMemoryLimit();
  core::Status Spill(StreamedTransaction& txn);
  core::Status FlushDeferred();

  core::Result<core::RelationPtr> ResolveRelation(core::Oid oid, const char* message_name,
                                                  core::Lsn wal_lsn) const;
  core::Status CheckTuple(const core::Tuple& tuple, const core::Relation& relation,
                          const char* what, const char* message_name, core::Lsn wal_lsn) const;

  AssemblerOptions options_;
  EmitFn emit_;
  core::Status init_status_;
  RelationCache relations_;

  std::unique_ptr<OpenTransaction> open_;  // between Begin and Commit
  std::optional<uint32_t> stream_xid_;     // between Stream Start and Stream Stop
  std::unordered_map<uint32_t, std::unique_ptr<StreamedTransaction>> streamed_;
  uint64_t streamed_memory_bytes_ = 0;
  std::vector<core::Transaction> deferred_;  // non-transactional messages held during a txn
};

}  // namespace sluice::capture
