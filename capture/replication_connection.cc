#include "capture/replication_connection.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <variant>

#include "core/number_text.h"
#include "core/pg_time.h"
#include "pg/quote.h"
#include "pg/redact.h"
#include "pg/socket_poll.h"
#include "pg/sql_state.h"

namespace sluice::capture {
namespace {

using Clock = std::chrono::steady_clock;
using pg::PollSocket;

}  // namespace

core::Status ValidateSlotName(std::string_view name) {
  if (name.empty() || name.size() > 63) {
    return core::InvalidArgument("replication slot name '" + std::string(name) +
                                 "' must be 1 to 63 characters long");
  }
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      return core::InvalidArgument("replication slot name '" + std::string(name) +
                                   "' may contain only lower-case letters, digits and '_'");
    }
  }
  return core::Status::Ok();
}

// --- START_REPLICATION ------------------------------------------------------------------------

int AutoProtocolVersion(int server_version_num) { return server_version_num >= 140000 ? 2 : 1; }

core::Result<std::string> BuildStartReplicationCommand(const StartOptions& options,
                                                       int protocol_version,
                                                       int server_version_num) {
  SLUICE_RETURN_IF_ERROR(ValidateSlotName(options.slot));
  if (options.publications.empty()) {
    return core::InvalidArgument("START_REPLICATION on slot " + options.slot +
                                 " needs at least one publication");
  }
  const int max_protocol = server_version_num >= 160000   ? 4
                           : server_version_num >= 150000 ? 3
                           : server_version_num >= 140000 ? 2
                                                          : 1;
  if (protocol_version < 1 || protocol_version > max_protocol) {
    return core::InvalidArgument("pgoutput protocol version " + std::to_string(protocol_version) +
                                 " is not supported by the server (version " +
                                 std::to_string(server_version_num) + " speaks 1.." +
                                 std::to_string(max_protocol) + ")");
  }
  if (options.streaming && protocol_version < 2) {
    return core::InvalidArgument(
        "streaming of in-progress transactions needs pgoutput protocol version 2 or later "
        "(PostgreSQL 14+); got version " +
        std::to_string(protocol_version));
  }
  if (options.binary && server_version_num < 140000) {
    return core::Unsupported("binary transfer needs PostgreSQL 14+ (server version " +
                             std::to_string(server_version_num) + ")");
  }
  if (!options.origin_filter.empty() && options.origin_filter != "none" &&
      options.origin_filter != "any") {
    return core::InvalidArgument("origin filter must be \"none\" or \"any\", got \"" +
                                 options.origin_filter + "\"");
  }

  // publication_names is a list of identifiers inside one string literal.
  std::string names;
  for (const auto& publication : options.publications) {
    if (publication.empty()) return core::InvalidArgument("empty publication name");
    if (!names.empty()) names += ",";
    names += pg::QuoteIdentifier(publication);
  }
  std::string command = "START_REPLICATION SLOT " + pg::QuoteIdentifier(options.slot) +
                        " LOGICAL " + options.start_lsn.ToString() + " (proto_version " +
                        pg::QuoteReplicationLiteral(std::to_string(protocol_version)) +
                        ", publication_names " + pg::QuoteReplicationLiteral(names);
  if (options.streaming) command += ", streaming 'on'";
  if (options.binary) command += ", binary 'true'";
  if (options.messages && server_version_num >= 140000) command += ", messages 'true'";
  if (!options.origin_filter.empty() && server_version_num >= 160000) {
    command += ", origin " + pg::QuoteReplicationLiteral(options.origin_filter);
  }
  command += ")";
  return command;
}

// --- ReplicationConnection ------------------------------------------------------------------

ReplicationConnection::ReplicationConnection(std::unique_ptr<pg::Connection> pg)
    : pg_(std::move(pg)), endpoint_(pg_->endpoint()) {}

ReplicationConnection::~ReplicationConnection() { ReleaseBuffer(); }

