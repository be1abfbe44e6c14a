#include "apply/postgres_sink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string_view>
#include <thread>

#include "apply/postgres_bulk_loader.h"
#include "codec/copy_text.h"
#include "core/number_text.h"
#include "core/pg_time.h"
#include "pg/quote.h"
#include "pg/sql_state.h"

namespace sluice::apply {
namespace {

using core::Operation;

// Individual "row not found" warnings per batch; the rest are summed up at commit.
constexpr size_t kNotFoundWarningsPerBatch = 10;
// pg_replication_origin_session_setup fails with 55006 while a previous session of ours (just
// dropped) is still exiting; retry for a while before giving up.
constexpr int kOriginBusyAttempts = 50;
constexpr auto kOriginBusyDelay = std::chrono::milliseconds(100);
// Rows per multi-row statement: a run is sent in the largest of these that fit, each prepared
// once per shape. Updates and deletes join a VALUES list to the table; short lists keep the
// planner on the key index.
constexpr size_t kRowBuckets[] = {1024, 256, 64, 16, 4, 1};
constexpr size_t kMaxInsertRows = 1024;
constexpr size_t kMaxLocatingRows = 256;
constexpr size_t kMaxParams = 65535;  // the protocol's limit per statement
// The compactor sends what it holds once it holds this much: its copies add to the memory the
// capture bounds.
constexpr size_t kMaxCompactedBytes = 8u << 20;
// Netted inserts of one table go by COPY from this many rows on: below it, the pipeline sync
// that COPY needs costs more than it saves.
constexpr size_t kMinCopyRows = 2000;
// A batch larger than this is not kept for a row-by-row replay (see the header): the copy
// adds to the memory the capture bounds, so it stays small.
constexpr size_t kMaxRetainedBytes = 8u << 20;

constexpr char kCreateSchemaSql[] =
    "CREATE SCHEMA IF NOT EXISTS sluice; "
    "CREATE TABLE IF NOT EXISTS sluice.applied ("
    "pipeline text PRIMARY KEY, "
    "end_lsn pg_lsn NOT NULL, "
    "commit_time timestamptz, "
    "updated_at timestamptz NOT NULL DEFAULT now())";

// Microseconds since 2000-01-01 (PostgreSQL's epoch) from a timestamptz; extract() returns
// numeric since PostgreSQL 14, so this is exact.
constexpr char kReadPositionSql[] =
    "SELECT end_lsn::text, "
    "(extract(epoch FROM commit_time) * 1000000)::int8 - 946684800000000 "
    "FROM sluice.applied WHERE pipeline = $1";

constexpr char kRecordPositionSql[] =
    "INSERT INTO sluice.applied (pipeline, end_lsn, commit_time, updated_at) "
    "VALUES ($1, $2::pg_lsn, $3::timestamptz, now()) "
    "ON CONFLICT (pipeline) DO UPDATE SET end_lsn = EXCLUDED.end_lsn, "
    "commit_time = EXCLUDED.commit_time, updated_at = now()";

// pg_replication_origin_xact_setup is strict: a NULL time would silently skip it.
constexpr char kOriginXactSql[] =
    "SELECT pg_catalog.pg_replication_origin_xact_setup($1::pg_lsn, "
    "COALESCE($2::timestamptz, now()))";

// The rows ParseTargetColumns reads. typmod -1: the type without modifier ("bpchar", not
// "character", which means char(1)); then the declared type, with its modifier.
constexpr char kTargetColumnsSql[] =
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, -1), a.attidentity::text, "
    "a.attgenerated::text, a.attnotnull::text, a.atthasdef::text, "
    "pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_catalog.pg_attribute a "
    "ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') ORDER BY a.attnum";

// A source column's type on the target (parameters from TargetTypeLookup: $1, $2 schema and
// name, or $3 a built-in type's OID; $4 the typmod): format_type with the modifier and without;
// no row when the target lacks the type.
constexpr char kTargetTypeSql[] =
    "SELECT pg_catalog.format_type(t.oid, $4::int4), pg_catalog.format_type(t.oid, -1) "
    "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
    "WHERE t.oid = $3::oid OR (n.nspname = $1 AND t.typname = $2)";

// Whether anything fires on the target when the apply session writes to the table (or one of
// its partitions; pg_partition_tree lists nothing for a table that is not partitioned): triggers
// enabled ALWAYS or REPLICA (session_replication_role = replica skips the others, foreign-key
// checks included), and rewrite rules.
constexpr char kTargetFiresSql[] =
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgenabled IN ('A', 'R') AND "
    "(t.tgrelid = c.oid OR "
    "t.tgrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree(c.oid::regclass)))) OR "
    "EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid AND "
    "r.rulename <> '_RETURN') FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')";

// The unique and exclusion indexes of the table (and its partitions): one row per index key
// column (no row for expression columns), and whether the index is plain (unique, no expression,
// no predicate).
constexpr char kTargetUniqueIndexesSql[] =
    "SELECT i.indexrelid::text, a.attname, "
    "(i.indisunique AND NOT i.indisexclusion AND i.indexprs IS NULL AND i.indpred IS NULL)::text "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_index i ON (i.indisunique OR i.indisexclusion) AND (i.indrelid = c.oid OR "
    "i.indrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree(c.oid::regclass))) "
    "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum > 0 AND "
    "a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]) "
    "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')";

// Netting a keyed table's changes per row is invisible only when every unique index covers the
// key (a violation of it would be one of the key), so no reordering of rows can trip it.
bool UniqueIndexesCoverKey(const core::Relation& relation, const std::vector<pg::Row>& rows) {
  std::unordered_map<std::string, std::pair<bool, std::unordered_set<std::string>>> indexes;
  for (const pg::Row& row : rows) {
    if (row.size() < 3 || !row[0]) continue;
    auto& index = indexes[*row[0]];
    index.first = row[2] == std::optional<std::string>("true");
    if (row[1]) index.second.insert(*row[1]);
  }
  for (const auto& [oid, index] : indexes) {
    if (!index.first) return false;
    for (const core::Column& column : relation.columns) {
      if (column.is_key && !index.second.contains(column.name)) return false;
    }
  }
  return true;
}

constexpr char kPrivilegeHint[] =
    "the apply role needs superuser, or EXECUTE on pg_replication_origin_create, "
    "pg_replication_origin_session_setup and pg_replication_origin_xact_setup and, on "
    "PostgreSQL 15+, SET on session_replication_role (sluice check prints the GRANTs)";

// A privilege error (42501) of the session set-up, with what to grant; other statuses as they are.
core::Status WithPrivilegeHint(const core::Status& status) {
  if (status.server_code() != "42501") return status;
  return core::Status(status.code(), status.message() + "; " + kPrivilegeHint, status.server_code(),
                      status.retryable());
}

std::optional<std::string> CommitTimeText(core::PgTimestamp commit_time) {
  if (commit_time == 0) return std::nullopt;  // unknown
  return core::FormatPgTimestamp(commit_time);
}

// Whether kTargetFiresSql's answer says that something fires.
bool Fires(const std::vector<pg::Row>& rows) {
  return !(rows.size() == 1 && rows[0].size() == 1 &&
           rows[0][0] == std::optional<std::string>("f"));
}

// Foreign keys from tables of the target outside a truncate's list to tables in it ($1, $2:
// text arrays of the listed schemas and names, pairwise): they make the target refuse the
// truncate, since sluice never cascades. One row per key: referencing table, referenced table,
// constraint.
constexpr char kTruncateBlockersSql[] =
    "WITH listed AS (SELECT c.oid FROM unnest($1::text[], $2::text[]) AS l(nsp, rel) "
    "JOIN pg_catalog.pg_namespace n ON n.nspname = l.nsp "
    "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = l.rel), "
    // A partitioned table is truncated with its partitions.
    "truncated AS (SELECT t.relid AS oid FROM listed, "
    "pg_catalog.pg_partition_tree(listed.oid::regclass) t UNION SELECT oid FROM listed) "
    "SELECT fn.nspname || '.' || f.relname, pn.nspname || '.' || p.relname, k.conname "
    "FROM pg_catalog.pg_constraint k "
    "JOIN pg_catalog.pg_class f ON f.oid = k.conrelid "
    "JOIN pg_catalog.pg_namespace fn ON fn.oid = f.relnamespace "
    "JOIN pg_catalog.pg_class p ON p.oid = k.confrelid "
    "JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace "
    "WHERE k.contype = 'f' AND k.confrelid IN (SELECT oid FROM truncated) "
    "AND k.conrelid NOT IN (SELECT oid FROM truncated) ORDER BY 1, 2, 3";

// PostgreSQL's array literal of `items`, each element quoted.
std::string TextArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// Marks tables sluice created, so FinishCopyTarget only ever adds a key to its own tables.
constexpr char kCreatedBySluice[] = "created by sluice for the initial copy";

// CREATE TABLE for `table` as the source defines it: columns with their types and NOT NULL, and
// the source's generated columns with their expressions where the source has them (the target
// computes them; replication never carries them). The primary key comes after the load
// (AddPrimaryKeySql). Defaults, identity, constraints and indexes beyond the key are not copied.
core::Result<std::string> CreateTableSql(const core::TableDefinition& table) {
  const core::Relation& relation = table.relation;
  if (table.column_types.size() != relation.columns.size() ||
      table.not_null.size() != relation.columns.size()) {
    return core::Internal("table definition of " + relation.QualifiedName() +
                          " has mismatched column lists");
  }
  std::string sql = "CREATE TABLE " + pg::QuoteQualifiedName(relation.schema, relation.name) + " (";
  size_t generated = 0;
  auto separate = [&sql, first = true]() mutable {
    if (!first) sql += ", ";
    first = false;
  };
  // Type and expression are the source catalog's own text: SQL as it stands, never quoted.
  auto add_generated_before = [&](size_t position) {
    for (; generated < table.generated_columns.size() &&
           table.generated_columns[generated].position <= position;
         ++generated) {
      const core::GeneratedColumn& column = table.generated_columns[generated];
      separate();
      sql += pg::QuoteIdentifier(column.name) + " " + column.type + " GENERATED ALWAYS AS (" +
             column.expression + ") STORED";
    }
  };
  for (size_t i = 0; i < relation.columns.size(); ++i) {
    add_generated_before(i);
    separate();
    sql += pg::QuoteIdentifier(relation.columns[i].name) + " " + table.column_types[i];
    if (table.not_null[i]) sql += " NOT NULL";
  }
  add_generated_before(SIZE_MAX);
  return sql + ")";
}

// ALTER TABLE ... ADD PRIMARY KEY for the source's key, or "" when it has none.
std::string AddPrimaryKeySql(const core::TableDefinition& table) {
  std::string key;
  for (const core::Column& column : table.relation.columns) {
    if (column.is_key) key += (key.empty() ? "" : ", ") + pg::QuoteIdentifier(column.name);
  }
  if (key.empty()) return "";
  return "ALTER TABLE " + pg::QuoteQualifiedName(table.relation.schema, table.relation.name) +
         " ADD PRIMARY KEY (" + key + ")";
}

bool SameShape(const core::Relation& a, const core::Relation& b) {
  if (a.schema != b.schema || a.name != b.name || a.columns.size() != b.columns.size()) {
    return false;
  }
  for (size_t i = 0; i < a.columns.size(); ++i) {
    const core::Column& x = a.columns[i];
    const core::Column& y = b.columns[i];
    if (x.name != y.name || x.type_oid != y.type_oid || x.type_modifier != y.type_modifier) {
      return false;
    }
  }
  return true;
}

// "ddl; ddl;" for an error message: statements to paste into psql.
std::string Statements(const std::vector<std::string>& ddl) {
  std::string out;
  for (const std::string& statement : ddl) out += (out.empty() ? "" : " ") + statement + ";";
  return out;
}

std::string QuotedNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names)
    out += (out.empty() ? "" : ", ") + pg::QuoteIdentifier(name);
  return out;
}

}  // namespace

