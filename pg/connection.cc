#include "pg/connection.h"

#include <poll.h>

#include <algorithm>

#include "pg/conninfo.h"
#include "pg/quote.h"
#include "pg/redact.h"
#include "pg/socket_poll.h"
#include "pg/sql_state.h"

namespace sluice::pg {
namespace {

using Clock = std::chrono::steady_clock;

// libpq messages end in a newline and continue on indented lines: make them one line.
std::string OneLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      while (i + 1 < text.size() && (text[i + 1] == '\t' || text[i + 1] == ' ')) ++i;
      out += ' ';
    } else if (text[i] != '\r') {
      out += text[i];
    }
  }
  return out;
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string EndpointOf(PGconn* conn) {
  const char* host = PQhost(conn);
  const char* port = PQport(conn);
  std::string h = host != nullptr && *host != '\0' ? host : "localhost";
  std::string p = port != nullptr && *port != '\0' ? port : "5432";
  return h + ":" + p;
}

// libpq's own check of a connection string (syntax, known keywords); nothing is contacted.
// libpq's parse errors quote at most a keyword, never a value.
core::Status CheckConninfo(const std::string& dsn) {
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &parse_error);
  if (parsed != nullptr) {
    PQconninfoFree(parsed);
    return core::Status::Ok();
  }
  std::string message = parse_error != nullptr ? OneLine(parse_error) : "out of memory";
  PQfreemem(parse_error);
  return core::InvalidArgument("invalid connection string: " + RedactPassword(message));
}

}  // namespace

std::string ResultSqlState(const PGresult* result) {
  if (result == nullptr) return "";
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  return state != nullptr ? state : "";
}

std::string ServerErrorText(const PGresult* result, PGconn* conn) {
  std::string text;
  if (result != nullptr) {
    if (const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY)) {
      text = primary;
      if (const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE)) {
        text += std::string(" (SQLSTATE ") + state + ")";
      }
      if (const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL)) {
        text += std::string("; ") + detail;
      }
      if (const char* hint = PQresultErrorField(result, PG_DIAG_MESSAGE_HINT)) {
        text += std::string("; hint: ") + hint;
      }
      if (const char* context = PQresultErrorField(result, PG_DIAG_CONTEXT)) {
        text += "; context: " + OneLine(context);
      }
    } else {
      text = PQresultErrorMessage(result);
    }
  }
  if (text.empty() && conn != nullptr) text = PQerrorMessage(conn);
  if (text.empty()) text = "unknown error (no result)";
  return RedactPassword(OneLine(text));
}

std::vector<Row> ResultRows(const PGresult* result) {
  std::vector<Row> rows;
  const int row_count = PQntuples(result);
  const int column_count = PQnfields(result);
  rows.reserve(static_cast<size_t>(row_count));
  for (int r = 0; r < row_count; ++r) {
    Row& row = rows.emplace_back();
    row.reserve(static_cast<size_t>(column_count));
    for (int c = 0; c < column_count; ++c) {
      if (PQgetisnull(result, r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(result, r, c), static_cast<size_t>(PQgetlength(result, r, c))));
      }
    }
  }
  return rows;
}

Connection::Connection(PGconn* conn, bool replication) : conn_(conn), replication_(replication) {
  server_version_ = PQserverVersion(conn_);
  endpoint_ = EndpointOf(conn_);
  const char* user = PQuser(conn_);
  const char* db = PQdb(conn_);
  user_ = user != nullptr ? user : "";
  dbname_ = db != nullptr ? db : "";
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

std::string Connection::ErrorMessage() const {
  return RedactPassword(OneLine(PQerrorMessage(conn_)));
}

core::Result<std::unique_ptr<Connection>> Connection::Connect(const std::string& dsn,
                                                              const ConnectOptions& options) {
  SLUICE_RETURN_IF_ERROR(CheckConninfo(dsn));
  const ConninfoParams params =
      BuildConninfoParams(dsn, options.replication, options.application_name);
  std::vector<const char*> keywords, values;
  for (size_t i = 0; i < params.keywords.size(); ++i) {
    keywords.push_back(params.keywords[i].c_str());
    values.push_back(params.values[i].c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);

  PGconn* conn = PQconnectStartParams(keywords.data(), values.data(), /*expand_dbname=*/1);
  if (conn == nullptr) return core::Internal("libpq could not allocate a connection");
  std::unique_ptr<PGconn, decltype(&PQfinish)> guard(conn, &PQfinish);

  const auto deadline = Clock::now() + options.timeout;
  auto fail = [&](const std::string& why) -> core::Status {
    const std::string endpoint = EndpointOf(conn);
    const std::string message = RedactPassword(why);
    const char* user = PQuser(conn);
    const std::string role = user != nullptr ? user : "?";
    // A connection failure has no PGresult, hence no SQLSTATE: recognise the server's
    // messages for the cases with a precise remedy (the message itself is kept either way).
    if (Contains(message, "replication role to start walsender") ||
        Contains(message, "permission denied to start WAL sender")) {
      return core::Status(core::StatusCode::kFailedPrecondition,
                          "role \"" + role + "\" may not open a replication connection to " +
                              endpoint + ": it lacks the REPLICATION attribute; run ALTER ROLE " +
                              QuoteIdentifier(role) + " REPLICATION (server said: " + message + ")",
                          "42501", false);
    }
    if (Contains(message, "max_wal_senders")) {
      return core::Status(core::StatusCode::kResourceExhausted,
                          "no free WAL sender on " + endpoint + " (server said: " + message +
                              "); raise max_wal_senders and restart PostgreSQL, or stop another "
                              "replication client",
                          "53300", true);
    }
    if (Contains(message, "too many clients") || Contains(message, "remaining connection slots")) {
      return core::Status(core::StatusCode::kResourceExhausted,
                          "no free connection on " + endpoint + " as \"" + role + "\": " + message,
                          "53300", true);
    }
    return core::Unavailable("cannot connect to " + endpoint + " as \"" + role + "\": " + message);
  };

  if (PQstatus(conn) == CONNECTION_BAD) return fail(PQerrorMessage(conn));
  // As the libpq docs prescribe: start as if PQconnectPoll had returned PGRES_POLLING_WRITING.
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) return fail(OneLine(PQerrorMessage(conn)));
    const short events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    const int fd = PQsocket(conn);
    if (fd < 0) return fail("no socket: " + OneLine(PQerrorMessage(conn)));
    SLUICE_ASSIGN_OR_RETURN(short revents, PollSocket(fd, events, deadline));
    if (revents == 0) {
      return fail("timed out after " + std::to_string(options.timeout.count()) + " ms");
    }
    state = PQconnectPoll(conn);
  }
  return std::unique_ptr<Connection>(new Connection(guard.release(), options.replication));
}

