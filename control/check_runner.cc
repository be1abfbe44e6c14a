#include "control/check_runner.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <set>

#include "capture/logical_capture.h"
#include "capture/publication_manager.h"
#include "capture/replication_connection.h"
#include "capture/slot_check.h"
#include "config/dsn.h"
#include "config/runnable.h"
#include "control/capture_setup.h"
#include "control/pipeline_state.h"
#include "control/slot_policy.h"
#include "core/number_text.h"
#include "pg/connection.h"
#include "pg/quote.h"
#include "state/checkpoint_store.h"

namespace sluice::control {
namespace {

using pg::Connection;

// Collects check results for one pipeline and prints them as they come, with every secret of
// the pipeline's connection strings redacted (server messages may quote what they were given).
class Report {
 public:
  Report(std::FILE* out, std::string pipeline, std::vector<std::string> dsns)
      : out_(out), pipeline_(std::move(pipeline)), dsns_(std::move(dsns)) {}

  void Ok(const std::string& what) { Print("ok   ", what); }
  void Plan(const std::string& what) { Print("plan ", what); }
  void Fail(const core::Status& status) {
    const core::Status redacted(status.code(), config::RedactSecrets(status.message(), dsns_));
    Print("FAIL ", redacted.message());
    if (first_.ok()) first_ = redacted.WithContext("pipeline " + pipeline_);
  }
  const core::Status& first_failure() const { return first_; }

 private:
  void Print(const char* tag, const std::string& what) {
    std::fprintf(out_, "  %s %s\n", tag, config::RedactSecrets(what, dsns_).c_str());
  }

