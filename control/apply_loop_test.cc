#include "control/apply_loop.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <thread>

#include "apply/fake_sink.h"
#include "control/fake_change_stream.h"
#include "core/failpoint.h"
#include "core/test_builders.h"

namespace sluice::control {
namespace {

using apply::testing::FakeSink;
using core::Lsn;
using core::Transaction;
using core::Value;
using testing::FakeChangeStream;
namespace tb = core::testing;

constexpr char kPipeline[] = "p";

// Transaction number `n` (from 1): commit at n*100, one insert of key n.
Transaction Txn(uint64_t n, uint32_t fragment = 0, bool last = true) {
  static const core::RelationPtr relation =
      tb::MakeRelation(16384, "t", {tb::KeyColumn("id"), tb::PlainColumn("v", tb::kTextOid)});
  Transaction txn = tb::MakeTransaction(
      n * 100, {tb::MakeInsert(relation, {Value::Text(std::to_string(n)), Value::Text("x")})});
  txn.xid = static_cast<uint32_t>(n);
  txn.fragment = fragment;
  txn.last_fragment = last;
  txn.commit_time = static_cast<core::PgTimestamp>(n);
  return txn;
}

Lsn EndOf(uint64_t n) { return Lsn(n * 100 + 8); }

class ApplyLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "sluice_apply_loop_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto store = state::CheckpointStore::Open(dir_ + "/state");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  ApplyLoopOptions Options(size_t batch_transactions) {
    ApplyLoopOptions options;
    options.pipeline = kPipeline;
    options.limits = [batch_transactions] {
      config::ApplyConfig limits;
      limits.batch_max_transactions = batch_transactions;
      limits.batch_max_delay = std::chrono::hours(1);
      return limits;
    };
    options.idle_confirm_interval = std::chrono::milliseconds(0);
    options.poll = std::chrono::milliseconds(1);
    return options;
  }

  core::Status Run(FakeChangeStream& stream, ApplyLoopOptions options, Lsn resume = Lsn(),
                   Lsn end = Lsn()) {
    ApplyLoop loop(std::move(options), stream, sink_, *store_, metrics_, watermark_);
    return loop.Run(resume, end, stop_);
  }

  Lsn Checkpointed() {
    auto checkpoint = store_->LoadCheckpoint(kPipeline);
    EXPECT_TRUE(checkpoint.ok());
    return checkpoint.ok() && checkpoint->has_value() ? (*checkpoint)->durable_lsn : Lsn();
  }

  // Every acknowledgement must find its position checkpointed and every transaction delivered
  // up to it committed on the target.
  void CheckOrderOnAcknowledge(FakeChangeStream& stream) {
    stream.on_acknowledge = [this, &stream](Lsn lsn) {
      EXPECT_GE(Checkpointed(), lsn) << "acknowledged before the checkpoint";
      for (Lsn end : stream.delivered_ends()) {
        if (end <= lsn) {
          EXPECT_GE(sink_.applied().end_lsn, end) << "acknowledged before the target committed";
        }
      }
    };
  }

  std::string dir_;
  std::unique_ptr<state::CheckpointStore> store_;
  FakeSink sink_;
  PipelineMetrics metrics_;
  DurableWatermark watermark_;
  std::atomic<bool> stop_{false};
};

