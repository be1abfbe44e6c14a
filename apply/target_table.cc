#include "apply/target_table.h"

#include <algorithm>

#include "pg/connection.h"
#include "pg/quote.h"

namespace sluice::apply {
namespace {

std::string ColumnName(const core::Relation& relation, const std::string& column) {
  return relation.QualifiedName() + "." + pg::QuoteIdentifier(column);
}

std::string AlterColumn(const core::Relation& relation, const std::string& column) {
  return "ALTER TABLE " + pg::QuoteQualifiedName(relation.schema, relation.name) +
         " ALTER COLUMN " + pg::QuoteIdentifier(column);
}

bool Sends(const core::Relation& relation, const std::string& name) {
  return std::any_of(relation.columns.begin(), relation.columns.end(),
                     [&](const core::Column& c) { return c.name == name; });
}

}  // namespace

const TargetColumn* FindTargetColumn(const std::vector<TargetColumn>& columns,
                                     const std::string& name) {
  for (const TargetColumn& column : columns) {
    if (column.name == name) return &column;
  }
  return nullptr;
}

std::vector<std::string> UnsentWritableColumns(const core::Relation& relation,
                                               const std::vector<TargetColumn>& target_columns) {
  std::vector<std::string> unsent;
  for (const TargetColumn& target : target_columns) {
    if (target.generated != '\0' || target.identity != '\0' || Sends(relation, target.name)) {
      continue;
    }
    unsent.push_back(target.name);
  }
  return unsent;
}

bool TargetTable::AnyIdentityAlways() const {
  return std::find(identity_always.begin(), identity_always.end(), true) != identity_always.end();
}

bool TargetTable::NonKeyIdentityAlways(const core::Relation& relation) const {
  for (size_t i = 0; i < relation.columns.size(); ++i) {
    if (IdentityAlways(i) && !relation.columns[i].is_key) return true;
  }
  return false;
}

std::vector<TargetColumn> ParseTargetColumns(
    const std::vector<std::vector<std::optional<std::string>>>& rows) {
  auto first_char = [](const std::optional<std::string>& text) {
    return text && !text->empty() ? (*text)[0] : '\0';
  };
  std::vector<TargetColumn> columns;
  for (const auto& row : rows) {
    if (row.empty() || !row[0]) continue;
    TargetColumn column;
    column.name = *row[0];
    if (row.size() > 1 && row[1]) column.type = *row[1];
    if (row.size() > 2) column.identity = first_char(row[2]);
    if (row.size() > 3) column.generated = first_char(row[3]);
    if (row.size() > 4) column.not_null = first_char(row[4]) == 't';
    if (row.size() > 5) column.has_default = first_char(row[5]) == 't';
    if (row.size() > 6 && row[6]) column.declared_type = *row[6];
    columns.push_back(std::move(column));
  }
  return columns;
}

core::Result<TargetTable> DescribeTargetTable(const core::Relation& relation,
                                              const std::vector<TargetColumn>& target_columns,
                                              bool triggers_fire,
                                              const std::vector<std::string>& dropped_on_source) {
  TargetTable table;
  for (const core::Column& column : relation.columns) {
    const TargetColumn* target = FindTargetColumn(target_columns, column.name);
    if (target == nullptr) {
      return core::FailedPrecondition("target table " + relation.QualifiedName() +
                                      " has no column \"" + column.name +
                                      "\" (the source sends it); add it or let sluice create "
                                      "tables");
    }
    if (target->generated != '\0') {
      return core::FailedPrecondition(
          "target column " + ColumnName(relation, column.name) +
          " is generated (GENERATED ALWAYS AS ... STORED) but the source sends its values, which "
          "the target refuses to have written; make it an ordinary column on the target (" +
          AlterColumn(relation, column.name) +
          " DROP EXPRESSION) or a generated column on the source too");
    }
    table.types.push_back(target->type);
    table.identity_always.push_back(target->identity == 'a');
  }
  for (const TargetColumn& target : target_columns) {
    if (Sends(relation, target.name) || target.generated != '\0') continue;
    if (target.not_null && !target.has_default && target.identity == '\0' && !triggers_fire) {
      const bool dropped = std::find(dropped_on_source.begin(), dropped_on_source.end(),
                                     target.name) != dropped_on_source.end();
      return core::FailedPrecondition(
          "target column " + ColumnName(relation, target.name) +
          " is NOT NULL without a default, " +
          (dropped ? "and the source dropped it (its values stop coming; the target keeps the "
                     "column)"
                   : "and the source does not have it") +
          ", so every insert would fail; give it a default (" + AlterColumn(relation, target.name) +
          " SET DEFAULT ...), drop NOT NULL (" + AlterColumn(relation, target.name) +
          " DROP NOT NULL), " +
          (dropped ? "or drop the column on the target too, then restart sluice"
                   : "or add it to the source table"));
    }
    table.own_columns.push_back(target.name);
  }
  return table;
}

core::Status CheckSourceGeneratedColumn(const core::Relation& relation, const std::string& column,
                                        const std::vector<TargetColumn>& target_columns) {
  const TargetColumn* target = FindTargetColumn(target_columns, column);
  if (target == nullptr || target->generated != '\0') return core::Status::Ok();
  return core::FailedPrecondition(
      "source column " + ColumnName(relation, column) +
      " is generated (GENERATED ALWAYS AS ... STORED), and generated columns are neither copied "
      "nor streamed, but on the target it is an ordinary column, which would stay NULL or at its "
      "default; make it the same generated column on the target (drop it and ADD COLUMN ... "
      "GENERATED ALWAYS AS (...) STORED), or drop it on the target");
}

}  // namespace sluice::apply
