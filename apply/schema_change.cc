#include "apply/schema_change.h"

#include "pg/quote.h"

namespace sluice::apply {
namespace {

std::optional<size_t> IndexOf(const core::Relation& relation, const std::string& name) {
  for (size_t i = 0; i < relation.columns.size(); ++i) {
    if (relation.columns[i].name == name) return i;
  }
  return std::nullopt;
}

std::string QuotedList(const core::Relation& relation, const std::vector<size_t>& columns) {
  std::string out;
  for (size_t i : columns) {
    out += (out.empty() ? "" : ", ") + pg::QuoteIdentifier(relation.columns[i].name);
  }
  return out;
}

// One stretch between two anchors (or after the last): `gone` are indexes into the previous
// version, `fresh` into the next.
void ClassifyStretch(const core::Relation& previous, const core::Relation& next,
                     const std::vector<size_t>& gone, const std::vector<size_t>& fresh,
                     bool after_last_anchor, RelationDiff& diff) {
  if (fresh.empty()) {
    for (size_t i : gone) diff.dropped.push_back(previous.columns[i].name);
    return;
  }
  if (gone.empty()) {
    diff.added.insert(diff.added.end(), fresh.begin(), fresh.end());
    return;
  }
  // New columns are appended, so more new than gone columns can only be renames followed by
  // additions when they come last.
  if (gone.size() == fresh.size() || (after_last_anchor && gone.size() < fresh.size())) {
    for (size_t k = 0; k < fresh.size(); ++k) {
      if (k < gone.size()) {
        diff.renamed.push_back(
            {previous.columns[gone[k]].name, next.columns[fresh[k]].name, fresh[k]});
      } else {
        diff.added.push_back(fresh[k]);
      }
    }
    if (after_last_anchor) diff.renames_may_be_drop_and_add = true;
    return;
  }
  if (!diff.ambiguous.empty()) diff.ambiguous += "; ";
  diff.ambiguous += "columns " + QuotedList(previous, gone) + " are gone and " +
                    QuotedList(next, fresh) +
                    " are new in their place: renamed, or dropped and added";
}

}  // namespace

RelationDiff CompareRelationVersions(const core::Relation& previous, const core::Relation& next) {
  RelationDiff diff;
  // Anchors: columns whose name both versions have, as (previous index, next index).
  std::vector<std::pair<size_t, size_t>> anchors;
  for (size_t j = 0; j < next.columns.size(); ++j) {
    if (auto i = IndexOf(previous, next.columns[j].name)) anchors.emplace_back(*i, j);
  }
  for (size_t k = 1; k < anchors.size(); ++k) {
    if (anchors[k].first < anchors[k - 1].first) {
      diff.ambiguous = "columns " + QuotedList(next, {anchors[k - 1].second, anchors[k].second}) +
                       " are in another order than before: renamed to each other's names, or "
                       "dropped and added again";
      return diff;
    }
  }
  for (const auto& [i, j] : anchors) {
    const core::Column& before = previous.columns[i];
    const core::Column& after = next.columns[j];
    if (before.type_oid != after.type_oid || before.type_modifier != after.type_modifier) {
      diff.retyped.push_back(j);
    }
  }
  size_t i = 0;
  size_t j = 0;
  for (size_t k = 0; k <= anchors.size(); ++k) {
    const bool last = k == anchors.size();
    const size_t previous_end = last ? previous.columns.size() : anchors[k].first;
    const size_t next_end = last ? next.columns.size() : anchors[k].second;
    std::vector<size_t> gone;
    std::vector<size_t> fresh;
    for (; i < previous_end; ++i) gone.push_back(i);
    for (; j < next_end; ++j) fresh.push_back(j);
    ClassifyStretch(previous, next, gone, fresh, last, diff);
    ++i;  // past the anchor
    ++j;
  }
  return diff;
}

core::Result<std::vector<std::optional<std::string>>> TargetTypeLookup(
    const core::Relation& relation, const core::Column& column) {
  const std::string typmod = std::to_string(column.type_modifier);
  if (!column.type_name.empty()) {
    return std::vector<std::optional<std::string>>{column.type_schema, column.type_name,
                                                   std::nullopt, typmod};
  }
  if (column.HasFixedTypeOid()) {
    return std::vector<std::optional<std::string>>{std::nullopt, std::nullopt,
                                                   std::to_string(column.type_oid), typmod};
  }
  return core::Unsupported("source column " + relation.QualifiedName() + "." +
                           pg::QuoteIdentifier(column.name) + " has a type (OID " +
                           std::to_string(column.type_oid) +
                           " on the source) that the source did not name, so sluice cannot "
                           "find it on the target; add the column on the target yourself");
}

TargetType TargetTypeOf(const core::Column& column, const std::vector<pg::Row>& rows) {
  TargetType type;
  const bool user_named = !column.type_name.empty() && column.type_schema != "pg_catalog";
  if (user_named) type.sql = pg::QuoteQualifiedName(column.type_schema, column.type_name);
  if (rows.empty() || rows[0].size() < 2 || !rows[0][0] || !rows[0][1]) return type;
  type.exists = true;
  type.formatted = *rows[0][0];
  const std::string& unmodified = *rows[0][1];
  if (!user_named) {
    // Built in (or a domain's base type in pg_catalog): always visible, format_type is exact.
    type.sql = type.formatted;
  } else if (column.type_modifier >= 0) {
    // A modifier of an extension's type, e.g. (Point,4326): format_type writes it after the
    // name, which it qualifies only when the search_path does not reach it.
    type.sql = type.formatted.starts_with(unmodified)
                   ? type.sql + type.formatted.substr(unmodified.size())
                   : type.formatted;
  }
  return type;
}

std::string AddColumnSql(const core::Relation& relation, const std::string& column,
                         const std::string& type_sql) {
  return "ALTER TABLE " + pg::QuoteQualifiedName(relation.schema, relation.name) + " ADD COLUMN " +
         pg::QuoteIdentifier(column) + " " + type_sql;
}

std::string RenameColumnSql(const core::Relation& relation, const std::string& from,
                            const std::string& to) {
  return "ALTER TABLE " + pg::QuoteQualifiedName(relation.schema, relation.name) +
         " RENAME COLUMN " + pg::QuoteIdentifier(from) + " TO " + pg::QuoteIdentifier(to);
}

std::string AlterColumnTypeSql(const core::Relation& relation, const std::string& column,
                               const std::string& type_sql) {
  const std::string name = pg::QuoteIdentifier(column);
  return "ALTER TABLE " + pg::QuoteQualifiedName(relation.schema, relation.name) +
         " ALTER COLUMN " + name + " TYPE " + type_sql + " USING " + name + "::" + type_sql;
}

}  // namespace sluice::apply
