#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "apply/batch_compactor.h"
#include "apply/change_context.h"
#include "apply/pg_pipeline.h"
#include "apply/schema_change.h"
#include "apply/sink.h"
#include "apply/sql_builder.h"
#include "apply/target_table.h"
#include "pg/connection.h"

namespace sluice::apply {

struct PostgresSinkOptions {
  std::string pipeline;  // names this stream's row in sluice.applied
  std::string dsn;       // libpq conninfo of the target
  // Replication origin marking every write of this sink in the target's WAL (so a reverse
  // stream can filter them out); empty means "sluice_<pipeline>".
  std::string origin_name;
  // "replica" keeps the target's ordinary triggers and FK triggers from firing; empty leaves
  // the session default.
  std::string session_replication_role = "replica";
  std::chrono::milliseconds connect_timeout{10000};
  // Statements queued in the libpq pipeline before a sync point.
  size_t pipeline_depth = 1000;
  // Adjacent row changes of one shape on one relation share multi-row statements (see
  // PostgresSink); false sends every change as its own statement.
  bool coalesce = true;
  // Row changes of a batch are netted per row before they are sent (see BatchCompactor), on
  // tables where that cannot be told apart: needs coalesce and session_replication_role
  // "replica".
  bool compact = true;
  // Once the compactor holds at least this many bytes, they are sent before the batch ends
  // whenever one side pauses: the stream (StreamPaused: sluice waits for the walsender) or the
  // target (it has finished everything sent so far). The target then works alongside the
  // stream and the commit finds little left to do. Rows changed again later in the batch are
  // sent twice, so small holdings (a few hot rows) keep waiting. 0: never.
  uint64_t flush_on_pause_bytes = uint64_t{256} * 1024;
  // A column the source sends and the target table lacks: stop naming the ALTER TABLE, or add
  // it (see "Schema changes" below).
  SchemaChangePolicy schema_changes = SchemaChangePolicy::kStop;
};

// Counters since construction (read from the pipeline thread).
struct PostgresSinkStats {
  uint64_t rows_applied = 0;    // row statements that succeeded
  uint64_t rows_not_found = 0;  // updates/deletes that matched no row (warned, not errors)
  uint64_t batches_committed = 0;
  uint64_t statements_prepared = 0;  // one-row statements
  uint64_t multi_row_statements_prepared = 0;
  uint64_t multi_row_statements_sent = 0;  // each counts its rows in rows_applied
  uint64_t row_by_row_replays = 0;         // batches re-applied row by row after an error
  uint64_t early_flushes = 0;              // compactor contents sent before the batch's end
  uint64_t changes_compacted = 0;          // row changes absorbed by the compactor
  uint64_t changes_netted = 0;             // ... of which no statement was needed for
  uint64_t copies = 0;                     // COPYs of netted inserts (rows in rows_applied)
  uint64_t copy_key_conflicts = 0;         // ... that met an existing key (see PostgresSink)
};

// The PostgreSQL target. Writes each batch in one target transaction through libpq pipeline
// mode, with prepared statements per (relation version, change shape), and upserts the batch's
// position into sluice.applied in that same transaction, so replaying after a crash is harmless.
// The session runs with session_replication_role (default replica) and a replication origin
// (pg_replication_origin_session_setup), and each commit records the source position as the
// origin's progress. Needs a superuser, or (PostgreSQL 15+) a role granted SET on
// session_replication_role and EXECUTE on the pg_replication_origin_* functions.
//
// Coalescing: within one Apply() call, a run of adjacent inserts (or key-preserving updates, or
// deletes by key) of the same relation and shape (same unchanged-TOAST columns) goes out as
// multi-row statements of 1024/256/64/16/4/1 rows (see BuildMultiRowStatement); a run ends at any
// other change, and for upserts and updates at a key already in the run, so no statement touches
// a row twice and the order of changes to any row is kept. Updates matched by the full old row,
// key-changing updates and moves (updates that must change a GENERATED ALWAYS identity column of
// the target; see BuildRowStatement) go one row at a time. What the statements may write
// depends on the target table (TargetTable, read by CheckRelations).
// Compaction (options.compact): on tables where no trigger or rule fires for the apply session
// and every unique index covers the key, a batch's row changes are netted per row and sent
// grouped by table and shape when the batch commits (or a change that must keep its place
// arrives, or 8 MB are held), so a batch of many small transactions over a few tables becomes a
// few multi-row statements; see BatchCompactor for the rules.
//
// Large groups of netted inserts (kMinCopyRows and more) are written with COPY, which costs the
// target about half of what INSERT ... ON CONFLICT does: the pipeline is synced, left for the
// COPY, and entered again, all inside the batch's transaction. COPY cannot upsert, so it is
// optimistic: rows the stream inserts do not exist on a target that follows the source. Should a
// key exist all the same (a target written by someone else), the COPY fails, the table is
// marked for upserts for the rest of the process (kept across Open()), and the batch fails with
// a retryable error, so the pipeline applies it again, now with upserts.
//
// Schema changes: the first change of each relation version (a new pgoutput Relation message
// after ALTER TABLE on the source) makes the sink check the target table again, comparing the
// version with the previous one of the same OID it has checked (CompareRelationVersions).
//  - A column the target lacks: with kAddColumns, added (the source's type, nullable, no
//    default) by ALTER TABLE inside the open batch, i.e. in the target transaction of the first
//    row that carries it; a rollback or replay of the batch undoes and redoes it. With kStop,
//    the pipeline stops with the ALTER TABLE to run.
//  - A rename or a type change (that the target had followed so far) stops the pipeline with
//    the ALTER TABLE to run; so do changes the stream cannot tell apart, and a type the target
//    lacks. If the target already has the new name or type, nothing is done.
//  - A dropped column: the target keeps it (it becomes one of the target's own columns).
//  Before a stop for a rename, a type change or a change it cannot tell apart, the sink commits
//  the batch up to the source transaction that brings the change (when that transaction is
//  already partly in the batch, it fails the batch as retryable and stops at the transaction's
//  start on the next attempt), so that after the operator's ALTER a restart applies no row
//  written under the table's previous shape (which a renamed target column would refuse).
//  Other stops (a new column with kStop, a type the target lacks) roll the batch back whole:
//  earlier rows fit the altered table.
//  The previous versions are known only since the sink's last (re)connection: the first
//  version of a table met after a start or retry has none. Then a rename looks like a new
//  column (kStop names both fixes; kAddColumns refuses to guess when the target has a column
//  the source no longer sends), and a type change goes unnoticed (the target casts the values
//  to its column's type, or refuses them loudly).
//
// Errors in a multi-row statement: the sink keeps a copy of the open batch's fragments (up to
// kMaxRetainedBytes, 8 MB). When a multi-row statement fails permanently, it rolls the target
// transaction back and re-applies the batch so far one row per statement, so the error it returns
// names the table, LSN and key of the offending row; should the rows all succeed one by one, the
// batch goes on row by row. A batch too large to keep reports the error with the first and last
// key and LSN of the failed statement's rows.
//
// The mechanics of libpq pipeline mode (queueing, sync points, reading results, the first error
// sticking) are PgPipeline's; this class decides what to send and what a result means. Each
// change's statement carries its ChangeContext (relation, command, LSN, key, source
// transaction), set when it is queued, which names every error it produces.
//
// Threads: driven from one thread, as the Sink contract says, except OpenBulkLoad(), which may be
// called from several threads at once. The bulk loaders use their own connections and may run
// on other threads.
class PostgresSink : public Sink, private PgPipeline::Listener {
 public:
  explicit PostgresSink(PostgresSinkOptions options);
  ~PostgresSink() override;