namespace {
PostgresSinkOptions WithDefaults(PostgresSinkOptions options) {
  if (options.origin_name.empty()) options.origin_name = "sluice_" + options.pipeline;
  options.pipeline_depth = std::max<size_t>(1, options.pipeline_depth);
  return options;
}
}  // namespace

PostgresSink::PostgresSink(PostgresSinkOptions options)
    : options_(WithDefaults(std::move(options))), pipeline_(*this, options_.pipeline_depth) {}

PostgresSink::~PostgresSink() = default;

// --- Connection and session -------------------------------------------------------------------

void PostgresSink::DropConnection() { pipeline_.Close(); }

void PostgresSink::OnSessionLost() {
  prepared_.clear();  // prepared statements die with the session
  checked_.clear();   // the target may change while we are away
  replaced_in_batch_.clear();
  target_tables_.clear();
  compaction_modes_.clear();
  compactor_.Clear();
  run_.changes.clear();
  run_.keys.clear();
}

core::Status PostgresSink::Connect() {
  DropConnection();
  SLUICE_ASSIGN_OR_RETURN(
      std::unique_ptr<pg::Connection> conn,
      pg::Connection::Connect(options_.dsn,
                              {.timeout = options_.connect_timeout,
                               .application_name = "sluice-apply-" + options_.pipeline}));
  pipeline_.Attach(std::move(conn));
  return core::Status::Ok();
}

core::Status PostgresSink::SetUpSession() {
  if (options_.session_replication_role.empty()) return core::Status::Ok();
  core::Status status = pipeline_.connection().Exec(
      "SET session_replication_role = " + pg::QuoteLiteral(options_.session_replication_role),
      "setting session_replication_role = " + options_.session_replication_role);
  return WithPrivilegeHint(status);
}

core::Status PostgresSink::SetUpOrigin() {
  const std::string& origin = options_.origin_name;
  const std::string what = "setting up replication origin \"" + origin + "\"";
  for (int attempt = 0;; ++attempt) {
    SLUICE_ASSIGN_OR_RETURN(
        auto existing,
        pipeline_.connection().QueryRows(
            "SELECT 1 FROM pg_catalog.pg_replication_origin WHERE roname = $1", {origin}, what));
    if (existing.empty()) {
      auto created = pipeline_.connection().QueryRows(
          "SELECT pg_catalog.pg_replication_origin_create($1)", {origin}, what);
      if (!created.ok()) {
        // Another session created it between our look-up and create: use theirs.
        if (attempt == 0 && created.status().server_code() == "23505") {
          continue;
        }
        return WithPrivilegeHint(created.status());
      }
    }
    auto setup = pipeline_.connection().QueryRows(
        "SELECT pg_catalog.pg_replication_origin_session_setup($1)", {origin}, what);
    if (setup.ok()) return core::Status::Ok();
    // 55006: still active in a session of ours that is going away.
    if (setup.status().server_code() == "55006" && attempt + 1 < kOriginBusyAttempts) {
      std::this_thread::sleep_for(kOriginBusyDelay);
      continue;
    }
    return WithPrivilegeHint(setup.status());
  }
}

core::Result<AppliedPosition> PostgresSink::Open() {
  in_batch_ = false;
  pipeline_.ClearError();
  SLUICE_RETURN_IF_ERROR(Connect());
  auto fail = [&](core::Status status) {
    DropConnection();
    return status;
  };

  // Creating only when missing: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even
  // when the schema exists.
  auto exists = pipeline_.connection().QueryRows("SELECT to_regclass('sluice.applied') IS NOT NULL",
                                                 {}, "looking up sluice.applied");
  if (!exists.ok()) return fail(exists.status());
  if (exists->empty() || (*exists)[0][0] != "t") {
    core::Status created = pipeline_.connection().Exec(kCreateSchemaSql, "creating sluice.applied");
    if (!created.ok()) {
      // A concurrent Open() of another pipeline may have won the race.
      created = pipeline_.connection().Exec(kCreateSchemaSql, "creating sluice.applied");
      if (!created.ok()) return fail(created);
    }
  }

  AppliedPosition position;
  auto rows = pipeline_.connection().QueryRows(
      kReadPositionSql, {options_.pipeline},
      "reading the applied position of pipeline " + options_.pipeline);
  if (!rows.ok()) return fail(rows.status());
  if (!rows->empty()) {
    const pg::Row& row = rows->front();
    if (row[0]) {
      auto lsn = core::Lsn::Parse(*row[0]);
      if (!lsn.ok()) return fail(lsn.status());
      position.end_lsn = *lsn;
    }
    if (row[1]) {
      auto commit_time = core::ParseInt64(*row[1], "sluice.applied.commit_time");
      if (!commit_time.ok()) return fail(commit_time.status());
      position.commit_time = *commit_time;
    }
  }

  if (core::Status s = SetUpSession(); !s.ok()) return fail(s);
  if (core::Status s = SetUpOrigin(); !s.ok()) return fail(s);

  if (core::Status s = pipeline_.Enter(); !s.ok()) return fail(s);
  spdlog::info("pipeline {}: target {} applied up to {} (origin {})", options_.pipeline,
               pipeline_.connection().endpoint(), position.end_lsn.ToString(),
               options_.origin_name);
  return position;
}

// --- Results ----------------------------------------------------------------------------------

void PostgresSink::OnChangeDone(const PgPipeline::Entry& entry, const PGresult* result) {
  const ChangeContext& change = entry.change;
  if (entry.kind == PgPipeline::Kind::kPrepare) {
    auto it = prepared_.find(entry.label);
    if (it != prepared_.end()) it->second.confirmed = true;
    return;
  }
  if (change.op == Operation::kTruncate) return;
  stats_.rows_applied += change.row_count;
  if (change.op != Operation::kUpdate && change.op != Operation::kDelete) return;
  // An update or delete that matched no row: the target lacks a row the source had.
  const char* tuples = PQcmdTuples(const_cast<PGresult*>(result));
  uint64_t missing = 0;
  if (change.row_count > 1) {
    const uint64_t found = std::strtoull(tuples, nullptr, 10);
    if (found < change.row_count) missing = change.row_count - found;
  } else if (std::strcmp(tuples, "0") == 0) {
    missing = 1;
  }
  if (missing == 0) return;
  stats_.rows_not_found += missing;
  if (not_found_warnings_in_batch_ < kNotFoundWarningsPerBatch) {
    if (change.row_count > 1) {
      spdlog::warn("pipeline {}: {} of {} {}s on {} {} found no row on the target; skipped",
                   options_.pipeline, missing, change.row_count, core::OperationName(change.op),
                   change.Target(), change.Where());
    } else {
      spdlog::warn("pipeline {}: {} on {} {} found no row on the target; skipped",
                   options_.pipeline, core::OperationName(change.op), change.Target(),
                   change.Where());
    }
  }
  not_found_warnings_in_batch_ += missing;
}

bool PostgresSink::ErrorNeedsReplay() const {
  const ChangeContext* change = pipeline_.error_change();
  return change != nullptr && (change->row_count > 1 || change->compacted);
}

