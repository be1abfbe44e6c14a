#pragma once

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/status.h"

namespace sluice::control {

struct SnapshotOptions {
  std::string pipeline;             // empty: the config's only pipeline
  std::vector<std::string> tables;  // "schema.table" as in the config; empty: every table
};

// `sluice snapshot`: the operator's way back to a consistent target, with the daemon stopped.
//
// Without tables: the pipeline starts over. Its slot is dropped (unless something streams from
// it), its position and table records are forgotten (here and in the target's sluice.applied),
// a new slot is made with an exported snapshot and every table is emptied and copied at it;
// `sluice run` then streams from the new slot's consistent point. This is what a refused slot
// (lost, advanced, re-created, WAL gone) needs.
// With tables: only they are emptied and copied, at the snapshot of a temporary slot, while the
// pipeline's slot stays where it is; `run` then streams them from the copy's position and every
// other table on from where it was, with no gap. Needs a healthy slot.
//
// The request is recorded before anything changes and cleared only when the copy is done, so
// after kill -9 at any point running `sluice snapshot` again (or `sluice run`) finishes it.
// Prints what it did to `out`.
core::Status RunSnapshot(const config::Config& config, const SnapshotOptions& options,
                         const std::atomic<bool>& stop, std::FILE* out);

}  // namespace sluice::control
