#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice::pg {

struct ResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// One row of nullable text values.
using Row = std::vector<std::optional<std::string>>;

struct QueryResult {
  std::vector<std::string> columns;
  std::vector<Row> rows;
  std::string command_tag;  // e.g. "CREATE PUBLICATION"
};

// The server's error of a failed result as one line: primary message (SQLSTATE), detail, hint,
// context; the connection's own message when there is no result. Passwords redacted.
std::string ServerErrorText(const PGresult* result, PGconn* conn);
// SQLSTATE of an error result, "" when there is none (libpq-side errors, lost connection).
std::string ResultSqlState(const PGresult* result);
// The rows of a PGRES_TUPLES_OK result.
std::vector<Row> ResultRows(const PGresult* result);

struct ConnectOptions {
  bool replication = false;  // replication=database (walsender commands and streaming)
  std::chrono::milliseconds timeout{10000};
  // Used unless the connection string names an application_name itself.
  std::string application_name = "sluice";
};

// One libpq connection, regular or replication=database, with commands as values: the one
// PostgreSQL client of capture, apply and control. Errors name the endpoint (host:port), never
// the connection string, carry the server's message and its SQLSTATE as server_code(), and are
// classified by pg::ClassifySqlState (a dead connection is always retryable kUnavailable).
//
// Threads: not thread-safe; one thread at a time.
class Connection {
 public:
  // Connects without blocking longer than options.timeout (non-blocking libpq connect +
  // poll()). A malformed connection string → kInvalidArgument; a role without the REPLICATION
  // attribute → kFailedPrecondition; max_wal_senders exhausted → kResourceExhausted (retryable);
  // anything else → kUnavailable. The password never appears in messages.
  static core::Result<std::unique_ptr<Connection>> Connect(const std::string& dsn,
                                                           const ConnectOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one command (SQL, several statements allowed, or a replication command on a replication
  // connection) and returns its rows (empty for commands without a result set). `what`
  // describes the command in error messages; empty = the command text itself.
  core::Result<QueryResult> Query(const std::string& command, std::string_view what = "");
  core::Status Exec(const std::string& command, std::string_view what = "") {
    return Query(command, what).status();
  }
  // One SQL statement with text parameters (nullopt = NULL, types inferred by the server).
  core::Result<std::vector<Row>> QueryRows(const std::string& sql,
                                           const std::vector<std::optional<std::string>>& params,
                                           std::string_view what);
  // Query() bounded on the client side: sent without blocking and awaited with poll(), so a
  // server that stopped answering (its processes stopped, the network cut) costs at most
  // `timeout`, then kUnavailable. The server's statement_timeout cannot do that: a stopped
  // server does not send its error either. After a timeout the connection is unusable (the
  // answer may still come): discard it.
  core::Result<QueryResult> QueryWithin(const std::string& command,
                                        std::chrono::milliseconds timeout,
                                        std::string_view what = "");

  // A Status for a failed result (null: connection trouble): "<what> on <endpoint> failed:
  // <ServerErrorText>", classified by its SQLSTATE.
  core::Status ErrorStatus(const PGresult* result, std::string_view what) const;

  // Literal quoting that honours the connection's standard_conforming_strings.
  std::string QuoteLiteralForSql(std::string_view value) const;

  int server_version() const { return server_version_; }     // e.g. 150004
  const std::string& endpoint() const { return endpoint_; }  // "host:port"
  const std::string& user() const { return user_; }
  const std::string& dbname() const { return dbname_; }
  bool is_replication() const { return replication_; }
  bool alive() const { return PQstatus(conn_) == CONNECTION_OK; }

  PGconn* raw() const { return conn_; }

  // PQerrorMessage as one line, passwords redacted.
  std::string ErrorMessage() const;

 private:
  Connection(PGconn* conn, bool replication);
  // A finished command's result as a value, or its error.
  core::Result<QueryResult> TakeResult(const PGresult* res, std::string_view description);

  PGconn* conn_;
  bool replication_;
  int server_version_ = 0;
  std::string endpoint_;
  std::string user_;
  std::string dbname_;
};

}  // namespace sluice::pg
