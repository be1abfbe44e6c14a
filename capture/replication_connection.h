#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capture/replication_frame.h"
#include "core/lsn.h"
#include "core/status.h"
#include "pg/connection.h"

namespace sluice::capture {

// A replication slot name as PostgreSQL accepts it: 1..63 characters of [a-z0-9_].
core::Status ValidateSlotName(std::string_view name);

// --- The replication connection ---------------------------------------------------------------

struct SystemIdentity {
  std::string system_id;  // decimal text (a uint64)
  int timeline = 0;
  core::Lsn xlogpos;   // current WAL flush position
  std::string dbname;  // database of a replication=database connection
};

struct StartOptions {
  std::string slot;
  core::Lsn start_lsn;  // 0/0 = the slot's confirmed_flush_lsn
  // pgoutput proto_version. 0 = automatic: 2 on PostgreSQL 14+ (streaming of in-progress
  // transactions; versions 3 and 4 add two-phase and parallel streaming, which sluice does not
  // use), 1 below 14. An explicit value is sent as is after a sanity check.
  int protocol_version = 0;
  std::vector<std::string> publications;  // at least one
  bool streaming = false;                 // needs protocol >= 2 and PostgreSQL 14+
  bool binary = false;                    // needs PostgreSQL 14+
  bool messages = true;                   // logical decoding messages; sent only on PostgreSQL 14+
  // pgoutput's origin option ("none" = only changes with no replication origin, "any"): sent
  // only when the server is 16+, silently omitted below (filter by Origin messages instead).
  std::string origin_filter;
};

// The automatic protocol version for a server (see StartOptions::protocol_version).
int AutoProtocolVersion(int server_version_num);

// The START_REPLICATION command for `options` against a server of `server_version_num`, with
// `protocol_version` already resolved (non-zero). kInvalidArgument / kUnsupported on options the
// server or protocol cannot honour.
core::Result<std::string> BuildStartReplicationCommand(const StartOptions& options,
                                                       int protocol_version,
                                                       int server_version_num);

struct ReplicationStats {
  uint64_t bytes_received = 0;     // CopyData bytes, all frame types
  uint64_t xlog_messages = 0;      // 'w' frames
  uint64_t keepalives = 0;         // 'k' frames
  uint64_t keepalive_replies = 0;  // status updates sent because the server asked
  uint64_t status_updates = 0;     // all status updates sent
  uint64_t replies_requested = 0;  // status updates asking the server to answer (silence)
};

// A replication=database connection streaming pgoutput over CopyBoth.
//
// Before StartReplication() it runs commands (IDENTIFY_SYSTEM, CREATE_REPLICATION_SLOT and
// plain SQL: see connection()). After it, Next() returns the XLogData frames one by one and
// keeps the stream healthy: keepalives are consumed inside (answered at once when the server
// asks) and a standby status update goes out every status_interval.
//
// Central safety rule: the flush/apply LSN reported to the server is the durable LSN set with
// SetDurableLsn() — never more. Until it is set, 0/0 is sent, which the server ignores, so the
// slot's confirmed_flush_lsn does not move. The write LSN reports how far we have received (the
// highest end LSN from 'w'/'k' frames), which lets a shutting-down server finish promptly.
//
// Threads: one thread uses a connection. SetDurableLsn() and durable_lsn() are the only
// thread-safe methods.
class ReplicationConnection {
 public:
  static core::Result<std::unique_ptr<ReplicationConnection>> Connect(
      const std::string& dsn, std::chrono::milliseconds connect_timeout);
  ~ReplicationConnection();  // PQfinish (no graceful CopyDone; call Close() for that)
  ReplicationConnection(const ReplicationConnection&) = delete;
  ReplicationConnection& operator=(const ReplicationConnection&) = delete;

  core::Result<SystemIdentity> IdentifySystem();
  core::Result<int> ServerVersionNum();

  // The underlying connection for commands before StartReplication() (slot management).
  // Not after Close().
  pg::Connection& connection() { return *pg_; }
  const std::string& endpoint() const { return endpoint_; }
  bool closed() const { return pg_ == nullptr; }

  // Sends START_REPLICATION and enters CopyBoth (non-blocking from here on).
  core::Status StartReplication(const StartOptions& options);
  bool streaming() const { return streaming_; }
  int protocol_version() const { return protocol_version_; }  // resolved; 0 before start

