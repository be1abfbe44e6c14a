#include "apply/batch_compactor.h"

#include <functional>
#include <map>
#include <string_view>
#include <utility>

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

// The tuple holding the key of the row a change addresses.
const core::Tuple& KeyTuple(const core::Change& change) {
  return change.op == Operation::kDelete ? change.old_tuple : change.new_tuple;
}

uint64_t KeyHash(const core::Change& change) {
  const core::Tuple& tuple = KeyTuple(change);
  const auto& columns = change.relation->columns;
  uint64_t hash = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (!columns[i].is_key) continue;
    const uint64_t value =
        std::hash<std::string_view>{}(tuple[i].data) ^ (static_cast<uint64_t>(tuple[i].kind) << 56);
    hash ^= value + 0x9e3779b97f4a7c15ull + (hash << 6) + (hash >> 2);
  }
  return hash;
}

bool SameKey(const core::Change& a, const core::Change& b) {
  const core::Tuple& ta = KeyTuple(a);
  const core::Tuple& tb = KeyTuple(b);
  const auto& columns = a.relation->columns;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].is_key && !(ta[i] == tb[i])) return false;
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

std::pair<uint32_t, bool> BatchCompactor::KeyIndex::FindOrInsert(uint64_t hash, uint32_t row) {
  if ((used_ + 1) * 2 > slots_.size()) Grow();  // at most half full
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    Slot& slot = slots_[i];
    if (slot.row == kEmpty) {
      slot = {hash, row};
      ++used_;
      return {row, true};
    }
    if (slot.hash == hash) return {slot.row, false};
  }
}

void BatchCompactor::KeyIndex::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{});
  const size_t mask = slots_.size() - 1;
  for (const Slot& slot : old) {
    if (slot.row == kEmpty) continue;
    size_t i = slot.hash & mask;
    while (slots_[i].row != kEmpty) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

BatchCompactor::Table* BatchCompactor::TableFor(const core::Change& change, CompactionMode mode) {
  auto it = by_oid_.find(change.relation->oid);
  if (it == by_oid_.end()) {
    Table table;
    table.relation = change.relation;
    table.mode = mode;
    table.rows.reserve(1024);
    by_oid_.emplace(change.relation->oid, tables_.size());
    tables_.push_back(std::move(table));
    return &tables_.back();
  }
  Table& table = tables_[it->second];
  if (table.relation->id() != change.relation->id() || table.mode != mode) return nullptr;
  return &table;
}

bool BatchCompactor::Add(const core::Change& change, CompactionMode mode, core::Lsn fallback_lsn) {
  return AddImpl(change, mode, fallback_lsn);
}

bool BatchCompactor::Add(core::Change&& change, CompactionMode mode, core::Lsn fallback_lsn) {
  return AddImpl(std::move(change), mode, fallback_lsn);
}

template <typename ChangeRef>
bool BatchCompactor::AddImpl(ChangeRef&& change, CompactionMode mode, core::Lsn fallback_lsn) {
  if (change.relation == nullptr || mode == CompactionMode::kNone) return false;
  const core::Lsn lsn = change.lsn.valid() ? change.lsn : fallback_lsn;
  switch (mode) {
    case CompactionMode::kAppendOnly: {
      if (change.op != Operation::kInsert) return false;
      Table* table = TableFor(change, mode);
      if (table == nullptr) return false;
      bytes_ += change.ApproximateBytes();
      table->rows.push_back(std::forward<ChangeRef>(change));
      table->rows.back().lsn = lsn;
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
      return AddByKey(*table, std::forward<ChangeRef>(change), lsn);
    }
    case CompactionMode::kNone:
      break;
  }
  return false;
}

template <typename ChangeRef>
bool BatchCompactor::AddByKey(Table& table, ChangeRef&& change, core::Lsn lsn) {
  const auto [held_row, inserted] =
      table.by_key.FindOrInsert(KeyHash(change), static_cast<uint32_t>(table.rows.size()));
  if (!inserted && !SameKey(table.rows[held_row], change)) {
    return false;  // another key with the same hash: let it keep its place in order
  }
  ++absorbed_;
  if (inserted) {
    bytes_ += change.ApproximateBytes();
    table.rows.push_back(std::forward<ChangeRef>(change));
    table.rows.back().lsn = lsn;
    return true;
  }
  ++netted_;
  core::Change& held = table.rows[held_row];
  const size_t held_bytes = held.ApproximateBytes();
  if (change.op == Operation::kUpdate) {
    if (held.op == Operation::kDelete) return true;  // it would find no row
    // Upsert or update: next's columns replace the held ones, except unchanged TOAST.
    for (size_t i = 0; i < held.new_tuple.size(); ++i) {
      if (!change.new_tuple[i].is_unchanged_toast()) {
        held.new_tuple[i] = std::forward<ChangeRef>(change).new_tuple[i];  // moved if we may
      }
    }
  } else {
    held = std::forward<ChangeRef>(change);  // insert: the whole row; delete: gone
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
