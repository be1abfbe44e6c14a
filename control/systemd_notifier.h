#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "control/pipeline_metrics.h"
#include "core/status.h"

// `sluice run` under systemd (Type=notify, WatchdogSec=): readiness, a status line, watchdog
// pings and the stop notice, through sd_notify(3); plus the pure decisions the daemon needs to
// make about when to send them.

namespace sluice::control {

// Sends state changes to the service manager. Every call is a no-op returning Ok when
// NOTIFY_SOCKET is unset (not started by systemd, or started with another Type=), so the
// daemon calls them unconditionally. A failed send is kUnavailable naming the message; the
// daemon should log it and go on (systemd then times out or restarts us, which is right).
// Stateless and thread-safe; reads the environment on every call.
class SystemdNotifier {
 public:
  // Whether NOTIFY_SOCKET is set.
  static bool Enabled();

  // "READY=1\nSTATUS=<status_line>": every pipeline is copying or streaming (see AllReady).
  core::Status Ready(const std::string& status_line) const;
  // "STATUS=<line>": shown by `systemctl status`. Newlines in `line` become spaces, since the
  // protocol is one assignment per line.
  core::Status Status(const std::string& line) const;
  // "RELOADING=1": on SIGHUP, before reloading; send Ready() again when done.
  core::Status Reloading() const;
  // "WATCHDOG=1": only while MakingProgress(), at WatchdogInterval() / 2.
  core::Status Watchdog() const;
  // "STOPPING=1": on SIGTERM/SIGINT, before pipelines wind down.
  core::Status Stopping() const;

  // WATCHDOG_USEC when set and meant for this process (WATCHDOG_PID unset or equal to our pid),
  // else zero. A malformed WATCHDOG_USEC / WATCHDOG_PID is kInvalidArgument.
  core::Result<std::chrono::microseconds> WatchdogInterval() const;

 private:
  core::Status Send(const std::string& message) const;
};

// What the daemon's readiness and watchdog decisions look at, one per pipeline.
struct PipelineHealth {
  std::string name;
  bool copying_or_streaming = false;  // phase kCopying or kStreaming
  int64_t last_progress_unix_ms = 0;  // last time the pipeline visibly moved
  std::string phase;                  // PipelinePhaseName, for StatusLine
  uint64_t lag_bytes = 0;             // source WAL end minus durable LSN, for StatusLine
};

// True when every pipeline is copying or streaming (and there is at least one): the moment to
// send READY=1. A pipeline still starting or retrying keeps the unit "activating".
bool AllReady(const std::vector<PipelineHealth>& pipelines);

// True when every copying or streaming pipeline moved within `stall_ms` before `now_ms`. A
// stuck one returns false, so the daemon stops pinging the watchdog and systemd restarts it.
// Pipelines in other phases (starting, retrying with backoff, stopped, failed) are not judged:
// their own loop is alive and decides their fate, and restarting the daemon while a server is
// down would only add restarts to the outage.
bool MakingProgress(const std::vector<PipelineHealth>& pipelines, int64_t now_ms, int64_t stall_ms);

// A one-line summary for STATUS=, e.g. "2 pipelines streaming; orders lag 1.2 MB" or
// "3 pipelines: 2 streaming, 1 retrying; orders lag 512 B". The lag shown is the largest one;
// "no lag" when every lag is zero. Sizes are binary (1 MB = 1024 kB), as in the config.
std::string StatusLine(const std::vector<PipelineHealth>& pipelines);

// Builds PipelineHealth from a runner's live metrics, noticing progress that the runner does
// not stamp into last_progress_unix_ms: initial-copy rows and tables, applied transactions and
// phase changes each count as the pipeline moving at the time they are first observed. The
// first observation of a pipeline counts as progress (a grace period of one stall window).
// Not thread-safe: owned by the one thread that drives the watchdog.
class ProgressTracker {
 public:
  PipelineHealth Observe(const std::string& name, const PipelineMetrics& metrics, int64_t now_ms);

 private:
  struct Seen {
    PipelinePhase phase;
    uint64_t copy_rows;
    uint64_t copy_tables_done;
    uint64_t transactions_applied;
    uint64_t changes_applied;
    int64_t changed_unix_ms;
  };
  std::map<std::string, Seen> seen_;
};

}  // namespace sluice::control
