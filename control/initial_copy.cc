#include "control/initial_copy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "capture/snapshot_copier.h"
#include "control/bulk_load_feed.h"
#include "core/failpoint.h"
#include "core/table_definition.h"
#include "core/thread_name.h"
#include "core/wall_clock.h"

namespace sluice::control {
namespace {

using Clock = std::chrono::steady_clock;

// How often a running table's progress is written to the store (each write is synced).
constexpr auto kProgressSaveInterval = std::chrono::seconds(5);
// Chunks between looks at the clock.
constexpr uint64_t kChunksPerClockCheck = 4096;

// One table's copy, shared by the workers copying its ranges.
struct TableCopy {
  const core::TableDefinition* def = nullptr;
  int ranges = 0;
  std::atomic<uint64_t> rows{0};
  std::atomic<uint64_t> bytes{0};

  std::mutex mu;  // guards what follows, and orders the table's store writes
  int ranges_done = 0;
  bool started = false;
  Clock::time_point started_at;
  Clock::time_point last_saved;
};

struct WorkItem {
  TableCopy* table = nullptr;
  capture::CopyRange range;
};

std::string RangeLabel(const WorkItem& item) {
  std::string label = item.table->def->relation.QualifiedName();
  if (item.range.count > 1) {
    label += " (range " + std::to_string(item.range.index + 1) + "/" +
             std::to_string(item.range.count) + ": " + item.range.description + ")";
  }
  return label;
}

class InitialCopy {
 public:
  InitialCopy(const config::PipelineConfig& pipeline, apply::Sink& sink,
              state::CheckpointStore& store, PipelineMetrics& metrics,
              const std::atomic<bool>& stop, const CopyScope& scope)
      : pipeline_(pipeline),
        sink_(sink),
        store_(store),
        metrics_(metrics),
        stop_(stop),
        scope_(scope) {}

  core::Status Run(const std::string& snapshot);

 private:
  // Writes the table's progress record; call with table.mu held.
  core::Status SaveLocked(TableCopy& table, bool done);
  core::Status PrepareTable(TableCopy& table);
  void Worker(capture::SnapshotCopier& copier);
  core::Status CopyItem(capture::SnapshotCopier& copier, WorkItem& item);
  void Fail(core::Status status);
  bool ShouldStop() const {
    return stop_.load(std::memory_order_relaxed) || failed_.load(std::memory_order_relaxed);
  }

  const config::PipelineConfig& pipeline_;
  apply::Sink& sink_;
  state::CheckpointStore& store_;
  PipelineMetrics& metrics_;
  const std::atomic<bool>& stop_;
  const CopyScope& scope_;

  std::vector<core::TableDefinition> definitions_;
  std::deque<TableCopy> tables_;  // deque: TableCopy is not movable
  std::vector<WorkItem> items_;
  std::atomic<size_t> next_item_{0};

