#include "capture/snapshot_copier.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <utility>

#include "pg/quote.h"

namespace sluice::capture {
namespace {

constexpr uint32_t kInt8Oid = 20;
constexpr uint32_t kInt2Oid = 21;
constexpr uint32_t kInt4Oid = 23;

// PostgreSQL's "invalid snapshot identifier" (the exporting transaction has ended).
constexpr char kInvalidSnapshotSqlstate[] = "22023";

std::string QualifiedTable(const core::Relation& relation) {
  return pg::QuoteIdentifier(relation.schema) + "." + pg::QuoteIdentifier(relation.name);
}

std::string ColumnList(const core::Relation& relation) {
  std::string columns;
  for (const auto& column : relation.columns) {
    if (!columns.empty()) columns += ", ";
    columns += pg::QuoteIdentifier(column.name);
  }
  return columns;
}

std::string RangeLabel(const core::TableDefinition& table, const CopyRange& range) {
  std::string label = table.relation.QualifiedName();
  if (range.count > 1) {
    label += " (range " + std::to_string(range.index + 1) + "/" + std::to_string(range.count) +
             ": " + range.description + ")";
  } else if (!range.predicate.empty()) {
    label += " (" + range.description + ")";
  }
  return label;
}

std::string Conjunction(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return "(" + a + ") AND (" + b + ")";
}

bool ParseInt64(const std::string& text, int64_t* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

uint64_t ParseUint64OrZero(const std::optional<std::string>& text) {
  if (!text) return 0;
  int64_t value = 0;
  if (!ParseInt64(*text, &value) || value < 0) return 0;
  return static_cast<uint64_t>(value);
}

}  // namespace

SnapshotCopier::SnapshotCopier(std::unique_ptr<pg::Connection> connection,
                               std::string snapshot_name)
    : connection_(std::move(connection)), snapshot_name_(std::move(snapshot_name)) {}

SnapshotCopier::~SnapshotCopier() = default;

core::Result<std::unique_ptr<SnapshotCopier>> SnapshotCopier::Open(
    const std::string& dsn, const std::string& snapshot_name,
    std::chrono::milliseconds connect_timeout) {
  if (snapshot_name.empty()) {
    return core::InvalidArgument(
        "no exported snapshot to copy from (only a slot created by this run exports one)");
  }
  SLUICE_ASSIGN_OR_RETURN(auto connection,
                          pg::Connection::Connect(dsn, {.timeout = connect_timeout}));
  // Before BEGIN: SET TRANSACTION SNAPSHOT must be the transaction's first statement. These make
  // the COPY text independent of the source's and target's own settings: ISO dates parse the
  // same under every DateStyle, extra_float_digits 3 keeps floats exact.
  SLUICE_RETURN_IF_ERROR(connection->Exec(
      "SET client_encoding = 'UTF8'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
      "SET extra_float_digits = 3; SET bytea_output = 'hex'",
      "setting up the snapshot copy session"));
  SLUICE_RETURN_IF_ERROR(connection->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                                          "starting the snapshot copy transaction"));
  core::Status imported =
      connection->Exec("SET TRANSACTION SNAPSHOT " + pg::QuoteLiteral(snapshot_name),
                       "importing snapshot " + snapshot_name);
  if (!imported.ok()) {
    if (imported.server_code() == kInvalidSnapshotSqlstate) {
      return core::FailedPrecondition("the exported snapshot " + snapshot_name +
                                      " no longer exists (the slot's creating connection moved "
                                      "on): " +
                                      imported.message());
    }
    return imported;
  }
  return std::unique_ptr<SnapshotCopier>(new SnapshotCopier(std::move(connection), snapshot_name));
}

core::Status SnapshotCopier::Usable(const std::string& what) const {
  if (broken_) {
    return core::Internal(what +
                          ": this snapshot copier's transaction ended after a cancelled "
                          "COPY; open a new one");
  }
  return core::Status::Ok();
}

core::Result<std::vector<core::TableDefinition>> SnapshotCopier::DescribeTables(
    const std::string& publication) {
  SLUICE_RETURN_IF_ERROR(Usable("describing publication " + publication));
  const std::string pub = connection_->QuoteLiteralForSql(publication);
  const int version = connection_->server_version();
  const bool has_filters = version >= 150000;  // row filters and column lists

  SLUICE_ASSIGN_OR_RETURN(
      pg::QueryResult exists,
      connection_->Query("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = " + pub,
                         "looking up publication " + publication));
  if (exists.rows.empty()) {
    return core::NotFound("publication " + publication + " does not exist on " +
                          connection_->endpoint());
  }

  const std::string from =
      " FROM pg_catalog.pg_publication_tables pt "
      "JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname "
      "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename ";
  const std::string where = " WHERE pt.pubname = " + pub;
  SLUICE_ASSIGN_OR_RETURN(
      pg::QueryResult tables,
      connection_->Query(
          "SELECT c.oid, n.nspname, c.relname, c.relreplident, c.relkind, "
          "GREATEST(c.reltuples, 0)::int8, "
          "CASE WHEN c.relkind = 'p' THEN (SELECT COALESCE(sum(pg_catalog.pg_table_size(t.relid)), "
          "0)::int8 FROM pg_catalog.pg_partition_tree(c.oid) t) "
          "ELSE pg_catalog.pg_table_size(c.oid) END, " +
              std::string(has_filters ? "pt.rowfilter" : "NULL::text") + from + where +
              " ORDER BY n.nspname, c.relname",
          "listing the tables of publication " + publication));

  std::vector<core::TableDefinition> definitions;
  std::unordered_map<uint32_t, size_t> index_by_oid;
  for (const auto& row : tables.rows) {
    core::TableDefinition def;
    def.relation.oid = static_cast<core::Oid>(ParseUint64OrZero(row[0]));
    def.relation.schema = row[1].value_or("");
    def.relation.name = row[2].value_or("");
    const char identity = row[3] && !row[3]->empty() ? (*row[3])[0] : 'd';
    def.relation.replica_identity = static_cast<core::ReplicaIdentity>(identity);
    def.estimated_rows = ParseUint64OrZero(row[5]);
    def.estimated_bytes = ParseUint64OrZero(row[6]);
    TableExtra extra;
    extra.relkind = row[4] && !row[4]->empty() ? (*row[4])[0] : 'r';
    extra.row_filter = row[7].value_or("");
    extras_[def.relation.oid] = std::move(extra);
    index_by_oid[def.relation.oid] = definitions.size();
    definitions.push_back(std::move(def));
  }
  if (definitions.empty()) return definitions;

  std::string column_filter = " AND a.attnum > 0 AND NOT a.attisdropped";
  if (has_filters) column_filter += " AND (pt.attnames IS NULL OR a.attname = ANY (pt.attnames))";
  // Generated columns (PostgreSQL 12+) come back apart: never copied nor streamed, but a target
  // table sluice creates computes them too.
  const std::string generated =
      version >= 120000 ? ", a.attgenerated::text, pg_catalog.pg_get_expr(d.adbin, d.adrelid)"
                        : ", ''::text, NULL::text";
  SLUICE_ASSIGN_OR_RETURN(
      pg::QueryResult columns,
      connection_->Query("SELECT c.oid, a.attname, a.atttypid, a.atttypmod, "
                         "pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, "
                         "EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid "
                         "AND i.indisprimary AND a.attnum = ANY (i.indkey))" +
                             generated + from +
                             "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
                             "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND "
                             "d.adnum = a.attnum" +
                             where + column_filter + " ORDER BY c.oid, a.attnum",
                         "listing the columns of the tables of publication " + publication));
  for (const auto& row : columns.rows) {
    auto it = index_by_oid.find(static_cast<uint32_t>(ParseUint64OrZero(row[0])));
    if (it == index_by_oid.end()) continue;  // a table created since the first query
    core::TableDefinition& def = definitions[it->second];
    if (row[7] && !row[7]->empty()) {
      core::GeneratedColumn column;
      column.name = row[1].value_or("");
      column.type = row[4].value_or("");
      column.expression = row[8].value_or("");
      column.position = def.relation.columns.size();
      def.generated_columns.push_back(std::move(column));
      continue;
    }
    core::Column column;
    column.name = row[1].value_or("");
    column.type_oid = static_cast<core::Oid>(ParseUint64OrZero(row[2]));
    int64_t typmod = -1;
    if (row[3]) ParseInt64(*row[3], &typmod);
    column.type_modifier = static_cast<int32_t>(typmod);
    column.is_key = row[6] == "t";
    def.relation.columns.push_back(std::move(column));
    def.column_types.push_back(row[4].value_or(""));
    def.not_null.push_back(row[5] == "t");
  }
  for (const auto& def : definitions) {
    if (def.relation.columns.empty()) {
      return core::FailedPrecondition("published table " + def.relation.QualifiedName() +
                                      " has no columns to copy");
    }
  }
  return definitions;
}

core::Result<std::vector<CopyRange>> SnapshotCopier::PlanRanges(const core::TableDefinition& table,
                                                                int pieces,
                                                                uint64_t split_threshold_bytes) {
  const std::string name = table.relation.QualifiedName();
  SLUICE_RETURN_IF_ERROR(Usable("planning the copy of " + name));
  auto extra_it = extras_.find(table.relation.oid);
  if (extra_it == extras_.end()) {
    return core::Internal("planning the copy of " + name +
                          ": the table was not described by this copier (DescribeTables first)");
  }
  const TableExtra& extra = extra_it->second;

  CopyRange whole;
  whole.predicate = extra.row_filter;
  whole.select_form = extra.relkind == 'p';
  if (!extra.row_filter.empty()) whole.description = "publication row filter";
  std::vector<CopyRange> ranges{whole};

  const core::Column* key = nullptr;
  int key_columns = 0;
  for (const auto& column : table.relation.columns) {
    if (column.is_key) {
      ++key_columns;
      key = &column;
    }
  }
  const bool integer_key =
      key_columns == 1 &&
      (key->type_oid == kInt2Oid || key->type_oid == kInt4Oid || key->type_oid == kInt8Oid);
  if (pieces < 2 || !integer_key || table.estimated_bytes <= split_threshold_bytes) return ranges;

  const std::string column = pg::QuoteIdentifier(key->name);
  std::string sql = "SELECT min(" + column + ")::text, max(" + column + ")::text FROM " +
                    std::string(extra.relkind == 'p' ? "" : "ONLY ") +
                    QualifiedTable(table.relation);
  if (!extra.row_filter.empty()) sql += " WHERE " + extra.row_filter;
  SLUICE_ASSIGN_OR_RETURN(pg::QueryResult bounds,
                          connection_->Query(sql, "reading the key range of " + name));
  if (bounds.rows.empty() || !bounds.rows[0][0] || !bounds.rows[0][1]) return ranges;  // empty
  int64_t min = 0;
  int64_t max = 0;
  if (!ParseInt64(*bounds.rows[0][0], &min) || !ParseInt64(*bounds.rows[0][1], &max) || max < min) {
    return core::Internal("reading the key range of " + name + ": unexpected bounds " +
                          *bounds.rows[0][0] + ", " + *bounds.rows[0][1]);
  }
  // Unsigned arithmetic: max - min may not fit an int64.
  const uint64_t span = static_cast<uint64_t>(max) - static_cast<uint64_t>(min);
  const uint64_t count = std::min<uint64_t>(static_cast<uint64_t>(pieces), span);
  if (count < 2) return ranges;
  const uint64_t step = span / count;

  std::vector<std::string> cuts;  // count - 1 interior boundaries, strictly increasing
  for (uint64_t i = 1; i < count; ++i) {
    cuts.push_back(std::to_string(static_cast<int64_t>(static_cast<uint64_t>(min) + i * step)));
  }
  ranges.clear();
  for (size_t i = 0; i <= cuts.size(); ++i) {
    std::string interval;
    if (i == 0) {
      interval = column + " < " + cuts[0];  // open below
    } else if (i == cuts.size()) {
      interval = column + " >= " + cuts[i - 1];  // open above
    } else {
      interval = column + " >= " + cuts[i - 1] + " AND " + column + " < " + cuts[i];
    }
    CopyRange range;
    range.predicate = Conjunction(extra.row_filter, interval);
    range.select_form = extra.relkind == 'p';
    range.description = interval;
    range.index = static_cast<int>(i);
    range.count = static_cast<int>(cuts.size() + 1);
    ranges.push_back(std::move(range));
  }
  return ranges;
}

std::string SnapshotCopier::CopyCommand(const core::TableDefinition& table,
                                        const CopyRange& range) {
  const std::string qualified = QualifiedTable(table.relation);
  const std::string columns = ColumnList(table.relation);
  if (range.predicate.empty() && !range.select_form) {
    // The fast path; like ONLY, it reads no inheritance children.
    return "COPY " + qualified + " (" + columns + ") TO STDOUT";
  }
  // A partitioned root must be read with its partitions; a plain table reads only itself (its
  // inheritance children are published, and copied, as tables of their own).
  std::string sql =
      "COPY (SELECT " + columns + " FROM " + (range.select_form ? "" : "ONLY ") + qualified;
  if (!range.predicate.empty()) sql += " WHERE " + range.predicate;
  return sql + ") TO STDOUT";
}

core::Status SnapshotCopier::CopyOut(const core::TableDefinition& table, const CopyRange& range,
                                     const std::function<core::Status(std::string_view)>& on_chunk,
                                     CopyCounters* counters) {
  const std::string label = RangeLabel(table, range);
  SLUICE_RETURN_IF_ERROR(Usable("copying " + label));
  PGconn* conn = connection_->raw();
  auto failed = [&](const std::string& what) {
    broken_ = true;  // an error aborts the transaction, and with it the snapshot
    return core::Unavailable("copying " + label + " from " + connection_->endpoint() + ": " + what);
  };

  const std::string sql = CopyCommand(table, range);
  {
    PGresult* started = PQexec(conn, sql.c_str());
    const ExecStatusType status = started ? PQresultStatus(started) : PGRES_FATAL_ERROR;
    if (status != PGRES_COPY_OUT) {
      std::string message = started ? PQresultErrorMessage(started) : connection_->ErrorMessage();
      const char* sqlstate = started ? PQresultErrorField(started, PG_DIAG_SQLSTATE) : nullptr;
      PQclear(started);
      while (!message.empty() && message.back() == '\n') message.pop_back();
      broken_ = true;
      // A server-side error (bad filter, permissions) is not fixed by retrying.
      return core::Status(
          sqlstate ? core::StatusCode::kFailedPrecondition : core::StatusCode::kUnavailable,
          "copying " + label + " from " + connection_->endpoint() + ": " + message +
              (sqlstate ? std::string(" (SQLSTATE ") + sqlstate + ")" : std::string()));
    }
    PQclear(started);
  }

  core::Status callback_status;
  while (true) {
    char* buffer = nullptr;
    const int length = PQgetCopyData(conn, &buffer, /*async=*/0);
    if (length > 0) {
      if (counters != nullptr) {
        ++counters->rows;
        counters->bytes += static_cast<uint64_t>(length);
      }
      if (callback_status.ok()) {
        callback_status = on_chunk(std::string_view(buffer, static_cast<size_t>(length)));
        if (!callback_status.ok()) {
          // Stop the server from sending the rest; what is already in flight is discarded.
          if (PGcancel* cancel = PQgetCancel(conn)) {
            char error[256];
            PQcancel(cancel, error, sizeof error);
            PQfreeCancel(cancel);
          }
        }
      }
      PQfreemem(buffer);
      continue;
    }
    if (buffer != nullptr) PQfreemem(buffer);
    if (length == -2) return failed(connection_->ErrorMessage());
    break;  // -1: the COPY is over
  }

  core::Status final_status;
  while (PGresult* result = PQgetResult(conn)) {
    if (PQresultStatus(result) != PGRES_COMMAND_OK && final_status.ok()) {
      std::string message = PQresultErrorMessage(result);
      while (!message.empty() && message.back() == '\n') message.pop_back();
      final_status = failed(message);
    }
    PQclear(result);
  }
  if (!callback_status.ok()) {
    broken_ = true;
    return callback_status;
  }
  return final_status;
}

}  // namespace sluice::capture