  core::Result<AppliedPosition> Open() override;
  core::Status BeginBatch() override;
  core::Status Apply(const core::Transaction& fragment) override;
  core::Status Apply(core::Transaction&& fragment) override;
  core::Status CommitBatch(const AppliedPosition& position) override;
  // Sends the compactor's contents once they reach options.flush_on_pause_bytes.
  core::Status StreamPaused() override;
  void AbortBatch() override;
  core::Status CheckRelation(const core::Relation& relation) override;
  // Deletes the pipeline's row of sluice.applied, on a short-lived connection of its own.
  core::Status ForgetPosition() override;
  // Works on a short-lived connection of its own, so it may be called before Open() and does
  // not disturb the apply session. Call from the pipeline thread.
  core::Status PrepareCopyTarget(const core::TableDefinition& table, bool create_missing,
                                 bool truncate_first) override;
  // Thread-safe: touches only its own new connection and options_, which never change after
  // construction. Loaders run with session_replication_role and client_encoding UTF8 (what
  // capture::SnapshotCopier produces), without the replication origin (one session at a time
  // may hold it).
  core::Status FinishCopyTarget(const core::TableDefinition& table) override;
  core::Result<std::unique_ptr<BulkLoader>> OpenBulkLoad(const core::Relation& relation) override;

