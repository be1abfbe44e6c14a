#include "apply/postgres_bulk_loader.h"

#include "codec/copy_text.h"
#include "pg/quote.h"

namespace sluice::apply {
namespace {

// WriteRows hands its COPY text to libpq in pieces of about this size: large enough to cost
// little per call, small enough that libpq's output buffer (which never shrinks) stays small.
constexpr size_t kPieceBytes = size_t{256} * 1024;

}  // namespace

core::Result<std::unique_ptr<BulkLoader>> PostgresBulkLoader::Open(
    const PostgresBulkLoadOptions& options, const core::Relation& relation) {
  const std::string table = relation.QualifiedName();
  SLUICE_ASSIGN_OR_RETURN(
      std::unique_ptr<pg::Connection> conn,
      pg::Connection::Connect(options.dsn, {.timeout = options.connect_timeout,
                                            .application_name = options.application_name}));
  if (!options.session_replication_role.empty()) {
    SLUICE_RETURN_IF_ERROR(conn->Exec(
        "SET session_replication_role = " + pg::QuoteLiteral(options.session_replication_role),
        "setting session_replication_role for the bulk load into " + table));
  }
  // The source copier's COPY text is UTF8 (capture::SnapshotCopier sets it).
  SLUICE_RETURN_IF_ERROR(conn->Exec("SET client_encoding = 'UTF8'",
                                    "setting client_encoding for the bulk load into " + table));
  SLUICE_RETURN_IF_ERROR(conn->Exec("BEGIN", "starting the bulk load into " + table));
  std::string columns;
  for (const auto& column : relation.columns) {
    if (!columns.empty()) columns += ", ";
    columns += pg::QuoteIdentifier(column.name);
  }
  const std::string sql = "COPY " + pg::QuoteQualifiedName(relation.schema, relation.name) + " (" +
                          columns + ") FROM STDIN";
  pg::ResultPtr result(PQexec(conn->raw(), sql.c_str()));
  if (!result || PQresultStatus(result.get()) != PGRES_COPY_IN) {
    return conn->ErrorStatus(result.get(), "starting COPY into " + table);
  }
  return std::unique_ptr<BulkLoader>(
      new PostgresBulkLoader(std::move(conn), table, relation.columns.size()));
}

PostgresBulkLoader::PostgresBulkLoader(std::unique_ptr<pg::Connection> conn, std::string table,
                                       size_t columns)
    : conn_(std::move(conn)), table_(std::move(table)), columns_(columns) {}

PostgresBulkLoader::~PostgresBulkLoader() {
  if (in_copy_ && conn_->alive()) {
    // Abandoned: end the COPY with an error so the server rolls the load back.
    PQputCopyEnd(conn_->raw(), "bulk load abandoned by sluice");
    while (PGresult* r = PQgetResult(conn_->raw())) PQclear(r);
  }
}

core::Status PostgresBulkLoader::RequireInCopy() const {
  if (!in_copy_) return core::Internal("bulk load into " + table_ + " is already finished");
  return core::Status::Ok();
}

core::Status PostgresBulkLoader::Put(std::string_view data) {
  if (PQputCopyData(conn_->raw(), data.data(), static_cast<int>(data.size())) != 1) {
    return Failed(nullptr);
  }
  return core::Status::Ok();
}

core::Status PostgresBulkLoader::WriteCopyText(std::string_view chunk) {
  SLUICE_RETURN_IF_ERROR(RequireInCopy());
  return Put(chunk);
}

core::Status PostgresBulkLoader::WriteRows(std::span<const core::Tuple> rows) {
  SLUICE_RETURN_IF_ERROR(RequireInCopy());
  for (const core::Tuple& row : rows) {
    ++rows_written_;
    if (row.size() != columns_ || !codec::AppendCopyTextRow(row, encoded_)) {
      return core::InvalidArgument("bulk load into " + table_ + ": row " +
                                   std::to_string(rows_written_) + " is not " +
                                   std::to_string(columns_) + " text or NULL values");
    }
    if (encoded_.size() >= kPieceBytes) {
      SLUICE_RETURN_IF_ERROR(Put(encoded_));
      encoded_.clear();
    }
  }
  return core::Status::Ok();
}

core::Status PostgresBulkLoader::Finish() {
  SLUICE_RETURN_IF_ERROR(RequireInCopy());
  if (!encoded_.empty()) {
    SLUICE_RETURN_IF_ERROR(Put(encoded_));
    encoded_.clear();
  }
  in_copy_ = false;
  if (PQputCopyEnd(conn_->raw(), nullptr) != 1) return Failed(nullptr);
  core::Status status;
  while (PGresult* raw = PQgetResult(conn_->raw())) {
    pg::ResultPtr result(raw);
    if (PQresultStatus(raw) != PGRES_COMMAND_OK && status.ok()) status = Failed(raw);
  }
  SLUICE_RETURN_IF_ERROR(status);
  return conn_->Exec("COMMIT", "committing bulk load into " + table_);
}

core::Status PostgresBulkLoader::Failed(const PGresult* result) {
  return conn_->ErrorStatus(result, "bulk load into " + table_);
}

}  // namespace sluice::apply
