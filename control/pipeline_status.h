#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "apply/sink.h"
#include "config/config.h"
#include "control/pipeline_metrics.h"
#include "control/rate_meter.h"
#include "core/lsn.h"
#include "core/status.h"
#include "core/transaction.h"

namespace sluice::pg {
class Connection;
}
namespace sluice::state {
class CheckpointStore;
}

// What `sluice status`, GET /status, GET /metrics and GET /healthz report about pipelines.
//
// Lag, honestly:
//   lag_bytes   = the source's current WAL position - durable LSN, 0 when negative; unknown
//                 (null) when either is unknown (source unreachable, nothing durable yet).
//                 WAL that is not ours (other databases, checkpoints) counts too, so an idle
//                 source shows a small non-zero lag_bytes: it is a distance, not a backlog.
//   lag_seconds = the larger of: now - commit time of the oldest transaction received but not
//                 yet durable; and, once the source's current WAL position is past both the
//                 durable LSN and the last position its stream reported, now - the pipeline's
//                 last progress (the stream went quiet while the source moved on: a stuck
//                 walsender or a pipeline that cannot apply). 0 when caught up, also on an idle
//                 source. Only the running daemon knows what is pending: with the daemon down
//                 it is unknown.
//
// Slot WAL (PostgreSQL 13+): wal_status, safe_wal_size and max_slot_wal_keep_size of the
// source. The slot is at risk once it retains kSlotWalRiskPercent of max_slot_wal_keep_size or
// its wal_status is "unreserved" (the source may remove WAL it still needs at the next
// checkpoint); "lost" means it did, and is reported as an error.

namespace sluice::control {

struct TableCopyStatus {
  std::string schema_table;  // "schema.table", as its state::TableCopyKey names it
  uint64_t rows = 0;
  uint64_t bytes = 0;
  uint64_t estimated_rows = 0;  // the planner's estimate; 0 = unknown
  bool done = false;