  std::FILE* out_;
  std::string pipeline_;
  std::vector<std::string> dsns_;
  core::Status first_;
};

std::string Value(const pg::QueryResult& r, size_t row = 0, size_t col = 0) {
  if (row >= r.rows.size() || col >= r.rows[row].size() || !r.rows[row][col]) return "";
  return *r.rows[row][col];
}

// Tables the pipeline's patterns name on the source, resolved exactly as `run` resolves them.
core::Result<std::vector<capture::TableInfo>> ResolveTables(Connection& source,
                                                            const config::PipelineConfig& p) {
  capture::PublicationManager publications(source);
  return publications.ResolveTables(p.source.tables);
}

void CheckSource(const config::Config& config, const config::PipelineConfig& p, Report& report,
                 std::vector<capture::TableInfo>* tables) {
  auto connected = pg::Connection::Connect(p.source.dsn, {.timeout = p.source.connect_timeout});
  if (!connected.ok()) {
    report.Fail(connected.status());
    return;
  }
  Connection& source = **connected;
  report.Ok("source " + source.endpoint() + " reachable (PostgreSQL " +
            std::to_string(source.server_version() / 10000) + ", database " + source.dbname() +
            ", role " + source.user() + ")");

  auto settings = source.Query(
      "SELECT current_setting('wal_level'),"
      " (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user),"
      " current_setting('max_replication_slots')::int - (SELECT count(*) FROM"
      " pg_replication_slots),"
      " current_setting('max_wal_senders')::int - (SELECT count(*) FROM pg_stat_replication),"
      " (SELECT plugin || '/' || coalesce(database, '') FROM pg_replication_slots WHERE"
      " slot_name = " +
          pg::QuoteLiteral(p.source.slot) +
          "), current_database(),"
          " (SELECT count(*) FROM pg_publication WHERE pubname = " +
          pg::QuoteLiteral(p.source.publication) + ")",
      "reading server settings");
  if (!settings.ok()) {
    report.Fail(settings.status());
    return;
  }
  const std::string wal_level = Value(*settings, 0, 0);
  if (wal_level == "logical") {
    report.Ok("wal_level = logical");
  } else {
    report.Fail(core::FailedPrecondition("source " + source.endpoint() +
                                         " has wal_level=" + wal_level +
                                         "; set wal_level=logical and restart PostgreSQL"));
  }
  if (Value(*settings, 0, 1) == "t") {
    report.Ok("role " + source.user() + " may replicate");
  } else {
    report.Fail(core::FailedPrecondition("role " + source.user() + " on " + source.endpoint() +
                                         " lacks REPLICATION (ALTER ROLE " + source.user() +
                                         " REPLICATION)"));
  }
  const std::string slot = Value(*settings, 0, 4);
  auto free_slots = core::ParseInt64(Value(*settings, 0, 2), "free replication slots");
  auto free_senders = core::ParseInt64(Value(*settings, 0, 3), "free WAL senders");
  if (!free_slots.ok() || !free_senders.ok()) {
    report.Fail(!free_slots.ok() ? free_slots.status() : free_senders.status());
    return;
  }
  if (!slot.empty()) {
    if (slot != "pgoutput/" + Value(*settings, 0, 5)) {
      report.Fail(core::FailedPrecondition("slot " + p.source.slot + " exists as " + slot +
                                           " (plugin/database); drop it or choose another slot"));
    }
  } else if (*free_slots <= 0) {
    report.Fail(core::ResourceExhausted("no free replication slot on " + source.endpoint() +
                                        " (raise max_replication_slots)"));
  }
  if (*free_senders <= 0) {
    report.Fail(core::ResourceExhausted("no free WAL sender on " + source.endpoint() +
                                        " (raise max_wal_senders)"));
  }
  const bool publication_exists = Value(*settings, 0, 6) != "0";

  auto resolved = ResolveTables(source, p);
  if (!resolved.ok()) {
    report.Fail(resolved.status());
    return;
  }
  *tables = std::move(resolved).value();
  std::string unusable;
  for (const auto& t : *tables) {
    if (!t.usable_replica_identity())
      unusable += (unusable.empty() ? "" : ", ") + t.QualifiedName();
  }
  if (unusable.empty()) {
    report.Ok(std::to_string(tables->size()) + " table(s), each with a usable replica identity");
  } else {
    report.Fail(core::FailedPrecondition(
        "tables without a usable replica identity (updates and deletes could not be "
        "replicated): " +
        unusable + "; ALTER TABLE ... REPLICA IDENTITY FULL or add a primary key"));
  }
  if (publication_exists) {
    report.Ok("publication " + p.source.publication + " exists" +
              (p.source.create_publication ? " (missing tables would be added)" : ""));
  } else if (p.source.create_publication) {
    report.Plan("create publication " + p.source.publication + " for " +
                std::to_string(tables->size()) + " table(s)");
  } else {
    report.Fail(core::NotFound("publication " + p.source.publication + " does not exist on " +
                               source.endpoint() + " and create_publication is false"));
  }
  (void)config;
}

// An SQL identifier as a GRANT statement needs it: bare when PostgreSQL reads it unchanged.
std::string SqlName(const std::string& name) {
  const bool bare = !name.empty() &&
                    (std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
                    std::all_of(name.begin(), name.end(), [](char c) {
                      return std::islower(static_cast<unsigned char>(c)) ||
                             std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '$';
                    });
  return bare ? name : pg::QuoteIdentifier(name);
}

std::string Join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

// What the target role may do, read in one round trip (see CheckTargetRole).
struct TargetRole {
  std::string role;      // SQL spelling, for GRANT ... TO <role>
  std::string database;  // SQL spelling
  bool create_on_database = false;
  std::vector<std::string> origin_functions_missing;  // signatures lacking EXECUTE
  bool may_set_replication_role = false;
  bool sluice_schema_exists = false;
  bool sluice_schema_create = false;
  bool sluice_schema_usage = false;
  bool applied_exists = false;
  std::vector<std::string> applied_missing;  // of SELECT, INSERT, UPDATE on sluice.applied
  int64_t origins = 0;                       // rows of pg_replication_origin
  bool own_origin_exists = false;
  int64_t origin_capacity = 0;
  std::string origin_capacity_setting;
};

// What apply::PostgresSink does on the target as this role: replication origin functions (it
// creates and sets up origin sluice_<pipeline>, and stamps each batch with
// pg_replication_origin_xact_setup), SET session_replication_role, and sluice.applied (created
// with CREATE SCHEMA IF NOT EXISTS when missing).
constexpr const char* kOriginFunctions[] = {
    "pg_catalog.pg_replication_origin_create(text)",
    "pg_catalog.pg_replication_origin_session_setup(text)",
    "pg_catalog.pg_replication_origin_xact_setup(pg_lsn, timestamp with time zone)",
};

core::Result<TargetRole> ReadTargetRole(Connection& target, const std::string& origin) {
  const int version = target.server_version();
  std::string sql = "SELECT r.rolsuper, has_database_privilege(current_database(), 'CREATE')";
  for (const char* function : kOriginFunctions) {
    // Before PostgreSQL 14 the origin functions check for superuser themselves.
    sql += version >= 140000
               ? ", has_function_privilege(" + pg::QuoteLiteral(function) + ", 'EXECUTE')"
               : std::string(", r.rolsuper");
  }
  // GRANT SET ON PARAMETER exists from PostgreSQL 15; before, a superuser-only setting.
  sql += version >= 150000 ? ", has_parameter_privilege('session_replication_role', 'SET')"
                           : ", r.rolsuper";
  sql +=
      ", (SELECT count(*) FROM pg_catalog.pg_replication_origin),"
      " EXISTS (SELECT 1 FROM pg_catalog.pg_replication_origin WHERE roname = " +
      pg::QuoteLiteral(origin) +
      "), coalesce(current_setting('max_active_replication_origins', true),"
      " current_setting('max_replication_slots'))::int,"
      " n.oid IS NOT NULL, has_schema_privilege(n.oid, 'CREATE'),"
      " has_schema_privilege(n.oid, 'USAGE'), c.oid IS NOT NULL,"
      " has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'),"
      " has_table_privilege(c.oid, 'UPDATE'), current_user, current_database()"
      " FROM pg_catalog.pg_roles r"
      " LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = 'sluice'"
      " LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = 'applied'"
      " WHERE r.rolname = current_user";
  SLUICE_ASSIGN_OR_RETURN(auto rows, target.Query(sql, "reading the target role's privileges"));
  if (rows.rows.empty()) {
    return core::NotFound("role " + target.user() + " not found in pg_roles on " +
                          target.endpoint());
  }
  auto yes = [&](size_t col) { return Value(rows, 0, col) == "t"; };
  TargetRole r;
  r.create_on_database = yes(1);
  for (size_t i = 0; i < std::size(kOriginFunctions); ++i) {
    if (!yes(2 + i)) r.origin_functions_missing.push_back(kOriginFunctions[i]);
  }
  r.may_set_replication_role = yes(5);
  SLUICE_ASSIGN_OR_RETURN(r.origins, core::ParseInt64(Value(rows, 0, 6), "replication origins"));
  r.own_origin_exists = yes(7);
  SLUICE_ASSIGN_OR_RETURN(r.origin_capacity,
                          core::ParseInt64(Value(rows, 0, 8), "replication origin capacity"));
  r.origin_capacity_setting =
      version >= 180000 ? "max_active_replication_origins" : "max_replication_slots";
  r.sluice_schema_exists = yes(9);
  r.sluice_schema_create = yes(10);
  r.sluice_schema_usage = yes(11);
  r.applied_exists = yes(12);
  const char* applied_privileges[] = {"SELECT", "INSERT", "UPDATE"};
  for (size_t i = 0; i < 3; ++i) {
    if (!yes(13 + i)) r.applied_missing.push_back(applied_privileges[i]);
  }
  r.role = SqlName(Value(rows, 0, 16));
  r.database = SqlName(Value(rows, 0, 17));
  return r;
}

// Replication origins, session_replication_role, sluice.applied and room for the origin.
void CheckTargetRole(const config::PipelineConfig& p, Connection& target, Report& report) {
  // apply::PostgresSinkOptions::origin_name's default, which control::MakeSink keeps.
  const std::string origin = "sluice_" + p.name;
  auto read = ReadTargetRole(target, origin);
  if (!read.ok()) {
    report.Fail(read.status());
    return;
  }
  const TargetRole& r = *read;
  const std::string who = "role " + r.role + " on target " + target.endpoint();
  const bool old_server = target.server_version() < 140000;

  if (r.origin_functions_missing.empty()) {
    report.Ok("role " + r.role + " may use replication origins (apply records origin " + origin +
              ")");
  } else {
    report.Fail(core::FailedPrecondition(
        who + " may not use replication origins, which apply needs for origin " + origin + ": " +
        (old_server ? "ALTER ROLE " + r.role + " SUPERUSER"
                    : "GRANT EXECUTE ON FUNCTION " + Join(r.origin_functions_missing, ", ") +
                          " TO " + r.role)));
  }

  const std::string& replication_role = p.target.postgres.session_replication_role;
  if (r.may_set_replication_role) {
    report.Ok("role " + r.role + " may SET session_replication_role (to " + replication_role + ")");
  } else {
    report.Fail(core::FailedPrecondition(
        who + " may not SET session_replication_role (target.postgres.session_replication_role: " +
        replication_role + "): " +
        (target.server_version() < 150000
             ? "ALTER ROLE " + r.role + " SUPERUSER"
             : "GRANT SET ON PARAMETER session_replication_role TO " + r.role)));
  }

  if (r.applied_exists) {
    std::vector<std::string> grants;
    if (!r.sluice_schema_usage) grants.push_back("GRANT USAGE ON SCHEMA sluice TO " + r.role);
    if (!r.applied_missing.empty()) {
      grants.push_back("GRANT " + Join(r.applied_missing, ", ") + " ON sluice.applied TO " +
                       r.role);
    }
    if (grants.empty()) {
      report.Ok("role " + r.role + " may write sluice.applied (the applied position)");
    } else {
      report.Fail(core::FailedPrecondition(
          who + " may not write sluice.applied, where apply records its position: " +
          Join(grants, "; ")));
    }
  } else {
    report.Plan(
        "create table sluice.applied on the target (the applied position, written with "
        "each batch)");
    std::vector<std::string> grants;
    // The sink runs CREATE SCHEMA IF NOT EXISTS, which needs CREATE on the database even when
    // the schema exists.
    if (!r.create_on_database) {
      grants.push_back("GRANT CREATE ON DATABASE " + r.database + " TO " + r.role);
    }
    if (r.sluice_schema_exists && !(r.sluice_schema_create && r.sluice_schema_usage)) {
      grants.push_back("GRANT CREATE, USAGE ON SCHEMA sluice TO " + r.role);
    }
    if (grants.empty()) {
      report.Ok("role " + r.role + " may create schema sluice and table sluice.applied");
    } else {
      report.Fail(core::FailedPrecondition(
          who + " may not create " +
          (r.sluice_schema_exists ? "sluice.applied" : "schema sluice and sluice.applied") +
          " (CREATE SCHEMA IF NOT EXISTS sluice, then the table): " + Join(grants, "; ")));
    }
  }

  // Each origin in use takes a replication state slot, and there are as many as the setting.
  if (r.own_origin_exists) {
    report.Ok("replication origin " + origin + " exists on the target");
  } else if (r.origins < r.origin_capacity) {
    report.Ok("room for replication origin " + origin + " on the target (" +
              std::to_string(r.origins) + " of " + r.origin_capacity_setting + " = " +
              std::to_string(r.origin_capacity) + " in use)");
  } else {
    report.Fail(core::ResourceExhausted(
        "no room for replication origin " + origin + " on target " + target.endpoint() + ": " +
        std::to_string(r.origins) + " replication origin(s) exist and " +
        r.origin_capacity_setting + " = " + std::to_string(r.origin_capacity) +
        " (each origin takes a replication state slot); raise it and restart the target: "
        "ALTER SYSTEM SET " +
        r.origin_capacity_setting + " = " + std::to_string(r.origins + 1)));
  }
}

// SQL VALUES rows ('schema', 'table') for `tables`.
std::string TableValues(const std::vector<capture::TableInfo>& tables) {
  std::string values;
  for (const auto& t : tables) {
    values += std::string(values.empty() ? "" : ", ") + "(" + pg::QuoteLiteral(t.schema) + ", " +
              pg::QuoteLiteral(t.name) + ")";
  }
  return values;
}

// SELECT, INSERT, UPDATE, DELETE and TRUNCATE on every existing target table (apply writes
// them; the initial copy checks them empty, COPYs into them, and empties a table an
// interrupted copy left behind), and USAGE on their schemas.
void CheckTableWrites(Connection& target, const std::vector<capture::TableInfo>& tables,
                      Report& report) {
  if (tables.empty()) return;
  static constexpr const char* kPrivileges[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"};
  std::string sql = "SELECT v.s, v.t, has_schema_privilege(n.oid, 'USAGE')";
  for (const char* privilege : kPrivileges) {
    sql += std::string(", has_table_privilege(c.oid, '") + privilege + "')";
  }
  sql += ", current_user FROM (VALUES " + TableValues(tables) +
         ") v(s, t) JOIN pg_catalog.pg_namespace n ON n.nspname = v.s"
         " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = v.t"
         " ORDER BY 1, 2";
  auto rows = target.Query(sql, "reading privileges on the target tables");
  if (!rows.ok()) {
    report.Fail(rows.status());
    return;
  }
  bool all = true;
  std::set<std::string> schemas_reported;
  for (size_t i = 0; i < rows->rows.size(); ++i) {
    const std::string schema = SqlName(Value(*rows, i, 0));
    const std::string table = schema + "." + SqlName(Value(*rows, i, 1));
    const std::string role = SqlName(Value(*rows, i, 8));
    std::vector<std::string> grants;
    if (Value(*rows, i, 2) != "t" && schemas_reported.insert(schema).second) {
      grants.push_back("GRANT USAGE ON SCHEMA " + schema + " TO " + role);
    }
    std::vector<std::string> missing;
    for (size_t k = 0; k < std::size(kPrivileges); ++k) {
      if (Value(*rows, i, 3 + k) != "t") missing.push_back(kPrivileges[k]);
    }
    if (!missing.empty()) {
      grants.push_back("GRANT " + Join(missing, ", ") + " ON " + table + " TO " + role);
    }
    if (grants.empty()) continue;
    all = false;
    report.Fail(core::FailedPrecondition("role " + role + " on target " + target.endpoint() +
                                         " may not write target table " + table + ": " +
                                         Join(grants, "; ")));
  }
  if (all) {
    report.Ok("role " + target.user() + " may SELECT, INSERT, UPDATE, DELETE and TRUNCATE the " +
              std::to_string(tables.size()) + " existing target table(s)");
  }
}

// CREATE on the schema of each missing table (USAGE too), or on the database when the schema
// is missing as well (the sink creates both).
void CheckTableCreation(Connection& target, const std::vector<capture::TableInfo>& missing,
                        Report& report) {
  if (missing.empty()) return;
  std::set<std::string> schemas;
  for (const auto& t : missing) schemas.insert(t.schema);
  std::string values;
  for (const std::string& schema : schemas) {
    values += std::string(values.empty() ? "" : ", ") + "(" + pg::QuoteLiteral(schema) + ")";
  }
  auto rows = target.Query(
      "SELECT v.s, n.oid IS NOT NULL, has_schema_privilege(n.oid, 'CREATE'),"
      " has_schema_privilege(n.oid, 'USAGE'),"
      " has_database_privilege(current_database(), 'CREATE'), current_user, current_database()"
      " FROM (VALUES " +
          values + ") v(s) LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = v.s ORDER BY 1",
      "reading privileges to create the missing target tables");
  if (!rows.ok()) {
    report.Fail(rows.status());
    return;
  }
  bool all = true;
  for (size_t i = 0; i < rows->rows.size(); ++i) {
    const std::string schema = SqlName(Value(*rows, i, 0));
    const std::string role = SqlName(Value(*rows, i, 5));
    std::string grant;
    if (Value(*rows, i, 1) != "t") {
      if (Value(*rows, i, 4) != "t") {
        grant = "GRANT CREATE ON DATABASE " + SqlName(Value(*rows, i, 6)) + " TO " + role;
      }
    } else if (Value(*rows, i, 2) != "t" || Value(*rows, i, 3) != "t") {
      grant = "GRANT CREATE, USAGE ON SCHEMA " + schema + " TO " + role;
    }
    if (grant.empty()) continue;
    all = false;
    report.Fail(core::FailedPrecondition("role " + role + " on target " + target.endpoint() +
                                         " may not create the missing " + "tables in schema " +
                                         schema + " (target.postgres.create_tables): " + grant));
  }
  if (all) {
    report.Ok("role " + target.user() + " may create the " + std::to_string(missing.size()) +
              " missing target table(s)");
  }
}

void CheckTarget(const config::PipelineConfig& p, const std::vector<capture::TableInfo>& tables,
                 Connection* source, Report& report) {
  if (!config::RunStartsPipeline(p)) {
    report.Plan("no target: `sluice tail` shows the stream; `run` skips this pipeline");
    return;
  }
  // Other types are refused by config::CheckRunnable, reported above the pipelines.
  if (p.target.type != config::TargetType::kPostgres) return;
  auto connected = pg::Connection::Connect(p.target.dsn, {.timeout = p.source.connect_timeout});
  if (!connected.ok()) {
    report.Fail(connected.status());
    return;
  }
  Connection& target = **connected;
  report.Ok("target " + target.endpoint() + " reachable (PostgreSQL " +
            std::to_string(target.server_version() / 10000) + ", database " + target.dbname() +
            ", role " + target.user() + ")");
  CheckTargetRole(p, target, report);

  std::vector<capture::TableInfo> existing;
  std::vector<capture::TableInfo> missing;
  for (const auto& t : tables) {
    const std::string cols_sql =
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN"
        " pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = " +
        pg::QuoteLiteral(t.schema) + " AND c.relname = " + pg::QuoteLiteral(t.name) +
        " AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''";
    auto target_cols = target.Query(cols_sql, "columns of " + t.QualifiedName() + " on target");
    if (!target_cols.ok()) {
      report.Fail(target_cols.status());
      return;
    }
    if (target_cols->rows.empty()) {
      missing.push_back(t);
      if (!p.target.postgres.create_tables) {
        report.Fail(core::FailedPrecondition("target table " + t.QualifiedName() +
                                             " does not exist on " + target.endpoint() +
                                             " (create it, or set target.postgres.create_tables)"));
      }
      continue;
    }
    existing.push_back(t);
    if (source == nullptr) continue;
    auto source_cols = source->Query(cols_sql, "columns of " + t.QualifiedName() + " on source");
    if (!source_cols.ok()) continue;
    std::set<std::string> have;
    for (const auto& row : target_cols->rows) have.insert(row[0].value_or(""));
    for (const auto& row : source_cols->rows) {
      if (!have.count(row[0].value_or(""))) {
        report.Fail(core::FailedPrecondition("target table " + t.QualifiedName() +
                                             " has no column \"" + row[0].value_or("") +
                                             "\" (the source sends it)"));
      }
    }
  }
  if (!missing.empty() && p.target.postgres.create_tables) {
    report.Plan("create " + std::to_string(missing.size()) +
                " missing table(s) on the target from the source's definitions");
    CheckTableCreation(target, missing, report);
  } else if (missing.empty() && !tables.empty()) {
    report.Ok("every table exists on the target with the source's columns");
  }
  CheckTableWrites(target, existing, report);
}

}  // namespace

// The slot as `run` would judge it at its next start (SlotPolicyFor, CheckSlotUsable), from the
// state directory (read-only: the daemon may be running) and the target's sluice.applied.
void CheckSlot(const config::Config& config, const config::PipelineConfig& p, Report& report) {
  SlotFacts facts;
  bool pending_snapshot = false;
  auto store = state::CheckpointStore::Open(config.state_dir, /*read_only=*/true);
  if (store.ok()) {
    PipelineState state(**store, p.name);
    auto has_state = state.HasPosition();
    auto record = state.LoadSlot();
    auto done = state.SnapshotDone();
    auto checkpoint = (*store)->LoadCheckpoint(p.name);
    auto request = state.LoadRequest();
    for (const core::Status& st : {has_state.status(), record.status(), done.status(),
                                   checkpoint.status(), request.status()}) {
      if (!st.ok()) {
        report.Fail(st.WithContext("reading the state of pipeline " + p.name));
        return;
      }
    }
    facts.has_local_state = *has_state;
    facts.owned = record->has_value() && (*record)->name == p.source.slot;
    facts.copy_unfinished = p.snapshot == "initial" && !*done;
    if (checkpoint->has_value()) facts.resume = (*checkpoint)->durable_lsn;
    pending_snapshot = request->has_value();
  } else if (store.status().code() != core::StatusCode::kNotFound) {
    report.Fail(store.status());
    return;
  }
  if (p.target.type == config::TargetType::kPostgres) {
    auto target = pg::Connection::Connect(p.target.dsn, {.timeout = p.source.connect_timeout});
    if (target.ok()) {
      auto applied = (*target)->Query(
          "SELECT end_lsn::text FROM sluice.applied WHERE to_regclass('sluice.applied') IS NOT "
          "NULL AND pipeline = " +
              pg::QuoteLiteral(p.name),
          "reading the target's position");
      if (applied.ok() && !applied->rows.empty()) {
        auto lsn = core::Lsn::Parse(Value(*applied));
        if (lsn.ok()) {
          facts.target_has_position = true;
          if (*lsn > facts.resume) facts.resume = *lsn;
        }
      }
    }
  }
  const std::string remedy =
      "to copy the tables again from a new slot, run: sluice snapshot "
      "--config " +
      config.source_file + " --pipeline " + p.name;
  if (pending_snapshot) {
    report.Plan(
        "finish the interrupted `sluice snapshot` first (run does it, or run sluice "
        "snapshot again)");
    return;
  }
  facts.adopt_slot = p.source.adopt_slot;
  capture::SlotPolicy policy = SlotPolicyFor(facts, remedy);
  auto slot = capture::LogicalCapture::InspectSlot(CaptureOptionsFor(config, p));
  if (!slot.ok()) {
    report.Fail(slot.status());
    return;
  }
  const std::string endpoint = slot->has_value() ? (*slot)->endpoint : std::string("the source");
  core::Status usable = capture::CheckSlotUsable(*slot, p.source.slot, policy, endpoint);
  if (usable.retryable()) {
    report.Ok(usable.message() + "; run waits for it");
  } else if (!usable.ok()) {
    report.Fail(usable.WithContext("pipeline " + p.name));
  } else if (!slot->has_value()) {
    report.Plan("create logical slot " + p.source.slot);
  } else if (facts.copy_unfinished && facts.owned) {
    report.Plan("make slot " + p.source.slot +
                " again for a new snapshot (the initial copy was "
                "interrupted)");
  } else {
    report.Ok("slot " + p.source.slot + " at " + (*slot)->confirmed_flush_lsn.ToString() +
              (facts.resume.valid() ? ", not past the durable position " + facts.resume.ToString()
                                    : std::string()) +
              ": run streams from it");
  }
}

core::Status RunCheck(const config::Config& config, std::FILE* out) {
  std::fprintf(out, "config %s: %zu pipeline(s), state in %s\n", config.source_file.c_str(),
               config.pipelines.size(), config.state_dir.c_str());
  // What `run` refuses outright, in `run`'s own words.
  core::Status first = config::CheckRunnable(config);
  if (!first.ok()) std::fprintf(out, "  FAIL  %s\n", first.message().c_str());
  for (const auto& p : config.pipelines) {
    std::fprintf(
        out, "pipeline %s  (%s -> %s)\n", p.name.c_str(), config::RedactDsn(p.source.dsn).c_str(),
        p.target.type == config::TargetType::kNone ? "no target"
                                                   : config::RedactDsn(p.target.dsn).c_str());
    Report report(out, p.name, {p.source.dsn, p.target.dsn});
    std::vector<capture::TableInfo> tables;
    CheckSource(config, p, report, &tables);
    auto source = pg::Connection::Connect(p.source.dsn, {.timeout = p.source.connect_timeout});
    CheckTarget(p, tables, source.ok() ? source->get() : nullptr, report);
    // The replication connection itself: privilege and a free WAL sender, for real.
    if (report.first_failure().ok()) {
      auto replication =
          capture::ReplicationConnection::Connect(p.source.dsn, p.source.connect_timeout);
      if (replication.ok()) {
        report.Ok("replication connection accepted");
      } else {
        report.Fail(replication.status());
      }
    }
    if (report.first_failure().ok()) CheckSlot(config, p, report);
    auto store = state::CheckpointStore::Open(config.state_dir, /*read_only=*/true);
    std::optional<state::Checkpoint> checkpoint;
    if (store.ok()) {
      auto loaded = (*store)->LoadCheckpoint(p.name);
      if (loaded.ok()) checkpoint = *loaded;
    }
    if (checkpoint) {
      report.Plan("resume streaming after checkpoint " + checkpoint->durable_lsn.ToString());
    } else if (p.snapshot == "initial" && p.target.type != config::TargetType::kNone) {
      report.Plan("copy " + std::to_string(tables.size()) + " table(s) with " +
                  std::to_string(p.target.apply.copy_jobs) +
                  " job(s) at the slot's snapshot, then stream from its consistent point");
    } else {
      report.Plan("stream changes from the moment the slot is created (snapshot: never)");
    }
    if (first.ok()) first = report.first_failure();
  }
  std::fprintf(out, "%s\n", first.ok() ? "all checks passed" : "some checks FAILED");
  return first;
}

}  // namespace sluice::control
