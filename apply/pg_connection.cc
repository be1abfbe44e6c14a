#include "apply/pg_connection.h"

#include <algorithm>

namespace sluice::apply {
namespace {

// libpq messages end in newlines and sometimes span (indented) lines; errors are one line.
std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool line_start = false;
  for (char c : text) {
    if (c == '\n') {
      out += "; ";
      line_start = true;
    } else if (c == '\r' || (line_start && (c == ' ' || c == '\t'))) {
      continue;
    } else {
      out += c;
      line_start = false;
    }
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == ';')) out.pop_back();
  return out;
}

std::string EndpointOf(PGconn* conn) {
  const char* host = PQhost(conn);
  const char* port = PQport(conn);
  std::string h = host != nullptr && *host != '\0' ? host : "localhost";
  std::string p = port != nullptr && *port != '\0' ? port : "5432";
  return h + ":" + p;
}

}  // namespace

std::string QuoteIdentifier(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out += '"';
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string QuoteQualifiedName(std::string_view schema, std::string_view name) {
  return QuoteIdentifier(schema) + "." + QuoteIdentifier(name);
}

std::string QuoteLiteral(std::string_view value) {
  const bool has_backslash = value.find('\\') != std::string_view::npos;
  std::string out;
  out.reserve(value.size() + 3);
  if (has_backslash) out += 'E';
  out += '\'';
  for (char c : value) {
    if (c == '\'' || (c == '\\' && has_backslash)) out += c;
    out += c;
  }
  out += '\'';
  return out;
}

core::StatusCode ClassifySqlState(std::string_view sqlstate) {
  if (sqlstate.empty()) return core::StatusCode::kUnavailable;
  if (sqlstate.substr(0, 2) == "08") return core::StatusCode::kUnavailable;
  static constexpr std::string_view kRetryable[] = {"40001", "40P01", "57P01", "57P02",
                                                    "57P03", "53300", "55006"};
  if (std::find(std::begin(kRetryable), std::end(kRetryable), sqlstate) != std::end(kRetryable)) {
    return core::StatusCode::kUnavailable;
  }
  return core::StatusCode::kFailedPrecondition;
}

std::string ResultSqlState(const PGresult* result) {
  if (result == nullptr) return "";
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  return state != nullptr ? state : "";
}

std::string ResultErrorText(const PGresult* result, PGconn* conn) {
  std::string text;
  if (result != nullptr) {
    const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    if (primary != nullptr) {
      text = primary;
      if (const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE)) {
        text += std::string(" (SQLSTATE ") + state + ")";
      }
      if (const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL)) {
        text += std::string(" DETAIL: ") + detail;
      }
      if (const char* hint = PQresultErrorField(result, PG_DIAG_MESSAGE_HINT)) {
        text += std::string(" HINT: ") + hint;
      }
    } else {
      text = PQresultErrorMessage(result);
    }
  }
  if (text.empty() && conn != nullptr) text = PQerrorMessage(conn);
  if (text.empty()) text = "unknown error (no result)";
  return OneLine(text);
}

std::vector<PgRow> ResultRows(const PGresult* result) {
  std::vector<PgRow> rows;
  const int row_count = PQntuples(result);
  const int column_count = PQnfields(result);
  rows.reserve(static_cast<size_t>(row_count));
  for (int r = 0; r < row_count; ++r) {
    PgRow row;
    row.reserve(static_cast<size_t>(column_count));
    for (int c = 0; c < column_count; ++c) {
      if (PQgetisnull(result, r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(result, r, c), static_cast<size_t>(PQgetlength(result, r, c))));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

core::Result<std::unique_ptr<PgConnection>> PgConnection::Connect(
    const std::string& dsn, std::chrono::milliseconds timeout,
    const std::string& application_name) {
  // Validate first: libpq's parse errors never echo values, and we must not echo the DSN.
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string message = parse_error != nullptr ? OneLine(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return core::InvalidArgument("invalid target connection string: " + message);
  }
  PQconninfoFree(parsed);

  // Whole seconds, at least 1 (libpq's unit; 0 would mean "wait forever").
  const auto timeout_seconds =
      std::max<long long>(1, std::chrono::ceil<std::chrono::seconds>(timeout).count());
  const std::string timeout_text = std::to_string(timeout_seconds);
  const char* keywords[] = {"dbname", "connect_timeout", "fallback_application_name", nullptr};
  const char* values[] = {dsn.c_str(), timeout_text.c_str(), application_name.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) return core::Internal("libpq could not allocate a connection");
  std::string endpoint = EndpointOf(conn);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = OneLine(PQerrorMessage(conn));
    PQfinish(conn);
    return core::Unavailable("cannot connect to target PostgreSQL at " + endpoint + ": " + message);
  }
  return std::unique_ptr<PgConnection>(new PgConnection(conn, std::move(endpoint)));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

core::Status PgConnection::ErrorStatus(const PGresult* result, std::string_view what) const {
  const std::string sqlstate = ResultSqlState(result);
  core::StatusCode code = ClassifySqlState(sqlstate);
  if (!alive()) code = core::StatusCode::kUnavailable;
  return core::Status(
      code, std::string(what) + " on " + endpoint_ + ": " + ResultErrorText(result, conn_));
}

core::Status PgConnection::Exec(const std::string& sql, std::string_view what) {
  PgResultPtr result(PQexec(conn_, sql.c_str()));
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return core::Status::Ok();
  return ErrorStatus(result.get(), what);
}

core::Result<std::vector<PgRow>> PgConnection::Query(
    const std::string& sql, const std::vector<std::optional<std::string>>& params,
    std::string_view what) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResultPtr result(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, /*resultFormat=*/0));
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_TUPLES_OK) return ResultRows(result.get());
  if (status == PGRES_COMMAND_OK) return std::vector<PgRow>{};
  return ErrorStatus(result.get(), what);
}

}  // namespace sluice::apply
