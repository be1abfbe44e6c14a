#include "control/slot_policy.h"

namespace sluice::control {

capture::SlotPolicy SlotPolicyFor(const SlotFacts& facts, std::string remedy) {
  capture::SlotPolicy policy;
  policy.remedy = std::move(remedy);
  if (!facts.has_local_state && !facts.target_has_position) {
    policy.may_create = true;
    policy.refuse_existing = !facts.owned && !facts.adopt_slot;
  } else if (facts.copy_unfinished) {
    policy.may_create = false;
    policy.refuse_existing = !facts.owned;
  } else {
    policy.may_create = false;
    policy.durable_lsn = facts.resume;
    policy.refuse_existing = !facts.owned && !facts.has_local_state;
  }
  return policy;
}

}  // namespace sluice::control
