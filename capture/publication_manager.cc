#include "capture/publication_manager.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include "core/number_text.h"
#include "pg/quote.h"
#include "pg/table_pattern.h"

namespace sluice::capture {
namespace {

const std::string& Cell(const pg::QueryResult& result, size_t row, size_t col) {
  static const std::string kEmpty;
  if (row >= result.rows.size() || col >= result.rows[row].size() || !result.rows[row][col]) {
    return kEmpty;
  }
  return *result.rows[row][col];
}

// SELECT list and joins producing TableInfo rows for pg_class `c` / pg_namespace `n`.
constexpr const char* kTableInfoSelect =
    "SELECT c.oid, n.nspname, c.relname, c.relreplident, "
    "EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), "
    "EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ";

core::Result<std::vector<TableInfo>> ToTableInfos(const pg::QueryResult& result) {
  std::vector<TableInfo> tables;
  for (size_t r = 0; r < result.rows.size(); ++r) {
    TableInfo info;
    SLUICE_ASSIGN_OR_RETURN(info.oid, core::ParseUint32(Cell(result, r, 0), "pg_class.oid"));
    info.schema = Cell(result, r, 1);
    info.name = Cell(result, r, 2);
    info.replica_identity = Cell(result, r, 3).empty() ? 'd' : Cell(result, r, 3)[0];
    info.has_primary_key = Cell(result, r, 4) == "t";
    info.has_identity_index = Cell(result, r, 5) == "t";
    tables.push_back(std::move(info));
  }
  return tables;
}

std::string IdentityProblem(const TableInfo& table) {
  switch (table.replica_identity) {
    case 'n':
      return "replica identity NOTHING";
    case 'i':
      return "its replica identity index is missing";
    default:
      return "replica identity DEFAULT without a primary key";
  }
}

core::Status CheckUsable(const std::vector<TableInfo>& tables, const std::string& publication,
                         const std::string& endpoint) {
  std::vector<const TableInfo*> unusable;
  for (const auto& table : tables) {
    if (!table.usable_replica_identity()) unusable.push_back(&table);
  }
  if (unusable.empty()) return core::Status::Ok();
  std::string message = "publication " + publication + " on " + endpoint + ": ";
  message += unusable.size() == 1 ? "table " : "tables ";
  for (size_t i = 0; i < unusable.size(); ++i) {
    if (i > 0) message += ", ";
    message += unusable[i]->QualifiedName() + " (" + IdentityProblem(*unusable[i]) + ")";
  }
  message += unusable.size() == 1 ? " has" : " have";
  message +=
      " no usable replica identity, so their UPDATEs and DELETEs cannot be replicated; for each "
      "run ALTER TABLE " +
      unusable[0]->QualifiedName() + " REPLICA IDENTITY FULL or add a primary key";
  return core::FailedPrecondition(message);
}

}  // namespace

bool TableInfo::usable_replica_identity() const {
  switch (replica_identity) {
    case 'f':
      return true;
    case 'i':
      return has_identity_index;
    case 'd':
      return has_primary_key;
    default:
      return false;
  }
}

std::string TableInfo::QualifiedName() const {
  return pg::DisplayIdentifier(schema) + "." + pg::DisplayIdentifier(name);
}

core::Status PublicationManager::PermissionError(const core::Status& status,
                                                 const std::string& action,
                                                 const std::string& publication) {
  if (status.server_code() != "42501") return status;
  const std::string& user = connection_.user();
  const std::string& db = connection_.dbname();
  return core::FailedPrecondition(
      "role \"" + user + "\" may not " + action + " publication " + publication + " on " +
      connection_.endpoint() + " (" + status.message() +
      "); creating a publication needs CREATE privilege on the database (GRANT CREATE ON "
      "DATABASE " +
      pg::QuoteIdentifier(db) + " TO " + pg::QuoteIdentifier(user) +
      ") and ownership of the tables, or create it as a superuser");
}

core::Status PublicationManager::EnsurePublication(const std::string& name,
                                                   const std::vector<std::string>& tables) {
  if (name.empty()) return core::InvalidArgument("empty publication name");
  const std::string& endpoint = connection_.endpoint();
  const std::string pub_literal = connection_.QuoteLiteralForSql(name);

  std::vector<pg::TablePattern> patterns;
  for (const auto& text : tables) {
    SLUICE_ASSIGN_OR_RETURN(pg::TablePattern pattern, pg::ParseTablePattern(text));
    patterns.push_back(std::move(pattern));
  }

  SLUICE_ASSIGN_OR_RETURN(
      pg::QueryResult role,
      Sql("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
          "reading the connected role"));
  const bool superuser = Cell(role, 0, 0) == "t";
  // PostgreSQL 15 requires superuser for FOR TABLES IN SCHEMA; otherwise expand the schema.
  const bool schema_clause = connection_.server_version() >= 150000 && superuser;

  // Resolve every pattern to concrete tables (and schemas, when published as such), checking
  // that each exists.
  std::vector<std::pair<std::string, std::string>> wanted_tables;  // (schema, table)
  std::vector<std::string> wanted_schemas;
  std::vector<TableInfo> candidates;  // everything that will be published: checked up front
  for (const auto& pattern : patterns) {
    SLUICE_ASSIGN_OR_RETURN(std::vector<TableInfo> infos, ResolvePattern(pattern));
    const bool as_schema = pattern.all_tables && schema_clause;
    for (auto& info : infos) {
      if (!as_schema) wanted_tables.emplace_back(info.schema, info.name);
      candidates.push_back(std::move(info));
    }
    if (as_schema) wanted_schemas.push_back(pattern.schema);
  }
  // Before publishing anything: once published, UPDATE/DELETE on a table without a replica
  // identity fail on the source itself.
  SLUICE_RETURN_IF_ERROR(CheckUsable(candidates, name, endpoint));

  SLUICE_ASSIGN_OR_RETURN(
      pg::QueryResult existing,
      Sql("SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = " + pub_literal,
          "looking up publication " + name));

  if (existing.rows.empty()) {
    std::string objects;
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& [schema, table] : wanted_tables) {
      if (!seen.insert({schema, table}).second) continue;
      objects += objects.empty() ? " FOR TABLE " : ", ";
      objects += pg::QuoteIdentifier(schema) + "." + pg::QuoteIdentifier(table);
    }
    std::set<std::string> seen_schemas;
    for (const auto& schema : wanted_schemas) {
      if (!seen_schemas.insert(schema).second) continue;
      objects += objects.empty() ? " FOR " : ", ";
      objects += "TABLES IN SCHEMA " + pg::QuoteIdentifier(schema);
    }
    auto created = Sql("CREATE PUBLICATION " + pg::QuoteIdentifier(name) + objects,
                       "creating publication " + name);
    if (!created.ok()) return PermissionError(created.status(), "create", name);
  } else if (Cell(existing, 0, 0) != "t") {  // FOR ALL TABLES publishes everything already
    SLUICE_ASSIGN_OR_RETURN(
        pg::QueryResult published,
        Sql("SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = " +
                pub_literal,
            "listing the tables of publication " + name));
    std::set<std::pair<std::string, std::string>> have;
    for (size_t r = 0; r < published.rows.size(); ++r) {
      have.emplace(Cell(published, r, 0), Cell(published, r, 1));
    }
    std::set<std::string> have_schemas;
    if (connection_.server_version() >= 150000) {
      SLUICE_ASSIGN_OR_RETURN(
          pg::QueryResult schemas,
          Sql("SELECT n.nspname FROM pg_catalog.pg_publication_namespace pn "
              "JOIN pg_catalog.pg_publication p ON p.oid = pn.pnpubid "
              "JOIN pg_catalog.pg_namespace n ON n.oid = pn.pnnspid WHERE p.pubname = " +
                  pub_literal,
              "listing the schemas of publication " + name));
      for (size_t r = 0; r < schemas.rows.size(); ++r) have_schemas.insert(Cell(schemas, r, 0));
    }
    std::string objects;
    for (const auto& [schema, table] : wanted_tables) {
      if (!have.insert({schema, table}).second) continue;
      objects += objects.empty() ? " ADD TABLE " : ", ";
      objects += pg::QuoteIdentifier(schema) + "." + pg::QuoteIdentifier(table);
    }
    for (const auto& schema : wanted_schemas) {
      if (!have_schemas.insert(schema).second) continue;
      objects += objects.empty() ? " ADD " : ", ";
      objects += "TABLES IN SCHEMA " + pg::QuoteIdentifier(schema);
    }
    if (!objects.empty()) {
      auto altered = Sql("ALTER PUBLICATION " + pg::QuoteIdentifier(name) + objects,
                         "adding tables to publication " + name);
      if (!altered.ok()) return PermissionError(altered.status(), "alter", name);
    }
  }
  return CheckReplicaIdentity(name);
}

