#include "control/systemd_notifier.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace sluice::control {
namespace {

std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

// "512 B", "1.2 MB": binary units with one decimal above a kB.
std::string HumanBytes(uint64_t bytes) {
  static constexpr std::array<const char*, 5> kUnits = {"kB", "MB", "GB", "TB", "PB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes) / 1024.0;
  size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", value, kUnits[unit]);
  return text;
}

}  // namespace

bool SystemdNotifier::Enabled() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && socket[0] != '\0';
}

core::Status SystemdNotifier::Send(const std::string& message) const {
  if (!Enabled()) return core::Status::Ok();
  const int rc = sd_notify(/*unset_environment=*/0, message.c_str());
  if (rc < 0) {
    const std::string first_line = message.substr(0, message.find('\n'));
    return core::Unavailable("sd_notify " + first_line + " to NOTIFY_SOCKET " +
                             std::getenv("NOTIFY_SOCKET") + " failed: " + std::strerror(-rc));
  }
  return core::Status::Ok();
}

core::Status SystemdNotifier::Ready(const std::string& status_line) const {
  return Send("READY=1\nSTATUS=" + OneLine(status_line));
}

core::Status SystemdNotifier::Status(const std::string& line) const {
  return Send("STATUS=" + OneLine(line));
}

core::Status SystemdNotifier::Reloading() const { return Send("RELOADING=1"); }

core::Status SystemdNotifier::Watchdog() const { return Send("WATCHDOG=1"); }

core::Status SystemdNotifier::Stopping() const { return Send("STOPPING=1"); }

core::Result<std::chrono::microseconds> SystemdNotifier::WatchdogInterval() const {
  uint64_t usec = 0;
  const int rc = sd_watchdog_enabled(/*unset_environment=*/0, &usec);
  if (rc < 0) {
    const char* usec_text = std::getenv("WATCHDOG_USEC");
    const char* pid_text = std::getenv("WATCHDOG_PID");
    return core::InvalidArgument(std::string("malformed watchdog environment (WATCHDOG_USEC='") +
                                 (usec_text ? usec_text : "") + "', WATCHDOG_PID='" +
                                 (pid_text ? pid_text : "") + "'): " + std::strerror(-rc));
  }
  if (rc == 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(static_cast<int64_t>(usec));
}

bool AllReady(const std::vector<PipelineHealth>& pipelines) {
  return !pipelines.empty() &&
         std::all_of(pipelines.begin(), pipelines.end(),
                     [](const PipelineHealth& p) { return p.copying_or_streaming; });
}

bool MakingProgress(const std::vector<PipelineHealth>& pipelines, int64_t now_ms,
                    int64_t stall_ms) {
  return std::all_of(pipelines.begin(), pipelines.end(), [&](const PipelineHealth& p) {
    return !p.copying_or_streaming || now_ms - p.last_progress_unix_ms <= stall_ms;
  });
}

std::string StatusLine(const std::vector<PipelineHealth>& pipelines) {
  if (pipelines.empty()) return "no pipelines";
  // Healthy phases first, then the troubled ones; unknown names after, as first seen.
  std::vector<std::pair<std::string, size_t>> counts;
  for (const char* phase : {"streaming", "copying", "starting", "retrying", "stopped", "failed"}) {
    counts.emplace_back(phase, 0);
  }
  const PipelineHealth* most_behind = nullptr;
  for (const PipelineHealth& p : pipelines) {
    auto it = std::find_if(counts.begin(), counts.end(),
                           [&](const auto& entry) { return entry.first == p.phase; });
    if (it == counts.end()) {
      counts.emplace_back(p.phase, 1);
    } else {
      ++it->second;
    }
    if (most_behind == nullptr || p.lag_bytes > most_behind->lag_bytes) most_behind = &p;
  }
  std::vector<std::string> groups;
  std::string only_phase;
  for (const auto& [phase, count] : counts) {
    if (count == 0) continue;
    groups.push_back(std::to_string(count) + " " + phase);
    only_phase = phase;
  }
  const size_t n = pipelines.size();
  std::string line = std::to_string(n) + (n == 1 ? " pipeline" : " pipelines");
  if (groups.size() == 1) {
    line += " " + only_phase;
  } else {
    line += ":";
    for (size_t i = 0; i < groups.size(); ++i) line += (i == 0 ? " " : ", ") + groups[i];
  }
  if (most_behind->lag_bytes == 0) return line + "; no lag";
  return line + "; " + most_behind->name + " lag " + HumanBytes(most_behind->lag_bytes);
}

PipelineHealth ProgressTracker::Observe(const std::string& name, const PipelineMetrics& metrics,
                                        int64_t now_ms) {
  Seen now{metrics.phase.load(),
           metrics.copy_rows.load(),
           metrics.copy_tables_done.load(),
           metrics.transactions_applied.load(),
           metrics.changes_applied.load(),
           now_ms};
  auto [it, first] = seen_.emplace(name, now);
  Seen& seen = it->second;
  if (!first && (seen.phase != now.phase || seen.copy_rows != now.copy_rows ||
                 seen.copy_tables_done != now.copy_tables_done ||
                 seen.transactions_applied != now.transactions_applied ||
                 seen.changes_applied != now.changes_applied)) {
    seen = now;
  }

  PipelineHealth health;
  health.name = name;
  health.copying_or_streaming =
      now.phase == PipelinePhase::kCopying || now.phase == PipelinePhase::kStreaming;
  health.last_progress_unix_ms =
      std::max(metrics.last_progress_unix_ms.load(), seen.changed_unix_ms);
  health.phase = PipelinePhaseName(now.phase);
  const uint64_t durable = metrics.durable_lsn.load();
  const uint64_t source = metrics.source_wal_end.load();
  health.lag_bytes = source > durable ? source - durable : 0;
  return health;
}

}  // namespace sluice::control
