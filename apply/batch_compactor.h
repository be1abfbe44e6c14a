#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/change.h"
#include "core/status.h"

namespace sluice::apply {

// What the compactor may do with a relation's changes. The sink decides it from the target's
// catalog (see PostgresSink::CompactionModeFor); the compactor trusts it.
enum class CompactionMode : uint8_t {
  // Not absorbed: every change goes out in source order.
  kNone,
  // Netted per key: the table has a usable key, every unique index on the target covers that
  // key, and no trigger or rule fires for the apply session.
  kByKey,
  // A keyless table without firing triggers or rules: inserts are absorbed and keep their
  // order; updates and deletes are not absorbed.
  kAppendOnly,
};

// Nets the row changes of one target transaction per row before they are sent. Inside one
// target transaction nobody sees the intermediate states, so only each row's net effect
// matters (the later change wins):
//
//   held \ next   insert          update (key kept)            delete
//   (nothing)     upsert          update                       delete
//   upsert        upsert (next)   upsert, next's columns       delete
//                                 merged in
//   update        upsert (next)   update, columns merged       delete
//   delete        upsert (next)   delete (the update would     delete
//                                 find no row)
//
// Columns an update sent as unchanged TOAST keep the held value (or stay unchanged).
// Key-changing updates, updates and deletes matched by the full old row, truncates and every
// change of a kNone relation are not absorbed: Add() returns false and the caller sends what
// is held (Drain), then that change, so those keep their place in the order.
//
// Drain() hands the net changes out grouped for multi-row statements: relations in the order
// first seen, and per relation the deletes, then the upserts, then the updates grouped by which
// columns they set. Rows of different tables are thus no longer in source order; that is safe
// only because, under kByKey and kAppendOnly, no trigger or foreign-key check runs on the
// target and no unique index other than the key can see an intermediate state.
//
// Memory: holds copies of the absorbed changes; bytes() lets the caller drain early.
class BatchCompactor {
 public:
  // Absorbs a copy of `change` and returns true, or returns false and changes nothing. Also
  // false for a relation already held under another version (ALTER TABLE) or mode: after a
  // Drain() the same change is accepted (also after the rare key whose hash equals a held
  // one's). `fallback_lsn` stands in for an unknown change LSN.
  bool Add(const core::Change& change, CompactionMode mode, core::Lsn fallback_lsn);
  // The same, taking `change` (left valid but unspecified) when it is absorbed.
  bool Add(core::Change&& change, CompactionMode mode, core::Lsn fallback_lsn);

  // Calls `send` with each group of net changes (one relation and shape, distinct keys), then
  // empties the compactor. Stops at, and returns, the first error of `send`.
  core::Status Drain(
      const std::function<core::Status(const std::vector<const core::Change*>&)>& send);

  void Clear();
  bool empty() const { return tables_.empty(); }
  size_t bytes() const { return bytes_; }
  // Changes absorbed since construction, and how many of them were netted away.
  uint64_t absorbed() const { return absorbed_; }
  uint64_t netted() const { return netted_; }

 private:
  // Open addressing with linear probing: one flat array, no allocation per row (this runs
  // once per change on the apply thread).
  class KeyIndex {
   public:
    // The row index held for `hash`, or inserts `row` for it; returns {index, inserted}.
    std::pair<uint32_t, bool> FindOrInsert(uint64_t hash, uint32_t row);

   private:
    struct Slot {
      uint64_t hash = 0;
      uint32_t row = kEmpty;
    };
    static constexpr uint32_t kEmpty = UINT32_MAX;
    void Grow();
    std::vector<Slot> slots_;
    size_t used_ = 0;
  };

  struct Table {
    core::RelationPtr relation;
    CompactionMode mode = CompactionMode::kNone;
    std::vector<core::Change> rows;  // net changes, in first-seen order
    // kByKey: hash of the key's values -> index into rows (a collision is never merged).
    KeyIndex by_key;
  };

  // The table held for `change`'s relation, a new one, or nullptr when the relation is held
  // under another version or mode.
  Table* TableFor(const core::Change& change, CompactionMode mode);
  template <typename ChangeRef>
  bool AddImpl(ChangeRef&& change, CompactionMode mode, core::Lsn fallback_lsn);
  template <typename ChangeRef>
  bool AddByKey(Table& table, ChangeRef&& change, core::Lsn lsn);

  std::vector<Table> tables_;                     // in first-seen order
  std::unordered_map<core::Oid, size_t> by_oid_;  // index into tables_
  size_t bytes_ = 0;
  uint64_t absorbed_ = 0;
  uint64_t netted_ = 0;
};

}  // namespace sluice::apply