core::Result<std::vector<TableInfo>> PublicationManager::ResolveTables(
    const std::vector<std::string>& patterns) {
  std::string roots;
  std::set<uint32_t> seen;
  for (const auto& text : patterns) {
    SLUICE_ASSIGN_OR_RETURN(pg::TablePattern pattern, pg::ParseTablePattern(text));
    SLUICE_ASSIGN_OR_RETURN(std::vector<TableInfo> infos, ResolvePattern(pattern));
    for (const TableInfo& info : infos) {
      if (seen.insert(info.oid).second)
        roots += (roots.empty() ? "" : ",") + std::to_string(info.oid);
    }
  }
  if (roots.empty()) return std::vector<TableInfo>{};
  // A partitioned table is published (and so streamed and copied) as its leaf partitions
  // (pg_partition_tree lists nothing for a plain table, which stands for itself).
  const std::string root_array = "unnest('{" + roots + "}'::oid[]) AS r(oid)";
  SLUICE_ASSIGN_OR_RETURN(
      pg::QueryResult leaves,
      Sql(std::string(kTableInfoSelect) + "WHERE c.relkind = 'r' AND c.oid IN (SELECT r.oid FROM " +
              root_array + " UNION ALL SELECT t.relid FROM " + root_array +
              ", pg_catalog.pg_partition_tree(r.oid) t WHERE t.isleaf) "
              "ORDER BY n.nspname, c.relname",
          "listing the partitions of the tables to publish"));
  return ToTableInfos(leaves);
}

