#pragma once

#include <optional>
#include <string>

#include "capture/slot_manager.h"
#include "core/status.h"

namespace sluice::capture {

struct SlotPolicy;

// Whether streaming from `slot` (nullopt: the slot does not exist) can lose changes for a
// consumer whose durable state is described by `policy`. Ok when it cannot. A slot in use by
// another process is kUnavailable (retry: a walsender that has not exited yet, or a reader that
// will stop); everything that retrying cannot fix is kFailedPrecondition naming the slot, the
// source `endpoint`, both positions and `policy.remedy`:
//   * the slot exists but the consumer never made it (policy.refuse_existing);
//   * the slot is missing and the consumer has a position (policy.may_create false);
//   * its WAL is gone (wal_status "lost", or no restart_lsn);
//   * it has confirmed more than the consumer made durable (advanced, or made again by
//     someone else: a slot created later starts later).
// A slot's confirmed position at or before the durable one is fine: the server then resends
// from there and the consumer skips what it already has.
core::Status CheckSlotUsable(const std::optional<SlotState>& slot, const std::string& slot_name,
                             const SlotPolicy& policy, const std::string& endpoint);

}  // namespace sluice::capture