  friend bool operator==(const TableCopyStatus&, const TableCopyStatus&) = default;
};

struct PipelineStatus {
  std::string name;
  std::string phase;  // PipelinePhaseName(); "stopped" when the daemon is down
  std::string slot;
  core::Lsn source_lsn;   // the source's current WAL position; invalid = unknown
  core::Lsn durable_lsn;  // invalid = nothing durable yet
  std::optional<uint64_t> lag_bytes;
  std::optional<double> lag_seconds;
  double rows_per_second = 0;  // changes applied per second, recent average
  uint64_t transactions_applied = 0;
  uint64_t changes_applied = 0;
  uint64_t bytes_applied = 0;
  uint64_t batches_committed = 0;
  uint64_t errors = 0;
  core::PgTimestamp last_commit_time = 0;  // of the durable LSN's transaction; 0 = unknown
  int64_t last_progress_unix_ms = 0;       // 0 = unknown
  // WAL the slot keeps on the source (current position - restart_lsn); unknown when the source
  // or the slot is missing.
  std::optional<uint64_t> retained_wal_bytes;
  bool retained_wal_warning = false;  // retained_wal_bytes above admin.retained_wal_warning
  // pg_replication_slots.wal_status: reserved | extended | unreserved | lost; "" = unknown.
  std::string slot_wal_status;
  // WAL the source may still write before the slot loses what it needs (negative once it
  // has); unknown when max_slot_wal_keep_size is -1 (no limit) or the slot is missing.
  std::optional<int64_t> slot_safe_wal_bytes;
  // The source's max_slot_wal_keep_size in bytes; unknown when unlimited (-1) or not asked.
  std::optional<uint64_t> max_slot_wal_keep_bytes;
  bool slot_wal_at_risk = false;  // see "Slot WAL" above; also true when lost
  // Batch latency histogram (live daemon only): per-bucket counts matching
  // PipelineMetrics::kBatchLatencyBucketsSeconds plus +Inf, and the sum in seconds.
  std::vector<uint64_t> batch_latency_counts;
  double batch_latency_sum_seconds = 0;
  // The sink's own counters (live daemon only), in the sink's order. JSON carries names and
  // values ("sink": {"rows_applied": 12, ...}); the help texts serve /metrics.
  std::vector<apply::SinkCounter> sink_counters;
  std::string last_error;          // "" = none; never holds a password
  int64_t last_error_unix_ms = 0;  // when the pipeline's own last error happened; 0 = unknown
  bool snapshot_done = false;
  uint64_t copy_rows = 0;  // rows copied by the initial copy, all tables
  std::vector<TableCopyStatus> copy;
  bool daemon_running = false;
};

// {"pipelines": [...], "daemon": "running" | "down"}; LSNs as "X/Y", unknown values as null.
// "daemon" is "running" when any status says so (and "down" for an empty list).
nlohmann::json ToJson(const std::vector<PipelineStatus>& statuses);
nlohmann::json ToJson(const PipelineStatus& status);
// The inverse of ToJson (for `sluice status` reading the daemon's answer). Missing optional
// fields take their defaults; a malformed document is kInvalidArgument.
core::Result<std::vector<PipelineStatus>> StatusesFromJson(const nlohmann::json& json);

// "0 B", "812 B", "1.5 kB", "12.0 MB", "3.2 GB" (powers of 1024, as pg_size_pretty).
std::string HumanBytes(uint64_t bytes);
// "950", "12.3k", "1.2M", "3.0G".
std::string HumanCount(uint64_t count);
// "0s", "4.2s", "3m07s", "2h05m", "3d04h".
std::string HumanSeconds(double seconds);
// "[########............] 42%  1.2M/2.0M rows". Without an estimate: "?" instead of the
// percentage; a table not done never shows 100% (estimates can be low).
std::string ProgressBar(const TableCopyStatus& table, int width = 20);

inline constexpr uint64_t kDefaultRetainedWalWarningBytes = config::kGiB;
inline constexpr uint64_t kSlotWalRiskPercent = 80;

// The warning a person should read about the slot's WAL ("" when there is none): retained WAL
// near max_slot_wal_keep_size, wal_status unreserved or lost, or more retained than
// `retained_wal_warning_bytes`. One line, naming pipeline and slot; used by the status table
// and the daemon's log.
std::string SlotWalWarning(const PipelineStatus& status, uint64_t retained_wal_warning_bytes);

// A table a person reads at a glance: one header line about the daemon, one row per pipeline,
// then copy progress per table for pipelines whose initial copy is not done, then a WARNING
// line per pipeline with a SlotWalWarning.
// `daemon_line` (one line ending in a newline) replaces the default line about the daemon.
std::string RenderStatusTable(const std::vector<PipelineStatus>& statuses, bool daemon_running,
                              uint64_t retained_wal_warning_bytes = kDefaultRetainedWalWarningBytes,
                              const std::string& daemon_line = "");

// Prometheus text exposition format (version 0.0.4): HELP/TYPE lines and one
// `name{pipeline="..."} value` line per pipeline for sluice_lag_bytes, sluice_lag_seconds,
// sluice_transactions_applied_total, sluice_changes_applied_total, sluice_bytes_applied_total,
// sluice_batches_committed_total, sluice_errors_total, sluice_slot_retained_wal_bytes,
// sluice_copy_rows_total, plus sluice_pipeline_up (1 when the phase is healthy), the slot's
// WAL risk (sluice_slot_wal_at_risk, sluice_slot_wal_lost, sluice_slot_safe_wal_bytes), the
// sluice_batch_latency_seconds histogram and each sink counter as sluice_sink_<name>_total.
// Unknown values are left out rather than reported as 0.
std::string RenderPrometheus(const std::vector<PipelineStatus>& statuses);

// True for the phases /healthz accepts: starting, copying, streaming, retrying.
bool IsHealthyPhase(const std::string& phase);

// Builds PipelineStatus values from live metrics (when the daemon runs) or from the checkpoint
// store (when it does not), plus what each source says about its WAL position and the slot.
// With the daemon down, a pipeline whose stored last error (state::PipelineErrorRecord) is
// permanent shows phase "failed" with that error; any other stored error shows with phase
// "stopped".
//
// Sources are asked over a regular libpq connection, kept open between calls and reopened after
// a failure, never blocking longer than `source_timeout` per source and step (connect, query:
// non-blocking libpq with a client-side deadline, since a server that stopped answering never
// sends the statement_timeout error either). Answers are cached for `source_cache_ttl` so
// frequent scrapes do not load the source. A source that cannot be reached shows in last_error
// (passwords redacted) and leaves source-derived values unknown.
//
// Threads: every method may be called from any thread. Source queries are serialized among
// themselves; CollectCached() never waits for them, so an admin endpoint that uses it answers
// at once even while a source hangs.
struct StatusCollectorOptions {
  std::chrono::milliseconds source_timeout{2000};
  std::chrono::milliseconds source_cache_ttl{1000};
};

class StatusCollector {
 public:
  using Options = StatusCollectorOptions;
  using PipelineEntry = std::pair<const config::PipelineConfig*, const PipelineMetrics*>;