core::Result<std::unique_ptr<ReplicationConnection>> ReplicationConnection::Connect(
    const std::string& dsn, std::chrono::milliseconds connect_timeout) {
  SLUICE_ASSIGN_OR_RETURN(
      auto pg, pg::Connection::Connect(dsn, {.replication = true, .timeout = connect_timeout}));
  return std::unique_ptr<ReplicationConnection>(new ReplicationConnection(std::move(pg)));
}

core::Result<SystemIdentity> ReplicationConnection::IdentifySystem() {
  if (closed()) return core::FailedPrecondition("IDENTIFY_SYSTEM on " + endpoint_ + ": closed");
  if (streaming_) return core::FailedPrecondition("IDENTIFY_SYSTEM while streaming");
  SLUICE_ASSIGN_OR_RETURN(pg::QueryResult result, pg_->Query("IDENTIFY_SYSTEM"));
  if (result.rows.size() != 1 || result.rows[0].size() < 4 || !result.rows[0][0] ||
      !result.rows[0][1] || !result.rows[0][2]) {
    return core::Corruption(
        "IDENTIFY_SYSTEM on " + endpoint() + " returned " + std::to_string(result.rows.size()) +
        " row(s) of " + std::to_string(result.columns.size()) + " column(s); expected 1 row of 4");
  }
  const auto& row = result.rows[0];
  SystemIdentity identity;
  identity.system_id = *row[0];
  SLUICE_ASSIGN_OR_RETURN(
      const int64_t timeline,
      core::ParseInt64(*row[1], "timeline of IDENTIFY_SYSTEM on " + endpoint()));
  identity.timeline = static_cast<int>(timeline);
  auto lsn = core::Lsn::Parse(*row[2]);
  if (!lsn.ok()) {
    return core::Corruption("IDENTIFY_SYSTEM on " + endpoint() +
                            " returned xlogpos: " + lsn.status().message());
  }
  identity.xlogpos = *lsn;
  identity.dbname = row[3].value_or("");
  return identity;
}

core::Result<int> ReplicationConnection::ServerVersionNum() {
  if (closed()) return core::FailedPrecondition("server version of " + endpoint_ + ": closed");
  const int version = pg_->server_version();
  if (version <= 0) return core::Unavailable("server version of " + endpoint() + " unknown");
  return version;
}

core::Status ReplicationConnection::StartReplication(const StartOptions& options) {
  if (closed()) return core::FailedPrecondition("StartReplication on " + endpoint_ + ": closed");
  if (streaming_) {
    return core::FailedPrecondition("StartReplication on " + endpoint() + ": already streaming");
  }
  const int server_version = pg_->server_version();
  const int protocol = options.protocol_version == 0 ? AutoProtocolVersion(server_version)
                                                     : options.protocol_version;
  SLUICE_ASSIGN_OR_RETURN(std::string command,
                          BuildStartReplicationCommand(options, protocol, server_version));

  std::unique_ptr<PGresult, decltype(&PQclear)> res(PQexec(pg_->raw(), command.c_str()), &PQclear);
  const std::string what = "START_REPLICATION on slot " + options.slot + " at " +
                           options.start_lsn.ToString() + " on " + endpoint();
  if (res == nullptr) return core::Unavailable(what + " failed: " + pg_->ErrorMessage());
  if (PQresultStatus(res.get()) != PGRES_COPY_BOTH) {
    const std::string state = pg::ResultSqlState(res.get());
    std::string message = what + " failed: " + pg::ServerErrorText(res.get(), pg_->raw());
    if (state == "55006") message += "; another client is streaming from this slot";
    return pg::StatusForSqlState(state, message);
  }
  res.reset();
  if (PQsetnonblocking(pg_->raw(), 1) != 0) {
    return core::Unavailable(what + ": cannot switch to non-blocking mode: " + pg_->ErrorMessage());
  }
  streaming_ = true;
  protocol_version_ = protocol;
  slot_ = options.slot;
  next_status_at_ = Clock::now() + status_interval_;
  silent_for_ = Clock::duration::zero();
  reply_requested_ = false;
  return core::Status::Ok();
}

