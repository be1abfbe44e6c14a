#include "control/pipeline_runner.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <thread>

#include "capture/logical_capture.h"
#include "capture/slot_check.h"
#include "control/apply_loop.h"
#include "control/capture_setup.h"
#include "control/capture_stream.h"
#include "control/initial_copy.h"
#include "control/pipeline_state.h"
#include "control/slot_policy.h"
#include "control/stream_filter.h"
#include "control/table_watcher.h"
#include "core/failpoint.h"
#include "core/pg_time.h"
#include "core/wall_clock.h"

namespace sluice::control {
namespace {

using Clock = std::chrono::steady_clock;

// How often a streaming pipeline looks for tables that joined (see TableWatcher).
constexpr auto kTableWatchInterval = std::chrono::seconds(10);

using core::UnixMillisNow;

// "schema.name", as the stream's relations and the copy records name tables.
std::string TableName(const capture::TableInfo& table) { return table.schema + "." + table.name; }

// A name for a temporary slot beside the pipeline's: unique to this process and moment (a
// crashed sluice's temporary slot lingers until its walsender notices), within PostgreSQL's 63.
std::string TemporarySlotName(const std::string& slot) {
  const auto now = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  char suffix[32];
  std::snprintf(suffix, sizeof(suffix), "_copy_%x",
                static_cast<unsigned>(now ^ static_cast<uint64_t>(::getpid())));
  return slot.substr(0, 63 - std::strlen(suffix)) + suffix;
}

}  // namespace

const char* PipelinePhaseName(PipelinePhase phase) {
  switch (phase) {
    case PipelinePhase::kStarting:
      return "starting";
    case PipelinePhase::kCopying:
      return "copying";
    case PipelinePhase::kStreaming:
      return "streaming";
    case PipelinePhase::kRetrying:
      return "retrying";
    case PipelinePhase::kStopped:
      return "stopped";
    case PipelinePhase::kFailed:
      return "failed";
  }
  return "unknown";
}

PipelineRunner::PipelineRunner(const config::Config& config, const config::PipelineConfig& pipeline,
                               state::CheckpointStore& store, SinkFactory make_sink,
                               StreamBounds bounds)
    : config_(config),
      pipeline_(pipeline),
      store_(store),
      make_sink_(std::move(make_sink)),
      bounds_(bounds),
      limits_(pipeline.target.apply),
      tables_(pipeline.source.tables) {}

void PipelineRunner::SetApplyLimits(const config::ApplyConfig& limits) {
  std::lock_guard lock(limits_mu_);
  limits_ = limits;
}

config::ApplyConfig PipelineRunner::CurrentLimits() const {
  std::lock_guard lock(limits_mu_);
  return limits_;
}

void PipelineRunner::SetTables(std::vector<std::string> tables) {
  {
    std::lock_guard lock(limits_mu_);
    if (tables == tables_) return;
    tables_ = std::move(tables);
  }
  restart_.store(true);
}

std::vector<std::string> PipelineRunner::CurrentTables() const {
  std::lock_guard lock(limits_mu_);
  return tables_;
}

PipelineRunner::~PipelineRunner() = default;

std::string PipelineRunner::SnapshotRemedy() const {
  return "to copy the tables again from a new slot and stream on from there, run: sluice "
         "snapshot --config " +
         config_.source_file + " --pipeline " + pipeline_.name;
}

void PipelineRunner::RecordError(const core::Status& status) {
  metrics_.SetLastError(status.message());
  const state::PipelineErrorRecord record{status.message(), UnixMillisNow(), !status.retryable()};
  error_recorded_ = true;  // cleared at the next success, stored or not
  if (core::Status st = store_.Save(state::LastErrorKey(pipeline_.name), record); !st.ok()) {
    spdlog::warn("pipeline {}: cannot keep the last error in the state store: {}", pipeline_.name,
                 st.message());
  }
}

void PipelineRunner::LoadRecordedError() {
  auto stored = store_.Load(state::LastErrorKey(pipeline_.name));
  if (!stored.ok()) {
    error_recorded_ = true;  // a damaged record goes at the next success too
    return;
  }
  if (!stored->has_value()) return;
  error_recorded_ = true;  // shown until the next success, which deletes it
  metrics_.SetLastError((*stored)->message, (*stored)->at_unix_ms);
}

void PipelineRunner::NoteProgress(bool success) {
  metrics_.last_progress_unix_ms = UnixMillisNow();
  if (!success || !error_recorded_) return;
  if (core::Status st = store_.Erase(state::LastErrorKey(pipeline_.name)); !st.ok()) {
    spdlog::warn("pipeline {}: cannot clear the last error: {}", pipeline_.name, st.message());
    return;
  }
  error_recorded_ = false;
  metrics_.SetLastError("");
  spdlog::info("pipeline {}: making progress again; last error cleared", pipeline_.name);
}

void PipelineRunner::NoteIdle(int64_t source_heard_unix_ms) {
  // An idle loop that heard nothing is no progress: a hung source must stop the watchdog.
  if (source_heard_unix_ms <= metrics_.last_progress_unix_ms.load()) return;
  NoteProgress(/*success=*/true);
  metrics_.last_progress_unix_ms = source_heard_unix_ms;
}

core::Status PipelineRunner::Run(const std::atomic<bool>& stop) {
  auto backoff = std::chrono::milliseconds(250);
  constexpr auto kMaxBackoff = std::chrono::milliseconds(10000);
  LoadRecordedError();  // shown until this run succeeds
  while (!stop.load()) {
    core::Status status = RunOnce(stop);
    if (status.ok() && restart_.exchange(false) && !stop.load()) {
      continue;  // tables changed: prepare again (copies them) and stream on
    }
    if (status.ok() || stop.load()) break;
    // Some steps (connecting, preparing the source) report without the pipeline's name.
    const std::string where = "pipeline " + pipeline_.name;
    if (status.message().rfind(where + ":", 0) != 0) status = status.WithContext(where);
    metrics_.errors.fetch_add(1);
    RecordError(status);
    if (!status.retryable()) {
      metrics_.phase = PipelinePhase::kFailed;
      return status;
    }
    metrics_.phase = PipelinePhase::kRetrying;
    spdlog::warn("pipeline {}: {}; retrying in {} ms", pipeline_.name, status.message(),
                 backoff.count());
    const auto until = Clock::now() + backoff;
    while (!stop.load() && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
  metrics_.phase = PipelinePhase::kStopped;
  return core::Status::Ok();
}

core::Status PipelineRunner::Prepare(const std::atomic<bool>& stop) {
  SLUICE_ASSIGN_OR_RETURN(Start start, PrepareStream(stop));
  if (start.stopped)
    return core::Aborted("pipeline " + pipeline_.name + ": stopped during the copy");
  return core::Status::Ok();
}

core::Status PipelineRunner::RunOnce(const std::atomic<bool>& stop) {
  SLUICE_ASSIGN_OR_RETURN(Start start, PrepareStream(stop));
  if (start.stopped) return core::Status::Ok();  // interrupted copy: redone on next start
  return Stream(std::move(start), stop);
}

core::Status PipelineRunner::StartOver(PipelineState& state) {
  const std::string where = "pipeline " + pipeline_.name;
  capture::CaptureOptions options = CaptureOptionsFor(config_, pipeline_);
  SLUICE_ASSIGN_OR_RETURN(auto connection, capture::ReplicationConnection::Connect(
                                               options.dsn, options.connect_timeout));
  capture::SlotManager slots(*connection);
  SLUICE_ASSIGN_OR_RETURN(std::optional<capture::SlotState> slot, slots.InspectSlot(options.slot));
  if (slot && slot->active) {
    return core::Unavailable(where + ": slot " + options.slot + " on " + connection->endpoint() +
                             " is in use by process " + std::to_string(slot->active_pid) +
                             "; stop whatever streams from it (another sluice?) first");
  }
  if (slot) {
    spdlog::warn("{}: dropping slot {} on {} (confirmed {}) as `sluice snapshot` asked", where,
                 options.slot, connection->endpoint(), slot->confirmed_flush_lsn.ToString());
    core::Status dropped = slots.DropSlot(options.slot);
    if (!dropped.ok() && dropped.code() != core::StatusCode::kNotFound) {
      return dropped.WithContext(where);
    }
  }
  // One batch: a crash leaves the old position whole (and the request, so this runs again)
  // or forgotten whole, never a checkpoint without the slot record it belongs to.
  SLUICE_RETURN_IF_ERROR(state.ForgetPosition());
  SLUICE_RETURN_IF_ERROR(core::Failpoint(core::failpoint::kAfterSnapshotForget));
  // The target's own record would otherwise win over the new slot's positions, which need not
  // be higher (a source restored or replaced).
  SLUICE_RETURN_IF_ERROR(sink_->ForgetPosition().WithContext(where));
  return core::Status::Ok();
}

core::Result<PipelineRunner::Start> PipelineRunner::PrepareStream(const std::atomic<bool>& stop) {
  const std::string where = "pipeline " + pipeline_.name;
  metrics_.phase = PipelinePhase::kStarting;
  // One sink for every attempt: Open() reconnects, and what the sink learned about the target
  // (tables that need upserts) stays.
  if (!sink_) {
    SLUICE_ASSIGN_OR_RETURN(sink_, make_sink_());
  }
  apply::Sink& sink = *sink_;
  PipelineState state(store_, pipeline_.name);

  SLUICE_ASSIGN_OR_RETURN(std::optional<state::SnapshotRequest> request, state.LoadRequest());
  const bool start_over = request && request->all();
  if (start_over) {
    spdlog::info("{}: `sluice snapshot` asked for every table: starting over from a new slot",
                 where);
    SLUICE_RETURN_IF_ERROR(StartOver(state));
  }

  SLUICE_ASSIGN_OR_RETURN(const bool has_local_state, state.HasPosition());
  SLUICE_ASSIGN_OR_RETURN(std::optional<state::SlotRecord> slot_record, state.LoadSlot());
  const std::string& slot_name = pipeline_.source.slot;
  const bool owned = slot_record && slot_record->name == slot_name;
  capture::CaptureOptions options = CaptureOptionsFor(config_, pipeline_);
  options.tables = CurrentTables();
  options.slot_policy.remedy = SnapshotRemedy();
  if (!has_local_state && !owned && !pipeline_.source.adopt_slot) {
    // A state directory that never saw the pipeline's slot leaves one that exists alone, before
    // it touches the target (another daemon with this pipeline name may be applying there).
    SLUICE_ASSIGN_OR_RETURN(std::optional<capture::SlotState> existing,
                            capture::LogicalCapture::InspectSlot(options));
    capture::SlotPolicy foreign;
    foreign.refuse_existing = true;
    if (existing) {
      SLUICE_RETURN_IF_ERROR(
          capture::CheckSlotUsable(existing, slot_name, foreign, existing->endpoint)
              .WithContext(where));
    }
  }

  SLUICE_ASSIGN_OR_RETURN(apply::AppliedPosition applied, sink.Open());
  SLUICE_ASSIGN_OR_RETURN(auto checkpoint, store_.LoadCheckpoint(pipeline_.name));
  SLUICE_ASSIGN_OR_RETURN(const bool snapshot_done, state.SnapshotDone());
  const bool copies = pipeline_.snapshot == "initial";
  const bool copy_unfinished = copies && !snapshot_done;

  // The target's own record is the truth for what it holds; the RocksDB checkpoint can only be
  // behind it (a crash between target commit and checkpoint) or carry the copy's end.
  Start start;
  start.resume = applied.end_lsn;
  if (checkpoint && checkpoint->durable_lsn > start.resume) start.resume = checkpoint->durable_lsn;

  SlotFacts facts;
  facts.has_local_state = has_local_state;
  facts.target_has_position = applied.end_lsn.valid();
  facts.owned = owned;
  facts.copy_unfinished = copy_unfinished;
  facts.resume = start.resume;
  facts.adopt_slot = pipeline_.source.adopt_slot;
  options.slot_policy = SlotPolicyFor(facts, SnapshotRemedy());
  if (options.slot_policy.may_create && !owned) {
    // Recorded before the slot exists, so a crash right after making it still leaves it ours.
    SLUICE_RETURN_IF_ERROR(state.SaveSlot({slot_name, state::SlotState::kCreating, {}}));
  }
  SLUICE_ASSIGN_OR_RETURN(start.capture, capture::LogicalCapture::Open(options));

  if (copy_unfinished && !start.capture->slot_created()) {
    // An earlier copy did not finish (or crashed right after making the slot): its snapshot is
    // gone, so start over with the slot made again for a fresh snapshot.
    spdlog::info("{}: initial copy incomplete; making slot {} again for a new snapshot", where,
                 slot_name);
    start.capture.reset();
    SLUICE_RETURN_IF_ERROR(capture::LogicalCapture::DropSlot(options));
    SLUICE_RETURN_IF_ERROR(state.SaveSlot({slot_name, state::SlotState::kCreating, {}}));
    options.slot_policy = capture::SlotPolicy{};
    options.slot_policy.remedy = SnapshotRemedy();
    SLUICE_ASSIGN_OR_RETURN(start.capture, capture::LogicalCapture::Open(options));
  }
  if (start.capture->slot_created()) {
    SLUICE_RETURN_IF_ERROR(
        state.SaveSlot({slot_name, state::SlotState::kCreated, start.capture->consistent_point()}));
  } else if (!owned || slot_record->state == state::SlotState::kCreating) {
    // It passed every check against the durable position: streaming from it loses nothing.
    SLUICE_RETURN_IF_ERROR(
        state.SaveSlot({slot_name, state::SlotState::kAdopted, start.capture->consistent_point()}));
  }

  if (copy_unfinished) {
    metrics_.phase = PipelinePhase::kCopying;
    CopyScope scope;
    scope.snapshot_lsn = start.capture->consistent_point();
    scope.truncate_all = start_over;
    SLUICE_RETURN_IF_ERROR(RunInitialCopy(config_, pipeline_, start.capture->exported_snapshot(),
                                          sink, store_, metrics_, stop, scope));
    if (stop.load()) {
      start.stopped = true;
      return start;
    }
    // The copy holds everything up to the consistent point; the stream starts there, so the
    // slot must still be there (an operator may have dropped it during a long copy).
    const core::Lsn point = start.capture->consistent_point();
    capture::SlotPolicy after_copy;
    after_copy.may_create = false;
    after_copy.durable_lsn = point;
    after_copy.remedy = SnapshotRemedy();
    SLUICE_RETURN_IF_ERROR(start.capture->VerifySlot(after_copy));
    // Together: a checkpoint at the copy's end with the copy not done would be a position
    // whose rows are not all there.
    SLUICE_RETURN_IF_ERROR(state.MarkSnapshotDone(state::Checkpoint{point, 0, UnixMillisNow()}));
    start.resume = point;
  } else if (!copies && !snapshot_done) {
    // snapshot: never streams from the slot's position; recorded so a slot lost from now on is
    // noticed.
    const core::Lsn point = start.capture->consistent_point();
    std::optional<state::Checkpoint> checkpoint;
    if (point.valid() && !start.resume.valid()) {
      checkpoint = state::Checkpoint{point, 0, UnixMillisNow()};
      start.resume = point;
    }
    SLUICE_RETURN_IF_ERROR(state.MarkSnapshotDone(checkpoint));
  }

  std::vector<StreamFilter::Table> published;
  std::set<std::string> published_names;
  for (const capture::TableInfo& table : start.capture->published_tables()) {
    published.push_back({table.oid, TableName(table)});
    published_names.insert(TableName(table));
  }
  if (copies) {
    SLUICE_ASSIGN_OR_RETURN(auto records, state.LoadTables());
    if (records.empty() && snapshot_done) {
      // Copied before sluice kept a record per table: every table published then was copied.
      SLUICE_RETURN_IF_ERROR(state.MarkTablesCopied(published_names, core::Lsn()));
      SLUICE_ASSIGN_OR_RETURN(records, state.LoadTables());
    }
    if (request && !request->all()) {
      std::vector<std::string> again;
      for (const std::string& table : request->tables) {
        if (!published_names.contains(table)) {
          // `sluice snapshot` checked it; the table has gone since.
          spdlog::warn(
              "{}: `sluice snapshot` asked for table {}, which publication {} does not "
              "publish (any more); nothing to copy for it",
              where, table, pipeline_.source.publication);
          continue;
        }
        if (records[table].done) again.push_back(table);
      }
      SLUICE_RETURN_IF_ERROR(state.MarkTablesForCopy(again));
      SLUICE_ASSIGN_OR_RETURN(records, state.LoadTables());
    }
    std::set<std::string> to_copy;
    for (const std::string& table : published_names) {
      auto it = records.find(table);
      if (it == records.end() || !it->second.done) to_copy.insert(table);
    }
    if (!to_copy.empty()) {
      // The pipeline's slot stays where it is: it is the stream of every other table.
      SLUICE_RETURN_IF_ERROR(CopyTables(to_copy, stop));
      if (stop.load()) {
        start.stopped = true;
        return start;
      }
      SLUICE_ASSIGN_OR_RETURN(records, state.LoadTables());
    }
    for (const auto& [table, record] : records) {
      if (!record.done) continue;
      start.known_tables.insert(table);
      if (record.snapshot_lsn.valid() && record.snapshot_lsn > start.resume) {
        start.table_starts[table] = record.snapshot_lsn;
      }
    }
  }
  if (request) SLUICE_RETURN_IF_ERROR(state.ClearRequest());
  return start;
}

core::Status PipelineRunner::CopyTables(const std::set<std::string>& tables,
                                        const std::atomic<bool>& stop) {
  const std::string where = "pipeline " + pipeline_.name;
  std::string list;
  for (const std::string& table : tables) list += (list.empty() ? "" : ", ") + table;
  capture::CaptureOptions options = CaptureOptionsFor(config_, pipeline_);
  options.tables = CurrentTables();
  options.temporary_slot = TemporarySlotName(pipeline_.source.slot);
  // The temporary slot lives as long as this connection: its snapshot is what the copy reads,
  // its consistent point where the copied tables' stream begins.
  SLUICE_ASSIGN_OR_RETURN(auto snapshot, capture::LogicalCapture::Open(options));
  spdlog::info("{}: copying {} at {} before streaming them", where, list,
               snapshot->consistent_point().ToString());
  metrics_.phase = PipelinePhase::kCopying;
  CopyScope scope;
  scope.tables = tables;
  scope.snapshot_lsn = snapshot->consistent_point();
  return RunInitialCopy(config_, pipeline_, snapshot->exported_snapshot(), *sink_, store_, metrics_,
                        stop, scope);
}

core::Status PipelineRunner::Stream(Start start, const std::atomic<bool>& stop) {
  const std::string where = "pipeline " + pipeline_.name;
  capture::LogicalCapture& capture = *start.capture;
  core::Lsn resume = start.resume;
  if (bounds_.start > resume) resume = bounds_.start;
  spdlog::info("{}: streaming from {}{}", where,
               resume.valid() ? resume.ToString() : std::string("the slot's position"),
               bounds_.end.valid() ? " until " + bounds_.end.ToString() : std::string());

  const bool copies = pipeline_.snapshot == "initial";
  std::vector<StreamFilter::Table> published;
  for (const capture::TableInfo& table : capture.published_tables()) {
    published.push_back({table.oid, TableName(table)});
  }
  StreamFilter filter(std::move(published), start.known_tables, start.table_starts, copies);
  std::unique_ptr<TableWatcher> watcher;
  if (copies) {
    TableWatcherOptions watch;
    watch.pipeline = pipeline_.name;
    watch.dsn = pipeline_.source.dsn;
    watch.connect_timeout = pipeline_.source.connect_timeout;
    watch.publication = pipeline_.source.publication;
    if (pipeline_.source.create_publication) watch.patterns = CurrentTables();
    watch.known = start.known_tables;
    watch.interval = kTableWatchInterval;
    watcher = std::make_unique<TableWatcher>(std::move(watch));
  }

  ApplyLoopOptions options;
  options.pipeline = pipeline_.name;
  options.limits = [this] { return CurrentLimits(); };
  options.hooks.wind_down = [&]() -> core::Result<bool> {
    if (watcher && watcher->found()) {
      SLUICE_RETURN_IF_ERROR(watcher->error());
      restart_ = true;  // new tables: copied by the next PrepareStream
    }
    // Tables changed: end at the next transaction boundary, start again.
    return restart_.load();
  };
  options.hooks.admit = [&](core::Transaction& txn) -> core::Result<FragmentVerdict> {
    if (!filter.active()) return FragmentVerdict::kApply;
    const std::string uncopied = filter.Filter(txn);
    for (const std::string& table : filter.TakeUnpublished()) {
      spdlog::warn("{}: changes to {} are skipped: the table is not published (any more)", where,
                   table);
    }
    if (uncopied.empty()) return FragmentVerdict::kApply;
    // Its earlier rows are in no copy: copy it first. The open batch is dropped and streamed
    // again, with the new table's changes from the copy's position on.
    spdlog::info("{}: table {} has changes but was never copied: copying it first", where,
                 uncopied);
    restart_ = true;
    return FragmentVerdict::kRestart;
  };
  options.hooks.on_durable = [this] { NoteProgress(/*success=*/true); };
  options.hooks.on_idle = [this](int64_t heard_unix_ms) { NoteIdle(heard_unix_ms); };

  metrics_.phase = PipelinePhase::kStreaming;
  CaptureStream stream(capture, pipeline_.name, pipeline_.capture.queue_capacity,
                       pipeline_.capture.queue_bytes());
  ApplyLoop loop(std::move(options), stream, *sink_, store_, metrics_, durable_);
  return loop.Run(resume, bounds_.end, stop);
}

bool PipelineRunner::WaitUntilDurable(core::Lsn lsn, std::chrono::milliseconds timeout) const {
  return durable_.WaitFor(lsn, timeout);
}

}  // namespace sluice::control