  // The next XLogData frame, or nullopt when none arrived within `timeout` (0 = only what is
  // already there). The returned payload borrows libpq's buffer: it stays valid until the next
  // call to Next(), Close() or the destructor — copy or decode it before calling again.
  // An empty result means no data before the timeout, or a keepalive that moved
  // server_wal_end(). Nothing from the server for the receive timeout → kUnavailable naming
  // endpoint, slot and the silence. Stream ended by the server or connection lost → kUnavailable
  // (with the server's error; kNotFound / kFailedPrecondition for errors retrying cannot fix, such
  // as a dropped publication); a malformed frame → kCorruption (do not trust the stream: Close()
  // and reconnect from the durable LSN).
  core::Result<std::optional<XLogData>> Next(std::chrono::milliseconds timeout);

  // Frees libpq's copy of the last frame Next() returned (its payload is invalid after), as
  // the next Next() would. A caller that has decoded the payload calls it at once, so that a
  // huge message is not held twice while the decoded values travel on. Idempotent.
  void ReleaseFrame() { ReleaseBuffer(); }

  // Everything up to `lsn` is durable downstream and may be confirmed to the server. Monotonic:
  // a smaller value than one set before is ignored. Thread-safe.
  void SetDurableLsn(core::Lsn lsn);
  core::Lsn durable_lsn() const { return core::Lsn(durable_lsn_.load(std::memory_order_acquire)); }

  // Sends a standby status update now. force=false sends only when there is something new to
  // report (the durable or received position moved since the last update).
  core::Status SendFeedback(bool force = true);

  // How often Next() sends a status update on its own (default 10 s; keep it well below the
  // server's wal_sender_timeout).
  void set_status_interval(std::chrono::milliseconds interval);

  // How long the server may stay silent before Next() gives up on the stream (default 60 s;
  // 0 = never). A reply is requested after half of it, or after status_interval when it is 0,
  // so an idle but healthy walsender still says it is there.
  void set_receive_timeout(std::chrono::milliseconds timeout);

  // The walsender's process id on the server (0 once closed).
  int backend_pid() const;

  core::Lsn last_received_lsn() const { return last_received_lsn_; }  // highest 'w' start LSN
  core::Lsn server_wal_end() const { return server_wal_end_; }  // highest end LSN from 'w'/'k'
  const ReplicationStats& stats() const { return stats_; }

  // Ends the stream gracefully (CopyDone, wait briefly for the server's) and closes the
  // connection. Safe to call more than once; the connection is unusable afterwards.
  core::Status Close();

 private:
  explicit ReplicationConnection(std::unique_ptr<pg::Connection> pg);

  using Clock = std::chrono::steady_clock;

  void ReleaseBuffer();
  core::Status SendStatusUpdate(bool reply_requested);
  core::Status FlushOutput();
  core::Status StreamEnded();
  // Waits until the socket is readable (or writable, when output is pending) or `until`;
  // consumes input when readable.
  core::Status WaitForSocket(Clock::time_point until);
  // After `silent` of listening without a frame: asks for a reply at half the receive timeout,
  // fails at the whole of it; lowers `*wake` to the moment of the next such step.
  core::Status AnswerSilence(Clock::duration silent, Clock::time_point now,
                             Clock::time_point* wake);
  core::Lsn WriteLsn() const;

  std::unique_ptr<pg::Connection> pg_;  // null after Close()
  std::string endpoint_;
  bool streaming_ = false;
  int protocol_version_ = 0;
  std::string slot_;

  char* buffer_ = nullptr;  // libpq buffer backing the last returned payload
  std::atomic<uint64_t> durable_lsn_{0};
  core::Lsn last_received_lsn_;
  core::Lsn server_wal_end_;

  std::chrono::milliseconds status_interval_{10000};
  Clock::time_point next_status_at_{};
  bool status_update_unsent_ = false;  // PQputCopyData could not queue it; retry
  bool output_pending_ = false;        // PQflush left data in libpq's buffer
  core::Lsn last_sent_write_;
  core::Lsn last_sent_flush_;

  std::chrono::milliseconds receive_timeout_{60000};
  Clock::duration silent_for_{};  // listened inside Next() since the server's last frame
  bool reply_requested_ = false;  // a reply was asked for during the current silence

  ReplicationStats stats_;
};

}  // namespace sluice::capture