void ReplicationConnection::SetDurableLsn(core::Lsn lsn) {
  uint64_t current = durable_lsn_.load(std::memory_order_relaxed);
  while (lsn.value() > current &&
         !durable_lsn_.compare_exchange_weak(current, lsn.value(), std::memory_order_release,
                                             std::memory_order_relaxed)) {
  }
}

void ReplicationConnection::set_status_interval(std::chrono::milliseconds interval) {
  status_interval_ = std::max(interval, std::chrono::milliseconds(1));
  if (streaming_) next_status_at_ = Clock::now() + status_interval_;
}

void ReplicationConnection::set_receive_timeout(std::chrono::milliseconds timeout) {
  receive_timeout_ = std::max(timeout, std::chrono::milliseconds(0));
}

int ReplicationConnection::backend_pid() const {
  return pg_ != nullptr ? PQbackendPID(pg_->raw()) : 0;
}

core::Lsn ReplicationConnection::WriteLsn() const {
  return std::max(server_wal_end_, durable_lsn());
}

void ReplicationConnection::ReleaseBuffer() {
  if (buffer_ != nullptr) {
    PQfreemem(buffer_);
    buffer_ = nullptr;
  }
}

core::Status ReplicationConnection::FlushOutput() {
  const int rc = PQflush(pg_->raw());
  if (rc < 0) {
    return core::Unavailable("sending to replication stream on " + endpoint() +
                             " failed: " + pg_->ErrorMessage());
  }
  output_pending_ = rc == 1;
  return core::Status::Ok();
}

core::Status ReplicationConnection::SendStatusUpdate(bool reply_requested) {
  StandbyStatusUpdate update;
  update.flush_lsn = durable_lsn();  // read once: write, flush and apply agree
  update.apply_lsn = update.flush_lsn;
  update.write_lsn = std::max(server_wal_end_, update.flush_lsn);
  update.client_time = core::PgNow();
  update.reply_requested = reply_requested;
  const std::string frame = BuildStandbyStatusUpdate(update);
  const int rc = PQputCopyData(pg_->raw(), frame.data(), static_cast<int>(frame.size()));
  if (rc < 0) {
    return core::Unavailable("sending standby status update to " + endpoint() +
                             " failed: " + pg_->ErrorMessage());
  }
  // rc == 0: libpq's buffer is full (non-blocking); a fresh update is built on the next try.
  status_update_unsent_ = rc == 0;
  if (rc == 1) {
    last_sent_write_ = update.write_lsn;
    last_sent_flush_ = update.flush_lsn;
    ++stats_.status_updates;
  }
  next_status_at_ = Clock::now() + status_interval_;
  return FlushOutput();
}

core::Status ReplicationConnection::SendFeedback(bool force) {
  if (!streaming_) {
    return core::FailedPrecondition("SendFeedback on " + endpoint() + ": not streaming");
  }
  if (!force && !status_update_unsent_ && durable_lsn() == last_sent_flush_ &&
      WriteLsn() == last_sent_write_) {
    return core::Status::Ok();
  }
  return SendStatusUpdate(/*reply_requested=*/false);
}

core::Status ReplicationConnection::StreamEnded() {
  streaming_ = false;
  std::string server_said;
  std::string sqlstate;  // the last error's: what the stream ended with
  // Collect the final result(s) of START_REPLICATION: COMMAND_OK when the server ended the
  // stream cleanly (e.g. shutting down), an error with the server's text otherwise.
  while (PGresult* res = PQgetResult(pg_->raw())) {
    const ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR) {
      if (!server_said.empty()) server_said += "; ";
      server_said += pg::ServerErrorText(res, pg_->raw());
      if (std::string state = pg::ResultSqlState(res); !state.empty()) sqlstate = std::move(state);
    } else if (status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
      PQclear(res);
      break;  // cannot happen after -1, but never loop forever
    }
    PQclear(res);
  }
  if (server_said.empty()) server_said = pg_->ErrorMessage();
  if (server_said.empty()) server_said = "the server ended the stream";
  // The one policy decides: a lost connection or a shutdown is retried; a dropped publication
  // (42704), missing privileges (42501), an invalidated slot (55000) or removed WAL are not.
  return pg::StatusForSqlState(
      sqlstate, "replication stream of slot " + slot_ + " on " + endpoint() + " ended after " +
                    server_wal_end_.ToString() + ": " + pg::RedactPassword(server_said));
}

