#pragma once

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "apply/sink.h"
#include "core/relation.h"
#include "core/status.h"
#include "pg/connection.h"

namespace sluice::apply {

struct PostgresBulkLoadOptions {
  std::string dsn;  // libpq conninfo of the target
  std::string application_name;
  std::chrono::milliseconds connect_timeout{10000};
  // "replica" keeps the target's triggers and FK checks from firing; empty leaves the default.
  std::string session_replication_role;
};

// Loads one table of a PostgreSQL target with COPY FROM STDIN, on a connection of its own, in
// one transaction committed by Finish(); dropped unfinished, the server rolls the load back.
// The session runs with session_replication_role and client_encoding UTF8 (what
// capture::SnapshotCopier produces), without a replication origin (one session at a time may
// hold the pipeline's).
//
// It TakesCopyText(): the source's COPY text goes to the server as is (the fast path, nothing
// parsed). WriteRows() encodes rows as COPY text (codec::AppendCopyTextRow) into the same COPY,
// so both paths load the same table.
//
// Threads: Open() may be called from several threads at once; a loader from one at a time.
class PostgresBulkLoader : public BulkLoader {
 public:
  // Connects, starts the transaction and the COPY of `relation`'s columns into the target
  // table of the same schema and name. Errors name the table.
  static core::Result<std::unique_ptr<BulkLoader>> Open(const PostgresBulkLoadOptions& options,
                                                        const core::Relation& relation);
  ~PostgresBulkLoader() override;

  core::Status WriteRows(std::span<const core::Tuple> rows) override;
  bool TakesCopyText() const override { return true; }
  core::Status WriteCopyText(std::string_view chunk) override;
  core::Status Finish() override;

 private:
  PostgresBulkLoader(std::unique_ptr<pg::Connection> conn, std::string table, size_t columns);
  // Hands `data` to libpq's COPY.
  core::Status Put(std::string_view data);
  core::Status Failed(const PGresult* result);
  core::Status RequireInCopy() const;

  std::unique_ptr<pg::Connection> conn_;
  const std::string table_;  // schema.name, for messages
  const size_t columns_;
  std::string encoded_;  // WriteRows' COPY text not yet handed to libpq
  uint64_t rows_written_ = 0;
  bool in_copy_ = true;
};

}  // namespace sluice::apply
