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

namespace sluice::capture {

// --- Connection strings -------------------------------------------------------------------

// `text` with every password removed: `password=...` key/value pairs (quoted or not) become
// `password=***`, and a URI's `user:secret@` becomes `user:***@`. Use it on anything that may
// echo a connection string into a log or error.
std::string RedactPassword(std::string_view text);

// The libpq keyword/value pairs a connection is opened with: the caller's conninfo (key=value
// or URI) expanded as `dbname`, then `fallback_application_name=sluice`, then (for replication)
// `replication=database` and `options` = the conninfo's own options (or PGOPTIONS) followed by
// kWalsenderSessionOptions. libpq processes pairs in order and keeps the last value of a
// keyword, so replication=database always wins over whatever the conninfo says, while an
// application_name in the conninfo wins over the fallback.
struct ConninfoParams {
  std::vector<std::string> keywords;
  std::vector<std::string> values;
};
ConninfoParams BuildConninfoParams(const std::string& dsn, bool replication);

// Session settings of the walsender, which prints pgoutput's text values in its own output
// formats: the same unambiguous forms PostgreSQL's own subscriber asks for (dates and intervals
// that mean the same under every target setting, floats that round-trip), whatever DateStyle,
// IntervalStyle and extra_float_digits the source has in postgresql.conf. A later -c wins over
// an earlier one, so these follow the user's options.
inline constexpr char kWalsenderSessionOptions[] =
    "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3";

// --- Quoting ---------------------------------------------------------------------------------

// "name" with embedded double quotes doubled: an identifier for SQL and replication commands.
std::string QuoteIdentifier(std::string_view name);
// 'value' with embedded single quotes doubled. Valid in replication commands (their scanner has
// no backslash escapes) and in SQL with standard_conforming_strings=on (the default since 9.1);
// PgConnection::QuoteLiteral is the connection-aware variant for SQL.
std::string QuoteLiteral(std::string_view value);

// A replication slot name as PostgreSQL accepts it: 1..63 characters of [a-z0-9_].
core::Status ValidateSlotName(std::string_view name);

// --- A plain libpq connection ------------------------------------------------------------------

struct QueryResult {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::string command_tag;  // e.g. "CREATE PUBLICATION"
};

// One libpq connection, regular or replication=database, with commands as values. Errors name
// the endpoint (host:port), the server's message and its SQLSTATE, and map the SQLSTATE to a
// StatusCode (08xxx/57P0x → kUnavailable, 53xxx → kResourceExhausted, 42501 → kFailedPrecondition,
// 42704/42P01/3F000 → kNotFound, 42710/42P07 → kAlreadyExists, ...).
//
// Threads: not thread-safe; one thread at a time.
class PgConnection {
 public:
  // Connects without blocking longer than `timeout` (non-blocking libpq connect + poll()).
  // Failure → kUnavailable with the server's message and host:port; a role without the
  // REPLICATION attribute → kFailedPrecondition; max_wal_senders exhausted →
  // kResourceExhausted. The password never appears in messages.
  static core::Result<std::unique_ptr<PgConnection>> Connect(const std::string& dsn,
                                                             bool replication,
                                                             std::chrono::milliseconds timeout);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one command (SQL, or a replication command on a replication connection) and returns
  // its rows (empty for commands without a result set). `what` describes the command in error
  // messages; empty = the command text itself.
  core::Result<QueryResult> Query(const std::string& command, const std::string& what = "");
  core::Status Exec(const std::string& command, const std::string& what = "") {
    return Query(command, what).status();
  }
  // Query() bounded on the client side: sent without blocking and awaited with poll(), so a
  // server that stopped answering (its processes stopped, the network cut) costs at most
  // `timeout`, then kUnavailable. The server's statement_timeout cannot do that: a stopped
  // server does not send its error either. After a timeout the connection is unusable (the
  // answer may still come): discard it.
  core::Result<QueryResult> QueryWithin(const std::string& command,
                                        std::chrono::milliseconds timeout,
                                        const std::string& what = "");
  // SQLSTATE of the last failed Query ("" if it succeeded or the failure had none).
  const std::string& last_sqlstate() const { return last_sqlstate_; }

  // Literal quoting that honours the connection's standard_conforming_strings.
  std::string QuoteLiteralForSql(std::string_view value) const;

  int server_version() const { return server_version_; }     // e.g. 150004
  const std::string& endpoint() const { return endpoint_; }  // "host:port"
  const std::string& user() const { return user_; }
  const std::string& dbname() const { return dbname_; }
  bool is_replication() const { return replication_; }

  PGconn* raw() { return conn_; }

  // PQerrorMessage without the trailing newline, passwords redacted.
  std::string ErrorMessage() const;

 private:
  PgConnection(PGconn* conn, bool replication);
  // A finished command's result as a value (or its error, SQLSTATE kept in last_sqlstate_).
  core::Result<QueryResult> TakeResult(const PGresult* res, const std::string& description);

  PGconn* conn_;
  bool replication_;
  int server_version_ = 0;
  std::string endpoint_;
  std::string user_;
  std::string dbname_;
  std::string last_sqlstate_;
};

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
  PgConnection& connection() { return *pg_; }
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
  explicit ReplicationConnection(std::unique_ptr<PgConnection> pg);

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

  std::unique_ptr<PgConnection> pg_;  // null after Close()
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
