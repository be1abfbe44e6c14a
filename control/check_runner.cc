#include "control/check_runner.h"

#include <map>
#include <set>

#include "capture/publication_manager.h"
#include "capture/replication_connection.h"
#include "config/dsn.h"
#include "state/checkpoint_store.h"

namespace sluice::control {
namespace {

using capture::PgConnection;

// Collects check results for one pipeline and prints them as they come.
class Report {
 public:
  Report(std::FILE* out, std::string pipeline) : out_(out), pipeline_(std::move(pipeline)) {}

  void Ok(const std::string& what) { std::fprintf(out_, "  ok    %s\n", what.c_str()); }
  void Plan(const std::string& what) { std::fprintf(out_, "  plan  %s\n", what.c_str()); }
  void Fail(const core::Status& status) {
    std::fprintf(out_, "  FAIL  %s\n", status.message().c_str());
    if (first_.ok()) first_ = status.WithContext("pipeline " + pipeline_);
  }
  const core::Status& first_failure() const { return first_; }

 private:
  std::FILE* out_;
  std::string pipeline_;
  core::Status first_;
};

std::string Value(const capture::QueryResult& r, size_t row = 0, size_t col = 0) {
  if (row >= r.rows.size() || col >= r.rows[row].size() || !r.rows[row][col]) return "";
  return *r.rows[row][col];
}

// Tables the pipeline's patterns name on the source, with their replica identity.
core::Result<std::vector<capture::TableInfo>> ResolveTables(PgConnection& source,
                                                            const config::PipelineConfig& p) {
  std::vector<capture::TableInfo> tables;
  std::set<uint32_t> seen;
  for (const std::string& text : p.source.tables) {
    SLUICE_ASSIGN_OR_RETURN(capture::TablePattern pattern, capture::ParseTablePattern(text));
    std::string where = "n.nspname = " + capture::QuoteLiteral(pattern.schema);
    if (!pattern.all_tables_in_schema) {
      where += " AND c.relname = " + capture::QuoteLiteral(pattern.table);
    }
    SLUICE_ASSIGN_OR_RETURN(
        auto rows,
        source.Query("SELECT c.oid, n.nspname, c.relname, c.relreplident,"
                     " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND"
                     " i.indisprimary), EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid ="
                     " c.oid AND i.indisreplident) FROM pg_class c JOIN pg_namespace n ON"
                     " n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND " +
                         where + " ORDER BY 2, 3",
                     "listing tables for " + text));
    if (rows.rows.empty()) {
      return core::NotFound("no table matches '" + text + "' on " + source.endpoint());
    }
    for (size_t i = 0; i < rows.rows.size(); ++i) {
      capture::TableInfo t;
      t.oid = static_cast<uint32_t>(std::stoul(Value(rows, i, 0)));
      if (!seen.insert(t.oid).second) continue;
      t.schema = Value(rows, i, 1);
      t.name = Value(rows, i, 2);
      t.replica_identity = Value(rows, i, 3).empty() ? 'd' : Value(rows, i, 3)[0];
      t.has_primary_key = Value(rows, i, 4) == "t";
      t.has_identity_index = Value(rows, i, 5) == "t";
      tables.push_back(std::move(t));
    }
  }
  return tables;
}

void CheckSource(const config::Config& config, const config::PipelineConfig& p, Report& report,
                 std::vector<capture::TableInfo>* tables) {
  auto connected = PgConnection::Connect(p.source.dsn, false, p.source.connect_timeout);
  if (!connected.ok()) {
    report.Fail(connected.status());
    return;
  }
  PgConnection& source = **connected;
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
          capture::QuoteLiteral(p.source.slot) +
          "), current_database(),"
          " (SELECT count(*) FROM pg_publication WHERE pubname = " +
          capture::QuoteLiteral(p.source.publication) + ")",
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
  const int free_slots = std::stoi(Value(*settings, 0, 2));
  if (!slot.empty()) {
    if (slot != "pgoutput/" + Value(*settings, 0, 5)) {
      report.Fail(core::FailedPrecondition("slot " + p.source.slot + " exists as " + slot +
                                           " (plugin/database); drop it or choose another slot"));
    } else {
      report.Ok("slot " + p.source.slot + " exists (pgoutput): run resumes from it");
    }
  } else if (free_slots <= 0) {
    report.Fail(core::ResourceExhausted("no free replication slot on " + source.endpoint() +
                                        " (raise max_replication_slots)"));
  } else {
    report.Plan("create logical slot " + p.source.slot + " (" + std::to_string(free_slots) +
                " free)");
  }
  if (std::stoi(Value(*settings, 0, 3)) <= 0) {
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

void CheckTarget(const config::PipelineConfig& p, const std::vector<capture::TableInfo>& tables,
                 PgConnection* source, Report& report) {
  if (p.target.type == "none") {
    report.Plan("no target: `sluice tail` shows the stream; `run` skips this pipeline");
    return;
  }
  if (p.target.type != "postgres") {
    report.Fail(core::Unsupported("target type " + p.target.type + " is not available yet"));
    return;
  }
  auto connected = PgConnection::Connect(p.target.dsn, false, p.source.connect_timeout);
  if (!connected.ok()) {
    report.Fail(connected.status());
    return;
  }
  PgConnection& target = **connected;
  report.Ok("target " + target.endpoint() + " reachable (database " + target.dbname() + ")");
  size_t missing_tables = 0;
  for (const auto& t : tables) {
    const std::string cols_sql =
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN"
        " pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = " +
        capture::QuoteLiteral(t.schema) + " AND c.relname = " + capture::QuoteLiteral(t.name) +
        " AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''";
    auto target_cols = target.Query(cols_sql, "columns of " + t.QualifiedName() + " on target");
    if (!target_cols.ok()) {
      report.Fail(target_cols.status());
      return;
    }
    if (target_cols->rows.empty()) {
      ++missing_tables;
      if (!p.target.apply.create_tables) {
        report.Fail(core::FailedPrecondition("target table " + t.QualifiedName() +
                                             " does not exist on " + target.endpoint() +
                                             " (create it, or set target.apply.create_tables)"));
      }
      continue;
    }
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
  if (missing_tables > 0 && p.target.apply.create_tables) {
    report.Plan("create " + std::to_string(missing_tables) +
                " missing table(s) on the target from the source's definitions");
  } else if (missing_tables == 0) {
    report.Ok("every table exists on the target with the source's columns");
  }
}

}  // namespace

core::Status RunCheck(const config::Config& config, std::FILE* out) {
  std::fprintf(out, "config %s: %zu pipeline(s), state in %s\n", config.source_file.c_str(),
               config.pipelines.size(), config.state_dir.c_str());
  core::Status first;
  for (const auto& p : config.pipelines) {
    std::fprintf(out, "pipeline %s  (%s -> %s)\n", p.name.c_str(),
                 config::RedactDsn(p.source.dsn).c_str(),
                 p.target.type == "none" ? "no target" : config::RedactDsn(p.target.dsn).c_str());
    Report report(out, p.name);
    std::vector<capture::TableInfo> tables;
    CheckSource(config, p, report, &tables);
    auto source = PgConnection::Connect(p.source.dsn, false, p.source.connect_timeout);
    if (!tables.empty()) {
      CheckTarget(p, tables, source.ok() ? source->get() : nullptr, report);
    }
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
    auto store = state::CheckpointStore::Open(config.state_dir, /*read_only=*/true);
    std::optional<state::Checkpoint> checkpoint;
    if (store.ok()) {
      auto loaded = (*store)->LoadCheckpoint(p.name);
      if (loaded.ok()) checkpoint = *loaded;
    }
    if (checkpoint) {
      report.Plan("resume streaming after checkpoint " + checkpoint->durable_lsn.ToString());
    } else if (p.snapshot == "initial" && p.target.type != "none") {
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
