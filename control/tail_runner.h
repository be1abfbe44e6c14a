#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include "config/config.h"
#include "core/lsn.h"
#include "core/status.h"

namespace sluice::control {

struct TailOptions {
  std::string pipeline;  // empty: the config's only pipeline
  std::string format = "jsonl";
  // Print the transactions committed before this position, then stop (invalid: run until
  // stopped).
  core::Lsn end_lsn;
  std::chrono::milliseconds checkpoint_interval{1000};
  std::FILE* out = stdout;
};

// `sluice tail`: prints the pipeline's ordered stream of committed changes, one JSON object per
// line.
//
// A pipeline with a target belongs to `sluice run`, and tail never moves its position: it
// confirms nothing to the slot and writes no checkpoint. It reads the pipeline's slot from
// where run would go on (what run applies next), and when run is streaming from that slot (or
// never made it) a temporary slot of its own, which shows changes from now on.
//
// A pipeline without a target (type: none) is tail's own: tail checkpoints what it printed so
// that a restart resumes after it. Output is flushed before the checkpoint advances and the
// checkpoint is saved before the position is confirmed to the source: after kill -9 nothing past
// the checkpoint is missing (lines printed after the last checkpoint may be printed again).
core::Status RunTail(const config::Config& config, const TailOptions& options,
                     const std::atomic<bool>& stop);

}  // namespace sluice::control