core::Status ReplicationConnection::WaitForSocket(Clock::time_point until) {
  const int fd = PQsocket(pg_->raw());
  if (fd < 0) {
    streaming_ = false;
    return core::Unavailable("replication connection to " + endpoint() +
                             " has no socket: " + pg_->ErrorMessage());
  }
  const short events = static_cast<short>(POLLIN | (output_pending_ ? POLLOUT : 0));
  SLUICE_ASSIGN_OR_RETURN(short revents, PollSocket(fd, events, until));
  if (revents & (POLLIN | POLLERR | POLLHUP)) {
    if (PQconsumeInput(pg_->raw()) == 0) {
      streaming_ = false;
      return core::Unavailable("replication connection to " + endpoint() +
                               " lost: " + pg_->ErrorMessage());
    }
  }
  return core::Status::Ok();
}

core::Status ReplicationConnection::AnswerSilence(Clock::duration silent, Clock::time_point now,
                                                  Clock::time_point* wake) {
  using std::chrono::milliseconds;
  if (receive_timeout_.count() > 0 && silent >= receive_timeout_) {
    streaming_ = false;  // nothing more to hope for from this connection
    const auto silent_ms = std::chrono::duration_cast<milliseconds>(silent).count();
    return core::Unavailable(
        "replication stream of slot " + slot_ + " on " + endpoint() + " silent for " +
        std::to_string(silent_ms / 1000) + "." + std::to_string(silent_ms % 1000 / 100) +
        " s (source.receive_timeout " + std::to_string(receive_timeout_.count()) +
        " ms): nothing received, not even an answer to a status update asking for one; the "
        "walsender (pid " +
        std::to_string(backend_pid()) + ") or the network is stuck after " +
        server_wal_end_.ToString() + "; reconnecting");
  }
  // An idle walsender sends nothing while our status updates keep it content: ask it to speak.
  const Clock::duration ask_after = receive_timeout_.count() > 0
                                        ? Clock::duration(receive_timeout_) / 2
                                        : Clock::duration(status_interval_);
  if (!reply_requested_) {
    if (silent >= ask_after) {
      reply_requested_ = true;
      ++stats_.replies_requested;
      SLUICE_RETURN_IF_ERROR(SendStatusUpdate(/*reply_requested=*/true));
    } else {
      *wake = std::min(*wake, now + (ask_after - silent));
    }
  }
  if (receive_timeout_.count() > 0) {
    *wake = std::min(*wake, now + (Clock::duration(receive_timeout_) - silent));
  }
  return core::Status::Ok();
}

