#include "capture/slot_check.h"

#include <gtest/gtest.h>

#include "capture/logical_capture.h"

namespace sluice::capture {
namespace {

SlotState Healthy(core::Lsn confirmed) {
  SlotState slot;
  slot.name = "sluice_p";
  slot.plugin = "pgoutput";
  slot.slot_type = "logical";
  slot.database = "app";
  slot.restart_lsn = core::Lsn(0x1000);
  slot.confirmed_flush_lsn = confirmed;
  slot.wal_status = "reserved";
  return slot;
}

SlotPolicy Positioned(core::Lsn durable) {
  SlotPolicy policy;
  policy.may_create = false;
  policy.durable_lsn = durable;
  policy.remedy = "run: sluice snapshot --config c.yaml --pipeline p";
  return policy;
}

TEST(SlotCheckTest, AMissingSlotIsFineOnlyWithNothingToLose) {
  EXPECT_TRUE(CheckSlotUsable(std::nullopt, "sluice_p", SlotPolicy{}, "db:5432").ok());
  const core::Status refused =
      CheckSlotUsable(std::nullopt, "sluice_p", Positioned(core::Lsn(0x5000)), "db:5432");
  EXPECT_EQ(refused.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("sluice_p does not exist on source db:5432"), std::string::npos)
      << refused.message();
  EXPECT_NE(refused.message().find("0/5000"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("sluice snapshot --config c.yaml --pipeline p"),
            std::string::npos)
      << refused.message();
}

TEST(SlotCheckTest, ASlotAtOrBehindTheDurablePositionIsUsed) {
  EXPECT_TRUE(
      CheckSlotUsable(Healthy(core::Lsn(0x5000)), "sluice_p", Positioned(core::Lsn(0x5000)), "db")
          .ok());
  EXPECT_TRUE(
      CheckSlotUsable(Healthy(core::Lsn(0x4000)), "sluice_p", Positioned(core::Lsn(0x5000)), "db")
          .ok());
}

TEST(SlotCheckTest, ASlotPastTheDurablePositionIsRefused) {
  const core::Status refused =
      CheckSlotUsable(Healthy(core::Lsn(0x6000)), "sluice_p", Positioned(core::Lsn(0x5000)), "db");
  EXPECT_EQ(refused.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("has confirmed 0/6000, past the position sluice made durable "
                                   "(0/5000)"),
            std::string::npos)
      << refused.message();
  EXPECT_NE(refused.message().find("sluice snapshot"), std::string::npos);
}

TEST(SlotCheckTest, ASlotWhoseWalIsGoneIsRefused) {
  SlotState lost = Healthy(core::Lsn(0x5000));
  lost.wal_status = "lost";
  EXPECT_EQ(CheckSlotUsable(lost, "sluice_p", Positioned(core::Lsn(0x5000)), "db").code(),
            core::StatusCode::kFailedPrecondition);
  SlotState no_restart = Healthy(core::Lsn(0x5000));
  no_restart.restart_lsn = core::Lsn();
  no_restart.wal_status = "";
  EXPECT_EQ(CheckSlotUsable(no_restart, "sluice_p", Positioned(core::Lsn(0x5000)), "db").code(),
            core::StatusCode::kFailedPrecondition);
  // unreserved still streams (status warns about it).
  SlotState unreserved = Healthy(core::Lsn(0x5000));
  unreserved.wal_status = "unreserved";
  EXPECT_TRUE(CheckSlotUsable(unreserved, "sluice_p", Positioned(core::Lsn(0x5000)), "db").ok());
}

TEST(SlotCheckTest, ASlotSomeoneElseMadeIsNeitherUsedNorDropped) {
  SlotPolicy fresh;
  fresh.refuse_existing = true;
  const core::Status refused = CheckSlotUsable(Healthy(core::Lsn(0x5000)), "sluice_p", fresh, "db");
  EXPECT_EQ(refused.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("was not created by this pipeline's state directory"),
            std::string::npos)
      << refused.message();
  EXPECT_NE(refused.message().find("pg_drop_replication_slot('sluice_p')"), std::string::npos);
}

TEST(SlotCheckTest, ASlotInUseIsRetried) {
  SlotState active = Healthy(core::Lsn(0x5000));
  active.active = true;
  active.active_pid = 4242;
  const core::Status busy =
      CheckSlotUsable(active, "sluice_p", Positioned(core::Lsn(0x5000)), "db");
  EXPECT_TRUE(busy.retryable()) << busy.ToString();
  EXPECT_NE(busy.message().find("4242"), std::string::npos);
}

}  // namespace
}  // namespace sluice::capture