ChangeContext PostgresSink::ContextOf(const core::Change& first, const core::Change& last,
                                      size_t rows, core::Lsn fallback_lsn) const {
  ChangeContext context;
  context.relation = first.relation;
  context.op = first.op;
  context.lsn = first.lsn.valid() ? first.lsn : fallback_lsn;
  context.key = DescribeKey(first);
  context.row_count = static_cast<uint32_t>(rows);
  if (rows > 1) {
    context.last_lsn = last.lsn.valid() ? last.lsn : fallback_lsn;
    context.last_key = DescribeKey(last);
  }
  context.compacted = sending_compacted_;
  if (!sending_compacted_) {
    context.xid = sending_xid_;
    context.commit_lsn = sending_commit_lsn_;
  }
  return context;
}

// --- Relations --------------------------------------------------------------------------------

bool PostgresSink::NeedsCheck(const core::Relation& relation, core::Lsn commit_lsn) {
  auto it = checked_.find(relation.oid);
  if (it == checked_.end() || !SameShape(it->second.relation, relation)) return true;
  it->second.last_used_in = commit_lsn;
  return false;
}

const TargetTable* PostgresSink::TargetFor(const core::Relation& relation) const {
  auto it = target_tables_.find(relation.oid);
  return it == target_tables_.end() ? nullptr : &it->second;
}

CompactionMode PostgresSink::CompactionModeFor(const core::Relation& relation) const {
  auto it = compaction_modes_.find(relation.oid);
  return it == compaction_modes_.end() ? CompactionMode::kNone : it->second;
}

core::Status PostgresSink::CheckRelations(const std::vector<Sighting>& relations,
                                          bool* schema_stop) {
  // Compaction reorders rows across tables: only when no trigger or foreign key check fires.
  const bool compact =
      options_.compact && options_.coalesce && options_.session_replication_role == "replica";
  std::vector<std::shared_ptr<std::vector<pg::Row>>> columns;
  std::vector<std::shared_ptr<std::vector<pg::Row>>> fires;
  std::vector<std::shared_ptr<std::vector<pg::Row>>> unique_indexes;
  for (const Sighting& sighting : relations) {
    const core::Relation& relation = *sighting.relation;
    const std::string what = "looking up target table " + relation.QualifiedName();
    columns.push_back(std::make_shared<std::vector<pg::Row>>());
    SLUICE_RETURN_IF_ERROR(pipeline_.SendCommand(kTargetColumnsSql, what,
                                                 {relation.schema, relation.name}, columns.back()));
    fires.push_back(std::make_shared<std::vector<pg::Row>>());
    SLUICE_RETURN_IF_ERROR(pipeline_.SendCommand(kTargetFiresSql, what + " (triggers and rules)",
                                                 {relation.schema, relation.name}, fires.back()));
    if (!compact) continue;
    unique_indexes.push_back(std::make_shared<std::vector<pg::Row>>());
    SLUICE_RETURN_IF_ERROR(
        pipeline_.SendCommand(kTargetUniqueIndexesSql, what + " (unique indexes)",
                              {relation.schema, relation.name}, unique_indexes.back()));
  }
  SLUICE_RETURN_IF_ERROR(pipeline_.SyncAndDrain());
  for (size_t i = 0; i < relations.size(); ++i) {
    const core::Relation& relation = *relations[i].relation;
    if (columns[i]->empty()) {
      return core::FailedPrecondition("target table " + relation.QualifiedName() +
                                      " does not exist; create it or let sluice create tables");
    }
    std::vector<TargetColumn> target_columns = ParseTargetColumns(*columns[i]);
    std::vector<std::string> dropped;
    SLUICE_RETURN_IF_ERROR(FollowSchemaChange(relations[i], target_columns, &dropped, schema_stop));
    const bool fires_for_apply = Fires(*fires[i]);
    SLUICE_ASSIGN_OR_RETURN(TargetTable target, DescribeTargetTable(relation, target_columns,
                                                                    fires_for_apply, dropped));
    // A netted delete + insert of one key becomes an upsert, which cannot set a GENERATED
    // ALWAYS identity column outside the key: such tables keep every change in source order.
    const bool nettable = !(HasUsableKey(relation) && target.NonKeyIdentityAlways(relation));
    if (in_batch_ && !replaced_in_batch_.contains(relation.oid)) {
      // What a rollback of the batch restores (the batch may have altered the table).
      ReplacedVersion& replaced = replaced_in_batch_[relation.oid];
      if (auto it = checked_.find(relation.oid); it != checked_.end())
        replaced.checked = it->second;
      if (auto it = target_tables_.find(relation.oid); it != target_tables_.end()) {
        replaced.table = it->second;
      }
      replaced.mode = CompactionModeFor(relation);
    }
    target_tables_[relation.oid] = std::move(target);
    checked_[relation.oid] = CheckedRelation{relation, relations[i].commit_lsn};
    CompactionMode mode = CompactionMode::kNone;
    if (compact && nettable) {
      const bool quiet = !fires_for_apply;
      if (quiet && !HasUsableKey(relation)) {
        mode = CompactionMode::kAppendOnly;
      } else if (quiet && UniqueIndexesCoverKey(relation, *unique_indexes[i])) {
        mode = CompactionMode::kByKey;
      }
    }
    compaction_modes_[relation.oid] = mode;
  }
  return core::Status::Ok();
}

void PostgresSink::RestoreReplacedVersions() {
  for (auto& [oid, replaced] : replaced_in_batch_) {
    if (replaced.checked) {
      checked_[oid] = std::move(*replaced.checked);
    } else {
      checked_.erase(oid);
    }
    if (replaced.table) {
      target_tables_[oid] = std::move(*replaced.table);
    } else {
      target_tables_.erase(oid);
    }
    compaction_modes_[oid] = replaced.mode;
  }
  replaced_in_batch_.clear();
}

