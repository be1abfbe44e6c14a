#include "capture/transaction_assembler.h"

#include <algorithm>
#include <type_traits>
#include <utility>

namespace sluice::capture {
namespace {

template <typename T>
constexpr const char* MessageName() {
  if constexpr (std::is_same_v<T, BeginMessage>) return "Begin";
  if constexpr (std::is_same_v<T, CommitMessage>) return "Commit";
  if constexpr (std::is_same_v<T, OriginMessage>) return "Origin";
  if constexpr (std::is_same_v<T, RelationMessage>) return "Relation";
  if constexpr (std::is_same_v<T, TypeMessage>) return "Type";
  if constexpr (std::is_same_v<T, InsertMessage>) return "Insert";
  if constexpr (std::is_same_v<T, UpdateMessage>) return "Update";
  if constexpr (std::is_same_v<T, DeleteMessage>) return "Delete";
  if constexpr (std::is_same_v<T, TruncateMessage>) return "Truncate";
  if constexpr (std::is_same_v<T, LogicalMessage>) return "Message";
  if constexpr (std::is_same_v<T, StreamStartMessage>) return "Stream Start";
  if constexpr (std::is_same_v<T, StreamStopMessage>) return "Stream Stop";
  if constexpr (std::is_same_v<T, StreamCommitMessage>) return "Stream Commit";
  if constexpr (std::is_same_v<T, StreamAbortMessage>) return "Stream Abort";
  return "unknown";
}

core::Status ProtocolError(const char* message_name, core::Lsn wal_lsn, const std::string& what) {
  return core::Corruption("pgoutput " + std::string(message_name) + " at " + wal_lsn.ToString() +
                          ": " + what);
}

}  // namespace

// Cuts the changes of one transaction into bounded fragments and emits them.
struct TransactionAssembler::Fragmenter {
  Fragmenter(core::Transaction header_fields, const AssemblerOptions& options)
      : header(std::move(header_fields)),
        max_changes(std::max<size_t>(options.max_fragment_changes, 1)),
        max_bytes(options.max_fragment_bytes) {}

  // A fragment full by count is emitted once the next change arrives, so a transaction of
  // whole fragments has no empty tail. One full by bytes is emitted at once: a huge value then
  // leaves capture (for the queue, which bounds it) before the next message is read, and is
  // not held twice meanwhile. The last fragment is empty only after such a fragment.
  core::Status Add(core::Change&& change, const EmitFn& emit) {
    if (changes.size() >= max_changes) {
      SLUICE_RETURN_IF_ERROR(Emit(/*last=*/false, core::kInvalidLsn, emit));
    }
    bytes += change.ApproximateBytes();
    changes.push_back(std::move(change));
    if (bytes >= max_bytes) return Emit(/*last=*/false, core::kInvalidLsn, emit);
    return core::Status::Ok();
  }

  core::Status Emit(bool last, core::Lsn end_lsn, const EmitFn& emit) {
    core::Transaction fragment;
    fragment.xid = header.xid;
    fragment.commit_lsn = header.commit_lsn;
    fragment.end_lsn = last ? end_lsn : core::kInvalidLsn;
    fragment.commit_time = header.commit_time;
    fragment.origin = header.origin;
    fragment.origin_lsn = header.origin_lsn;
    fragment.fragment = next_fragment++;
    fragment.last_fragment = last;
    fragment.changes = std::move(changes);
    changes.clear();
    bytes = 0;
    return emit(std::move(fragment));
  }

  core::Transaction header;  // changes unused
  size_t max_changes;
  uint64_t max_bytes;
  uint32_t next_fragment = 0;
  std::vector<core::Change> changes;
  uint64_t bytes = 0;
};

// A non-streamed transaction between Begin and Commit.
struct TransactionAssembler::OpenTransaction {
  OpenTransaction(core::Transaction header, const AssemblerOptions& options, core::Lsn begin_at)
      : fragmenter(std::move(header), options), begin_lsn(begin_at) {}