  const PostgresSinkStats& stats() const { return stats_; }
  // stats(), named for /status and /metrics.
  std::vector<SinkCounter> Counters() const override;
  const std::string& origin_name() const { return options_.origin_name; }

 private:
  // Adjacent changes waiting to share statements (pointers into the fragment being applied).
  struct Run {
    std::string cache_key;
    RowShape shape;
    bool distinct_keys = false;
    std::vector<const core::Change*> changes;
    std::unordered_set<std::string> keys;  // AppendRowKey bytes when distinct_keys
  };

  struct Prepared {
    std::string name;
    RowStatement statement;
    bool confirmed = false;  // the server has it (Parse succeeded)
  };

  // PgPipeline::Listener: what a change's result means, and forgetting the lost session.
  void OnChangeDone(const PgPipeline::Entry& entry, const PGresult* result) override;
  void OnSessionLost() override;
  // The context of `change` (its first row's, with `rows` > 1 the last one's too), queued now
  // in the source transaction being sent (unknown while sending netted changes).
  ChangeContext ContextOf(const core::Change& first, const core::Change& last, size_t rows,
                          core::Lsn fallback_lsn) const;
  // Whether the batch's error came from a statement that held several rows or netted changes:
  // then a row-by-row replay names the source's row.
  bool ErrorNeedsReplay() const;

  core::Status Connect();
  core::Status SetUpSession();
  core::Status SetUpOrigin();
  void DropConnection();

  // Sends a row change (preparing its statement first if new); `fallback_lsn` names it in
  // errors when the change has no LSN of its own.
  core::Status SendRow(const core::Change& change, core::Lsn fallback_lsn, const RowShape& shape,
                       const std::string& cache_key);
  // Sends `changes` (all of run_'s shape) as one statement of changes.size() rows.
  core::Status SendMultiRow(const core::Change* const* changes, size_t rows,
                            core::Lsn fallback_lsn);
  // Sends the run in as few statements as the row-count buckets allow and empties it.
  core::Status FlushRun(core::Lsn fallback_lsn);
  // The end of every send (Apply, StreamPaused): a failed multi-row statement is replayed row
  // by row, so the error names the row; the first error sticks to the batch.
  core::Status SettleSend(core::Status status);
  // Sends what the compactor holds (after the open run, which came first) and empties it.
  core::Status FlushCompacted(core::Lsn fallback_lsn);
  // Whether the compactor holds enough to send before the batch's end (flush_on_pause_bytes).
  bool HoldsEnoughToSendEarly() const;
  // Sends the compactor's contents inside the open batch, then a sync point, so the target's
  // answer to it tells when the target has done all of it.
  core::Status SendHeldEarly();
  // Sends one drained group of net changes (one relation and shape, distinct keys).
  core::Status SendCompactedGroup(const std::vector<const core::Change*>& group);
  // Writes a group of netted inserts with COPY (see above).
  core::Status CopyInserts(const std::vector<const core::Change*>& group);
  // Queues every change of `fragment`, coalescing runs when `coalesce`. `movable` is the same
  // fragment when its changes may be taken (moved into the compactor), else null.
  core::Status SendChanges(const core::Transaction& fragment, bool coalesce,
                           core::Transaction* movable = nullptr);
  core::Status ApplyFragment(const core::Transaction& fragment, core::Transaction* movable);
  // Keeps a copy of `fragment` for a row-by-row replay while the batch is small enough.
  void Retain(const core::Transaction& fragment);
  // On a permanent error of a multi-row statement: rollback, re-apply the retained batch one row
  // per statement; returns that error (or OK when every row succeeded). Else returns `error`.
  core::Status ReplayRowByRow(core::Status error);
  // A relation version that the target table was not checked for, met in a fragment: the LSN
  // of its first change there and its transaction's commit LSN (for errors).
  struct Sighting {
    core::RelationPtr relation;
    core::Lsn lsn;
    core::Lsn commit_lsn;
  };
  // Whether `relation` differs from the version last checked for its OID (names or types);
  // when not, notes that the transaction committing at `commit_lsn` uses it.
  bool NeedsCheck(const core::Relation& relation, core::Lsn commit_lsn);
  // Checks the target tables of `relations` (following schema changes, see the class comment)
  // and records what they have. `*schema_stop` is set when the error is a schema change the
  // operator must follow on the target, with the open batch still healthy.
  core::Status CheckRelations(const std::vector<Sighting>& relations, bool* schema_stop = nullptr);
  // The part of CheckRelations that compares `sighting` with the previous version and makes
  // the target follow (kAddColumns) or names what to run; `target_columns` is re-read after
  // columns were added. `dropped` gets the columns the source no longer sends.
  core::Status FollowSchemaChange(const Sighting& sighting,
                                  std::vector<TargetColumn>& target_columns,
                                  std::vector<std::string>* dropped, bool* schema_stop);
  // Checks the relations of `fragment` that need it (CheckRelations), before anything of it is
  // queued.
  core::Status CheckFragment(const core::Transaction& fragment, bool* schema_stop);
  // After a rollback of the open batch: the relation versions it checked are forgotten again
  // (the ALTERs it made are undone), the previous ones restored.
  void RestoreReplacedVersions();
  // Returns `stop` (a schema change the target must follow by hand) after committing the batch
  // up to the source transaction that `fragment` belongs to; see the class comment.
  core::Status StopBeforeTransaction(const core::Transaction& fragment, core::Status stop);
  CompactionMode CompactionModeFor(const core::Relation& relation) const;
  // The checked target table of `relation`, or null before CheckRelations.
  const TargetTable* TargetFor(const core::Relation& relation) const;
  // Fails, naming them, when tables of the target outside `change`'s list reference a listed
  // one by a foreign key (the target would refuse the truncate: sluice never cascades).
  core::Status CheckTruncateBlockers(const core::Change& change, core::Lsn lsn);

