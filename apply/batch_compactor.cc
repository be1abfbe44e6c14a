#include "apply/batch_compactor.h"

#include <map>

#include "apply/sql_builder.h"

namespace sluice::apply {
namespace {

using core::OldTupleKind;
using core::Operation;

// The key columns of the tuple that identifies the row must all carry a value.
bool KeyIsComplete(const core::Change& change) {
  const core::Tuple& tuple = change.op == Operation::kDelete ? change.old_tuple : change.new_tuple;
  const auto& columns = change.relation->columns;
  if (tuple.size() != columns.size()) return false;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].is_key && tuple[i].is_unchanged_toast()) return false;
  }
  return true;
}

// Which columns an update sets (those not sent as unchanged TOAST): its statement's shape.
std::vector<bool> SetColumns(const core::Change& change) {
  std::vector<bool> set(change.new_tuple.size());
  for (size_t i = 0; i < set.size(); ++i) set[i] = !change.new_tuple[i].is_unchanged_toast();
  return set;
}

}  // namespace

BatchCompactor::Table* BatchCompactor::TableFor(const core::Change& change, CompactionMode mode) {
  auto it = by_oid_.find(change.relation->oid);
  if (it == by_oid_.end()) {
    Table table;
    table.relation = change.relation;
    table.mode = mode;
    by_oid_.emplace(change.relation->oid, tables_.size());
    tables_.push_back(std::move(table));
    return &tables_.back();
  }
  Table& table = tables_[it->second];
  if (table.relation.get() != change.relation.get() || table.mode != mode) return nullptr;
  return &table;
}

bool BatchCompactor::Add(const core::Change& change, CompactionMode mode, core::Lsn fallback_lsn) {
  if (change.relation == nullptr || mode == CompactionMode::kNone) return false;
  const core::Lsn lsn = change.lsn.valid() ? change.lsn : fallback_lsn;
  switch (mode) {
    case CompactionMode::kAppendOnly: {
      if (change.op != Operation::kInsert) return false;
      Table* table = TableFor(change, mode);
      if (table == nullptr) return false;
      table->rows.push_back(change);
      table->rows.back().lsn = lsn;
      bytes_ += change.ApproximateBytes();
      ++absorbed_;
      return true;
    }
    case CompactionMode::kByKey: {
      const bool absorbable =
          (change.op == Operation::kInsert) ||
          (change.op == Operation::kUpdate && change.old_kind == OldTupleKind::kNone) ||
          (change.op == Operation::kDelete && change.old_kind == OldTupleKind::kKey);
      if (!absorbable || !HasUsableKey(*change.relation) || !KeyIsComplete(change)) return false;
      Table* table = TableFor(change, mode);
      if (table == nullptr) return false;
      return AddByKey(*table, change, lsn);
    }
    case CompactionMode::kNone:
      break;
  }
  return false;
}

bool BatchCompactor::AddByKey(Table& table, const core::Change& change, core::Lsn lsn) {
  key_scratch_.clear();
  AppendRowKey(change, key_scratch_);
  auto [it, inserted] = table.by_key.try_emplace(key_scratch_, table.rows.size());
  ++absorbed_;
  if (inserted) {
    table.rows.push_back(change);
    table.rows.back().lsn = lsn;
    bytes_ += change.ApproximateBytes();
    return true;
  }
  ++netted_;
  core::Change& held = table.rows[it->second];
  const size_t held_bytes = held.ApproximateBytes();
  if (change.op == Operation::kUpdate) {
    if (held.op == Operation::kDelete) return true;  // it would find no row
    // Upsert or update: next's columns replace the held ones, except unchanged TOAST.
    for (size_t i = 0; i < held.new_tuple.size(); ++i) {
      if (!change.new_tuple[i].is_unchanged_toast()) held.new_tuple[i] = change.new_tuple[i];
    }
  } else {
    held = change;  // insert: the whole row; delete: gone, whatever came before
  }
  held.lsn = lsn;
  bytes_ = bytes_ - held_bytes + held.ApproximateBytes();
  return true;
}

core::Status BatchCompactor::Drain(
    const std::function<core::Status(const std::vector<const core::Change*>&)>& send) {
  core::Status status;
  std::vector<const core::Change*> group;
  for (const Table& table : tables_) {
    auto send_group = [&]() {
      if (status.ok() && !group.empty()) status = send(group);
      group.clear();
    };
    for (Operation op : {Operation::kDelete, Operation::kInsert}) {
      for (const core::Change& row : table.rows) {
        if (row.op == op) group.push_back(&row);
      }
      send_group();
    }
    // Updates, one group per set of columns, in the order the sets first appear.
    std::map<std::vector<bool>, std::vector<const core::Change*>> updates;
    std::vector<const std::vector<const core::Change*>*> order;
    for (const core::Change& row : table.rows) {
      if (row.op != Operation::kUpdate) continue;
      auto [it, inserted] = updates.try_emplace(SetColumns(row));
      if (inserted) order.push_back(&it->second);
      it->second.push_back(&row);
    }
    for (const auto* rows : order) {
      group = *rows;
      send_group();
    }
    if (!status.ok()) break;
  }
  Clear();
  return status;
}

void BatchCompactor::Clear() {
  tables_.clear();
  by_oid_.clear();
  bytes_ = 0;
}

}  // namespace sluice::apply