  Fragmenter fragmenter;
  core::Lsn begin_lsn;   // frame of the Begin message, for error messages
  bool skipped = false;  // origin in skip_origins: changes are dropped
  bool saw_change = false;
};

// A streamed transaction from its first Stream Start until Stream Commit or Abort.
struct TransactionAssembler::StreamedTransaction {
  uint64_t total_changes() const { return (spill ? spill->record_count() : 0) + memory.size(); }

  uint32_t xid = 0;
  std::string origin;
  core::Lsn origin_lsn;
  bool skipped = false;
  bool saw_change = false;

  // Changes [0, spill->record_count()) are in the spill file, the rest in `memory`.
  std::unique_ptr<SpillFile> spill;
  std::vector<core::Change> memory;
  uint64_t memory_bytes = 0;

  // Subtransactions in the order of their first change, with that change's position. An abort
  // of one drops everything from its first change on: later changes belong to it or to its
  // children, since a sibling cannot start before it ends.
  std::vector<std::pair<uint32_t, uint64_t>> subxacts;
  std::unordered_map<uint32_t, uint64_t> first_change_of_subxact;
};

TransactionAssembler::TransactionAssembler(AssemblerOptions options, EmitFn emit)
    : options_(std::move(options)), emit_(std::move(emit)) {
  if (!options_.spill_dir.empty()) init_status_ = RemoveStaleSpillFiles(options_.spill_dir);
}

TransactionAssembler::~TransactionAssembler() = default;

uint64_t TransactionAssembler::spilled_bytes() const {
  uint64_t total = 0;
  for (const auto& [xid, txn] : streamed_) {
    if (txn->spill) total += txn->spill->size_bytes();
  }
  return total;
}

core::Status TransactionAssembler::Process(PgOutputMessage&& message, core::Lsn wal_lsn) {
  SLUICE_RETURN_IF_ERROR(init_status_);
  return std::visit(
      [&](auto& m) -> core::Status {
        using T = std::decay_t<decltype(m)>;
        constexpr const char* kName = MessageName<T>();
        // An update's or delete's old tuple (its key or whole row), when the source sent one.
        auto take_old_tuple = [&](auto& msg, core::Change& change) -> core::Status {
          if (msg.old_kind == core::OldTupleKind::kNone) return core::Status::Ok();
          SLUICE_RETURN_IF_ERROR(
              CheckTuple(msg.old_tuple.values, *change.relation, "old tuple", kName, wal_lsn));
          change.old_kind = msg.old_kind;
          change.old_tuple = std::move(msg.old_tuple.values);
          return core::Status::Ok();
        };
        if constexpr (std::is_same_v<T, BeginMessage>) {
          return OnBegin(m, wal_lsn);
        } else if constexpr (std::is_same_v<T, CommitMessage>) {
          return OnCommit(m, wal_lsn);
        } else if constexpr (std::is_same_v<T, OriginMessage>) {
          return OnOrigin(m, wal_lsn);
        } else if constexpr (std::is_same_v<T, RelationMessage>) {
          relations_.Put(std::move(m.relation));
          return core::Status::Ok();
        } else if constexpr (std::is_same_v<T, TypeMessage>) {
          relations_.PutType(m.oid, std::move(m.schema), std::move(m.name));
          return core::Status::Ok();
        } else if constexpr (std::is_same_v<T, InsertMessage>) {
          core::Change change;
          change.op = core::Operation::kInsert;
          SLUICE_ASSIGN_OR_RETURN(change.relation, ResolveRelation(m.relation_oid, kName, wal_lsn));
          SLUICE_RETURN_IF_ERROR(
              CheckTuple(m.new_tuple.values, *change.relation, "new tuple", kName, wal_lsn));
          change.new_tuple = std::move(m.new_tuple.values);
          return AddChange(kName, m.xid, std::move(change), wal_lsn);
        } else if constexpr (std::is_same_v<T, UpdateMessage>) {
          core::Change change;
          change.op = core::Operation::kUpdate;
          SLUICE_ASSIGN_OR_RETURN(change.relation, ResolveRelation(m.relation_oid, kName, wal_lsn));
          SLUICE_RETURN_IF_ERROR(take_old_tuple(m, change));
          SLUICE_RETURN_IF_ERROR(
              CheckTuple(m.new_tuple.values, *change.relation, "new tuple", kName, wal_lsn));
          change.new_tuple = std::move(m.new_tuple.values);
          return AddChange(kName, m.xid, std::move(change), wal_lsn);
        } else if constexpr (std::is_same_v<T, DeleteMessage>) {
          core::Change change;
          change.op = core::Operation::kDelete;
          SLUICE_ASSIGN_OR_RETURN(change.relation, ResolveRelation(m.relation_oid, kName, wal_lsn));
          SLUICE_RETURN_IF_ERROR(take_old_tuple(m, change));
          return AddChange(kName, m.xid, std::move(change), wal_lsn);
        } else if constexpr (std::is_same_v<T, TruncateMessage>) {
          core::Change change;
          change.op = core::Operation::kTruncate;
          change.truncate_cascade = m.cascade;
          change.truncate_restart_identity = m.restart_identity;
          change.truncated.reserve(m.relation_oids.size());
          for (core::Oid oid : m.relation_oids) {
            SLUICE_ASSIGN_OR_RETURN(core::RelationPtr relation,
                                    ResolveRelation(oid, kName, wal_lsn));
            change.truncated.push_back(std::move(relation));
          }
          return AddChange(kName, m.xid, std::move(change), wal_lsn);
        } else if constexpr (std::is_same_v<T, LogicalMessage>) {
          return OnLogicalMessage(m, wal_lsn);
        } else if constexpr (std::is_same_v<T, StreamStartMessage>) {
          return OnStreamStart(m, wal_lsn);
        } else if constexpr (std::is_same_v<T, StreamStopMessage>) {
          return OnStreamStop(wal_lsn);
        } else if constexpr (std::is_same_v<T, StreamCommitMessage>) {
          return OnStreamCommit(m, wal_lsn);
        } else {
          static_assert(std::is_same_v<T, StreamAbortMessage>);
          return OnStreamAbort(m, wal_lsn);
        }
      },
      message);
}

core::Result<core::RelationPtr> TransactionAssembler::ResolveRelation(core::Oid oid,
                                                                      const char* message_name,
                                                                      core::Lsn wal_lsn) const {
  auto relation = relations_.Get(oid);
  if (!relation.ok()) return ProtocolError(message_name, wal_lsn, relation.status().message());
  return relation;
}

core::Status TransactionAssembler::CheckTuple(const core::Tuple& tuple,
                                              const core::Relation& relation, const char* what,
                                              const char* message_name, core::Lsn wal_lsn) const {
  if (tuple.size() == relation.columns.size()) return core::Status::Ok();
  return ProtocolError(message_name, wal_lsn,
                       std::string(what) + " has " + std::to_string(tuple.size()) +
                           " values but table " + relation.QualifiedName() + " has " +
                           std::to_string(relation.columns.size()) + " columns");
}

core::Status TransactionAssembler::OnBegin(BeginMessage& m, core::Lsn wal_lsn) {
  if (open_) {
    return ProtocolError("Begin", wal_lsn,
                         "transaction " + std::to_string(open_->fragmenter.header.xid) +
                             " begun at " + open_->begin_lsn.ToString() + " is still open");
  }
  if (stream_xid_) {
    return ProtocolError("Begin", wal_lsn,
                         "inside the stream block of transaction " + std::to_string(*stream_xid_));
  }
  core::Transaction header;
  header.xid = m.xid;
  header.commit_lsn = m.final_lsn;
  header.commit_time = m.commit_time;
  open_ = std::make_unique<OpenTransaction>(std::move(header), options_, wal_lsn);
  return core::Status::Ok();
}

core::Status TransactionAssembler::OnCommit(CommitMessage& m, core::Lsn wal_lsn) {
  if (!open_) return ProtocolError("Commit", wal_lsn, "no transaction is open (missing Begin)");
  Fragmenter& fragmenter = open_->fragmenter;
  if (m.commit_lsn.valid() && m.commit_lsn != fragmenter.header.commit_lsn) {
    return ProtocolError("Commit", wal_lsn,
                         "commit LSN " + m.commit_lsn.ToString() + " of transaction " +
                             std::to_string(fragmenter.header.xid) +
                             " differs from its Begin's final LSN " +
                             fragmenter.header.commit_lsn.ToString());
  }
  SLUICE_RETURN_IF_ERROR(fragmenter.Emit(/*last=*/true, m.end_lsn, emit_));
  open_.reset();
  return FlushDeferred();
}

core::Status TransactionAssembler::OnOrigin(OriginMessage& m, core::Lsn wal_lsn) {
  const bool skip = options_.skip_origins.count(m.name) > 0;
  if (open_) {
    if (open_->saw_change) {
      return ProtocolError(
          "Origin", wal_lsn,
          "after changes of transaction " + std::to_string(open_->fragmenter.header.xid));
    }
    open_->fragmenter.header.origin = std::move(m.name);
    open_->fragmenter.header.origin_lsn = m.origin_lsn;
    open_->skipped = skip;
    return core::Status::Ok();
  }
  if (stream_xid_) {
    StreamedTransaction& txn = *streamed_.at(*stream_xid_);
    if (txn.saw_change) {
      return ProtocolError("Origin", wal_lsn,
                           "after changes of streamed transaction " + std::to_string(txn.xid));
    }
    txn.origin = std::move(m.name);
    txn.origin_lsn = m.origin_lsn;
    txn.skipped = skip;
    return core::Status::Ok();
  }
  return ProtocolError("Origin", wal_lsn, "outside a transaction or stream block");
}

core::Status TransactionAssembler::OnLogicalMessage(LogicalMessage& m, core::Lsn wal_lsn) {
  core::Change change;
  change.op = core::Operation::kMessage;
  change.message_transactional = m.transactional;
  change.message_prefix = std::move(m.prefix);
  change.message_content = std::move(m.content);
  if (m.transactional) return AddChange("Message", m.xid, std::move(change), wal_lsn);

  change.lsn = wal_lsn.valid() ? wal_lsn : m.lsn;
  core::Transaction single;
  single.xid = 0;
  single.commit_lsn = m.lsn.valid() ? m.lsn : wal_lsn;
  single.end_lsn = core::kInvalidLsn;  // see the class comment: never a checkpoint position
  single.last_fragment = true;
  single.changes.push_back(std::move(change));
  if (open_) {
    deferred_.push_back(std::move(single));
    return core::Status::Ok();
  }
  return emit_(std::move(single));
}

core::Status TransactionAssembler::FlushDeferred() {
  std::vector<core::Transaction> pending = std::move(deferred_);
  deferred_.clear();
  for (core::Transaction& txn : pending) SLUICE_RETURN_IF_ERROR(emit_(std::move(txn)));
  return core::Status::Ok();
}

core::Status TransactionAssembler::AddChange(const char* message_name, std::optional<uint32_t> xid,
                                             core::Change&& change, core::Lsn wal_lsn) {
  if (open_) {
    change.lsn = wal_lsn.valid() ? wal_lsn : open_->fragmenter.header.commit_lsn;
    open_->saw_change = true;
    if (open_->skipped) return core::Status::Ok();
    return open_->fragmenter.Add(std::move(change), emit_);
  }
  if (stream_xid_) {
    change.lsn = wal_lsn;
    StreamedTransaction& txn = *streamed_.at(*stream_xid_);
    SLUICE_RETURN_IF_ERROR(AddStreamedChange(txn, xid.value_or(txn.xid), std::move(change)));
    return EnforceMemoryLimit();
  }
  return ProtocolError(message_name, wal_lsn, "outside a transaction or stream block");
}

core::Status TransactionAssembler::AddStreamedChange(StreamedTransaction& txn, uint32_t xid,
                                                     core::Change&& change) {
  txn.saw_change = true;
  if (txn.skipped) return core::Status::Ok();
  if (xid != txn.xid && !txn.first_change_of_subxact.contains(xid)) {
    const uint64_t position = txn.total_changes();
    txn.first_change_of_subxact.emplace(xid, position);
    txn.subxacts.emplace_back(xid, position);
  }
  const uint64_t bytes = change.ApproximateBytes();
  txn.memory.push_back(std::move(change));
  txn.memory_bytes += bytes;
  streamed_memory_bytes_ += bytes;
  return core::Status::Ok();
}

core::Status TransactionAssembler::EnforceMemoryLimit() {
  while (streamed_memory_bytes_ > options_.memory_limit_bytes) {
    StreamedTransaction* largest = nullptr;
    for (auto& [xid, txn] : streamed_) {
      if (largest == nullptr || txn->memory_bytes > largest->memory_bytes) largest = txn.get();
    }
    if (largest == nullptr || largest->memory_bytes == 0) {
      return core::Internal("streamed memory accounting is inconsistent");
    }
    SLUICE_RETURN_IF_ERROR(Spill(*largest));
  }
  return core::Status::Ok();
}

core::Status TransactionAssembler::Spill(StreamedTransaction& txn) {
  if (!txn.spill) {
    if (options_.spill_dir.empty()) {
      return core::ResourceExhausted("streamed transactions exceed the memory limit of " +
                                     std::to_string(options_.memory_limit_bytes) +
                                     " bytes and no spill directory is configured (transaction " +
                                     std::to_string(txn.xid) + ")");
    }
    SLUICE_ASSIGN_OR_RETURN(txn.spill, SpillFile::Create(options_.spill_dir, txn.xid));
  }
  for (const core::Change& change : txn.memory) {
    SLUICE_RETURN_IF_ERROR(txn.spill->Append(change).status());
  }
  txn.memory.clear();
  txn.memory.shrink_to_fit();
  streamed_memory_bytes_ -= txn.memory_bytes;
  txn.memory_bytes = 0;
  return core::Status::Ok();
}

core::Status TransactionAssembler::OnStreamStart(StreamStartMessage& m, core::Lsn wal_lsn) {
  if (open_) {
    return ProtocolError(
        "Stream Start", wal_lsn,
        "inside non-streamed transaction " + std::to_string(open_->fragmenter.header.xid));
  }
  if (stream_xid_) {
    return ProtocolError("Stream Start", wal_lsn,
                         "for transaction " + std::to_string(m.xid) +
                             " before Stream Stop of transaction " + std::to_string(*stream_xid_));
  }
  auto it = streamed_.find(m.xid);
  if (m.first_segment) {
    if (it != streamed_.end()) {
      return ProtocolError(
          "Stream Start", wal_lsn,
          "first segment of transaction " + std::to_string(m.xid) + " which is already open");
    }
    auto txn = std::make_unique<StreamedTransaction>();
    txn->xid = m.xid;
    streamed_.emplace(m.xid, std::move(txn));
  } else if (it == streamed_.end()) {
    return ProtocolError("Stream Start", wal_lsn,
                         "continues transaction " + std::to_string(m.xid) +
                             " whose first segment was never received");
  }
  stream_xid_ = m.xid;
  return core::Status::Ok();
}

core::Status TransactionAssembler::OnStreamStop(core::Lsn wal_lsn) {
  if (!stream_xid_) return ProtocolError("Stream Stop", wal_lsn, "without Stream Start");
  stream_xid_.reset();
  return core::Status::Ok();
}

core::Status TransactionAssembler::OnStreamCommit(StreamCommitMessage& m, core::Lsn wal_lsn) {
  if (open_ || stream_xid_) {
    return ProtocolError(
        "Stream Commit", wal_lsn,
        "for transaction " + std::to_string(m.xid) + " inside a transaction or stream block");
  }
  auto it = streamed_.find(m.xid);
  if (it == streamed_.end()) {
    return ProtocolError("Stream Commit", wal_lsn,
                         "unknown streamed transaction " + std::to_string(m.xid));
  }
  StreamedTransaction& txn = *it->second;

  core::Transaction header;
  header.xid = m.xid;
  header.commit_lsn = m.commit_lsn;
  header.commit_time = m.commit_time;
  header.origin = txn.origin;
  header.origin_lsn = txn.origin_lsn;
  Fragmenter fragmenter(std::move(header), options_);

  if (!txn.skipped) {
    if (txn.spill) {
      SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<SpillReader> reader, txn.spill->OpenReader());
      std::vector<core::Change> chunk;
      while (true) {
        chunk.clear();
        SLUICE_ASSIGN_OR_RETURN(
            bool more, reader->NextChunk(&chunk, fragmenter.max_changes, fragmenter.max_bytes));
        if (!more) break;
        for (core::Change& change : chunk) {
          SLUICE_RETURN_IF_ERROR(fragmenter.Add(std::move(change), emit_));
        }
      }
    }
    for (core::Change& change : txn.memory) {
      SLUICE_RETURN_IF_ERROR(fragmenter.Add(std::move(change), emit_));
    }
  }
  SLUICE_RETURN_IF_ERROR(fragmenter.Emit(/*last=*/true, m.end_lsn, emit_));
  streamed_memory_bytes_ -= txn.memory_bytes;
  streamed_.erase(it);  // removes the spill file
  return core::Status::Ok();
}

