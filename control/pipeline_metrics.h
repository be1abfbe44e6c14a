#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "apply/sink.h"
#include "core/lsn.h"
#include "core/transaction.h"
#include "core/wall_clock.h"

namespace sluice::control {

enum class PipelinePhase : int { kStarting, kCopying, kStreaming, kRetrying, kStopped, kFailed };

const char* PipelinePhaseName(PipelinePhase phase);

// Live numbers of one pipeline, written by its runner and read from any thread (status
// endpoint, metrics, watchdog). Plain atomics: readers may see a mix of two moments, which is
// fine for monitoring.
struct PipelineMetrics {
  std::atomic<PipelinePhase> phase{PipelinePhase::kStarting};
  std::atomic<uint64_t> durable_lsn{0};      // end LSN of the last transaction durable on target
  std::atomic<uint64_t> source_wal_end{0};   // the source's WAL position as last reported
  std::atomic<int64_t> last_commit_time{0};  // source commit time of durable_lsn's transaction
  std::atomic<int64_t> oldest_pending_commit_time{0};  // 0 when nothing is pending
  std::atomic<uint64_t> transactions_applied{0};
  std::atomic<uint64_t> changes_applied{0};
  std::atomic<uint64_t> bytes_applied{0};
  std::atomic<uint64_t> batches_committed{0};
  std::atomic<uint64_t> errors{0};
  // Last batch commit, fragment applied, or idle moment after the source spoke (a keepalive):
  // never an idle loop that heard nothing, so a silent source stops the watchdog.
  std::atomic<int64_t> last_progress_unix_ms{0};

  // Time from a batch's first statement to its durable commit (target commit + checkpoint), as
  // a Prometheus histogram: per-bucket counts (not cumulative) and the sum.
  static constexpr std::array<double, 10> kBatchLatencyBucketsSeconds = {
      0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};
  std::array<std::atomic<uint64_t>, kBatchLatencyBucketsSeconds.size() + 1> batch_latency_counts{};
  std::atomic<uint64_t> batch_latency_sum_us{0};
  void RecordBatchLatency(double seconds) {
    size_t i = 0;
    while (i < kBatchLatencyBucketsSeconds.size() && seconds > kBatchLatencyBucketsSeconds[i]) ++i;
    batch_latency_counts[i].fetch_add(1);
    batch_latency_sum_us.fetch_add(static_cast<uint64_t>(seconds * 1e6));
  }

  // Initial copy progress (whole pipeline).
  std::atomic<uint64_t> copy_tables_total{0};
  std::atomic<uint64_t> copy_tables_done{0};
  std::atomic<uint64_t> copy_rows{0};
  std::atomic<uint64_t> copy_bytes{0};

  // The sink's own counters as of the pipeline thread's last publication.
  void SetSinkCounters(std::vector<apply::SinkCounter> counters) {
    std::lock_guard lock(mu_);
    sink_counters_ = std::move(counters);
  }
  std::vector<apply::SinkCounter> sink_counters() const {
    std::lock_guard lock(mu_);
    return sink_counters_;
  }

  // "" clears it. The time is that of the call, unless given (an error from an earlier run).
  void SetLastError(std::string message, int64_t at_unix_ms = 0) {
    if (at_unix_ms == 0 && !message.empty()) {
      at_unix_ms = core::UnixMillisNow();
    }
    std::lock_guard lock(mu_);
    last_error_ = std::move(message);
    last_error_unix_ms_ = last_error_.empty() ? 0 : at_unix_ms;
  }
  std::string last_error() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }
  int64_t last_error_unix_ms() const {  // 0 when there is none
    std::lock_guard lock(mu_);
    return last_error_unix_ms_;
  }

 private:
  mutable std::mutex mu_;  // guards last_error_, last_error_unix_ms_ and sink_counters_
  std::string last_error_;
  int64_t last_error_unix_ms_ = 0;
  std::vector<apply::SinkCounter> sink_counters_;
};

}  // namespace sluice::control
