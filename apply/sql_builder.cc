#include "apply/sql_builder.h"

#include <cstdint>
#include <cstring>

#include "pg/quote.h"

namespace sluice::apply {
namespace {

using core::OldTupleKind;
using core::Operation;
using core::Relation;
using core::Value;

constexpr size_t kMaxValueInMessage = 64;
constexpr size_t kMaxColumnsInMessage = 8;

// Types (and their arrays) without a default equality operator: `a IS NOT DISTINCT FROM b`
// fails on them, so full-row matching compares their text form.
bool LacksEquality(core::Oid type_oid) {
  switch (type_oid) {
    case 114:   // json
    case 199:   // json[]
    case 142:   // xml
    case 143:   // xml[]
    case 600:   // point
    case 1017:  // point[]
    case 601:   // lseg
    case 1018:  // lseg[]
    case 602:   // path
    case 1019:  // path[]
    case 603:   // box
    case 1020:  // box[]
    case 604:   // polygon
    case 1027:  // polygon[]
    case 628:   // line
    case 629:   // line[]
    case 718:   // circle
    case 719:   // circle[]
      return true;
    default:
      return false;
  }
}

std::string ColumnLabel(const Relation& relation, size_t column) {
  return relation.QualifiedName() + "." + pg::QuoteIdentifier(relation.columns[column].name);
}

bool AnyKeyColumn(const Relation& relation) {
  for (const auto& c : relation.columns) {
    if (c.is_key) return true;
  }
  return false;
}

// Columns whose values identify the row of an update/delete, and the tuple they come from.
struct RowLocator {
  ParamSource::Side side = ParamSource::Side::kOld;
  bool full_row = false;  // match the whole old row (ctid subquery) instead of the key
  std::vector<uint32_t> columns;
};

core::Result<RowLocator> LocatorFor(const Relation& relation, const RowShape& shape) {
  RowLocator locator;
  switch (shape.old_kind) {
    case OldTupleKind::kFull:
      locator.full_row = true;
      locator.side = ParamSource::Side::kOld;
      for (uint32_t i = 0; i < relation.columns.size(); ++i) {
        if (!shape.old_unchanged[i]) locator.columns.push_back(i);
      }
      return locator;
    case OldTupleKind::kKey:
    case OldTupleKind::kNone: {
      const bool from_old = shape.old_kind == OldTupleKind::kKey;
      if (!from_old && !HasUsableKey(relation)) {
        return core::Unsupported(
            std::string(core::OperationName(shape.op)) + " on " + relation.QualifiedName() +
            " carries neither a key nor the old row (replica identity '" +
            static_cast<char>(relation.replica_identity) +
            "'); give the source table a primary key or REPLICA IDENTITY FULL");
      }
      locator.side = from_old ? ParamSource::Side::kOld : ParamSource::Side::kNew;
      const auto& unchanged = from_old ? shape.old_unchanged : shape.new_unchanged;
      for (uint32_t i = 0; i < relation.columns.size(); ++i) {
        if (!relation.columns[i].is_key) continue;
        if (unchanged[i]) {
          return core::Unsupported("key column " + ColumnLabel(relation, i) +
                                   " arrived as an unchanged TOAST value; cannot locate the row");
        }
        locator.columns.push_back(i);
      }
      if (locator.columns.empty()) {
        return core::Unsupported(std::string(core::OperationName(shape.op)) + " on " +
                                 relation.QualifiedName() +
                                 " has no key columns to locate the row");
      }
      return locator;
    }
  }
  return core::Internal("unknown old tuple kind");
}

// Appends "WHERE ..." for `locator`, adding its parameters to `statement`. With the target's
// types, each parameter is cast to its column's type: a comparison (unlike an assignment) gives
// an untyped parameter no column type to take, and for a composite column PostgreSQL would
// resolve it to an anonymous record, which it cannot read.
void AppendWhere(const Relation& relation, const std::string& table, const RowLocator& locator,
                 RowStatement& statement, const TargetTable* target) {
  auto next_param = [&](uint32_t column) {
    statement.params.push_back({locator.side, column});
    std::string param = "$" + std::to_string(statement.params.size());
    if (target != nullptr && column < target->types.size() && !target->types[column].empty()) {
      param += "::" + target->types[column];
    }
    return param;
  };
  if (locator.full_row) {
    statement.sql += " WHERE ctid = (SELECT ctid FROM " + table;
    const char* separator = " WHERE ";
    for (uint32_t column : locator.columns) {
      const std::string param = next_param(column);
      const std::string name = pg::QuoteIdentifier(relation.columns[column].name);
      statement.sql += separator;
      if (LacksEquality(relation.columns[column].type_oid)) {
        const bool cast = param.find(':') != std::string::npos;
        statement.sql +=
            name + "::text IS NOT DISTINCT FROM " + (cast ? "(" + param + ")" : param) + "::text";
      } else {
        statement.sql += name + " IS NOT DISTINCT FROM " + param;
      }
      separator = " AND ";
    }
    statement.sql += " LIMIT 1)";
    return;
  }
  const char* separator = " WHERE ";
  for (uint32_t column : locator.columns) {
    statement.sql += separator;
    statement.sql +=
        pg::QuoteIdentifier(relation.columns[column].name) + " = " + next_param(column);
    separator = " AND ";
  }
}

void AppendValue(const Value& value, std::string& out) {
  switch (value.kind) {
    case Value::Kind::kNull:
      out += "NULL";
      return;
    case Value::Kind::kUnchangedToast:
      out += "<unchanged toast>";
      return;
    case Value::Kind::kBinary:
      out += "<binary>";
      return;
    case Value::Kind::kText:
      if (value.data.size() > kMaxValueInMessage) {
        out.append(value.data, 0, kMaxValueInMessage);
        out += "...";
      } else {
        out += value.data;
      }
      return;
  }
}

// INSERT INTO t (cols) [OVERRIDING SYSTEM VALUE] VALUES (row 1), (row 2), ...
// [ON CONFLICT (key) DO UPDATE/NOTHING]; params describe one row.
RowStatement InsertStatement(const Relation& relation, size_t rows, const TargetTable* target) {
  const std::string table = pg::QuoteQualifiedName(relation.schema, relation.name);
  const uint32_t width = static_cast<uint32_t>(relation.columns.size());
  RowStatement statement;
  std::string columns;
  for (uint32_t i = 0; i < width; ++i) {
    if (i > 0) columns += ", ";
    columns += pg::QuoteIdentifier(relation.columns[i].name);
    statement.params.push_back({ParamSource::Side::kNew, i});
  }
  const bool overriding = target != nullptr && target->AnyIdentityAlways();
  statement.sql = "INSERT INTO " + table + " (" + columns + ") " +
                  (overriding ? "OVERRIDING SYSTEM VALUE " : "") + "VALUES ";
  size_t param = 1;
  for (size_t r = 0; r < rows; ++r) {
    statement.sql += r == 0 ? "(" : ", (";
    for (uint32_t i = 0; i < width; ++i) {
      if (i > 0) statement.sql += ", ";
      statement.sql += "$" + std::to_string(param++);
    }
    statement.sql += ")";
  }
  if (HasUsableKey(relation)) {
    std::string key_columns;
    std::string updates;
    for (uint32_t i = 0; i < width; ++i) {
      const bool key = relation.columns[i].is_key;
      // UPDATE cannot set a GENERATED ALWAYS identity column, not even in ON CONFLICT.
      if (!key && target != nullptr && target->IdentityAlways(i)) continue;
      const std::string name = pg::QuoteIdentifier(relation.columns[i].name);
      std::string& list = key ? key_columns : updates;
      if (!list.empty()) list += ", ";
      list += key ? name : name + " = EXCLUDED." + name;
    }
    statement.sql += " ON CONFLICT (" + key_columns + ")";
    statement.sql += updates.empty() ? " DO NOTHING" : " DO UPDATE SET " + updates;
  }
  return statement;
}

// Whether an update must set a GENERATED ALWAYS identity column of the target to a value that
// may differ from the row's: only a delete + insert can do that.
bool NeedsMove(const core::Change& change, const RowShape& shape, const TargetTable& target) {
  const Relation& relation = *change.relation;
  for (size_t i = 0; i < relation.columns.size(); ++i) {
    if (!target.IdentityAlways(i) || shape.new_unchanged[i]) continue;
    const bool key = relation.columns[i].is_key;
    const bool old_known =
        change.old_kind == OldTupleKind::kFull || (change.old_kind == OldTupleKind::kKey && key);
    const bool unchanged =
        (change.old_kind == OldTupleKind::kNone && key) ||
        (old_known && !shape.old_unchanged[i] && change.old_tuple[i] == change.new_tuple[i]);
    if (!unchanged) return true;
  }
  return false;
}

// The move of BuildRowStatement: one statement that deletes the located row and inserts it
// with the new values, keeping what the update does not carry (unchanged TOAST, the target's
// own columns) from the deleted row.
RowStatement MoveStatement(const Relation& relation, const RowShape& shape,
                           const RowLocator& locator, const TargetTable& target) {
  const std::string table = pg::QuoteQualifiedName(relation.schema, relation.name);
  RowStatement statement;
  statement.sql = "WITH sluice_old AS (DELETE FROM " + table;
  AppendWhere(relation, table, locator, statement, &target);
  std::string columns;
  std::string values;
  for (uint32_t i = 0; i < relation.columns.size(); ++i) {
    const std::string name = pg::QuoteIdentifier(relation.columns[i].name);
    if (i > 0) {
      columns += ", ";
      values += ", ";
    }
    columns += name;
    if (shape.new_unchanged[i]) {
      values += "sluice_old." + name;
    } else {
      statement.params.push_back({ParamSource::Side::kNew, i});
      values += "$" + std::to_string(statement.params.size());
    }
  }
  for (const std::string& own : target.own_columns) {
    const std::string name = pg::QuoteIdentifier(own);
    columns += ", " + name;
    values += ", sluice_old." + name;
  }
  statement.sql += " RETURNING *) INSERT INTO " + table + " (" + columns +
                   ") OVERRIDING SYSTEM VALUE SELECT " + values + " FROM sluice_old";
  return statement;
}

}  // namespace

bool HasUsableKey(const Relation& relation) {
  return (relation.replica_identity == core::ReplicaIdentity::kDefault ||
          relation.replica_identity == core::ReplicaIdentity::kIndex) &&
         AnyKeyColumn(relation);
}

core::Result<RowShape> ShapeOf(const core::Change& change, const TargetTable* target) {
  if (change.relation == nullptr) {
    return core::Internal(std::string(core::OperationName(change.op)) + " without a relation");
  }
  const Relation& relation = *change.relation;
  const size_t width = relation.columns.size();
  RowShape shape;
  shape.op = change.op;
  shape.old_kind = change.old_kind;
  shape.new_unchanged.assign(width, false);
  shape.old_unchanged.assign(width, false);

  auto scan = [&](const core::Tuple& tuple, const char* which,
                  std::vector<bool>& unchanged) -> core::Status {
    if (tuple.size() != width) {
      return core::Corruption(std::string(core::OperationName(change.op)) + " on " +
                              relation.QualifiedName() + " at source LSN " + change.lsn.ToString() +
                              ": " + which + " tuple has " + std::to_string(tuple.size()) +
                              " columns, the relation " + std::to_string(width));
    }
    for (size_t i = 0; i < width; ++i) {
      if (tuple[i].kind == Value::Kind::kBinary) {
        return core::Unsupported("column " + ColumnLabel(relation, i) +
                                 " arrived in binary format; binary-format values need "
                                 "source.binary: false");
      }
      unchanged[i] = tuple[i].kind == Value::Kind::kUnchangedToast;
    }
    return core::Status::Ok();
  };

  switch (change.op) {
    case Operation::kInsert:
      if (change.old_kind != OldTupleKind::kNone) {
        return core::Corruption("insert on " + relation.QualifiedName() + " with an old tuple");
      }
      SLUICE_RETURN_IF_ERROR(scan(change.new_tuple, "new", shape.new_unchanged));
      for (size_t i = 0; i < width; ++i) {
        if (shape.new_unchanged[i]) {
          return core::Unsupported("insert on " + relation.QualifiedName() + " at source LSN " +
                                   change.lsn.ToString() + " has an unchanged TOAST value in " +
                                   ColumnLabel(relation, i));
        }
      }
      return shape;
    case Operation::kUpdate:
      SLUICE_RETURN_IF_ERROR(scan(change.new_tuple, "new", shape.new_unchanged));
      if (change.old_kind != OldTupleKind::kNone) {
        SLUICE_RETURN_IF_ERROR(scan(change.old_tuple, "old", shape.old_unchanged));
      }
      break;
    case Operation::kDelete:
      if (change.old_kind == OldTupleKind::kNone) {
        return core::Corruption("delete on " + relation.QualifiedName() + " at source LSN " +
                                change.lsn.ToString() + " without an old tuple");
      }
      SLUICE_RETURN_IF_ERROR(scan(change.old_tuple, "old", shape.old_unchanged));
      break;
    default:
      return core::Internal(std::string("ShapeOf called for ") + core::OperationName(change.op));
  }
  // Fails early (before anything is queued) when the row cannot be located.
  SLUICE_ASSIGN_OR_RETURN(RowLocator unused, LocatorFor(relation, shape));
  (void)unused;
  if (change.op == Operation::kUpdate && target != nullptr && target->AnyIdentityAlways()) {
    shape.move = NeedsMove(change, shape, *target);
  }
  return shape;
}

std::string ShapeCacheKey(const core::RelationId& relation, const RowShape& shape) {
  std::string key;
  key.reserve(sizeof relation.oid + sizeof relation.version + 3 + shape.new_unchanged.size() +
              shape.old_unchanged.size());
  key.append(reinterpret_cast<const char*>(&relation.oid), sizeof relation.oid);
  key.append(reinterpret_cast<const char*>(&relation.version), sizeof relation.version);
  key += static_cast<char>(shape.op);
  key += static_cast<char>(shape.old_kind);
  key += shape.move ? 'm' : '-';
  for (bool b : shape.new_unchanged) key += b ? '1' : '0';
  key += '|';
  for (bool b : shape.old_unchanged) key += b ? '1' : '0';
  return key;
}

core::Result<RowStatement> BuildRowStatement(const Relation& relation, const RowShape& shape,
                                             const TargetTable* target) {
  const std::string table = pg::QuoteQualifiedName(relation.schema, relation.name);
  const uint32_t width = static_cast<uint32_t>(relation.columns.size());
  RowStatement statement;
  switch (shape.op) {
    case Operation::kInsert:
      return InsertStatement(relation, 1, target);
    case Operation::kUpdate: {
      SLUICE_ASSIGN_OR_RETURN(RowLocator locator, LocatorFor(relation, shape));
      if (shape.move) {
        if (target == nullptr) {
          return core::Internal("a moving update on " + relation.QualifiedName() +
                                " without the target's columns");
        }
        return MoveStatement(relation, shape, locator, *target);
      }
      std::string sets;
      for (uint32_t i = 0; i < width; ++i) {
        if (shape.new_unchanged[i]) continue;  // the target keeps its value
        // A key the update keeps (its WHERE finds the row by it) needs no setting, and the
        // target's GENERATED ALWAYS identity columns stay as they are (ShapeOf saw to it that
        // they do not change; UPDATE could not set them).
        if (shape.old_kind == OldTupleKind::kNone && relation.columns[i].is_key) continue;
        if (target != nullptr && target->IdentityAlways(i)) continue;
        statement.params.push_back({ParamSource::Side::kNew, i});
        if (!sets.empty()) sets += ", ";
        sets += pg::QuoteIdentifier(relation.columns[i].name) + " = $" +
                std::to_string(statement.params.size());
      }
      if (sets.empty()) return RowStatement{};
      statement.sql = "UPDATE " + table + " SET " + sets;
      AppendWhere(relation, table, locator, statement, target);
      return statement;
    }
    case Operation::kDelete: {
      SLUICE_ASSIGN_OR_RETURN(RowLocator locator, LocatorFor(relation, shape));
      statement.sql = "DELETE FROM " + table;
      AppendWhere(relation, table, locator, statement, target);
      return statement;
    }
    default:
      return core::Internal(std::string("no row statement for ") + core::OperationName(shape.op));
  }
}

bool CanCoalesce(const Relation& relation, const RowShape& shape) {
  switch (shape.op) {
    case Operation::kInsert:
      return true;
    case Operation::kUpdate: {
      if (shape.old_kind != OldTupleKind::kNone || shape.move || !HasUsableKey(relation)) {
        return false;
      }
      for (size_t i = 0; i < relation.columns.size(); ++i) {
        if (!relation.columns[i].is_key && !shape.new_unchanged[i]) return true;
      }
      return false;  // sets nothing but the key: leave it to the one-row statement
    }
    case Operation::kDelete:
      return shape.old_kind == OldTupleKind::kKey && HasUsableKey(relation);
    default:
      return false;
  }
}

bool NeedsDistinctKeys(const Relation& relation, const RowShape& shape) {
  return (shape.op == Operation::kInsert && HasUsableKey(relation)) ||
         shape.op == Operation::kUpdate;
}

void AppendRowKey(const core::Change& change, std::string& out) {
  const Relation& relation = *change.relation;
  const core::Tuple& tuple = change.op == Operation::kDelete ? change.old_tuple : change.new_tuple;
  for (size_t i = 0; i < relation.columns.size() && i < tuple.size(); ++i) {
    if (!relation.columns[i].is_key) continue;
    const Value& value = tuple[i];
    // Length-prefixed, with the kind, so no two different keys give the same bytes.
    out += static_cast<char>(value.kind);
    const uint64_t size = value.data.size();
    out.append(reinterpret_cast<const char*>(&size), sizeof size);
    out += value.data;
  }
}

core::Result<RowStatement> BuildMultiRowStatement(const Relation& relation, const RowShape& shape,
                                                  size_t rows, const TargetTable* target) {
  if (!CanCoalesce(relation, shape) || rows == 0) {
    return core::Internal("no multi-row statement for this " +
                          std::string(core::OperationName(shape.op)) + " on " +
                          relation.QualifiedName());
  }
  const uint32_t width = static_cast<uint32_t>(relation.columns.size());
  // INSERT ... VALUES infers each parameter's type from its target column, as for one row.
  if (shape.op == Operation::kInsert) return InsertStatement(relation, rows, target);

  if (target == nullptr || target->types.size() != width) {
    return core::Internal("target column types of " + relation.QualifiedName() +
                          " are unknown (relation not checked)");
  }
  // The VALUES columns: key columns first (matched), then for updates the columns set.
  RowStatement statement;
  std::vector<uint32_t> keys;
  std::vector<uint32_t> sets;
  const ParamSource::Side side =
      shape.op == Operation::kDelete ? ParamSource::Side::kOld : ParamSource::Side::kNew;
  for (uint32_t i = 0; i < width; ++i) {
    if (relation.columns[i].is_key) {
      keys.push_back(i);
    } else if (shape.op == Operation::kUpdate && !shape.new_unchanged[i] &&
               !target->IdentityAlways(i)) {
      sets.push_back(i);
    }
  }
  std::vector<uint32_t> value_columns = keys;
  value_columns.insert(value_columns.end(), sets.begin(), sets.end());
  for (uint32_t column : value_columns) statement.params.push_back({side, column});

  std::string values = "(VALUES ";
  size_t param = 1;
  for (size_t r = 0; r < rows; ++r) {
    values += r == 0 ? "(" : ", (";
    for (size_t v = 0; v < value_columns.size(); ++v) {
      if (v > 0) values += ", ";
      values += "$" + std::to_string(param++) + "::" + target->types[value_columns[v]];
    }
    values += ")";
  }
  values += ") AS sluice_v (";
  for (size_t v = 0; v < value_columns.size(); ++v) {
    if (v > 0) values += ", ";
    values += "c" + std::to_string(v);
  }
  values += ")";
  std::string where;
  for (size_t k = 0; k < keys.size(); ++k) {
    where += k == 0 ? " WHERE " : " AND ";
    where += "sluice_t." + pg::QuoteIdentifier(relation.columns[keys[k]].name) + " = sluice_v.c" +
             std::to_string(k);
  }
  const std::string table = pg::QuoteQualifiedName(relation.schema, relation.name);
  if (shape.op == Operation::kUpdate) {
    statement.sql = "UPDATE " + table + " AS sluice_t SET ";
    for (size_t s = 0; s < sets.size(); ++s) {
      if (s > 0) statement.sql += ", ";
      statement.sql += pg::QuoteIdentifier(relation.columns[sets[s]].name) + " = sluice_v.c" +
                       std::to_string(keys.size() + s);
    }
    statement.sql += " FROM " + values + where;
  } else {
    statement.sql = "DELETE FROM " + table + " AS sluice_t USING " + values + where;
  }
  return statement;
}

std::string BuildTruncate(const core::Change& change) {
  std::string sql = "TRUNCATE ";
  bool first = true;
  for (const auto& relation : change.truncated) {
    if (!first) sql += ", ";
    first = false;
    sql += pg::QuoteQualifiedName(relation->schema, relation->name);
  }
  if (change.truncate_restart_identity) sql += " RESTART IDENTITY";
  return sql;
}

std::string DescribeKey(const core::Change& change) {
  if (change.relation == nullptr) return "()";
  const Relation& relation = *change.relation;
  const size_t width = relation.columns.size();
  const core::Tuple* tuple = nullptr;
  bool keys_only = HasUsableKey(relation);
  switch (change.op) {
    case Operation::kInsert:
      tuple = &change.new_tuple;
      break;
    case Operation::kUpdate:
    case Operation::kDelete:
      if (change.old_kind == OldTupleKind::kNone) {
        tuple = &change.new_tuple;
      } else {
        tuple = &change.old_tuple;
        keys_only = change.old_kind == OldTupleKind::kKey && AnyKeyColumn(relation);
      }
      break;
    default:
      return "()";
  }
  std::string names = "(";
  std::string values = "(";
  size_t shown = 0;
  for (size_t i = 0; i < width && i < tuple->size(); ++i) {
    if (keys_only && !relation.columns[i].is_key) continue;
    if (shown == kMaxColumnsInMessage) {
      names += ", ...";
      values += ", ...";
      break;
    }
    if (shown > 0) {
      names += ", ";
      values += ", ";
    }
    names += relation.columns[i].name;
    AppendValue((*tuple)[i], values);
    ++shown;
  }
  return names + ")=" + values + ")";
}

}  // namespace sluice::apply