  const PostgresSinkOptions options_;  // const: OpenBulkLoad() reads it from other threads
  // The session. Its error() is the batch's first error: sticky for the open batch (until
  // AbortBatch), cleared after each sync outside a batch.
  PgPipeline pipeline_;
  bool in_batch_ = false;
  // The source transaction whose changes are being queued (ChangeContext); none while netted
  // changes are sent.
  uint32_t sending_xid_ = 0;
  core::Lsn sending_commit_lsn_;
  std::vector<const char*> param_values_;  // scratch for PgPipeline::SendPrepared

  std::unordered_map<std::string, Prepared> prepared_;
  uint64_t next_statement_ = 1;
  // The last relation version checked against the target, by OID (a copy: the check depends
  // only on schema, table, column names and types), and the commit LSN of the last source
  // transaction seen using it. Forgotten with the connection: after a reconnection the stream
  // starts again from the durable position.
  struct CheckedRelation {
    core::Relation relation;
    core::Lsn last_used_in;
  };
  std::unordered_map<core::Oid, CheckedRelation> checked_;
  // What the open batch's checks replaced, per OID (first replacement only), for
  // RestoreReplacedVersions.
  struct ReplacedVersion {
    std::optional<CheckedRelation> checked;
    std::optional<TargetTable> table;
    CompactionMode mode = CompactionMode::kNone;
  };
  std::unordered_map<core::Oid, ReplacedVersion> replaced_in_batch_;
  // Per checked relation, what the target table has (types, identity columns, own columns).
  std::unordered_map<core::Oid, TargetTable> target_tables_;
  // Per checked relation, what the compactor may do with its changes.
  std::unordered_map<core::Oid, CompactionMode> compaction_modes_;
  Run run_;
  std::string key_scratch_;
  BatchCompactor compactor_;
  core::Lsn last_fragment_lsn_;  // commit LSN of the latest fragment, for messages
  // End of the last whole source transaction applied in the open batch (StopBeforeTransaction).
  std::optional<AppliedPosition> batch_last_end_;
  // A schema change met in a later fragment of a transaction: the stop that the next attempt
  // returns at the transaction's first fragment, once everything before it is committed.
  struct PendingStop {
    core::Lsn commit_lsn;
    core::Status status;
  };
  std::optional<PendingStop> pending_schema_stop_;
  // Tables (by OID) where an optimistic COPY met an existing key: upserts only. Survives Open().
  std::unordered_set<core::Oid> upsert_only_;
  bool sending_compacted_ = false;  // statements sent now carry netted changes
  // The batch so far, while coalescing and smaller than kMaxRetainedBytes.
  std::vector<core::Transaction> retained_;
  size_t retained_bytes_ = 0;
  bool retained_complete_ = true;
  bool coalesce_in_batch_ = true;  // false after a replay: the rest of the batch goes row by row
  bool multi_row_in_batch_ = false;
  size_t not_found_warnings_in_batch_ = 0;

  PostgresSinkStats stats_;
};

}  // namespace sluice::apply