core::Status PostgresSink::FollowSchemaChange(const Sighting& sighting,
                                              std::vector<TargetColumn>& target_columns,
                                              std::vector<std::string>* dropped,
                                              bool* schema_stop) {
  const core::Relation& relation = *sighting.relation;
  const std::string table = relation.QualifiedName();
  const std::string at = "source LSN " + sighting.lsn.ToString();
  auto stop = [](const std::string& message) { return core::FailedPrecondition(message); };
  // For changes that rows written under the table's previous shape would not survive on the
  // target once the operator has followed them (a RENAME above all): the batch before them is
  // committed first (StopBeforeTransaction), so a restart does not apply such rows again.
  auto stop_before = [&](const std::string& message) {
    if (schema_stop != nullptr) *schema_stop = true;
    return core::FailedPrecondition(message);
  };
  auto previous_it = checked_.find(relation.oid);
  const CheckedRelation* previous = previous_it == checked_.end() ? nullptr : &previous_it->second;
  RelationDiff diff;
  if (previous != nullptr) diff = CompareRelationVersions(previous->relation, relation);
  *dropped = diff.dropped;
  if (!diff.ambiguous.empty()) {
    return stop_before("source table " + table + " changed (first change at " + at +
                       ") in a way sluice cannot follow: " + diff.ambiguous +
                       "; make the columns of target table " + table +
                       " match the source's (names and types; their order does not matter), then "
                       "restart sluice");
  }
  auto on_target = [&](const std::string& name) {
    return FindTargetColumn(target_columns, name) != nullptr;
  };
  std::vector<size_t> missing;
  for (size_t i = 0; i < relation.columns.size(); ++i) {
    if (!on_target(relation.columns[i].name)) missing.push_back(i);
  }
  std::vector<size_t> retyped;  // that the target has
  for (size_t i : diff.retyped) {
    if (on_target(relation.columns[i].name)) retyped.push_back(i);
  }
  // (A rename the target has not followed leaves the new name missing there.)
  if (missing.empty() && retyped.empty()) return core::Status::Ok();

  // What the types are called on the target: the new columns' types, and both versions' types
  // of a retyped column.
  const core::Relation* before = previous != nullptr ? &previous->relation : nullptr;
  auto previous_column = [&](const std::string& name) -> const core::Column* {
    if (before == nullptr) return nullptr;
    for (const core::Column& column : before->columns) {
      if (column.name == name) return &column;
    }
    return nullptr;
  };
  std::vector<std::pair<const core::Column*, std::shared_ptr<std::vector<pg::Row>>>> lookups;
  auto look_up = [&](const core::Relation& version, const core::Column& column) -> core::Status {
    SLUICE_ASSIGN_OR_RETURN(auto params, TargetTypeLookup(version, column));
    lookups.emplace_back(&column, std::make_shared<std::vector<pg::Row>>());
    return pipeline_.SendCommand(kTargetTypeSql,
                                 "looking up the type of " + table + "." +
                                     pg::QuoteIdentifier(column.name) + " on the target",
                                 params, lookups.back().second);
  };
  for (size_t i : missing) {
    core::Status status = look_up(relation, relation.columns[i]);
    if (status.code() == core::StatusCode::kUnsupported) {
      return stop(status.message() + " (it is new in the source's table since " + at +
                  "), then restart sluice");
    }
    SLUICE_RETURN_IF_ERROR(status);
  }
  for (size_t i : retyped) {
    const core::Column* old_column = previous_column(relation.columns[i].name);
    // A type that cannot be named cannot be compared: the target's own type stays.
    if (old_column == nullptr || !TargetTypeLookup(relation, relation.columns[i]).ok() ||
        !TargetTypeLookup(*before, *old_column).ok()) {
      continue;
    }
    SLUICE_RETURN_IF_ERROR(look_up(relation, relation.columns[i]));
    SLUICE_RETURN_IF_ERROR(look_up(*before, *old_column));
  }
  SLUICE_RETURN_IF_ERROR(pipeline_.SyncAndDrain());
  auto type_of = [&](const core::Column& column) -> std::optional<TargetType> {
    for (const auto& [looked_up, rows] : lookups) {
      if (looked_up == &column) return TargetTypeOf(column, *rows);
    }
    return std::nullopt;
  };

  std::vector<std::string> findings;  // what changed that the target must follow
  std::vector<std::string> ddl;       // and how
  std::vector<std::string> renamed_to;
  for (const RelationDiff::Rename& rename : diff.renamed) {
    if (on_target(rename.to) || !on_target(rename.from)) continue;  // followed, or nothing to do
    findings.push_back("column " + pg::QuoteIdentifier(rename.from) + " was renamed to " +
                       pg::QuoteIdentifier(rename.to));
    ddl.push_back(RenameColumnSql(relation, rename.from, rename.to));
    renamed_to.push_back(rename.to);
  }
  for (size_t i : retyped) {
    const core::Column& column = relation.columns[i];
    const core::Column* old_column = previous_column(column.name);
    const std::optional<TargetType> now = type_of(column);
    const std::optional<TargetType> then = old_column ? type_of(*old_column) : std::nullopt;
    if (!now || !then) continue;
    const std::string& declared = FindTargetColumn(target_columns, column.name)->declared_type;
    if (now->exists && declared == now->formatted) continue;  // the target has it already
    if (!then->exists || declared != then->formatted) {
      spdlog::warn(
          "pipeline {}: source column {}.{} changed its type to {} at source LSN {}; the target "
          "column has a type of its own ({}), kept: the target casts the values to it",
          options_.pipeline, table, pg::QuoteIdentifier(column.name), now->sql,
          sighting.lsn.ToString(), declared);
      continue;
    }
    findings.push_back("column " + pg::QuoteIdentifier(column.name) + " changed its type from " +
                       declared + " to " + now->sql +
                       (now->exists ? "" : " (a type the target does not have yet: create it)"));
    ddl.push_back(AlterColumnTypeSql(relation, column.name, now->sql));
  }
  std::vector<size_t> added;  // columns the target lacks that are not renames
  bool types_missing = false;
  std::vector<std::string> add_ddl;
  std::vector<std::string> added_names;
  for (size_t i : missing) {
    const core::Column& column = relation.columns[i];
    if (std::find(renamed_to.begin(), renamed_to.end(), column.name) != renamed_to.end()) {
      continue;
    }
    const std::optional<TargetType> type = type_of(column);
    if (!type || (!type->exists && type->sql.empty())) {
      return stop("source column " + table + "." + pg::QuoteIdentifier(column.name) +
                  " (new since " + at + ") has built-in type OID " +
                  std::to_string(column.type_oid) +
                  " of the source's PostgreSQL, which the target's PostgreSQL does not have; "
                  "add the column on the target with a type that takes its values, then restart "
                  "sluice");
    }
    if (!type->exists) types_missing = true;
    added.push_back(i);
    added_names.push_back(column.name);
    add_ddl.push_back(AddColumnSql(relation, column.name, type->sql));
  }
  const std::string restart =
      " then restart sluice: it continues from the last source transaction it applied before "
      "the change, and nothing is lost";
  std::string absent_types;  // of new columns, that the target lacks
  if (types_missing) {
    std::vector<std::string> names;
    for (size_t i : added) {
      const std::optional<TargetType> type = type_of(relation.columns[i]);
      if (!type->exists) names.push_back(type->sql);
    }
    for (size_t k = 0; k < names.size(); ++k) {
      const std::string& name = names[k];
      const auto here = names.begin() + static_cast<std::ptrdiff_t>(k);
      const bool listed = std::find(names.begin(), here, name) != here;
      // An array type ("_mood") comes with its element type: name only that one.
      const size_t dot = name.rfind(".\"_");
      const bool array_of_listed =
          dot != std::string::npos &&
          std::find(names.begin(), names.end(),
                    name.substr(0, dot) + ".\"" + name.substr(dot + 3)) != names.end();
      if (listed || array_of_listed) continue;
      absent_types += (absent_types.empty() ? "" : ", ") + name;
    }
  }
  const std::string missing_types = types_missing
                                        ? " (the target has no type " + absent_types +
                                              ": create it there first, as the source defines it)"
                                        : "";

  if (!findings.empty()) {
    for (size_t k = 0; k < added.size(); ++k) {
      findings.push_back("column " + pg::QuoteIdentifier(added_names[k]) + " is new");
    }
    ddl.insert(ddl.end(), add_ddl.begin(), add_ddl.end());
    std::string alternative;
    if (diff.renames_may_be_drop_and_add && !renamed_to.empty()) {
      std::vector<std::string> instead;
      for (const std::string& name : renamed_to) {
        for (size_t i = 0; i < relation.columns.size(); ++i) {
          const core::Column& column = relation.columns[i];
          if (column.name != name) continue;
          const std::optional<TargetType> type = type_of(column);
          if (type && !type->sql.empty())
            instead.push_back(AddColumnSql(relation, name, type->sql));
        }
      }
      if (!instead.empty()) {
        alternative =
            " (if the source dropped a column and added a new one instead of "
            "renaming, run " +
            Statements(instead) + " in place of the RENAME)";
      }
    }
    std::string then = restart;
    const bool written_before_in_transaction = previous != nullptr &&
                                               previous->last_used_in.valid() &&
                                               previous->last_used_in == sighting.commit_lsn;
    if (!renamed_to.empty() && written_before_in_transaction) {
      // Those rows need the old name, which the target will not have any more.
      then = " then copy the table again (sluice snapshot --pipeline " + options_.pipeline +
             " --tables " + table +
             ") and restart sluice: the change came inside the source "
             "transaction that commits at " +
             sighting.commit_lsn.ToString() +
             ", after rows of the table written under the old names, which a restart would "
             "apply again";
    }
    std::string message = "source table " + table + " changed (first change at " + at + "): ";
    for (size_t k = 0; k < findings.size(); ++k) message += (k ? "; " : "") + findings[k];
    return stop_before(message +
                       "; sluice does not rename or retype target columns: run on the "
                       "target " +
                       Statements(ddl) + then + alternative + missing_types);
  }
  if (added.empty()) return core::Status::Ok();

  const std::vector<std::string> unsent = UnsentWritableColumns(relation, target_columns);
  if (options_.schema_changes != SchemaChangePolicy::kAddColumns || !in_batch_) {
    std::string hint;
    if (!unsent.empty()) {
      hint = " (if one of them is a column the target has under an older name, " +
             QuotedNames(unsent) + ", rename that one instead: ALTER TABLE " +
             pg::QuoteQualifiedName(relation.schema, relation.name) + " RENAME COLUMN ... TO ...;)";
    }
    return stop("source table " + table + " has " +
                (added.size() == 1 ? "a new column " : "new columns ") + QuotedNames(added_names) +
                " (first change at " + at + ") that target table " + table + " lacks, and " +
                (options_.schema_changes == SchemaChangePolicy::kStop
                     ? "target.postgres.schema_changes is stop"
                     : "sluice adds columns only while it applies a batch") +
                ": run on the target " + Statements(add_ddl) + restart + missing_types + hint +
                " (with schema_changes: add_columns sluice adds such columns itself)");
  }
  if (previous == nullptr && !unsent.empty()) {
    // Without the previous version, a rename looks just like this.
    return stop(
        "source table " + table + " has " + (added.size() == 1 ? "a column " : "columns ") +
        QuotedNames(added_names) + " (first change at " + at + ") that target table " + table +
        " lacks, while the target has " + QuotedNames(unsent) +
        ", which the source does not send; sluice has not seen this table's earlier version "
        "since it started, so it cannot tell new columns from renamed ones: run on the target "
        "either " +
        Statements(add_ddl) + " (new columns) or ALTER TABLE " +
        pg::QuoteQualifiedName(relation.schema, relation.name) +
        " RENAME COLUMN <old> TO <new>; (renamed ones)," + restart);
  }
  if (types_missing) {
    return stop(
        "source table " + table + " has " + (added.size() == 1 ? "a new column " : "new columns ") +
        QuotedNames(added_names) + " (first change at " + at +
        ") of a type the target does not have: create " + absent_types +
        " on the target as the source defines it, then restart sluice: "
        "it adds " +
        (added.size() == 1 ? "the column" : "the columns") + " itself (" + Statements(add_ddl) +
        ") and continues from the last source transaction it applied before the change, "
        "and nothing is lost");
  }
  for (const std::string& statement : add_ddl) {
    SLUICE_RETURN_IF_ERROR(pipeline_.SendCommand(
        statement,
        "adding a column to target table " + table + " (new on the source at " + at + ")"));
  }
  auto rows = std::make_shared<std::vector<pg::Row>>();
  SLUICE_RETURN_IF_ERROR(pipeline_.SendCommand(kTargetColumnsSql,
                                               "looking up target table " + table,
                                               {relation.schema, relation.name}, rows));
  SLUICE_RETURN_IF_ERROR(pipeline_.SyncAndDrain());
  target_columns = ParseTargetColumns(*rows);
  for (const std::string& statement : add_ddl) {
    spdlog::info(
        "pipeline {}: {} (new on the source at {}), in the target transaction of its "
        "first row",
        options_.pipeline, statement, at);
  }
  return core::Status::Ok();
}

core::Status PostgresSink::CheckRelation(const core::Relation& relation) {
  SLUICE_RETURN_IF_ERROR(pipeline_.RequireConnection("checking " + relation.QualifiedName()));
  if (in_batch_ && !pipeline_.error().ok()) return pipeline_.error();
  core::Status status =
      CheckRelations({Sighting{std::make_shared<const core::Relation>(relation), {}, {}}});
  // Outside a batch the sync ended the implicit transaction: nothing stays failed.
  if (!in_batch_ && pipeline_.connected()) pipeline_.ClearError();
  return status;
}