  std::atomic<bool> failed_{false};
  std::mutex error_mu_;
  core::Status first_error_;  // guarded by error_mu_
};

core::Status InitialCopy::SaveLocked(TableCopy& table, bool done) {
  state::TableCopyRecord record;
  record.rows = table.rows.load(std::memory_order_relaxed);
  record.bytes = table.bytes.load(std::memory_order_relaxed);
  record.estimated_rows = table.def->estimated_rows;
  record.estimated_bytes = table.def->estimated_bytes;
  record.ranges = table.ranges;
  record.ranges_done = table.ranges_done;
  record.done = done;
  record.updated_at_unix_ms = core::UnixMillisNow();
  if (done) record.snapshot_lsn = scope_.snapshot_lsn;
  table.last_saved = Clock::now();
  return store_
      .Save(state::TableCopyKey(pipeline_.name, table.def->relation.QualifiedName()), record)
      .WithContext("pipeline " + pipeline_.name + ": saving copy progress of " +
                   table.def->relation.QualifiedName());
}

core::Status InitialCopy::PrepareTable(TableCopy& table) {
  const core::TableDefinition& def = *table.def;
  // An earlier attempt of this pipeline started copying here: whatever is in the table is ours
  // (a partial copy from an older snapshot) and must go.
  SLUICE_ASSIGN_OR_RETURN(
      auto earlier, store_.Load(state::TableCopyKey(pipeline_.name, def.relation.QualifiedName())));
  const bool truncate_first = earlier.has_value() || scope_.truncate_all;
  SLUICE_RETURN_IF_ERROR(
      sink_.PrepareCopyTarget(def, pipeline_.target.postgres.create_tables, truncate_first)
          .WithContext("pipeline " + pipeline_.name + ": preparing the initial copy of " +
                       def.relation.QualifiedName()));
  // Recorded before any loader writes, so a crash from here on leaves a marker saying the
  // target table holds sluice's rows.
  std::lock_guard lock(table.mu);
  return SaveLocked(table, /*done=*/false);
}

void InitialCopy::Fail(core::Status status) {
  std::lock_guard lock(error_mu_);
  if (first_error_.ok()) first_error_ = std::move(status);
  failed_.store(true);
}

core::Status InitialCopy::CopyItem(capture::SnapshotCopier& copier, WorkItem& item) {
  TableCopy& table = *item.table;
  const core::TableDefinition& def = *table.def;
  const std::string label = RangeLabel(item);
  {
    std::lock_guard lock(table.mu);
    if (!table.started) {
      table.started = true;
      table.started_at = Clock::now();
    }
  }

  auto loader = sink_.OpenBulkLoad(def.relation);
  if (!loader.ok()) return loader.status().WithContext("initial copy of " + label);
  // The source's COPY text as is for a loader that takes it, else parsed into rows.
  BulkLoadFeed feed(**loader, def.relation);

  uint64_t chunks = 0;
  core::Status write_error;
  auto on_chunk = [&](std::string_view chunk) -> core::Status {
    if (ShouldStop()) return core::Aborted("initial copy stopped");
    core::Status written = feed.Write(chunk);
    if (!written.ok()) {
      write_error = written.WithContext("initial copy of " + label);
      return write_error;
    }
    table.rows.fetch_add(1, std::memory_order_relaxed);
    table.bytes.fetch_add(chunk.size(), std::memory_order_relaxed);
    metrics_.copy_rows.fetch_add(1, std::memory_order_relaxed);
    metrics_.copy_bytes.fetch_add(chunk.size(), std::memory_order_relaxed);
    if (++chunks % kChunksPerClockCheck == 0) {
      std::unique_lock lock(table.mu, std::try_to_lock);  // another worker is saving: skip
      if (lock.owns_lock() && Clock::now() - table.last_saved >= kProgressSaveInterval) {
        SLUICE_RETURN_IF_ERROR(SaveLocked(table, /*done=*/false));
      }
    }
    return core::Status::Ok();
  };

  capture::CopyCounters counters;
  SLUICE_RETURN_IF_ERROR(copier.CopyOut(def, item.range, on_chunk, &counters));
  // The loader is dropped unfinished on any error above, which rolls its rows back.
  SLUICE_RETURN_IF_ERROR(feed.Finish().WithContext("initial copy of " + label));
  // Committed on the target, not yet recorded: a crash here copies the table again.
  SLUICE_RETURN_IF_ERROR(core::Failpoint(core::failpoint::kAfterCopyCommit));
  spdlog::debug("pipeline {}: copied {}: {} rows", pipeline_.name, label, counters.rows);

  std::lock_guard lock(table.mu);
  ++table.ranges_done;
  const bool done = table.ranges_done == table.ranges;
  if (done) {
    // The key is built once the rows are in (a table sluice created has none until now); the
    // table only counts as copied after that.
    SLUICE_RETURN_IF_ERROR(sink_.FinishCopyTarget(def).WithContext("initial copy of " + label));
  }
  SLUICE_RETURN_IF_ERROR(SaveLocked(table, done));
  if (done) {
    metrics_.copy_tables_done.fetch_add(1, std::memory_order_relaxed);
    const double seconds = std::chrono::duration<double>(Clock::now() - table.started_at).count();
    spdlog::info("pipeline {}: copied {}: {} rows, {:.1f} MB in {:.1f} s", pipeline_.name,
                 def.relation.QualifiedName(), table.rows.load(),
                 static_cast<double>(table.bytes.load()) / (1024.0 * 1024.0), seconds);
  }
  return core::Status::Ok();
}

void InitialCopy::Worker(capture::SnapshotCopier& copier) {
  while (!ShouldStop()) {
    const size_t index = next_item_.fetch_add(1);
    if (index >= items_.size()) return;
    core::Status status = CopyItem(copier, items_[index]);
    if (!status.ok()) {
      // A stop request surfaces as Aborted from our own chunk callback: not a failure.
      if (status.code() == core::StatusCode::kAborted && stop_.load()) return;
      if (status.code() == core::StatusCode::kAborted && failed_.load()) return;
      Fail(std::move(status));
      return;
    }
  }
}

core::Status InitialCopy::Run(const std::string& snapshot) {
  const std::string where = "pipeline " + pipeline_.name;
  const auto began = Clock::now();
  const int jobs = std::max(1, pipeline_.target.apply.copy_jobs);

  SLUICE_ASSIGN_OR_RETURN(auto first,
                          capture::SnapshotCopier::Open(pipeline_.source.dsn, snapshot,
                                                        pipeline_.source.connect_timeout));
  auto described = first->DescribeTables(pipeline_.source.publication);
  if (!described.ok()) return described.status().WithContext(where + ": initial copy");
  definitions_ = std::move(described).value();
  if (!scope_.tables.empty()) {
    std::erase_if(definitions_, [&](const core::TableDefinition& def) {
      return !scope_.tables.contains(def.relation.QualifiedName());
    });
    if (definitions_.size() != scope_.tables.size()) {
      std::string missing;
      for (const std::string& table : scope_.tables) {
        const bool found =
            std::any_of(definitions_.begin(), definitions_.end(),
                        [&](const auto& d) { return d.relation.QualifiedName() == table; });
        if (!found) missing += (missing.empty() ? "" : ", ") + table;
      }
      return core::NotFound(where + ": publication " + pipeline_.source.publication +
                            " does not publish " + missing);
    }
  }

  metrics_.copy_tables_total.store(definitions_.size());
  metrics_.copy_tables_done.store(0);
  metrics_.copy_rows.store(0);
  metrics_.copy_bytes.store(0);
  if (definitions_.empty()) {
    spdlog::warn("{}: publication {} publishes no tables; nothing to copy", where,
                 pipeline_.source.publication);
    return core::Status::Ok();
  }

  // Largest tables first, so the long copies start early and the small ones fill the gaps.
  std::vector<size_t> order(definitions_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return definitions_[a].estimated_bytes > definitions_[b].estimated_bytes;
  });
  const int pieces = jobs > 1 ? 2 * jobs : 1;
  for (size_t i : order) {
    const core::TableDefinition& def = definitions_[i];
    auto ranges = first->PlanRanges(def, pieces);
    if (!ranges.ok()) return ranges.status().WithContext(where + ": initial copy");
    TableCopy& table = tables_.emplace_back();
    table.def = &def;
    table.ranges = static_cast<int>(ranges->size());
    for (auto& range : *ranges) items_.push_back(WorkItem{&table, std::move(range)});
  }