  // Daemon down: every pipeline of `config` with a target, state from config.state_dir opened
  // read-only at each Collect(). `config` must outlive the collector.
  explicit StatusCollector(const config::Config& config);
  StatusCollector(const config::Config& config, Options options);
  // Daemon running: `live` pairs each pipeline with its runner's metrics (both borrowed, must
  // outlive the collector; a null metrics pointer = that pipeline is not running). `store`
  // (borrowed, may be null) is the daemon's own store, read for per-table copy progress; when
  // null the state dir is opened read-only for it.
  StatusCollector(const config::Config& config, const std::vector<PipelineEntry>& live,
                  state::CheckpointStore* store, Options options = {});
  ~StatusCollector();
  StatusCollector(const StatusCollector&) = delete;
  StatusCollector& operator=(const StatusCollector&) = delete;

  bool daemon_running() const { return daemon_running_; }

  // Everything about every pipeline, asking sources whose cached answer has expired. Fails
  // only when the daemon is down and the state dir cannot be opened (then nothing but the
  // sources could be reported; `sluice status` exits 69). Per-pipeline problems go to that
  // pipeline's last_error.
  core::Result<std::vector<PipelineStatus>> Collect();
  // The same from the sources' last answers, without asking them (a source not asked yet
  // shows as unknown). For the admin endpoint, whose sampler thread calls RefreshSources().
  core::Result<std::vector<PipelineStatus>> CollectCached();
  // Asks the sources whose cached answer has expired. In the daemon, also logs slot WAL
  // warnings when they appear, change or persist (every few minutes), and when they clear.
  void RefreshSources();

  // Feeds the rows/s meters from the live counters without asking anyone (cheap; the admin
  // server calls it every second so a single `sluice status` sees a recent rate).
  void SampleRates();

 private:
  struct SourceInfo {
    bool ok = false;
    core::Lsn current_lsn;
    std::optional<core::Lsn> restart_lsn;  // nullopt = no such slot (or it has none)
    std::string wal_status;                // "" = unknown (no slot, or PostgreSQL < 13)
    std::optional<int64_t> safe_wal_size;
    std::optional<uint64_t> max_slot_wal_keep_bytes;  // nullopt = unlimited or unknown
    std::string error;
    std::chrono::steady_clock::time_point fetched_at;
  };
  struct PerPipeline {
    const config::PipelineConfig* config = nullptr;
    const PipelineMetrics* metrics = nullptr;
    RateMeter rate;                              // guarded by mu_
    std::unique_ptr<pg::Connection> connection;  // guarded by refresh_mu_
    std::optional<SourceInfo> source;  // the last answer, for the cache; guarded by sources_mu_
    // The kind of slot WAL warning last logged and when (daemon only); guarded by refresh_mu_.
    std::string logged_kind;
    std::chrono::steady_clock::time_point logged_at;
  };

  SourceInfo QuerySource(PerPipeline& p);
  // What the source said (position, slot WAL) into `status`.
  static void ApplySource(const SourceInfo& source, uint64_t retained_wal_warning_bytes,
                          PipelineStatus& status);
  void RefreshLocked(bool log_warnings);
  void LogSlotWarning(PerPipeline& p, const SourceInfo& source) const;
  // Reports from live metrics or the store plus the sources' cached answers.
  core::Result<std::vector<PipelineStatus>> Report();
  void SampleLocked(std::chrono::steady_clock::time_point now);
  void FillFromStore(state::CheckpointStore* store, const PerPipeline& p, PipelineStatus& status,
                     std::vector<std::string>& errors);

  const config::Config& config_;
  const bool daemon_running_;
  state::CheckpointStore* const store_;  // borrowed, may be null
  const Options options_;
  std::mutex refresh_mu_;  // serializes source queries (connections, logged warnings)
  std::mutex mu_;          // serializes reports and SampleRates (rate meters)
  std::mutex sources_mu_;  // guards PerPipeline::source; held only to copy an answer in or out
  std::vector<std::unique_ptr<PerPipeline>> pipelines_;
};

}  // namespace sluice::control