// --- Batches ----------------------------------------------------------------------------------

core::Status PostgresSink::BeginBatch() {
  SLUICE_RETURN_IF_ERROR(pipeline_.RequireConnection("BeginBatch"));
  if (in_batch_) return core::Internal("BeginBatch while a batch is open (AbortBatch first)");
  pipeline_.ClearError();
  not_found_warnings_in_batch_ = 0;
  retained_.clear();
  retained_bytes_ = 0;
  retained_complete_ = true;
  coalesce_in_batch_ = options_.coalesce;
  multi_row_in_batch_ = false;
  compactor_.Clear();
  batch_last_end_.reset();
  replaced_in_batch_.clear();
  SLUICE_RETURN_IF_ERROR(pipeline_.SendCommand("BEGIN", "BEGIN"));
  in_batch_ = true;
  return core::Status::Ok();
}

core::Status PostgresSink::SendRow(const core::Change& change, core::Lsn fallback_lsn,
                                   const RowShape& shape, const std::string& cache_key) {
  auto it = prepared_.find(cache_key);
  ChangeContext context = ContextOf(change, change, 1, fallback_lsn);
  if (it == prepared_.end()) {
    SLUICE_ASSIGN_OR_RETURN(RowStatement statement, BuildRowStatement(*change.relation, shape,
                                                                      TargetFor(*change.relation)));
    Prepared prepared;
    prepared.name = "s" + std::to_string(next_statement_++);
    if (!statement.sql.empty()) {
      SLUICE_RETURN_IF_ERROR(pipeline_.SendPrepare(prepared.name, statement.sql,
                                                   static_cast<int>(statement.params.size()),
                                                   context, cache_key));
      ++stats_.statements_prepared;
    } else {
      prepared.confirmed = true;  // nothing to prepare
    }
    prepared.statement = std::move(statement);
    it = prepared_.emplace(cache_key, std::move(prepared)).first;
  }
  const Prepared& prepared = it->second;
  if (prepared.statement.sql.empty()) return core::Status::Ok();  // an update that sets nothing

  const auto& params = prepared.statement.params;
  param_values_.resize(params.size());
  const char** values = param_values_.data();
  uint64_t bytes = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const core::Tuple& tuple =
        params[i].side == ParamSource::Side::kNew ? change.new_tuple : change.old_tuple;
    const core::Value& value = tuple[params[i].column];
    values[i] = value.kind == core::Value::Kind::kText ? value.data.c_str() : nullptr;
    bytes += value.data.size();
  }
  SLUICE_RETURN_IF_ERROR(pipeline_.SendPrepared(
      prepared.name, values, static_cast<int>(params.size()), bytes, std::move(context)));
  if (sending_compacted_) multi_row_in_batch_ = true;
  return pipeline_.AfterSend();
}

core::Status PostgresSink::SendMultiRow(const core::Change* const* changes, size_t rows,
                                        core::Lsn fallback_lsn) {
  const core::Change& first = *changes[0];
  // What an error on this run's prepare or execute names: its first and last row.
  ChangeContext context = ContextOf(first, *changes[rows - 1], rows, fallback_lsn);
  std::string cache_key = run_.cache_key;
  cache_key += '#';
  cache_key += std::to_string(rows);
  auto it = prepared_.find(cache_key);
  if (it == prepared_.end()) {
    SLUICE_ASSIGN_OR_RETURN(
        RowStatement statement,
        BuildMultiRowStatement(*first.relation, run_.shape, rows, TargetFor(*first.relation)));
    Prepared prepared;
    prepared.name = "s" + std::to_string(next_statement_++);
    SLUICE_RETURN_IF_ERROR(pipeline_.SendPrepare(prepared.name, statement.sql,
                                                 static_cast<int>(statement.params.size() * rows),
                                                 context, cache_key));
    ++stats_.multi_row_statements_prepared;
    prepared.statement = std::move(statement);
    it = prepared_.emplace(std::move(cache_key), std::move(prepared)).first;
  }
  const Prepared& prepared = it->second;
  const auto& params = prepared.statement.params;
  param_values_.resize(params.size() * rows);
  const char** values = param_values_.data();
  uint64_t bytes = 0;
  for (size_t r = 0; r < rows; ++r) {
    const core::Change& change = *changes[r];
    for (const ParamSource& param : params) {
      const core::Tuple& tuple =
          param.side == ParamSource::Side::kNew ? change.new_tuple : change.old_tuple;
      const core::Value& value = tuple[param.column];
      *values++ = value.kind == core::Value::Kind::kText ? value.data.c_str() : nullptr;
      bytes += value.data.size();
    }
  }
  SLUICE_RETURN_IF_ERROR(pipeline_.SendPrepared(prepared.name, param_values_.data(),
                                                static_cast<int>(param_values_.size()), bytes,
                                                std::move(context)));
  ++stats_.multi_row_statements_sent;
  multi_row_in_batch_ = true;
  return pipeline_.AfterSend();
}

core::Status PostgresSink::FlushRun(core::Lsn fallback_lsn) {
  const size_t total = run_.changes.size();
  size_t done = 0;
  core::Status status;
  while (status.ok() && done < total) {
    const size_t remaining = total - done;
    size_t rows = 1;
    for (size_t bucket : kRowBuckets) {
      if (bucket <= remaining) {
        rows = bucket;
        break;
      }
    }
    if (rows == 1) {
      status = SendRow(*run_.changes[done], fallback_lsn, run_.shape, run_.cache_key);
    } else {
      status = SendMultiRow(run_.changes.data() + done, rows, fallback_lsn);
    }
    done += rows;
  }
  run_.changes.clear();
  run_.keys.clear();
  return status;
}

namespace {
// Rows one multi-row statement of `change`'s kind may hold: the bucket cap, and the protocol's
// parameter limit.
size_t RunCap(const core::Change& change) {
  const size_t width = change.relation->columns.size();
  if (change.op == Operation::kInsert) {
    return std::min(kMaxInsertRows, kMaxParams / std::max<size_t>(1, width));
  }
  return std::min(kMaxLocatingRows, kMaxParams / std::max<size_t>(1, width + 1));
}
}  // namespace

core::Status PostgresSink::FlushCompacted(core::Lsn fallback_lsn) {
  if (!run_.changes.empty()) SLUICE_RETURN_IF_ERROR(FlushRun(fallback_lsn));
  if (compactor_.empty()) return core::Status::Ok();
  sending_compacted_ = true;
  core::Status status = compactor_.Drain(
      [&](const std::vector<const core::Change*>& group) { return SendCompactedGroup(group); });
  sending_compacted_ = false;
  return status;
}

namespace {
// COPY text format: tab-separated columns, \N for NULL, backslash escapes. An insert holds only
// text and NULL values (ShapeOf refused the rest before the change was absorbed). Whenever `out`
// reaches `chunk` bytes, also inside a value, `put` sends and empties it, so a huge value is
// never held here whole; false from `put` stops the row.
bool AppendCopyRow(const core::Tuple& tuple, std::string& out, size_t chunk,
                   const std::function<bool()>& put) {
  for (size_t i = 0; i < tuple.size(); ++i) {
    if (i > 0) out += '\t';
    const core::Value& value = tuple[i];
    if (value.kind != core::Value::Kind::kText) {
      out += "\\N";
      continue;
    }
    const std::string_view text = value.data;
    for (size_t from = 0; from < text.size(); from += chunk) {
      codec::AppendCopyTextEscaped(text.substr(from, chunk), out);
      if (out.size() >= chunk && !put()) return false;
    }
  }
  out += '\n';
  return true;
}
}  // namespace

core::Status PostgresSink::CopyInserts(const std::vector<const core::Change*>& group) {
  const core::Change& first = *group.front();
  const core::Relation& relation = *first.relation;
  const std::string name = relation.QualifiedName();
  const ChangeContext context = ContextOf(first, *group.back(), group.size(), core::Lsn());
  const std::string copy = context.Failure(ChangeContext::Step::kCopy);
  SLUICE_RETURN_IF_ERROR(pipeline_.Leave());
  PGconn* raw = pipeline_.connection().raw();
  std::string columns;
  for (const core::Column& column : relation.columns) {
    columns += (columns.empty() ? "" : ", ") + pg::QuoteIdentifier(column.name);
  }
  const std::string sql = "COPY " + pg::QuoteQualifiedName(relation.schema, relation.name) + " (" +
                          columns + ") FROM STDIN";
  core::Status status;
  pg::ResultPtr started(PQexec(raw, sql.c_str()));
  if (PQresultStatus(started.get()) != PGRES_COPY_IN) {
    status = pg::StatusForSqlState(
        pg::ResultSqlState(started.get()),
        "starting " +
            context.Message(ChangeContext::Step::kCopy, pg::ServerErrorText(started.get(), raw)));
  } else {
    // Sent in pieces of about kChunk (COPY data need not end at a row's end): libpq's output
    // buffer grows to the largest piece and keeps that size.
    constexpr size_t kChunk = size_t{256} * 1024;
    std::string buffer;
    buffer.reserve(3 * kChunk);  // a piece, plus the escapes of one slice of a value
    const std::function<bool()> put = [&] {
      const bool ok = PQputCopyData(raw, buffer.data(), static_cast<int>(buffer.size())) == 1;
      buffer.clear();
      return ok;
    };
    bool sent = true;
    for (const core::Change* change : group) {
      if (!(sent = AppendCopyRow(change->new_tuple, buffer, kChunk, put))) break;
    }
    if (sent && !buffer.empty()) sent = put();
    if (!sent || PQputCopyEnd(raw, nullptr) != 1) return pipeline_.ConnectionLost(copy);
    while (PGresult* next = PQgetResult(raw)) {
      pg::ResultPtr result(next);
      if (PQresultStatus(next) == PGRES_COMMAND_OK || !status.ok()) continue;
      const std::string sqlstate = pg::ResultSqlState(next);
      if (sqlstate.empty()) return pipeline_.ConnectionLost(copy, next);
      status = pg::StatusForSqlState(
          sqlstate, context.Message(ChangeContext::Step::kCopy, pg::ServerErrorText(next, raw)));
      if (sqlstate == "23505" && HasUsableKey(relation)) {
        // A key the stream inserts exists already: the target does not follow the source
        // alone. Upserts from now on; the pipeline applies the batch again. (A keyless table
        // cannot upsert: a unique index of the target's own is a permanent conflict.)
        upsert_only_.insert(relation.oid);
        ++stats_.copy_key_conflicts;
        spdlog::warn(
            "pipeline {}: {}; {} gets upserts from now on, and the batch is applied "
            "again",
            options_.pipeline, status.message(), name);
        status = core::Unavailable(status.message() + " (applying the batch again with upserts)");
      }
    }
  }
  if (core::Status entered = pipeline_.Enter(); !entered.ok()) {
    DropConnection();
    return core::Unavailable(entered.message());
  }
  if (!status.ok()) {
    pipeline_.RecordError(status, &context);  // a replay names the row
    return status;
  }
  ++stats_.copies;
  stats_.rows_applied += group.size();
  multi_row_in_batch_ = true;
  return core::Status::Ok();
}

