#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "capture/replication_connection.h"
#include "core/status.h"
#include "pg/table_pattern.h"

namespace sluice::capture {

struct TableInfo {
  uint32_t oid = 0;
  std::string schema;
  std::string name;
  char replica_identity = 'd';  // pg_class.relreplident: d, n, f, i
  bool has_primary_key = false;
  bool has_identity_index = false;  // an index marked REPLICA IDENTITY exists (for 'i')
  // UPDATE/DELETE can be replicated: 'f', 'd' with a primary key, or 'i' with its index.
  bool usable_replica_identity() const;
  std::string QualifiedName() const;  // quoted where needed
};

// Publication management over a regular (non-replication) connection, which is borrowed.
//
// Threads: as the connection (one thread).
class PublicationManager {
 public:
  explicit PublicationManager(pg::Connection& connection) : connection_(connection) {}

  // Makes publication `name` publish at least `tables` (patterns, see pg/table_pattern.h).
  // Missing → CREATE PUBLICATION ... FOR TABLE ...; existing → ALTER PUBLICATION ... ADD for
  // what is not yet published (tables are never removed). "schema.*" becomes
  // FOR TABLES IN SCHEMA on PostgreSQL 15+ when the role is superuser (which PostgreSQL 15
  // requires for it), else it expands to the schema's current tables. A table or schema that
  // does not exist → kNotFound naming it; no CREATE privilege / not owner → kFailedPrecondition.
  // Finally checks CheckReplicaIdentity().
  core::Status EnsurePublication(const std::string& name, const std::vector<std::string>& tables);

  // The tables a publication EnsurePublication made for `patterns` publishes on the source now,
  // as pg_publication_tables lists them and the stream and the copy name them: a "schema.*"
  // pattern covers every ordinary and partitioned table of the schema that is not a partition,
  // and a partitioned table stands for its leaf partitions. Sorted by schema and name, without
  // duplicates. A table or schema that does not exist → kNotFound naming it.
  core::Result<std::vector<TableInfo>> ResolveTables(const std::vector<std::string>& patterns);

  // Every table the publication publishes (explicit, via schema, or FOR ALL TABLES).
  // Missing publication → kNotFound.
  core::Result<std::vector<TableInfo>> PublishedTables(const std::string& name);

  // kFailedPrecondition naming every published table without a usable replica identity, and
  // the fix.
  core::Status CheckReplicaIdentity(const std::string& name);

 private:
  core::Result<std::vector<TableInfo>> ResolvePattern(const pg::TablePattern& pattern);
  core::Result<pg::QueryResult> Sql(const std::string& sql, const std::string& what) {
    return connection_.Query(sql, what);
  }
  core::Status PermissionError(const core::Status& status, const std::string& action,
                               const std::string& publication);

  pg::Connection& connection_;
};

}  // namespace sluice::capture
