#include "capture/slot_check.h"

#include "capture/logical_capture.h"

namespace sluice::capture {
namespace {

std::string WithRemedy(std::string message, const SlotPolicy& policy) {
  if (!policy.remedy.empty()) message += "; " + policy.remedy;
  return message;
}

std::string DurableText(const SlotPolicy& policy) {
  return policy.durable_lsn.valid() ? policy.durable_lsn.ToString() : std::string("its copy");
}

}  // namespace

core::Status CheckSlotUsable(const std::optional<SlotState>& slot, const std::string& slot_name,
                             const SlotPolicy& policy, const std::string& endpoint) {
  if (!slot) {
    if (policy.may_create) return core::Status::Ok();
    return core::FailedPrecondition(WithRemedy(
        "replication slot " + slot_name + " does not exist on source " + endpoint +
            ", but this pipeline already has a position (" + DurableText(policy) +
            "); a new slot would start from now and silently skip every change made since, so "
            "sluice did not create one (was the slot dropped, or did the source fail over to a "
            "server without it?)",
        policy));
  }
  if (policy.refuse_existing) {
    return core::FailedPrecondition(
        "replication slot " + slot_name + " already exists on source " + endpoint +
        " but was not created by this pipeline's state directory (another sluice with the same "
        "pipeline name, or another tool, uses it); sluice never streams from or drops a slot "
        "it does not own: give this pipeline its own slot (source.slot); if the slot is stale, "
        "drop it on the source with SELECT pg_drop_replication_slot('" +
        slot_name +
        "'); if it was made for this pipeline to start from, set source.adopt_slot: true "
        "(with snapshot: never)");
  }
  if (slot->wal_status == "lost" || (slot->slot_type == "logical" && !slot->restart_lsn.valid())) {
    return core::FailedPrecondition(WithRemedy(
        "replication slot " + slot_name + " on source " + endpoint +
            " has lost WAL it needed (wal_status " +
            (slot->wal_status.empty() ? std::string("unknown, no restart_lsn") : slot->wal_status) +
            ", usually max_slot_wal_keep_size exceeded): changes after " + DurableText(policy) +
            " are gone from the source, so sluice will not stream from it",
        policy));
  }
  if (policy.durable_lsn.valid() && slot->confirmed_flush_lsn.valid() &&
      slot->confirmed_flush_lsn > policy.durable_lsn) {
    return core::FailedPrecondition(WithRemedy(
        "replication slot " + slot_name + " on source " + endpoint + " has confirmed " +
            slot->confirmed_flush_lsn.ToString() + ", past the position sluice made durable (" +
            policy.durable_lsn.ToString() +
            "): the changes in between would never be sent (the slot was advanced, or dropped "
            "and created again by someone else), so sluice will not stream from it",
        policy));
  }
  if (slot->active) {
    return core::Unavailable("replication slot " + slot_name + " on source " + endpoint +
                             " is in use by process " + std::to_string(slot->active_pid) +
                             " (another sluice, a `sluice tail`, or a walsender that has not "
                             "exited yet)");
  }
  return core::Status::Ok();
}

}  // namespace sluice::capture