core::Status PostgresSink::SendCompactedGroup(const std::vector<const core::Change*>& group) {
  const core::Change& first = *group.front();
  if (first.op == Operation::kInsert && group.size() >= kMinCopyRows &&
      !upsert_only_.contains(first.relation->oid)) {
    return CopyInserts(group);
  }
  SLUICE_ASSIGN_OR_RETURN(RowShape shape,
                          ShapeOf(*group.front(), TargetFor(*group.front()->relation)));
  std::string cache_key = ShapeCacheKey(group.front()->relation->id(), shape);
  if (!CanCoalesce(*group.front()->relation, shape)) {
    for (const core::Change* change : group) {
      SLUICE_RETURN_IF_ERROR(SendRow(*change, core::Lsn(), shape, cache_key));
    }
    return core::Status::Ok();
  }
  const size_t cap = RunCap(*group.front());
  run_.cache_key = std::move(cache_key);
  run_.shape = std::move(shape);
  run_.distinct_keys = false;  // the compactor's groups hold every row once
  for (size_t done = 0; done < group.size(); done += cap) {
    const size_t rows = std::min(cap, group.size() - done);
    run_.changes.assign(group.begin() + static_cast<std::ptrdiff_t>(done),
                        group.begin() + static_cast<std::ptrdiff_t>(done + rows));
    SLUICE_RETURN_IF_ERROR(FlushRun(core::Lsn()));
  }
  return core::Status::Ok();
}

core::Status PostgresSink::SendChanges(const core::Transaction& fragment, bool coalesce,
                                       core::Transaction* movable) {
  run_.changes.clear();
  run_.keys.clear();
  const core::Lsn fallback_lsn = fragment.commit_lsn;
  sending_xid_ = fragment.xid;
  sending_commit_lsn_ = fragment.commit_lsn;
  for (size_t index = 0; index < fragment.changes.size(); ++index) {
    const core::Change& change = fragment.changes[index];
    core::Status status;
    switch (change.op) {
      case Operation::kInsert:
      case Operation::kUpdate:
      case Operation::kDelete: {
        SLUICE_ASSIGN_OR_RETURN(RowShape shape, ShapeOf(change, TargetFor(*change.relation)));
        if (coalesce) {
          const CompactionMode mode = CompactionModeFor(*change.relation);
          const bool absorbed =
              movable ? compactor_.Add(std::move(movable->changes[index]), mode, fallback_lsn)
                      : compactor_.Add(change, mode, fallback_lsn);
          if (absorbed) {  // (and `change` may be gone now)
            ++stats_.changes_compacted;
            if (compactor_.bytes() >= kMaxCompactedBytes) status = FlushCompacted(fallback_lsn);
            break;
          }
          // Not absorbed: it keeps its place after everything held.
          if (!compactor_.empty()) status = FlushCompacted(fallback_lsn);
          if (!status.ok()) break;
        }
        std::string cache_key = ShapeCacheKey(change.relation->id(), shape);
        if (!coalesce || !CanCoalesce(*change.relation, shape)) {
          if (!run_.changes.empty()) status = FlushRun(fallback_lsn);
          if (status.ok()) status = SendRow(change, fallback_lsn, shape, cache_key);
          break;
        }
        if (!run_.changes.empty() && run_.cache_key != cache_key) status = FlushRun(fallback_lsn);
        if (!status.ok()) break;
        if (run_.changes.empty()) {
          run_.cache_key = std::move(cache_key);
          run_.distinct_keys = NeedsDistinctKeys(*change.relation, shape);
          run_.shape = std::move(shape);
        }
        if (run_.distinct_keys) {
          key_scratch_.clear();
          AppendRowKey(change, key_scratch_);
          if (run_.keys.contains(key_scratch_)) {
            // The same row again: it must follow the statement holding its earlier change.
            std::string kept_key = run_.cache_key;
            RowShape kept_shape = run_.shape;
            status = FlushRun(fallback_lsn);
            if (!status.ok()) break;
            run_.cache_key = std::move(kept_key);
            run_.shape = std::move(kept_shape);
          }
          run_.keys.insert(key_scratch_);
        }
        run_.changes.push_back(&change);
        if (run_.changes.size() >= RunCap(change)) status = FlushRun(fallback_lsn);
        break;
      }
      case Operation::kTruncate: {
        if (coalesce && !compactor_.empty()) status = FlushCompacted(fallback_lsn);
        if (status.ok() && !run_.changes.empty()) status = FlushRun(fallback_lsn);
        if (!status.ok() || change.truncated.empty()) break;
        ChangeContext context;
        context.op = Operation::kTruncate;
        for (const auto& r : change.truncated) {
          context.tables += (context.tables.empty() ? "" : ", ") + r->QualifiedName();
        }
        context.lsn = change.lsn.valid() ? change.lsn : fallback_lsn;
        context.xid = sending_xid_;
        context.commit_lsn = sending_commit_lsn_;
        status = CheckTruncateBlockers(change, context.lsn);
        if (!status.ok()) break;
        status = pipeline_.SendChangeCommand(BuildTruncate(change), std::move(context));
        break;
      }
      case Operation::kMessage:
        break;  // logical messages have no target effect
    }
    if (!status.ok()) {
      run_.changes.clear();
      run_.keys.clear();
      return status;
    }
  }
  if (!run_.changes.empty()) SLUICE_RETURN_IF_ERROR(FlushRun(fallback_lsn));
  return pipeline_.error();
}

core::Status PostgresSink::CheckTruncateBlockers(const core::Change& change, core::Lsn lsn) {
  std::vector<std::string> schemas;
  std::vector<std::string> names;
  std::string listed;
  for (const auto& relation : change.truncated) {
    schemas.push_back(relation->schema);
    names.push_back(relation->name);
    listed += (listed.empty() ? "" : ", ") + relation->QualifiedName();
  }
  auto rows = std::make_shared<std::vector<pg::Row>>();
  SLUICE_RETURN_IF_ERROR(pipeline_.SendCommand(
      kTruncateBlockersSql, "looking up the target's foreign keys to " + listed,
      {TextArrayLiteral(schemas), TextArrayLiteral(names)}, rows));
  SLUICE_RETURN_IF_ERROR(pipeline_.SyncAndDrain());
  if (rows->empty()) return core::Status::Ok();
  std::string keys;
  for (const pg::Row& row : *rows) {
    if (row.size() < 3) continue;
    keys += (keys.empty() ? "" : "; ") + std::string("target table ") + row[0].value_or("?") +
            " references " + row[1].value_or("?") + " (foreign key " + row[2].value_or("?") + ")";
  }
  return core::FailedPrecondition(
      "truncate of " + listed + " at source LSN " + lsn.ToString() + " cannot be applied: " + keys +
      ", and the source did not truncate the referencing table (or does not replicate it). "
      "sluice truncates exactly the tables the source truncated, never with CASCADE, so the "
      "target refuses; drop that foreign key on the target, or replicate the referencing table "
      "as well (a source TRUNCATE ... CASCADE then truncates it too)");
}

void PostgresSink::Retain(const core::Transaction& fragment) {
  if (!retained_complete_) return;
  size_t bytes = 0;
  for (const auto& change : fragment.changes) bytes += change.ApproximateBytes();
  if (retained_bytes_ + bytes > kMaxRetainedBytes) {
    retained_.clear();
    retained_.shrink_to_fit();
    retained_complete_ = false;
    return;
  }
  retained_bytes_ += bytes;
  retained_.push_back(fragment);
}