// The one query from a pattern to tables, so `check` (ResolveTables) and `run`
// (EnsurePublication) can never disagree on what a pattern covers.
core::Result<std::vector<TableInfo>> PublicationManager::ResolvePattern(
    const pg::TablePattern& pattern) {
  const std::string schema_literal = connection_.QuoteLiteralForSql(pattern.schema);
  if (pattern.all_tables) {
    SLUICE_ASSIGN_OR_RETURN(
        pg::QueryResult schema,
        Sql("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = " + schema_literal,
            "looking up schema " + pattern.schema));
    if (schema.rows.empty()) {
      return core::NotFound("schema " + pg::DisplayIdentifier(pattern.schema) + " (from '" +
                            pattern.DisplayName() + "') not found on " + connection_.endpoint());
    }
  }
  // Ordinary and partitioned tables; a schema's partitions are published through their root.
  std::string sql = std::string(kTableInfoSelect) + "WHERE n.nspname = " + schema_literal +
                    " AND c.relkind IN ('r', 'p')";
  if (pattern.all_tables) {
    sql += " AND NOT c.relispartition ORDER BY c.relname";
  } else {
    sql += " AND c.relname = " + connection_.QuoteLiteralForSql(pattern.table);
  }
  SLUICE_ASSIGN_OR_RETURN(pg::QueryResult rows,
                          Sql(sql, "listing the tables of " + pattern.DisplayName()));
  if (rows.rows.empty() && !pattern.all_tables) {
    return core::NotFound("table " + pattern.DisplayName() + " not found on " +
                          connection_.endpoint());
  }
  return ToTableInfos(rows);
}

core::Result<std::vector<TableInfo>> PublicationManager::PublishedTables(const std::string& name) {
  const std::string pub_literal = connection_.QuoteLiteralForSql(name);
  SLUICE_ASSIGN_OR_RETURN(
      pg::QueryResult existing,
      Sql("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = " + pub_literal,
          "looking up publication " + name));
  if (existing.rows.empty()) {
    return core::NotFound("publication " + name + " does not exist on " + connection_.endpoint());
  }
  SLUICE_ASSIGN_OR_RETURN(
      pg::QueryResult tables,
      Sql(std::string(kTableInfoSelect) +
              "JOIN pg_catalog.pg_publication_tables pt ON pt.schemaname = n.nspname "
              "AND pt.tablename = c.relname WHERE pt.pubname = " +
              pub_literal + " ORDER BY n.nspname, c.relname",
          "listing the tables of publication " + name));
  return ToTableInfos(tables);
}

core::Status PublicationManager::CheckReplicaIdentity(const std::string& name) {
  SLUICE_ASSIGN_OR_RETURN(std::vector<TableInfo> tables, PublishedTables(name));
  return CheckUsable(tables, name, connection_.endpoint());
}

}  // namespace sluice::capture