TEST_F(ApplyLoopTest, TargetCommitThenCheckpointThenAcknowledge) {
  FakeChangeStream stream({Txn(1), Txn(2), Txn(3), Txn(4), Txn(5)}, /*ends=*/true);
  CheckOrderOnAcknowledge(stream);
  ASSERT_TRUE(Run(stream, Options(2)).ok());

  ASSERT_EQ(sink_.committed().size(), 3u);  // 2 + 2 + 1 transactions
  std::vector<uint32_t> applied;
  for (const auto& batch : sink_.committed()) {
    for (const Transaction& txn : batch.fragments) applied.push_back(txn.xid);
  }
  EXPECT_EQ(applied, (std::vector<uint32_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(sink_.committed()[0].position.end_lsn, EndOf(2));
  EXPECT_EQ(stream.acknowledged(), (std::vector<Lsn>{EndOf(2), EndOf(4), EndOf(5)}));
  EXPECT_EQ(Checkpointed(), EndOf(5));
  EXPECT_EQ(watermark_.Get(), EndOf(5));
  EXPECT_EQ(metrics_.durable_lsn.load(), EndOf(5).value());
  EXPECT_EQ(metrics_.transactions_applied.load(), 5u);
  EXPECT_TRUE(stream.finished());
}

TEST_F(ApplyLoopTest, FragmentsOfOneTransactionNeverSplitAcrossBatches) {
  FakeChangeStream stream({Txn(1), Txn(2, 0, false), Txn(2, 1, false), Txn(2, 2, true), Txn(3)},
                          /*ends=*/true);
  ASSERT_TRUE(Run(stream, Options(1)).ok());

  ASSERT_EQ(sink_.committed().size(), 3u);
  ASSERT_EQ(sink_.committed()[1].fragments.size(), 3u);
  for (const Transaction& fragment : sink_.committed()[1].fragments) EXPECT_EQ(fragment.xid, 2u);
  EXPECT_EQ(sink_.committed()[1].position.end_lsn, EndOf(2));
}

TEST_F(ApplyLoopTest, FailedTargetCommitIsNeitherCheckpointedNorAcknowledged) {
  FakeChangeStream stream({Txn(1), Txn(2), Txn(3), Txn(4)}, /*ends=*/true);
  CheckOrderOnAcknowledge(stream);
  sink_.FailCommit(2, core::Unavailable("target went away"));
  const core::Status status = Run(stream, Options(2));

  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(status.retryable());
  EXPECT_NE(status.message().find("pipeline p"), std::string::npos) << status.message();
  EXPECT_EQ(stream.acknowledged(), (std::vector<Lsn>{EndOf(2)}));
  EXPECT_EQ(Checkpointed(), EndOf(2));
  EXPECT_EQ(watermark_.Get(), EndOf(2));
}

TEST_F(ApplyLoopTest, PartialTransactionAtStopNeverReachesTheTarget) {
  // The stream ends (stopped) after two of three fragments.
  FakeChangeStream stream({Txn(1), Txn(2, 0, false), Txn(2, 1, false)}, /*ends=*/true);
  ASSERT_TRUE(Run(stream, Options(1)).ok());

  ASSERT_EQ(sink_.committed().size(), 1u);
  EXPECT_EQ(sink_.committed()[0].fragments.size(), 1u);
  EXPECT_EQ(sink_.aborted(), 1u);
  EXPECT_EQ(Checkpointed(), EndOf(1));
}

TEST_F(ApplyLoopTest, IdlePositionConfirmedOnlyOnceEverythingBeforeItIsDurable) {
  // The source goes idle at 1000 after three transactions; the batch holds them until idle.
  FakeChangeStream stream({Txn(1), Txn(2), Txn(3), FakeChangeStream::Idle{Lsn(1000)}},
                          /*ends=*/false);
  CheckOrderOnAcknowledge(stream);
  std::thread stopper([&] {
    EXPECT_TRUE(watermark_.WaitFor(Lsn(1000), std::chrono::seconds(30)));
    stop_ = true;
  });
  ASSERT_TRUE(Run(stream, Options(100)).ok());
  stopper.join();

  // The batch committed because the source went idle right after it, then the idle position.
  ASSERT_EQ(sink_.committed().size(), 1u);
  EXPECT_EQ(stream.acknowledged(), (std::vector<Lsn>{EndOf(3), Lsn(1000)}));
  EXPECT_EQ(Checkpointed(), Lsn(1000));
}

TEST_F(ApplyLoopTest, IdlePositionNotConfirmedWhileDeliveredTransactionsAreNotDurable) {
  // Idle at 1000 counts two delivered transactions, but the first commit fails: 1000 must
  // never be acknowledged.
  FakeChangeStream stream({Txn(1), Txn(2), FakeChangeStream::Idle{Lsn(1000)}}, /*ends=*/true);
  sink_.FailCommit(1, core::Unavailable("target went away"));
  EXPECT_FALSE(Run(stream, Options(100)).ok());
  EXPECT_TRUE(stream.acknowledged().empty());
  EXPECT_FALSE(Checkpointed().valid());
}

TEST_F(ApplyLoopTest, EndPositionAppliesExactlyWhatCommittedBeforeIt) {
  FakeChangeStream stream({Txn(1), Txn(2), Txn(3), Txn(4), Txn(5)}, /*ends=*/false);
  CheckOrderOnAcknowledge(stream);
  // Transaction 3 commits at 300: an end at 300 keeps it out, one at 301 takes it in.
  ASSERT_TRUE(Run(stream, Options(100), Lsn(), Lsn(300)).ok());

  EXPECT_EQ(sink_.applied().end_lsn, EndOf(2));
  EXPECT_EQ(Checkpointed(), Lsn(300));
  EXPECT_TRUE(watermark_.WaitFor(Lsn(300), std::chrono::milliseconds(0)));
  EXPECT_FALSE(watermark_.WaitFor(EndOf(3), std::chrono::milliseconds(0)));
}

TEST_F(ApplyLoopTest, EndPositionInsideATransactionsCommitRecordTakesThatTransaction) {
  FakeChangeStream stream({Txn(1), Txn(2), Txn(3), Txn(4)}, /*ends=*/false);
  ASSERT_TRUE(Run(stream, Options(100), Lsn(), Lsn(301)).ok());
  EXPECT_EQ(sink_.applied().end_lsn, EndOf(3));
  EXPECT_EQ(Checkpointed(), EndOf(3));
}

TEST_F(ApplyLoopTest, EndPositionReachedWhileIdleIsConfirmed) {
  FakeChangeStream stream({Txn(1), FakeChangeStream::Idle{Lsn(5000)}}, /*ends=*/false);
  ASSERT_TRUE(Run(stream, Options(100), Lsn(), Lsn(4000)).ok());
  EXPECT_EQ(Checkpointed(), Lsn(5000));
  EXPECT_TRUE(watermark_.WaitFor(Lsn(4000), std::chrono::milliseconds(0)));
}

TEST_F(ApplyLoopTest, ResumePositionSkipsWhatIsApplied) {
  FakeChangeStream stream({Txn(1), Txn(2), Txn(3)}, /*ends=*/true);
  ASSERT_TRUE(Run(stream, Options(100), EndOf(2)).ok());
  ASSERT_EQ(sink_.committed().size(), 1u);
  ASSERT_EQ(sink_.committed()[0].fragments.size(), 1u);
  EXPECT_EQ(sink_.committed()[0].fragments[0].xid, 3u);
  EXPECT_EQ(watermark_.Get(), EndOf(3));
}

TEST_F(ApplyLoopTest, RestartVerdictDropsTheOpenBatch) {
  FakeChangeStream stream({Txn(1), Txn(2), Txn(3)}, /*ends=*/true);
  ApplyLoopOptions options = Options(100);
  options.hooks.admit = [](Transaction& txn) -> core::Result<FragmentVerdict> {
    return txn.xid == 3 ? FragmentVerdict::kRestart : FragmentVerdict::kApply;
  };
  ASSERT_TRUE(Run(stream, std::move(options)).ok());
  EXPECT_TRUE(sink_.committed().empty());  // 1 and 2 are streamed again after the restart
  EXPECT_EQ(sink_.aborted(), 1u);
  EXPECT_TRUE(stream.acknowledged().empty());
}

TEST_F(ApplyLoopTest, WindDownCommitsAtTheNextTransactionBoundary) {
  FakeChangeStream stream({Txn(1), Txn(2, 0, false), Txn(2, 1, true), Txn(3)}, /*ends=*/false);
  ApplyLoopOptions options = Options(100);
  int rounds = 0;
  // Asked to wind down while transaction 2 is half applied.
  options.hooks.wind_down = [&rounds]() -> core::Result<bool> { return ++rounds >= 3; };
  ASSERT_TRUE(Run(stream, std::move(options)).ok());
  ASSERT_EQ(sink_.committed().size(), 1u);
  EXPECT_EQ(sink_.committed()[0].position.end_lsn, EndOf(2));
  EXPECT_EQ(sink_.committed()[0].fragments.size(), 3u);
  EXPECT_EQ(Checkpointed(), EndOf(2));
}

TEST_F(ApplyLoopTest, HookErrorEndsTheLoopWithItsStatus) {
  FakeChangeStream stream({Txn(1)}, /*ends=*/false);
  ApplyLoopOptions options = Options(100);
  options.hooks.wind_down = []() -> core::Result<bool> {
    return core::FailedPrecondition("the table watcher failed");
  };
  const core::Status status = Run(stream, std::move(options));
  EXPECT_EQ(status.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("the table watcher failed"), std::string::npos);
}

TEST(DurableWatermarkTest, WaitForWakesWhenAnotherThreadAdvances) {
  DurableWatermark watermark;
  watermark.Reset(Lsn(10));
  EXPECT_FALSE(watermark.WaitFor(Lsn(20), std::chrono::milliseconds(0)));
  std::thread advancer([&] { watermark.Advance(Lsn(25)); });
  EXPECT_TRUE(watermark.WaitFor(Lsn(20), std::chrono::seconds(30)));
  advancer.join();
  watermark.Advance(Lsn(5));  // never backwards
  EXPECT_EQ(watermark.Get(), Lsn(25));
  watermark.Reset(Lsn(5));  // but a new stream may start behind (after `sluice snapshot`)
  EXPECT_EQ(watermark.Get(), Lsn(5));
}

}  // namespace
}  // namespace sluice::control
