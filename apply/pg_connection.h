#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace sluice::apply {

// --- Quoting ---------------------------------------------------------------------------------

// "name" with embedded double quotes doubled. Always quoted, so case, spaces and non-ASCII
// survive exactly as the source spelled them.
std::string QuoteIdentifier(std::string_view name);
// "schema"."name".
std::string QuoteQualifiedName(std::string_view schema, std::string_view name);
// 'value' with single quotes doubled; when the value holds a backslash the E'' form is used
// (backslashes doubled), so the literal means the same whatever standard_conforming_strings is.
std::string QuoteLiteral(std::string_view value);

// --- Errors ------------------------------------------------------------------------------------

// What a SQLSTATE means for the caller. Retryable (kUnavailable): connection failures (08xxx),
// serialization failure (40001), deadlock (40P01), admin shutdown / crash shutdown / cannot
// connect now (57P01..57P03), too many connections (53300), and an object (a replication origin)
// still held by a backend that is going away (55006). An empty SQLSTATE means the error came from
// libpq itself (connection lost): also kUnavailable. Everything else is permanent:
// kFailedPrecondition (undefined table/column, constraint violations, privileges, bad data).
core::StatusCode ClassifySqlState(std::string_view sqlstate);

struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

// The text of a result (or the connection's last error when `result` is null) as one line.
std::string ResultErrorText(const PGresult* result, PGconn* conn);
// SQLSTATE of an error result, "" when there is none (libpq-side errors, lost connection).
std::string ResultSqlState(const PGresult* result);

// Rows of nullable text values.
using PgRow = std::vector<std::optional<std::string>>;
std::vector<PgRow> ResultRows(const PGresult* result);

// --- A plain libpq connection ------------------------------------------------------------------

// One RAII libpq connection (regular, not replication) used synchronously. Error messages name
// the endpoint (host:port), never the connection string, so passwords never reach a log.
// Not thread-safe; one owner thread.
class PgConnection {
 public:
  // Connects with `dsn` (key=value or URI). `application_name` is a fallback: one given in the
  // DSN wins. Failures are kUnavailable naming host:port (kInvalidArgument for a malformed DSN).
  static core::Result<std::unique_ptr<PgConnection>> Connect(const std::string& dsn,
                                                             std::chrono::milliseconds timeout,
                                                             const std::string& application_name);
  ~PgConnection();

  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  PGconn* raw() const { return conn_; }
  // "host:port" as libpq resolved it.
  const std::string& endpoint() const { return endpoint_; }
  bool alive() const { return PQstatus(conn_) == CONNECTION_OK; }
  int server_version() const { return PQserverVersion(conn_); }

  // Runs `sql` (several statements allowed, no parameters); `what` names the step in errors.
  core::Status Exec(const std::string& sql, std::string_view what);
  // Runs one statement with text parameters (nullopt = NULL, types inferred by the server).
  core::Result<std::vector<PgRow>> Query(const std::string& sql,
                                         const std::vector<std::optional<std::string>>& params,
                                         std::string_view what);

  // A Status for a failed result (or a null one: connection trouble), classified by SQLSTATE
  // (ClassifySqlState; a dead connection is always kUnavailable), message
  // "<what> on <endpoint>: <server message> (SQLSTATE x)[ DETAIL: ...]".
  core::Status ErrorStatus(const PGresult* result, std::string_view what) const;

 private:
  PgConnection(PGconn* conn, std::string endpoint) : conn_(conn), endpoint_(std::move(endpoint)) {}
  PGconn* conn_;
  std::string endpoint_;
};

}  // namespace sluice::apply