core::Status PostgresSink::ReplayRowByRow(core::Status error) {
  if (!ErrorNeedsReplay() || error.retryable() || !retained_complete_ || !pipeline_.connected() ||
      !coalesce_in_batch_) {
    return error;
  }
  // Let the pipeline finish (everything after the error fails), then start over.
  (void)pipeline_.SyncAndDrain();
  if (!pipeline_.connected()) return error;
  spdlog::info(
      "pipeline {}: a multi-row statement failed ({}); re-applying the batch one row "
      "per statement to find the row",
      options_.pipeline, error.message());
  ++stats_.row_by_row_replays;
  pipeline_.ClearError();
  coalesce_in_batch_ = false;
  std::erase_if(prepared_, [](const auto& entry) { return !entry.second.confirmed; });
  core::Status status = pipeline_.SendCommand("ROLLBACK", "ROLLBACK");
  if (status.ok()) status = pipeline_.SendCommand("BEGIN", "BEGIN");
  if (status.ok()) status = pipeline_.SyncAndDrain();
  if (!status.ok()) return status;
  not_found_warnings_in_batch_ = 0;
  compactor_.Clear();
  // Columns the batch added went with the rollback: the checks add them again, in order.
  RestoreReplacedVersions();
  std::vector<core::Transaction> retained = std::move(retained_);
  retained_.clear();
  retained_complete_ = false;  // not needed any more: the batch goes on row by row
  for (const auto& fragment : retained) {
    status = CheckFragment(fragment, nullptr);
    if (status.ok()) status = SendChanges(fragment, /*coalesce=*/false);
    if (!status.ok()) break;
  }
  if (status.ok()) status = pipeline_.SyncAndDrain();
  if (!status.ok()) {
    pipeline_.RecordError(status);
    return status;
  }
  spdlog::warn(
      "pipeline {}: the batch applied row by row although a multi-row statement had "
      "failed ({}); continuing row by row",
      options_.pipeline, error.message());
  return core::Status::Ok();
}

core::Status PostgresSink::Apply(const core::Transaction& fragment) {
  return ApplyFragment(fragment, nullptr);
}

core::Status PostgresSink::Apply(core::Transaction&& fragment) {
  return ApplyFragment(fragment, &fragment);
}

core::Status PostgresSink::ApplyFragment(const core::Transaction& fragment,
                                         core::Transaction* movable) {
  SLUICE_RETURN_IF_ERROR(pipeline_.RequireConnection("Apply"));
  if (!in_batch_) return core::Internal("Apply outside a batch (BeginBatch first)");
  if (!pipeline_.error().ok()) return pipeline_.error();

  if (pending_schema_stop_ && fragment.is_first_fragment() &&
      fragment.commit_lsn == pending_schema_stop_->commit_lsn) {
    core::Status stop = std::move(pending_schema_stop_->status);
    pending_schema_stop_.reset();
    stop = StopBeforeTransaction(fragment, std::move(stop));
    pipeline_.RecordError(stop);
    return stop;
  }
  bool schema_stop = false;
  core::Status checked = CheckFragment(fragment, &schema_stop);
  if (!checked.ok()) {
    if (schema_stop && pipeline_.error().ok()) {
      checked = StopBeforeTransaction(fragment, std::move(checked));
    }
    pipeline_.RecordError(checked);
    return checked;
  }

  if (coalesce_in_batch_) Retain(fragment);
  last_fragment_lsn_ = fragment.commit_lsn;
  core::Status status = SendChanges(fragment, coalesce_in_batch_, movable);
  if (status.ok() && HoldsEnoughToSendEarly()) {
    // The stream is busy (more is queued), but the target may have finished what it was sent
    // and be waiting: give it the held changes rather than let it idle until the commit.
    status = pipeline_.Pump(/*wait=*/false, /*max_pending=*/0);
    if (status.ok() && pipeline_.syncs_in_flight() == 0) status = SendHeldEarly();
  }
  status = SettleSend(status);
  if (status.ok() && fragment.last_fragment && fragment.end_lsn.valid()) {
    batch_last_end_ = AppliedPosition{fragment.end_lsn, fragment.commit_time};
  }
  return status;
}

core::Status PostgresSink::CheckFragment(const core::Transaction& fragment, bool* schema_stop) {
  std::vector<Sighting> unchecked;
  auto consider = [&](const core::RelationPtr& relation, core::Lsn lsn) {
    if (relation == nullptr) return;
    for (const Sighting& sighting : unchecked) {
      if (sighting.relation->id() == relation->id()) return;
    }
    if (NeedsCheck(*relation, fragment.commit_lsn)) {
      unchecked.push_back({relation, lsn.valid() ? lsn : fragment.commit_lsn, fragment.commit_lsn});
    }
  };
  std::optional<core::RelationId> last_seen;
  for (const auto& change : fragment.changes) {
    if (change.relation != nullptr && change.relation->id() != last_seen) {  // runs of a table
      consider(change.relation, change.lsn);
      last_seen = change.relation->id();
    }
    for (const auto& truncated : change.truncated) consider(truncated, change.lsn);
  }
  if (unchecked.empty()) return core::Status::Ok();
  const bool new_version = std::any_of(unchecked.begin(), unchecked.end(), [&](const Sighting& s) {
    return checked_.contains(s.relation->oid);
  });
  if (new_version && !compactor_.empty()) {
    // Changes held for a table's previous version go out under it, before the new version
    // replaces what the sink knows of the target table.
    core::Status status = FlushCompacted(last_fragment_lsn_);
    if (status.ok()) status = pipeline_.SyncAndDrain();
    if (!status.ok()) return SettleSend(status);
  }
  // One check per shape of a table (pgoutput may describe a table again, unchanged). Shapes of
  // one table that differ (ALTER TABLE inside the transaction) are checked one after the other,
  // in stream order, each against the target as the one before left it.
  while (!unchecked.empty()) {
    std::vector<Sighting> round;
    std::vector<Sighting> later;
    for (Sighting& sighting : unchecked) {
      auto same_table = std::find_if(round.begin(), round.end(), [&](const Sighting& r) {
        return r.relation->oid == sighting.relation->oid;
      });
      if (same_table == round.end()) {
        round.push_back(std::move(sighting));
      } else if (!SameShape(*same_table->relation, *sighting.relation)) {
        later.push_back(std::move(sighting));
      }
    }
    SLUICE_RETURN_IF_ERROR(CheckRelations(round, schema_stop));
    unchecked.clear();
    for (Sighting& sighting : later) {
      if (NeedsCheck(*sighting.relation, sighting.commit_lsn)) {
        unchecked.push_back(std::move(sighting));
      }
    }
  }
  return core::Status::Ok();
}

core::Status PostgresSink::StopBeforeTransaction(const core::Transaction& fragment,
                                                 core::Status stop) {
  if (!batch_last_end_) return stop;  // the batch holds nothing before the transaction
  if (!fragment.is_first_fragment()) {
    // Part of the transaction is in the batch: fail the batch, and stop at that transaction's
    // start on the next attempt, when the batch before it can be committed.
    pending_schema_stop_ = PendingStop{fragment.commit_lsn, stop};
    return core::Unavailable(stop.message() +
                             " [stopping at the start of the source transaction "
                             "that commits at " +
                             fragment.commit_lsn.ToString() +
                             ": applying the batch again up to "
                             "there]");
  }
  const AppliedPosition before = *batch_last_end_;
  SLUICE_RETURN_IF_ERROR(CommitBatch(before));
  spdlog::info(
      "pipeline {}: committed the batch up to source LSN {}, the transaction before the schema "
      "change the target must follow",
      options_.pipeline, before.end_lsn.ToString());
  return stop;
}

core::Status PostgresSink::SettleSend(core::Status status) {
  if (!status.ok()) status = ReplayRowByRow(status);
  if (!status.ok()) pipeline_.RecordError(status);
  return status;
}

std::vector<SinkCounter> PostgresSink::Counters() const {
  const PostgresSinkStats& s = stats_;
  return {
      {"rows_applied", "Rows written by row statements and COPY on the target.", s.rows_applied},
      {"rows_not_found", "Updates and deletes that found no row on the target (warned).",
       s.rows_not_found},
      {"multi_row_statements", "Statements sent that each carried several rows.",
       s.multi_row_statements_sent},
      {"copies", "COPYs of netted inserts.", s.copies},
      {"changes_compacted", "Row changes held by the compactor to be netted per row.",
       s.changes_compacted},
      {"changes_netted", "Of those, changes no statement was needed for.", s.changes_netted},
      {"early_flushes",
       "Held changes sent before their batch's end (the stream or the target paused).",
       s.early_flushes},
      {"row_by_row_replays", "Batches replayed one row per statement to name a failing change.",
       s.row_by_row_replays},
  };
}

core::Status PostgresSink::StreamPaused() {
  if (!in_batch_ || !pipeline_.error().ok() || !HoldsEnoughToSendEarly()) {
    return core::Status::Ok();
  }
  return SettleSend(SendHeldEarly());
}

bool PostgresSink::HoldsEnoughToSendEarly() const {
  return coalesce_in_batch_ && options_.flush_on_pause_bytes != 0 &&
         compactor_.bytes() >= options_.flush_on_pause_bytes;
}

core::Status PostgresSink::SendHeldEarly() {
  ++stats_.early_flushes;
  SLUICE_RETURN_IF_ERROR(FlushCompacted(last_fragment_lsn_));
  SLUICE_RETURN_IF_ERROR(pipeline_.Sync());
  // Hand what was queued to the server now, and take any results that are ready.
  SLUICE_RETURN_IF_ERROR(pipeline_.Pump(/*wait=*/false, /*max_pending=*/0));
  return pipeline_.error();
}

