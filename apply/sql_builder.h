#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apply/target_table.h"
#include "core/change.h"
#include "core/relation.h"
#include "core/status.h"

namespace sluice::apply {

// SQL text for applying row changes to a PostgreSQL target. Pure functions, no I/O: the sink
// prepares the text once per (relation version, shape) and binds values as text parameters
// whose types the server infers from the columns. Identifiers are always quoted.

// True when inserts can upsert and updates/deletes find rows by key: replica identity default
// (primary key) or index, with at least one key column. Under REPLICA IDENTITY FULL pgoutput
// flags every column as "key", which is no key at all.
bool HasUsableKey(const core::Relation& relation);

// Where one statement parameter's value comes from.
struct ParamSource {
  enum class Side : uint8_t { kNew, kOld };
  Side side = Side::kNew;
  uint32_t column = 0;  // index into the relation's columns (and the tuple)

  bool operator==(const ParamSource&) const = default;
};

struct RowStatement {
  std::string sql;  // empty: the change needs no statement (an update that sets nothing)
  std::vector<ParamSource> params;  // $1, $2, ... in order
};

// Everything a row change's statement text depends on besides the relation itself.
struct RowShape {
  core::Operation op = core::Operation::kInsert;
  core::OldTupleKind old_kind = core::OldTupleKind::kNone;
  std::vector<bool> new_unchanged;  // per column: unchanged TOAST in the new tuple
  std::vector<bool> old_unchanged;  // per column: unchanged TOAST in the old tuple
  // An update that must set a column the target defines GENERATED ALWAYS AS IDENTITY (which
  // UPDATE cannot): applied as delete + insert OVERRIDING SYSTEM VALUE (see BuildRowStatement).
  bool move = false;
};

// Validates an Insert/Update/Delete against its relation and returns its shape. Errors:
// kCorruption when a tuple's width differs from the relation's, kUnsupported for binary-format
// values ("binary-format values need source.binary: false", naming the column), for unchanged
// TOAST in an insert or in a key, and for updates/deletes the target cannot locate (no key and
// no full old row).
// With `target`, an update moves (RowShape::move) when it sets a column the target has as
// GENERATED ALWAYS AS IDENTITY whose value it cannot show to be unchanged: a key column of an
// update that keeps its key, or a column whose old value (old key, full old row) equals the new
// one, is left out of SET instead.
core::Result<RowShape> ShapeOf(const core::Change& change, const TargetTable* target = nullptr);

// A key for caching the prepared statement of (relation version, shape). The relation's
// identity (core::RelationId: OID and version) is part of it: a new version (after ALTER TABLE
// on the source) gets new statements, the same version described again reuses them.
std::string ShapeCacheKey(const core::RelationId& relation, const RowShape& shape);

// The statement for a change of `shape` on `relation` (same schema and table name on the target):
//  Insert, usable key:  INSERT INTO t (cols) VALUES ($..) ON CONFLICT (key) DO UPDATE SET
//                       non-key = EXCLUDED.non-key   (DO NOTHING when every column is key)
//  Insert, otherwise:   INSERT INTO t (cols) VALUES ($..)
//  Update:              UPDATE t SET <columns> WHERE <row>
//  Update, move:        WITH sluice_old AS (DELETE FROM t WHERE <row> RETURNING *)
//                       INSERT INTO t (cols, target's own cols) OVERRIDING SYSTEM VALUE
//                       SELECT $.. (sluice_old.col for unchanged TOAST), sluice_old.own
//                       FROM sluice_old
//  Delete:              DELETE FROM t WHERE <row>
// where <row> is `key = $..` over the old key (kKey) or the new tuple's key (kNone), and for a
// full old row (kFull) `ctid = (SELECT ctid FROM t WHERE col IS NOT DISTINCT FROM $.. AND ...
// LIMIT 1)` over the old columns that are not unchanged TOAST, so exactly one of several
// identical rows changes. Types without an equality operator (json, xml, geometric) compare as
// text there. With `target`, every parameter of <row> is cast to the target column's type (a
// comparison gives it no type to infer, and a composite one would fail). An update SETs the columns
// that are not unchanged TOAST, without the key when it keeps the key (kNone) and without the
// target's GENERATED ALWAYS identity columns (ShapeOf moved the row when one of those changes).
// With a `target` that has GENERATED ALWAYS identity columns, inserts say OVERRIDING SYSTEM
// VALUE (the source's values are kept, as PostgreSQL's own subscriber does) and their
// ON CONFLICT DO UPDATE leaves those columns out (UPDATE cannot set them).
// A move is one statement, so the row is never missing in between; the target sees (and its
// triggers enabled for the apply session fire for) a delete and an insert.
core::Result<RowStatement> BuildRowStatement(const core::Relation& relation, const RowShape& shape,
                                             const TargetTable* target = nullptr);

// --- Multi-row statements (runs of adjacent same-shape changes) ---------------------------------

// Whether changes of `shape` on `relation` may share one multi-row statement: every insert;
// updates that keep their key (no old tuple) and set at least one non-key column, and deletes by
// old key, both only on tables with a usable key. Updates and deletes matched by the full old
// row (REPLICA IDENTITY FULL), key-changing updates and moves always go one row at a time.
bool CanCoalesce(const core::Relation& relation, const RowShape& shape);

// Whether a run of this shape must hold distinct keys (inserts that upsert, updates: a
// statement cannot change one row twice); AppendRowKey then gives the bytes compared.
bool NeedsDistinctKeys(const core::Relation& relation, const RowShape& shape);
void AppendRowKey(const core::Change& change, std::string& out);

// One statement for `rows` changes of `shape` (CanCoalesce must hold). The returned params
// describe ONE row; row r (0-based) binds them as $(r * params.size() + 1) onwards:
//  Insert: INSERT INTO t (cols) VALUES (...), (...) [ON CONFLICT ... as for one row]
//  Update: UPDATE t AS sluice_t SET c = sluice_v.cN, ... FROM (VALUES ($1::type, ...), ...)
//          AS sluice_v(c0, ...) WHERE sluice_t.key = sluice_v.cK ...
//  Delete: DELETE FROM t AS sluice_t USING (VALUES ...) AS sluice_v(...) WHERE <key matches>
// `target` (as for one row) gives, per relation column, the target column's type name
// (TargetTable::types: format_type with typmod -1, so a cast never truncates: the assignment
// applies the column's typmod as for a single row); VALUES lists need them because their
// parameters have no column to infer from. Required for updates and deletes.
core::Result<RowStatement> BuildMultiRowStatement(const core::Relation& relation,
                                                  const RowShape& shape, size_t rows,
                                                  const TargetTable* target);

// TRUNCATE t1, t2 [RESTART IDENTITY]: exactly the tables the source truncated, never CASCADE
// (which would empty tables of the target that the source did not truncate, as PostgreSQL's own
// apply worker never does either). A table of the target that references one of them by a
// foreign key must be truncated along, or the target refuses.
std::string BuildTruncate(const core::Change& change);

// The row a change addresses, for error messages in PostgreSQL's style: "(id)=(7)". The key
// columns where there is a key, else the row's columns; long values and wide rows are cut.
std::string DescribeKey(const core::Change& change);

}  // namespace sluice::apply
