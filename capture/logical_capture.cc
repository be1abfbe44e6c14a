#include "capture/logical_capture.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <utility>

#include "capture/pgoutput_decoder.h"
#include "capture/publication_manager.h"
#include "capture/replication_connection.h"
#include "capture/slot_check.h"
#include "capture/slot_manager.h"
#include "core/wall_clock.h"

namespace sluice::capture {
namespace {

// Walsenders this process stopped listening to (their stream went silent or broke), so that a
// slot still held by one of them reads as "wait for it to go" rather than "another client".
// A stopped walsender keeps its slot until it runs again and notices the closed connection.
class AbandonedWalsenders {
 public:
  static void Add(const std::string& endpoint, int pid) {
    if (pid <= 0) return;
    std::lock_guard lock(mu_);
    entries_.emplace_back(endpoint, pid);
    if (entries_.size() > kMaxEntries) entries_.pop_front();
  }
  static bool Contains(const std::string& endpoint, int pid) {
    std::lock_guard lock(mu_);
    return std::find(entries_.begin(), entries_.end(), std::pair{endpoint, pid}) != entries_.end();
  }

 private:
  static constexpr size_t kMaxEntries = 64;
  static inline std::mutex mu_;  // guards entries_
  static inline std::deque<std::pair<std::string, int>> entries_;
};

using core::UnixMillisNow;

}  // namespace

LogicalCapture::LogicalCapture(CaptureOptions options) : options_(std::move(options)) {}

LogicalCapture::~LogicalCapture() = default;

core::Result<std::unique_ptr<LogicalCapture>> LogicalCapture::Open(CaptureOptions options) {
  std::unique_ptr<LogicalCapture> capture(new LogicalCapture(std::move(options)));
  const CaptureOptions& o = capture->options_;
  const std::string where = "pipeline " + o.pipeline;

  // The publication is managed over an ordinary connection: publication DDL is plain SQL.
  {
    SLUICE_ASSIGN_OR_RETURN(auto sql,
                            pg::Connection::Connect(o.dsn, {.timeout = o.connect_timeout}));
    PublicationManager publications(*sql);
    if (o.create_publication) {
      // Also checks every published table's replica identity.
      SLUICE_RETURN_IF_ERROR(
          publications.EnsurePublication(o.publication, o.tables).WithContext(where));
    } else {
      SLUICE_RETURN_IF_ERROR(publications.CheckReplicaIdentity(o.publication).WithContext(where));
    }
    auto published = publications.PublishedTables(o.publication);
    if (!published.ok()) return published.status().WithContext(where);
    capture->published_tables_ = std::move(published).value();
  }

  SLUICE_ASSIGN_OR_RETURN(capture->connection_,
                          ReplicationConnection::Connect(o.dsn, o.connect_timeout));
  SLUICE_ASSIGN_OR_RETURN(int server_version, capture->connection_->ServerVersionNum());
  capture->protocol_version_ =
      o.protocol_version != 0 ? o.protocol_version : AutoProtocolVersion(server_version);

  SlotManager slots(*capture->connection_);
  if (!o.temporary_slot.empty()) {
    auto temporary = slots.CreateTemporarySlot(o.temporary_slot);
    if (!temporary.ok()) return temporary.status().WithContext(where);
    capture->slot_created_ = true;
    capture->consistent_point_ = temporary->consistent_point;
    capture->exported_snapshot_ = temporary->snapshot_name;
    spdlog::info("{}: temporary slot {} created at {}", where, o.temporary_slot,
                 temporary->consistent_point.ToString());
    return capture;
  }
  // The slot is checked on the connection that will stream from it, right before use.
  auto found = slots.InspectSlot(o.slot);
  if (!found.ok()) return found.status().WithContext(where);
  capture->slot_found_ = std::move(found).value();
  if (capture->slot_found_ && capture->slot_found_->active &&
      AbandonedWalsenders::Contains(capture->connection_->endpoint(),
                                    capture->slot_found_->active_pid)) {
    // Our own earlier walsender, silent or cut off, still holds the slot: wait for it.
    const std::string pid = std::to_string(capture->slot_found_->active_pid);
    return core::Unavailable(where + ": slot " + o.slot + " on " +
                             capture->connection_->endpoint() + " is still held by walsender pid " +
                             pid +
                             ", whose stream went silent or broke; retrying until it exits (if it "
                             "stays, end it with SELECT pg_terminate_backend(" +
                             pid + "))");
  }
  SLUICE_RETURN_IF_ERROR(
      CheckSlotUsable(capture->slot_found_, o.slot, o.slot_policy, capture->connection_->endpoint())
          .WithContext(where));
  auto slot_or = slots.EnsureSlot(o.slot, /*export_snapshot=*/true, o.slot_policy.may_create);
  if (!slot_or.ok()) return slot_or.status().WithContext(where);
  SlotInfo slot = std::move(slot_or).value();
  if (slot.active) {
    return core::Unavailable(where + ": slot " + o.slot + " on " +
                             capture->connection_->endpoint() +
                             " is being streamed by another process");
  }
  capture->slot_created_ = slot.created;
  capture->consistent_point_ = slot.consistent_point;
  capture->exported_snapshot_ = slot.snapshot_name;
  spdlog::info("{}: slot {} {} at {}", where, o.slot, slot.created ? "created" : "reused",
               slot.consistent_point.ToString());
  return capture;
}

core::Status LogicalCapture::VerifySlot(const SlotPolicy& policy) {
  SlotManager slots(*connection_);
  SLUICE_ASSIGN_OR_RETURN(std::optional<SlotState> slot, slots.InspectSlot(options_.slot));
  return CheckSlotUsable(slot, options_.slot, policy, connection_->endpoint())
      .WithContext("pipeline " + options_.pipeline);
}

const std::string& LogicalCapture::source_endpoint() const { return connection_->endpoint(); }

core::Status LogicalCapture::Run(core::Lsn resume_after, const std::atomic<bool>& stop,
                                 const EmitFn& emit, const IdleFn& on_idle, core::Lsn end_lsn) {
  const std::string where = "pipeline " + options_.pipeline;
  if (resume_after.valid() && !options_.read_only) connection_->SetDurableLsn(resume_after);

  StartOptions start;
  start.slot = options_.temporary_slot.empty() ? options_.slot : options_.temporary_slot;
  start.start_lsn = resume_after;
  start.protocol_version = protocol_version_;
  start.publications = {options_.publication};
  start.streaming = options_.streaming && protocol_version_ >= 2;
  start.binary = options_.binary;
  connection_->set_status_interval(options_.status_interval);
  connection_->set_receive_timeout(options_.receive_timeout);
  SLUICE_RETURN_IF_ERROR(connection_->StartReplication(start).WithContext(where));

  PgOutputDecoder decoder(protocol_version_);
  bool reached_end = false;
  uint64_t emitted = 0;  // whole transactions handed to `emit` (position-carrying ones)
  // Streams whose commit we already made durable in an earlier run are resent by the server
  // when they end after the slot's confirmed position; the emit wrapper drops them.
  TransactionAssembler assembler(options_.assembler, [&](core::Transaction&& txn) -> core::Status {
    if (txn.last_fragment) {
      stats_.transactions.fetch_add(1, std::memory_order_relaxed);
      if (end_lsn.valid() && txn.end_lsn >= end_lsn) reached_end = true;
    }
    if (resume_after.valid() && txn.commit_lsn.valid() && txn.commit_lsn < resume_after) {
      return core::Status::Ok();
    }
    stats_.changes.fetch_add(txn.changes.size(), std::memory_order_relaxed);
    const bool whole = txn.last_fragment && txn.end_lsn.valid();
    SLUICE_RETURN_IF_ERROR(emit(std::move(txn)));
    if (whole) ++emitted;
    return core::Status::Ok();
  });

  uint64_t frames_heard = 0;  // keepalives + changes as of the last source_heard stamp
  while (!stop.load(std::memory_order_relaxed) && !reached_end) {
    auto frame = connection_->Next(std::chrono::milliseconds(200));
    if (!frame.ok()) {
      AbandonedWalsenders::Add(connection_->endpoint(), connection_->backend_pid());
      return frame.status().WithContext(where);
    }
    stats_.server_wal_end.store(connection_->server_wal_end().value(), std::memory_order_relaxed);
    if (frame->has_value()) {
      const XLogData& data = **frame;
      stats_.messages.fetch_add(1, std::memory_order_relaxed);
      stats_.received_lsn.store(data.end_lsn.value(), std::memory_order_relaxed);
      auto message = decoder.Decode(data.payload);
      connection_->ReleaseFrame();  // the message owns its values: libpq's copy can go now
      if (!message.ok()) {
        return message.status().WithContext(where + " at " + data.start_lsn.ToString());
      }
      // The context is built only on error: this runs once per change.
      if (core::Status s = assembler.Process(std::move(message).value(), data.start_lsn); !s.ok()) {
        return s.WithContext(where + " at " + data.start_lsn.ToString());
      }
    } else {
      const ReplicationStats& heard = connection_->stats();
      if (heard.keepalives + heard.xlog_messages != frames_heard) {
        frames_heard = heard.keepalives + heard.xlog_messages;
        stats_.source_heard_unix_ms.store(UnixMillisNow(), std::memory_order_relaxed);
      }
      if (!assembler.in_transaction() && connection_->server_wal_end().valid()) {
        std::lock_guard lock(idle_mu_);
        idle_position_ = {connection_->server_wal_end(), emitted};
      }
      if (on_idle) SLUICE_RETURN_IF_ERROR(on_idle());
    }
    // The server's position (keepalives: how far it has decoded) past end_lsn, outside a
    // transaction, means every transaction committed before end_lsn has been delivered.
    if (end_lsn.valid() && connection_->server_wal_end() >= end_lsn &&
        !assembler.in_transaction()) {
      break;
    }
  }
  return FlushFeedback();
}

void LogicalCapture::SetDurableLsn(core::Lsn lsn) {
  if (!options_.read_only) connection_->SetDurableLsn(lsn);
}

IdlePosition LogicalCapture::idle_position() const {
  std::lock_guard lock(idle_mu_);
  return idle_position_;
}

core::Status LogicalCapture::FlushFeedback() { return connection_->SendFeedback(true); }

core::Status LogicalCapture::Finish() {
  SLUICE_RETURN_IF_ERROR(FlushFeedback());
  // CopyDone handshake: the server has taken the final position when this returns, so the
  // slot shows it at once (a plain disconnect leaves a busy walsender behind for a moment).
  return connection_->Close();
}

core::Result<std::optional<SlotState>> LogicalCapture::InspectSlot(const CaptureOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(auto connection,
                          ReplicationConnection::Connect(options.dsn, options.connect_timeout));
  SlotManager slots(*connection);
  auto slot = slots.InspectSlot(options.slot);
  if (!slot.ok()) return slot.status().WithContext("pipeline " + options.pipeline);
  return slot;
}

core::Status LogicalCapture::DropSlot(const CaptureOptions& options) {
  SLUICE_ASSIGN_OR_RETURN(auto connection,
                          ReplicationConnection::Connect(options.dsn, options.connect_timeout));
  SlotManager slots(*connection);
  core::Status dropped = slots.DropSlot(options.slot);
  if (dropped.code() == core::StatusCode::kNotFound) return core::Status::Ok();
  return dropped.WithContext("pipeline " + options.pipeline);
}

}  // namespace sluice::capture