core::Result<std::optional<XLogData>> ReplicationConnection::Next(
    std::chrono::milliseconds timeout) {
  ReleaseBuffer();
  if (!streaming_) {
    return core::FailedPrecondition("Next on " + endpoint() + ": not streaming");
  }
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  // Silence counts only while we listen: time the caller spent elsewhere is not the server's.
  auto listening_since = start;
  auto heard = [&] {
    silent_for_ = Clock::duration::zero();
    reply_requested_ = false;
  };
  bool final_look = false;
  bool first_look = true;  // `start` is still now (one clock read per frame on the hot path)
  while (true) {
    if (status_update_unsent_ || (first_look ? start : Clock::now()) >= next_status_at_) {
      SLUICE_RETURN_IF_ERROR(SendStatusUpdate(/*reply_requested=*/false));
    }
    if (output_pending_) SLUICE_RETURN_IF_ERROR(FlushOutput());
    first_look = false;

    char* buf = nullptr;
    const int n = PQgetCopyData(pg_->raw(), &buf, /*async=*/1);
    if (n > 0) {
      buffer_ = buf;
      stats_.bytes_received += static_cast<uint64_t>(n);
      auto frame = ParseServerFrame(std::string_view(buf, static_cast<size_t>(n)));
      if (!frame.ok()) {
        return frame.status().WithContext("replication stream of slot " + slot_ + " on " +
                                          endpoint() + " after " + server_wal_end_.ToString());
      }
      heard();
      if (auto* data = std::get_if<XLogData>(&*frame)) {
        ++stats_.xlog_messages;
        last_received_lsn_ = std::max(last_received_lsn_, data->start_lsn);
        server_wal_end_ = std::max(server_wal_end_, data->end_lsn);
        return std::optional<XLogData>(*data);
      }
      const auto& keepalive = std::get<PrimaryKeepalive>(*frame);
      ++stats_.keepalives;
      server_wal_end_ = std::max(server_wal_end_, keepalive.wal_end);
      ReleaseBuffer();
      if (keepalive.reply_requested) {
        ++stats_.keepalive_replies;
        SLUICE_RETURN_IF_ERROR(SendStatusUpdate(/*reply_requested=*/false));
      }
      // Back to the caller: the server's position moved, which may end a bounded stream.
      return std::optional<XLogData>();
    }
    if (n == -1) return StreamEnded();
    if (n < -1) {
      streaming_ = false;
      return core::Unavailable("reading replication stream of slot " + slot_ + " from " +
                               endpoint() + " failed: " + pg_->ErrorMessage());
    }
    // n == 0: nothing complete buffered. Wait for the socket until the caller's deadline or the
    // next status update, whichever is first. Past the deadline, poll once without waiting and
    // take one last look at what that brought in, so a zero timeout still reads what arrived.
    const auto now = Clock::now();
    silent_for_ += now - listening_since;
    listening_since = now;
    if (final_look) return std::optional<XLogData>();
    Clock::time_point wake = std::min(deadline, next_status_at_);
    SLUICE_RETURN_IF_ERROR(AnswerSilence(silent_for_, now, &wake));
    if (now >= deadline) {
      final_look = true;
      SLUICE_RETURN_IF_ERROR(WaitForSocket(now));
    } else {
      SLUICE_RETURN_IF_ERROR(WaitForSocket(wake));
    }
  }
}

core::Status ReplicationConnection::Close() {
  ReleaseBuffer();
  if (pg_ == nullptr) return core::Status::Ok();
  core::Status result;
  if (streaming_) {
    streaming_ = false;
    const auto deadline = Clock::now() + std::chrono::seconds(2);
    PGconn* conn = pg_->raw();
    int rc = 0;
    while ((rc = PQputCopyEnd(conn, nullptr)) == 0 && Clock::now() < deadline) {
      auto waited = PollSocket(PQsocket(conn), POLLOUT, deadline);
      if (!waited.ok() || PQflush(conn) < 0) break;
    }
    if (rc == 1) {
      // Drain until the server's CopyDone and the command's completion.
      while (Clock::now() < deadline) {
        if (PQflush(conn) < 0) break;
        char* buf = nullptr;
        const int n = PQgetCopyData(conn, &buf, 1);
        if (n > 0) {
          PQfreemem(buf);
          continue;
        }
        if (n < 0) break;
        auto waited = PollSocket(PQsocket(conn), POLLIN, deadline);
        if (!waited.ok() || *waited == 0 || PQconsumeInput(conn) == 0) break;
      }
      while (Clock::now() < deadline) {
        if (PQisBusy(conn)) {
          auto waited = PollSocket(PQsocket(conn), POLLIN, deadline);
          if (!waited.ok() || *waited == 0 || PQconsumeInput(conn) == 0) break;
          continue;
        }
        PGresult* res = PQgetResult(conn);
        if (res == nullptr) break;
        PQclear(res);
      }
    } else {
      result = core::Unavailable("ending replication stream on " + endpoint() + ": " +
                                 pg_->ErrorMessage());
    }
  }
  pg_.reset();
  return result;
}

}  // namespace sluice::capture