core::Status PostgresSink::CommitBatch(const AppliedPosition& position) {
  SLUICE_RETURN_IF_ERROR(pipeline_.RequireConnection("CommitBatch"));
  if (!in_batch_) return core::Internal("CommitBatch outside a batch (BeginBatch first)");
  core::Status status = pipeline_.error();
  if (status.ok() && coalesce_in_batch_) status = FlushCompacted(position.end_lsn);
  if (status.ok() && multi_row_in_batch_ && coalesce_in_batch_ && retained_complete_) {
    // Any error of a multi-row statement must show up before COMMIT is queued, so the batch
    // can still be replayed row by row.
    status = pipeline_.SyncAndDrain();
  }
  if (!status.ok()) status = ReplayRowByRow(status);
  if (!status.ok()) {
    pipeline_.RecordError(status);
    return status;
  }

  const std::string lsn = position.end_lsn.ToString();
  const std::optional<std::string> commit_time = CommitTimeText(position.commit_time);
  status = pipeline_.SendCommand(kRecordPositionSql, "recording applied position " + lsn,
                                 {options_.pipeline, lsn, commit_time});
  if (status.ok()) {
    status = pipeline_.SendCommand(kOriginXactSql, "recording origin progress " + lsn,
                                   {lsn, commit_time});
  }
  if (status.ok()) status = pipeline_.SendCommit();
  if (status.ok()) status = pipeline_.SyncAndDrain();
  if (!status.ok()) {
    pipeline_.RecordError(status);
    return status;
  }
  in_batch_ = false;
  retained_.clear();
  retained_bytes_ = 0;
  replaced_in_batch_.clear();
  ++stats_.batches_committed;
  stats_.changes_netted = compactor_.netted();
  if (not_found_warnings_in_batch_ > kNotFoundWarningsPerBatch) {
    spdlog::warn("pipeline {}: {} updates/deletes in the batch up to {} found no row on the target",
                 options_.pipeline, not_found_warnings_in_batch_, lsn);
  }
  return core::Status::Ok();
}

void PostgresSink::AbortBatch() {
  // Not open: the batch was committed up to a schema change (StopBeforeTransaction).
  const bool open = in_batch_;
  if (open) RestoreReplacedVersions();  // the rollback undoes what the batch altered
  in_batch_ = false;
  compactor_.Clear();
  retained_.clear();
  retained_bytes_ = 0;
  if (!pipeline_.connected()) {
    pipeline_.ClearError();
    return;
  }
  // Let everything queued finish (failing), then roll back; any trouble drops the connection,
  // which rolls back just as well (Open() reconnects).
  core::Status status = pipeline_.SyncAndDrain();
  if (pipeline_.connected()) {
    pipeline_.ClearError();
    status = open ? pipeline_.SendCommand("ROLLBACK", "ROLLBACK") : core::Status::Ok();
    if (open && status.ok()) status = pipeline_.SyncAndDrain();
  }
  if (!status.ok() && pipeline_.connected()) {
    spdlog::warn("pipeline {}: ROLLBACK on the target failed ({}); dropping the connection",
                 options_.pipeline, status.ToString());
    DropConnection();
  }
  // Statements whose Parse was skipped or failed do not exist on the server.
  std::erase_if(prepared_, [](const auto& entry) { return !entry.second.confirmed; });
  pipeline_.ClearError();
}

// --- Bulk load --------------------------------------------------------------------------------

core::Status PostgresSink::FinishCopyTarget(const core::TableDefinition& table) {
  const std::string sql = AddPrimaryKeySql(table);
  if (sql.empty()) return core::Status::Ok();
  const core::Relation& relation = table.relation;
  const std::string name = relation.QualifiedName();
  SLUICE_ASSIGN_OR_RETURN(
      std::unique_ptr<pg::Connection> conn,
      pg::Connection::Connect(options_.dsn,
                              {.timeout = options_.connect_timeout,
                               .application_name = "sluice-copy-" + options_.pipeline}));
  // Only a table sluice created, and only once: a user's own table is never altered.
  SLUICE_ASSIGN_OR_RETURN(
      std::vector<pg::Row> state,
      conn->QueryRows("SELECT obj_description(c.oid, 'pg_class') = $3,"
                      " EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND"
                      " i.indisprimary) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
                      " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                      {relation.schema, relation.name, kCreatedBySluice},
                      "looking up target table " + name));
  if (state.empty() || state[0].size() < 2 || state[0][0] != std::optional<std::string>("t") ||
      state[0][1] == std::optional<std::string>("t")) {
    return core::Status::Ok();
  }
  const auto started = std::chrono::steady_clock::now();
  SLUICE_RETURN_IF_ERROR(conn->Exec(sql, "adding the primary key of target table " + name));
  spdlog::info("pipeline {}: built primary key of {} in {:.1f} s", options_.pipeline, name,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return core::Status::Ok();
}

core::Status PostgresSink::PrepareCopyTarget(const core::TableDefinition& table,
                                             bool create_missing, bool truncate_first) {
  const core::Relation& relation = table.relation;
  const std::string name = relation.QualifiedName();
  const std::string qualified = pg::QuoteQualifiedName(relation.schema, relation.name);
  SLUICE_ASSIGN_OR_RETURN(
      std::unique_ptr<pg::Connection> conn,
      pg::Connection::Connect(options_.dsn,
                              {.timeout = options_.connect_timeout,
                               .application_name = "sluice-copy-" + options_.pipeline}));
  const std::string lookup = "looking up target table " + name;
  SLUICE_ASSIGN_OR_RETURN(
      std::vector<pg::Row> columns,
      conn->QueryRows(kTargetColumnsSql, {relation.schema, relation.name}, lookup));
  if (columns.empty()) {
    if (!create_missing) {
      return core::FailedPrecondition("target table " + name +
                                      " does not exist (create it, or set "
                                      "target.postgres.create_tables: true)");
    }
    // CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists.
    SLUICE_ASSIGN_OR_RETURN(
        std::vector<pg::Row> schema,
        conn->QueryRows("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
                        {relation.schema}, "looking up target schema " + relation.schema));
    if (schema.empty()) {
      SLUICE_RETURN_IF_ERROR(
          conn->Exec("CREATE SCHEMA IF NOT EXISTS " + pg::QuoteIdentifier(relation.schema),
                     "creating target schema " + relation.schema));
    }
    SLUICE_ASSIGN_OR_RETURN(std::string create, CreateTableSql(table));
    SLUICE_RETURN_IF_ERROR(conn->Exec(create, "creating target table " + name));
    SLUICE_RETURN_IF_ERROR(conn->Exec("COMMENT ON TABLE " +
                                          pg::QuoteQualifiedName(relation.schema, relation.name) +
                                          " IS '" + kCreatedBySluice + "'",
                                      "marking target table " + name));
    spdlog::info("pipeline {}: created target table {}", options_.pipeline, name);
    SLUICE_ASSIGN_OR_RETURN(
        columns, conn->QueryRows(kTargetColumnsSql, {relation.schema, relation.name}, lookup));
  }
  SLUICE_ASSIGN_OR_RETURN(
      std::vector<pg::Row> fires,
      conn->QueryRows(kTargetFiresSql, {relation.schema, relation.name}, lookup + " (triggers)"));
  const std::vector<TargetColumn> target_columns = ParseTargetColumns(columns);
  SLUICE_RETURN_IF_ERROR(DescribeTargetTable(relation, target_columns, Fires(fires)).status());
  for (const core::GeneratedColumn& generated : table.generated_columns) {
    SLUICE_RETURN_IF_ERROR(CheckSourceGeneratedColumn(relation, generated.name, target_columns));
  }

  if (truncate_first) {
    // Rows of an earlier, interrupted copy by this pipeline: sluice's own to remove.
    if (!options_.session_replication_role.empty()) {  // as the loaders: no user triggers
      SLUICE_RETURN_IF_ERROR(conn->Exec(
          "SET session_replication_role = " + pg::QuoteLiteral(options_.session_replication_role),
          "setting session_replication_role to empty " + name));
    }
    SLUICE_RETURN_IF_ERROR(conn->Exec(
        "TRUNCATE " + qualified,
        "emptying target table " + name + " (left over from an interrupted initial copy)"));
    spdlog::info("pipeline {}: emptied target table {} (an earlier initial copy was interrupted)",
                 options_.pipeline, name);
    return core::Status::Ok();
  }
  SLUICE_ASSIGN_OR_RETURN(std::vector<pg::Row> any,
                          conn->QueryRows("SELECT 1 FROM " + qualified + " LIMIT 1", {},
                                          "checking that target table " + name + " is empty"));
  if (!any.empty()) {
    return core::FailedPrecondition("target table " + name +
                                    " is not empty; the initial copy needs empty tables (or set "
                                    "snapshot: never)");
  }
  return core::Status::Ok();
}

core::Result<std::unique_ptr<BulkLoader>> PostgresSink::OpenBulkLoad(
    const core::Relation& relation) {
  return PostgresBulkLoader::Open({.dsn = options_.dsn,
                                   .application_name = "sluice-bulk-" + options_.pipeline,
                                   .connect_timeout = options_.connect_timeout,
                                   .session_replication_role = options_.session_replication_role},
                                  relation);
}

core::Status PostgresSink::ForgetPosition() {
  SLUICE_ASSIGN_OR_RETURN(
      std::unique_ptr<pg::Connection> conn,
      pg::Connection::Connect(options_.dsn,
                              {.timeout = options_.connect_timeout,
                               .application_name = "sluice-reset-" + options_.pipeline}));
  const std::string what = "forgetting the applied position of pipeline " + options_.pipeline;
  SLUICE_ASSIGN_OR_RETURN(
      std::vector<pg::Row> exists,
      conn->QueryRows("SELECT to_regclass('sluice.applied') IS NOT NULL", {}, what));
  if (exists.empty() || exists[0][0] != std::optional<std::string>("t")) return core::Status::Ok();
  return conn
      ->QueryRows("DELETE FROM sluice.applied WHERE pipeline = $1", {options_.pipeline}, what)
      .status();
}

}  // namespace sluice::apply