  // Import the snapshot on every worker connection now, while the slot's creating connection
  // is certainly still idle.
  std::vector<std::unique_ptr<capture::SnapshotCopier>> copiers;
  copiers.push_back(std::move(first));
  const size_t workers = std::min<size_t>(static_cast<size_t>(jobs), items_.size());
  while (copiers.size() < workers) {
    auto copier = capture::SnapshotCopier::Open(pipeline_.source.dsn, snapshot,
                                                pipeline_.source.connect_timeout);
    if (!copier.ok()) return copier.status().WithContext(where + ": initial copy");
    copiers.push_back(std::move(copier).value());
  }

  for (TableCopy& table : tables_) {
    if (stop_.load()) break;
    SLUICE_RETURN_IF_ERROR(PrepareTable(table));
  }
  if (stop_.load()) {
    spdlog::info("{}: initial copy stopped before it began", where);
    return core::Status::Ok();
  }
  spdlog::info("{}: initial copy of {} tables ({} work items) at snapshot {} with {} workers",
               where, tables_.size(), items_.size(), snapshot, workers);

  std::vector<std::thread> threads;
  threads.reserve(copiers.size());
  for (auto& copier : copiers) {
    threads.emplace_back([this, c = copier.get()] {
      core::NameCurrentThread("copy", pipeline_.name);
      Worker(*c);
    });
  }
  for (auto& thread : threads) thread.join();

  {
    std::lock_guard lock(error_mu_);
    if (!first_error_.ok()) return first_error_.WithContext(where);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - began).count();
  const uint64_t rows = metrics_.copy_rows.load();
  const double megabytes = static_cast<double>(metrics_.copy_bytes.load()) / (1024.0 * 1024.0);
  if (stop_.load()) {
    spdlog::info(
        "{}: initial copy stopped after {} of {} tables ({} rows); it restarts from a "
        "new snapshot on the next start",
        where, metrics_.copy_tables_done.load(), tables_.size(), rows);
    return core::Status::Ok();
  }
  spdlog::info("{}: initial copy done: {} tables, {} rows, {:.1f} MB in {:.1f} s", where,
               tables_.size(), rows, megabytes, seconds);
  return core::Status::Ok();
}

}  // namespace

core::Status RunInitialCopy(const config::Config& config, const config::PipelineConfig& pipeline,
                            const std::string& snapshot, apply::Sink& sink,
                            state::CheckpointStore& store, PipelineMetrics& metrics,
                            const std::atomic<bool>& stop, const CopyScope& scope) {
  (void)config;
  InitialCopy copy(pipeline, sink, store, metrics, stop, scope);
  return copy.Run(snapshot);
}

}  // namespace sluice::control
