#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/lsn.h"
#include "core/relation.h"
#include "core/status.h"
#include "core/table_definition.h"
#include "core/transaction.h"

namespace sluice::apply {

// How far a target has durably applied the stream: the end LSN (and commit time) of the last
// source transaction whose changes are committed on the target.
struct AppliedPosition {
  core::Lsn end_lsn;
  core::PgTimestamp commit_time = 0;
};

// A running total a sink keeps about its own work, shown by /status and /metrics (as
// sluice_sink_<name>_total). `name` is lower_snake_case and stable; `help` is one sentence.
struct SinkCounter {
  std::string name;
  std::string help;
  uint64_t value = 0;

  friend bool operator==(const SinkCounter&, const SinkCounter&) = default;
};

// Loads one table's rows during the initial copy, in one unit that becomes durable at Finish()
// (on PostgreSQL: one COPY in one transaction). Rows are the relation's columns in order, each
// value in PostgreSQL's text form (core::Value kText) or NULL (kNull), as the stream's changes
// carry them; a target keeps or converts them as it does for streamed rows.
//
// PostgreSQL COPY text is PostgreSQL's fast path: a loader that TakesCopyText() gets the
// source's COPY text as is through WriteCopyText() (no row is parsed); every other loader gets
// WriteRows(), the caller parsing the text (codec::CopyTextParser). A caller uses one of the
// two for a loader, never both.
//
// Dropping a loader without Finish() (after an error, or on stop) discards what it wrote.
// A loader is used from one thread; several loaders may run at once on different threads.
class BulkLoader {
 public:
  virtual ~BulkLoader() = default;

  // The next rows, in order; each has one value per column of the loader's relation.
  virtual core::Status WriteRows(std::span<const core::Tuple> rows) = 0;

  // Whether WriteCopyText() takes COPY text (default: no, rows only).
  virtual bool TakesCopyText() const { return false; }
  // The next piece of the source's COPY text-format data (split anywhere, even mid-row), for a
  // loader that TakesCopyText().
  virtual core::Status WriteCopyText(std::string_view chunk) {
    (void)chunk;
    return core::Internal("this bulk loader takes rows, not COPY text");
  }

  // Ends the load and commits; afterwards the rows are durable.
  virtual core::Status Finish() = 0;
};

// A target of the stream. The pipeline drives it from one thread:
//
//   Open()                       -> position already applied (skip everything up to it)
//   BeginBatch()
//   Apply(fragment) ...          -> fragments of whole source transactions, in commit order;
//                                   a batch may hold many transactions, and a transaction's
//                                   fragments all land in the same batch
//   CommitBatch(position)        -> records `position` atomically with the data, then commits
//
// Idempotence: because the position is committed in the same target transaction as the data,
// replaying any suffix of the stream after a crash is harmless: the pipeline skips what Open()
// reports as applied. A target never shows part of a source transaction.
//
// Errors: retryable() statuses (connection lost, serialization failure, deadlock, server
// restart) mean "reconnect and replay from the last committed position"; any other status is
// permanent and names the table, the LSN and the offending key.
//
// The initial copy (snapshot: initial), before streaming starts:
//
//   PrepareCopyTarget(table)     -> per table, from the pipeline thread
//   OpenBulkLoad(relation) ...   -> per range of a table, from the copy workers' threads:
//                                   BulkLoader::WriteRows / WriteCopyText ..., Finish()
//   FinishCopyTarget(table)      -> per table, once all its loaders finished (from the copy
//                                   worker that finished last)
//
// A new target implements the streaming calls; CheckRelation, the copy hooks and
// OpenBulkLoad have neutral defaults (nothing to check; no initial copy: PrepareCopyTarget
// refuses naming the table, so the copy fails before any loader opens).
class Sink {
 public:
  virtual ~Sink() = default;

  virtual core::Result<AppliedPosition> Open() = 0;
  virtual core::Status BeginBatch() = 0;
  virtual core::Status Apply(const core::Transaction& fragment) = 0;
  // The same, for a caller that no longer needs the fragment: the sink may take its changes
  // (the pipeline's hot path; saves a copy where the sink keeps changes until commit).
  virtual core::Status Apply(core::Transaction&& fragment) {
    return Apply(static_cast<const core::Transaction&>(fragment));
  }
  virtual core::Status CommitBatch(const AppliedPosition& position) = 0;
  // The open batch waits for more of the stream. A sink that holds changes back (to net them
  // or to group them) may send them now, so the target works while the pipeline waits; the
  // batch stays open, and nothing of it is visible before CommitBatch.
  virtual core::Status StreamPaused() { return core::Status::Ok(); }
  // The sink's own counters since it was made (none by default). Called from the pipeline
  // thread, which publishes them for the status readers.
  virtual std::vector<SinkCounter> Counters() const { return {}; }
  // Drops an open batch after an error; the connection may be closed (Open() again to retry).
  virtual void AbortBatch() = 0;

  // Checks, before any row is written, that the target can take `relation` (table exists, has
  // every column the source sends). Called by the pipeline when it first sees a relation.
  // A target without a schema (a key-value store, a log) has nothing to check: OK by default.
  virtual core::Status CheckRelation(const core::Relation& relation) {
    (void)relation;
    return core::Status::Ok();
  }

  // Forgets the position Open() would report (the pipeline starts over from a new slot, whose
  // positions may be anywhere: `sluice snapshot`). Works without Open().
  virtual core::Status ForgetPosition() = 0;

  // Initial copy, before any loader for the table: makes the target table ready to receive a
  // copy of `table`. Creates it from the definition when missing and `create_missing`
  // (otherwise a missing table is an error naming it), checks its columns (CheckRelation), and
  // requires it to be empty: with `truncate_first` (sluice's own earlier, interrupted copy wrote
  // there) it is emptied; without, a non-empty table is an error naming it, so sluice never
  // destroys data it did not write.
  // Targets without an initial-copy path keep the default.
  virtual core::Status PrepareCopyTarget(const core::TableDefinition& table, bool create_missing,
                                         bool truncate_first) {
    (void)create_missing;
    (void)truncate_first;
    return core::Unsupported("this target type has no initial copy (table " +
                             table.relation.QualifiedName() + "); use snapshot: never");
  }

  // Initial copy, after every loader of the table finished: completes a table that
  // PrepareCopyTarget created (on PostgreSQL: its primary key, built once after the load, which
  // is much faster than maintaining it row by row). Idempotent.
  virtual core::Status FinishCopyTarget(const core::TableDefinition& table) {
    (void)table;
    return core::Status::Ok();
  }

  // Initial copy: a loader for `relation`'s rows, committed on its own connection. Safe to call
  // from several threads at once (each loader has its own connection). Targets without an
  // initial-copy path keep the default (they also keep PrepareCopyTarget's, which refuses
  // first, so the copy never starts).
  virtual core::Result<std::unique_ptr<BulkLoader>> OpenBulkLoad(const core::Relation& relation) {
    return core::Unsupported("this target type has no initial copy (table " +
                             relation.QualifiedName() + "); use snapshot: never");
  }
};

using SinkPtr = std::unique_ptr<Sink>;

}  // namespace sluice::apply
