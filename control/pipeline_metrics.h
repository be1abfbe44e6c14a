#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "core/lsn.h"
#include "core/transaction.h"

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
  std::atomic<int64_t> last_progress_unix_ms{0};  // last batch commit or idle confirmation

  // Initial copy progress (whole pipeline).
  std::atomic<uint64_t> copy_tables_total{0};
  std::atomic<uint64_t> copy_tables_done{0};
  std::atomic<uint64_t> copy_rows{0};
  std::atomic<uint64_t> copy_bytes{0};

  void SetLastError(std::string message) {
    std::lock_guard lock(mu_);
    last_error_ = std::move(message);
  }
  std::string last_error() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }

 private:
  mutable std::mutex mu_;  // guards last_error_
  std::string last_error_;
};

}  // namespace sluice::control
