#pragma once

#include <string>

#include "capture/logical_capture.h"
#include "core/lsn.h"

namespace sluice::control {

// What a pipeline's own records say about its slot, as `run` reads them at every start.
struct SlotFacts {
  bool has_local_state = false;      // a checkpoint, a finished copy or any table record here
  bool target_has_position = false;  // the target's sluice.applied has the pipeline's row
  bool owned = false;                // this state directory recorded making (or adopting) the slot
  bool copy_unfinished = false;      // snapshot: initial and the initial copy is not done
  core::Lsn resume;                  // the larger of the checkpoint and the target's position
  bool adopt_slot = false;           // source.adopt_slot: an existing slot may be taken over
};

// The checks streaming from the slot must pass (see capture::SlotPolicy), decided in one place
// for `run` and `check`, so that `check` says what `run` would:
//   * nothing to lose (no state, no target position): the slot may be made; one that exists is
//     someone else's unless recorded as ours, or the operator said to adopt it;
//   * an interrupted initial copy: only our own slot, made again for a new snapshot;
//   * a position: never made again; not past `resume`; a slot this state directory never saw is
//     not taken over unless the state predates slot records (has a position of its own).
capture::SlotPolicy SlotPolicyFor(const SlotFacts& facts, std::string remedy);

}  // namespace sluice::control