core::Status TransactionAssembler::OnStreamAbort(StreamAbortMessage& m, core::Lsn wal_lsn) {
  if (open_ || stream_xid_) {
    return ProtocolError(
        "Stream Abort", wal_lsn,
        "for transaction " + std::to_string(m.xid) + " inside a transaction or stream block");
  }
  auto it = streamed_.find(m.xid);
  // Nothing to drop: PostgreSQL's own apply worker tolerates this too.
  if (it == streamed_.end()) return core::Status::Ok();
  StreamedTransaction& txn = *it->second;

  if (m.subxid == m.xid) {
    streamed_memory_bytes_ -= txn.memory_bytes;
    streamed_.erase(it);  // removes the spill file
    return core::Status::Ok();
  }

  auto sub = txn.first_change_of_subxact.find(m.subxid);
  if (sub == txn.first_change_of_subxact.end()) return core::Status::Ok();  // no changes
  const uint64_t cut = sub->second;
  const uint64_t spilled = txn.spill ? txn.spill->record_count() : 0;
  if (cut >= spilled) {
    const size_t keep = static_cast<size_t>(cut - spilled);
    uint64_t dropped = 0;
    for (size_t i = keep; i < txn.memory.size(); ++i) dropped += txn.memory[i].ApproximateBytes();
    txn.memory.resize(keep);
    txn.memory_bytes -= dropped;
    streamed_memory_bytes_ -= dropped;
  } else {
    SLUICE_RETURN_IF_ERROR(txn.spill->TruncateToRecord(cut).WithContext(
        "Stream Abort of subtransaction " + std::to_string(m.subxid) + " of " +
        std::to_string(m.xid) + " at " + wal_lsn.ToString()));
    streamed_memory_bytes_ -= txn.memory_bytes;
    txn.memory_bytes = 0;
    txn.memory.clear();
  }
  while (!txn.subxacts.empty() && txn.subxacts.back().second >= cut) {
    txn.first_change_of_subxact.erase(txn.subxacts.back().first);
    txn.subxacts.pop_back();
  }
  return core::Status::Ok();
}

}  // namespace sluice::capture
