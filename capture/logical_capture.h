#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "capture/publication_manager.h"
#include "capture/slot_manager.h"
#include "capture/transaction_assembler.h"
#include "core/lsn.h"
#include "core/status.h"
#include "core/transaction.h"

namespace sluice::capture {

class ReplicationConnection;

// What the consumer's own durable state says about the pipeline's slot. A slot is only ever
// created for a pipeline that has nothing to lose: once it has a position, a missing slot, a
// slot that has confirmed more than the consumer made durable, or a slot whose WAL is gone
// would silently skip changes, so Open() refuses them (kFailedPrecondition naming the slot,
// the source, both positions and `remedy`).
struct SlotPolicy {
  bool may_create = true;
  // The consumer's durable position; when valid, the slot's confirmed_flush_lsn must not be
  // past it.
  core::Lsn durable_lsn;
  // The consumer never created a slot of this name: one that exists belongs to someone else
  // (another sluice with the same pipeline name, another tool) and is neither used nor dropped.
  bool refuse_existing = false;
  // What the operator runs to get going again; appended to every refusal.
  std::string remedy;
};

// Everything capture needs to know about one source.
struct CaptureOptions {
  std::string pipeline;  // for messages only
  std::string dsn;
  std::string slot;
  std::string publication;
  std::vector<std::string> tables;  // "schema.table" / "schema.*"
  bool create_publication = true;
  int protocol_version = 0;  // 0: the highest the server supports that sluice speaks
  bool streaming = true;     // stream large in-progress transactions (protocol >= 2)
  bool binary = false;
  std::chrono::milliseconds status_interval{10000};
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds receive_timeout{60000};  // 0 = never give up on a silent source
  AssemblerOptions assembler;
  SlotPolicy slot_policy;
  // Never confirm anything to the slot (a reader that must not move a position someone else
  // depends on, such as `sluice tail` on a pipeline with a target).
  bool read_only = false;
  // Stream from a TEMPORARY slot of this name instead of `slot` (created at Open, starting
  // now, dropped by the server when the connection ends).
  std::string temporary_slot;
};

// Counters readable from any thread while Run() works.
struct CaptureStats {
  std::atomic<uint64_t> messages{0};
  std::atomic<uint64_t> transactions{0};
  std::atomic<uint64_t> changes{0};
  std::atomic<uint64_t> received_lsn{0};    // highest WAL end received
  std::atomic<uint64_t> server_wal_end{0};  // the source's WAL end as last reported
  // Wall clock (Unix ms) when the source was last heard from (a keepalive, or the end of a run
  // of changes); stamped when the stream pauses, so not once per change. 0 = not yet.
  std::atomic<int64_t> source_heard_unix_ms{0};
};

// A position the consumer may confirm once it has made every transaction handed to it durable:
// the source had decoded up to `lsn` (a keepalive) while no transaction was open, and by then
// `transactions_emitted` whole transactions had been emitted. Lets an idle pipeline advance its
// slot while other databases or unpublished tables write WAL, so the source does not retain WAL
// forever.
struct IdlePosition {
  core::Lsn lsn;
  uint64_t transactions_emitted = 0;
};

// Tails one source's logical replication log: ensures the publication and the slot exist, starts
// pgoutput at the resume position and hands whole committed transactions (in fragments, see
// core::Transaction) to a callback in commit order.
//
// Durability contract: the flush position reported to the source is exactly what the consumer
// last passed to SetDurableLsn(), never more, so PostgreSQL keeps every WAL record that is not yet
// durable downstream and resends it after a crash.
//
// Threads: Open() and Run() on one thread; SetDurableLsn() and stats() from any thread.
class LogicalCapture {
 public:
  using EmitFn = std::function<core::Status(core::Transaction&&)>;
  // Called whenever the source had nothing to send for a moment (about every 200 ms when idle).
  using IdleFn = std::function<core::Status()>;

  ~LogicalCapture();

  // Connects and prepares the source (publication, slot). Does not start streaming yet.
  static core::Result<std::unique_ptr<LogicalCapture>> Open(CaptureOptions options);

  // The pipeline's slot as the source shows it now (nullopt: there is none), read on a
  // connection of its own.
  static core::Result<std::optional<SlotState>> InspectSlot(const CaptureOptions& options);

  // Drops the pipeline's slot (missing is fine): the next Open() creates it with a fresh
  // exported snapshot.
  static core::Status DropSlot(const CaptureOptions& options);

  // Checks the pipeline's slot again, as Open() did, against `policy` (e.g. after a long
  // initial copy, before the copy counts as done: someone may have dropped the slot meanwhile).
  // Before Run() only.
  core::Status VerifySlot(const SlotPolicy& policy);

  // Streams from `resume_after` (the durable position of a previous run; invalid = the slot's
  // own confirmed position) until `stop` becomes true, `end_lsn` (if valid) is reached, or an
  // error. Transactions whose end LSN is at or before `resume_after` are not emitted again.
  core::Status Run(core::Lsn resume_after, const std::atomic<bool>& stop, const EmitFn& emit,
                   const IdleFn& on_idle = nullptr, core::Lsn end_lsn = core::Lsn());

  // The consumer made everything up to `lsn` durable: may be confirmed to the source.
  void SetDurableLsn(core::Lsn lsn);

  // Sends a standby status update now (e.g. right after a checkpoint on shutdown).
  core::Status FlushFeedback();

  // Final feedback, then ends the stream gracefully. The capture is unusable afterwards.
  core::Status Finish();

  // True when the slot was created by this Open() (so a snapshot could be taken).
  bool slot_created() const { return slot_created_; }
  // The slot as it was found before Open() used it (nullopt: it did not exist).
  const std::optional<SlotState>& slot_found() const { return slot_found_; }
  // The tables the publication publishes, as Open() found them.
  const std::vector<TableInfo>& published_tables() const { return published_tables_; }
  const std::string& source_endpoint() const;
  core::Lsn consistent_point() const { return consistent_point_; }
  const std::string& exported_snapshot() const { return exported_snapshot_; }
  int protocol_version() const { return protocol_version_; }

  const CaptureStats& stats() const { return stats_; }
  IdlePosition idle_position() const;

 private:
  explicit LogicalCapture(CaptureOptions options);

  CaptureOptions options_;
  std::unique_ptr<ReplicationConnection> connection_;
  bool slot_created_ = false;
  std::optional<SlotState> slot_found_;
  std::vector<TableInfo> published_tables_;
  core::Lsn consistent_point_;
  std::string exported_snapshot_;
  int protocol_version_ = 1;
  CaptureStats stats_;
  mutable std::mutex idle_mu_;  // guards idle_position_
  IdlePosition idle_position_;
};

}  // namespace sluice::capture
