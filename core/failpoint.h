#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "core/status.h"

namespace sluice::core {

// Failpoints: named places in the binary where a test makes sluice crash (kill -9 at exactly
// that point) or fail, instead of killing it at a random moment and hoping to land there.
//
// Armed once at start from the environment (ArmFailpointsFromEnvironment, called by `main`):
//   SLUICE_FAILPOINTS="name=action[@N][,name=action[@N]...]"
// with the actions
//   crash        write "sluice: failpoint NAME: crash" to stderr, then SIGKILL the process
//   error        the point returns kInternal (permanent: the pipeline stops)
//   unavailable  the point returns kUnavailable (retryable: the pipeline starts again)
// An action fires once, at the N-th pass through the point (default the first); later passes
// go on as if unarmed. An unknown name or action is refused, so a typo cannot make a crash
// test pass without crashing.
//
// Cost when nothing is armed: one relaxed atomic load per pass.
//
// The points (each a constant below; the list kFailpointNames names them all):
namespace failpoint {
// The durability sequence of a streaming batch (control/pipeline_runner.cc):
// target commit -> checkpoint -> acknowledge.
inline constexpr char kAfterTargetCommit[] = "after_target_commit";  // before the checkpoint save
inline constexpr char kAfterCheckpoint[] = "after_checkpoint";       // saved; source not yet told
inline constexpr char kAfterAcknowledge[] = "after_acknowledge";  // durable LSN handed to capture
// The initial copy and `sluice snapshot` (control/initial_copy.cc, control/pipeline_runner.cc):
inline constexpr char kAfterCopyCommit[] = "after_copy_commit";  // a copy range committed on the
                                                                 // target, before its record
inline constexpr char kAfterSnapshotForget[] = "after_snapshot_forget";  // `sluice snapshot`
                                                                         // forgot the position
}  // namespace failpoint

inline constexpr const char* kFailpointNames[] = {
    failpoint::kAfterTargetCommit, failpoint::kAfterCheckpoint,     failpoint::kAfterAcknowledge,
    failpoint::kAfterCopyCommit,   failpoint::kAfterSnapshotForget,
};

// The environment variable read by ArmFailpointsFromEnvironment.
inline constexpr char kFailpointsVariable[] = "SLUICE_FAILPOINTS";

// Arms the points `spec` names (the syntax above), replacing whatever was armed; an empty spec
// disarms all. InvalidArgument (and nothing armed) for an unknown name, action or count.
Status ArmFailpoints(std::string_view spec);
// ArmFailpoints($SLUICE_FAILPOINTS); Ok when the variable is unset or empty.
Status ArmFailpointsFromEnvironment();

namespace detail {
extern std::atomic<bool> failpoints_armed;
Status HitFailpoint(const char* name);
}  // namespace detail

// Passes through the point `name` (one of failpoint::k...): Ok unless an action fires here.
// Thread-safe.
inline Status Failpoint(const char* name) {
  if (!detail::failpoints_armed.load(std::memory_order_relaxed)) return Status::Ok();
  return detail::HitFailpoint(name);
}

}  // namespace sluice::core