core::Status Connection::ErrorStatus(const PGresult* result, std::string_view what) const {
  const std::string message =
      std::string(what) + " on " + endpoint_ + " failed: " + ServerErrorText(result, conn_);
  const std::string sqlstate = ResultSqlState(result);
  // A connection that died with the error (a FATAL message, a shutdown) is worth a new one.
  if (result == nullptr || !alive()) {
    return core::Status(core::StatusCode::kUnavailable, message, sqlstate, true);
  }
  return StatusForSqlState(sqlstate, message);
}

core::Result<QueryResult> Connection::Query(const std::string& command, std::string_view what) {
  const std::string description = what.empty() ? command.substr(0, 200) : std::string(what);
  ResultPtr res(PQexec(conn_, command.c_str()));
  return TakeResult(res.get(), description);
}

core::Result<std::vector<Row>> Connection::QueryRows(
    const std::string& sql, const std::vector<std::optional<std::string>>& params,
    std::string_view what) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  ResultPtr result(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                values.data(), nullptr, nullptr, /*resultFormat=*/0));
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_TUPLES_OK) return ResultRows(result.get());
  if (status == PGRES_COMMAND_OK) return std::vector<Row>{};
  return ErrorStatus(result.get(), what);
}

core::Result<QueryResult> Connection::QueryWithin(const std::string& command,
                                                  std::chrono::milliseconds timeout,
                                                  std::string_view what) {
  const std::string description = what.empty() ? command.substr(0, 200) : std::string(what);
  const auto deadline = Clock::now() + timeout;
  auto lost = [&] {
    return core::Unavailable(description + " on " + endpoint_ + " failed: " + ErrorMessage());
  };
  auto timed_out = [&] {
    return core::Unavailable(description + " on " + endpoint_ + ": no answer within " +
                             std::to_string(timeout.count()) + " ms");
  };
  // Waits for `events` until the deadline and reads what came in.
  auto wait = [&](int events) -> core::Status {
    if (PQsocket(conn_) < 0) return lost();
    SLUICE_ASSIGN_OR_RETURN(short revents,
                            PollSocket(PQsocket(conn_), static_cast<short>(events), deadline));
    if (revents == 0) return timed_out();
    if ((revents & (POLLIN | POLLERR | POLLHUP)) != 0 && PQconsumeInput(conn_) == 0) {
      return lost();
    }
    return core::Status::Ok();
  };
  if (PQsetnonblocking(conn_, 1) != 0 || PQsendQuery(conn_, command.c_str()) == 0) return lost();
  while (true) {
    const int flushed = PQflush(conn_);
    if (flushed < 0) return lost();
    if (flushed == 0) break;
    SLUICE_RETURN_IF_ERROR(wait(POLLIN | POLLOUT));
  }
  // As PQexec: the last result counts, unless an earlier one was an error.
  ResultPtr kept;
  while (true) {
    while (PQisBusy(conn_)) SLUICE_RETURN_IF_ERROR(wait(POLLIN));
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) break;
    if (kept != nullptr && PQresultStatus(kept.get()) == PGRES_FATAL_ERROR) {
      PQclear(res);
    } else {
      kept.reset(res);
    }
  }
  if (kept == nullptr) return lost();
  return TakeResult(kept.get(), description);
}

core::Result<QueryResult> Connection::TakeResult(const PGresult* res,
                                                 std::string_view description) {
  const ExecStatusType status = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    QueryResult result;
    const char* tag = PQcmdStatus(const_cast<PGresult*>(res));
    result.command_tag = tag != nullptr ? tag : "";
    const int ncols = PQnfields(res);
    for (int c = 0; c < ncols; ++c) result.columns.emplace_back(PQfname(res, c));
    result.rows = ResultRows(res);
    return result;
  }
  if (res == nullptr || status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR ||
      status == PGRES_BAD_RESPONSE) {
    return ErrorStatus(res, description);
  }
  return core::Internal(std::string(description) + " on " + endpoint_ +
                        " returned unexpected result status " + PQresStatus(status));
}

std::string Connection::QuoteLiteralForSql(std::string_view value) const {
  char* escaped = PQescapeLiteral(conn_, value.data(), value.size());
  if (escaped == nullptr) return QuoteLiteral(value);  // only on OOM / bad encoding
  std::string out(escaped);
  PQfreemem(escaped);
  return out;
}

}  // namespace sluice::pg
