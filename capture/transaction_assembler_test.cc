#include "capture/transaction_assembler.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace sluice::capture {
namespace {

namespace fs = std::filesystem;
using core::Lsn;
using core::Operation;
using core::Value;

constexpr core::Oid kUsers = 16384;
constexpr core::Oid kOrders = 16390;

RelationMessage Rel(core::Oid oid, const std::string& name, int columns,
                    std::optional<uint32_t> xid = std::nullopt) {
  RelationMessage m;
  m.xid = xid;
  m.relation.oid = oid;
  m.relation.schema = "public";
  m.relation.name = name;
  for (int i = 0; i < columns; ++i) {
    m.relation.columns.push_back({"c" + std::to_string(i), 25, -1, i == 0});
  }
  return m;
}

// An insert whose first column is `key` and the others `payload_bytes` of filler.
InsertMessage Ins(core::Oid oid, int key, int columns = 2,
                  std::optional<uint32_t> xid = std::nullopt, size_t payload_bytes = 8) {
  InsertMessage m;
  m.xid = xid;
  m.relation_oid = oid;
  m.new_tuple.values.push_back(Value::Text(std::to_string(key)));
  for (int i = 1; i < columns; ++i) {
    m.new_tuple.values.push_back(Value::Text(std::string(payload_bytes, 'p')));
  }
  return m;
}

BeginMessage Begin(uint32_t xid, uint64_t final_lsn, core::PgTimestamp time = 777) {
  BeginMessage m;
  m.xid = xid;
  m.final_lsn = Lsn(final_lsn);
  m.commit_time = time;
  return m;
}

CommitMessage Commit(uint64_t commit_lsn, uint64_t end_lsn, core::PgTimestamp time = 777) {
  CommitMessage m;
  m.commit_lsn = Lsn(commit_lsn);
  m.end_lsn = Lsn(end_lsn);
  m.commit_time = time;
  return m;
}

StreamStartMessage StreamStart(uint32_t xid, bool first) { return {xid, first}; }

StreamCommitMessage StreamCommit(uint32_t xid, uint64_t commit_lsn, uint64_t end_lsn,
                                 core::PgTimestamp time = 888) {
  StreamCommitMessage m;
  m.xid = xid;
  m.commit_lsn = Lsn(commit_lsn);
  m.end_lsn = Lsn(end_lsn);
  m.commit_time = time;
  return m;
}

// The first column of every change of every emitted fragment of `xid`, in order.
std::vector<std::string> Keys(const std::vector<core::Transaction>& emitted, uint32_t xid) {
  std::vector<std::string> keys;
  for (const auto& txn : emitted) {
    if (txn.xid != xid) continue;
    for (const auto& change : txn.changes) keys.push_back(change.new_tuple.at(0).data);
  }
  return keys;
}

std::vector<std::string> Range(int from, int to) {
  std::vector<std::string> keys;
  for (int i = from; i < to; ++i) keys.push_back(std::to_string(i));
  return keys;
}

class TransactionAssemblerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "assembler_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    options_.spill_dir = root_ + "/spill";
  }
  void TearDown() override { fs::remove_all(root_); }

  TransactionAssembler& Make() {
    assembler_ = std::make_unique<TransactionAssembler>(options_, [this](core::Transaction&& t) {
      emitted_.push_back(std::move(t));
      return emit_status_;
    });
    return *assembler_;
  }

  // Feeds one message at a fresh LSN and checks the memory bound after every step.
  core::Status Feed(PgOutputMessage message) {
    core::Status status = assembler_->Process(std::move(message), Lsn(next_lsn_));
    next_lsn_ += 0x10;
    EXPECT_LE(assembler_->buffered_bytes(), options_.memory_limit_bytes);
    return status;
  }

  size_t SpillFilesOnDisk() const {
    if (!fs::exists(options_.spill_dir)) return 0;
    size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(options_.spill_dir)) ++n;
    return n;
  }

  std::string root_;
  AssemblerOptions options_;
  std::unique_ptr<TransactionAssembler> assembler_;
  std::vector<core::Transaction> emitted_;
  core::Status emit_status_;
  uint64_t next_lsn_ = 0x1000;
};

#define FEED(m) ASSERT_TRUE(Feed(m).ok())

// Expects Feed(m) to fail with kCorruption whose message contains every one of `parts`.
#define FEED_FAILS(m, ...)                                                                       \
  do {                                                                                           \
    core::Status _st = Feed(m);                                                                  \
    ASSERT_FALSE(_st.ok());                                                                      \
    EXPECT_EQ(_st.code(), core::StatusCode::kCorruption) << _st.ToString();                      \
    for (const char* part : {__VA_ARGS__}) {                                                     \
      EXPECT_NE(_st.message().find(part), std::string::npos) << part << " in " << _st.message(); \
    }                                                                                            \
  } while (0)

TEST_F(TransactionAssemblerTest, FragmentsNonStreamedTransactionByCount) {
  options_.max_fragment_changes = 3;
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(Begin(740, 0x5000, 12345));
  for (int i = 0; i < 4; ++i) FEED(Ins(kUsers, i));
  // The first fragment goes out as soon as it is full and more arrives: never buffered whole.
  ASSERT_EQ(emitted_.size(), 1u);
  EXPECT_FALSE(emitted_[0].last_fragment);
  for (int i = 4; i < 7; ++i) FEED(Ins(kUsers, i));
  FEED(Commit(0x5000, 0x5028, 12345));

  ASSERT_EQ(emitted_.size(), 3u);
  const std::vector<size_t> sizes = {3, 3, 1};
  for (size_t f = 0; f < emitted_.size(); ++f) {
    const auto& fragment = emitted_[f];
    EXPECT_EQ(fragment.xid, 740u);
    EXPECT_EQ(fragment.commit_lsn, Lsn(0x5000));
    EXPECT_EQ(fragment.commit_time, 12345);
    EXPECT_EQ(fragment.fragment, f);
    EXPECT_EQ(fragment.changes.size(), sizes[f]);
    EXPECT_EQ(fragment.last_fragment, f == 2);
    EXPECT_EQ(fragment.end_lsn, f == 2 ? Lsn(0x5028) : core::kInvalidLsn);
  }
  EXPECT_EQ(Keys(emitted_, 740), Range(0, 7));
}

TEST_F(TransactionAssemblerTest, ExactMultipleOfFragmentSizeHasNoEmptyTail) {
  options_.max_fragment_changes = 3;
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(Begin(740, 0x5000));
  for (int i = 0; i < 6; ++i) FEED(Ins(kUsers, i));
  FEED(Commit(0x5000, 0x5028));
  ASSERT_EQ(emitted_.size(), 2u);
  EXPECT_EQ(emitted_[1].changes.size(), 3u);
  EXPECT_TRUE(emitted_[1].last_fragment);
}

TEST_F(TransactionAssemblerTest, FragmentsByBytes) {
  core::Change probe;
  probe.new_tuple = {Value::Text("0"), Value::Text(std::string(1000, 'p'))};
  const uint64_t change_bytes = probe.ApproximateBytes();
  options_.max_fragment_bytes = change_bytes * 5 / 2;  // full after 3 changes
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(Begin(1, 0x5000));
  for (int i = 0; i < 10; ++i) FEED(Ins(kUsers, i, 2, std::nullopt, 1000));
  FEED(Commit(0x5000, 0x5028));
  ASSERT_EQ(emitted_.size(), 4u);
  for (size_t f = 0; f < 3; ++f) EXPECT_EQ(emitted_[f].changes.size(), 3u);
  EXPECT_EQ(emitted_[3].changes.size(), 1u);
  EXPECT_EQ(Keys(emitted_, 1), Range(0, 10));
}

TEST_F(TransactionAssemblerTest, AFragmentFullByBytesLeavesAtOnce) {
  options_.max_fragment_bytes = 4096;
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(Begin(2, 0x5000));
  FEED(Ins(kUsers, 1));
  EXPECT_TRUE(emitted_.empty());
  // A large value fills the fragment: it goes before the next message is read.
  FEED(Ins(kUsers, 2, 2, std::nullopt, 100000));
  ASSERT_EQ(emitted_.size(), 1u);
  EXPECT_EQ(emitted_[0].changes.size(), 2u);
  EXPECT_FALSE(emitted_[0].last_fragment);
  FEED(Ins(kUsers, 3, 2, std::nullopt, 100000));
  ASSERT_EQ(emitted_.size(), 2u);
  EXPECT_EQ(emitted_[1].changes.size(), 1u);
  // The transaction's last change filled a fragment: the last fragment carries only end_lsn.
  FEED(Commit(0x5000, 0x5028));
  ASSERT_EQ(emitted_.size(), 3u);
  EXPECT_TRUE(emitted_[2].changes.empty());
  EXPECT_TRUE(emitted_[2].last_fragment);
  EXPECT_EQ(emitted_[2].fragment, 2u);
  EXPECT_EQ(emitted_[2].end_lsn, Lsn(0x5028));
  EXPECT_EQ(Keys(emitted_, 2), Range(1, 4));
}

TEST_F(TransactionAssemblerTest, EmptyTransactionIsOneEmptyLastFragment) {
  Make();
  FEED(Begin(741, 0x6000, 5));
  FEED(Commit(0x6000, 0x6030, 5));
  ASSERT_EQ(emitted_.size(), 1u);
  EXPECT_EQ(emitted_[0].xid, 741u);
  EXPECT_TRUE(emitted_[0].changes.empty());
  EXPECT_TRUE(emitted_[0].last_fragment);
  EXPECT_EQ(emitted_[0].fragment, 0u);
  EXPECT_EQ(emitted_[0].commit_lsn, Lsn(0x6000));
  EXPECT_EQ(emitted_[0].end_lsn, Lsn(0x6030));
}

TEST_F(TransactionAssemblerTest, RowMessagesBecomeChanges) {
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(Begin(1, 0x9000));
  ASSERT_TRUE(assembler_->Process(Ins(kUsers, 1), Lsn(0x8100)).ok());

  UpdateMessage update;
  update.relation_oid = kUsers;
  update.old_kind = core::OldTupleKind::kKey;
  update.old_tuple.values = {Value::Text("1"), Value::Null()};
  update.new_tuple.values = {Value::Text("2"), Value::UnchangedToast()};
  ASSERT_TRUE(assembler_->Process(std::move(update), Lsn(0x8200)).ok());

  UpdateMessage update_no_old;
  update_no_old.relation_oid = kUsers;
  update_no_old.new_tuple.values = {Value::Text("2"), Value::Text("x")};
  FEED(std::move(update_no_old));

  DeleteMessage del;
  del.relation_oid = kUsers;
  del.old_kind = core::OldTupleKind::kFull;
  del.old_tuple.values = {Value::Text("2"), Value::Text("x")};
  FEED(std::move(del));

  LogicalMessage message;
  message.transactional = true;
  message.lsn = Lsn(0x8500);
  message.prefix = "app";
  message.content = "hello";
  FEED(std::move(message));

  // A frame without a WAL position: the change falls back to the commit LSN.
  ASSERT_TRUE(assembler_->Process(Ins(kUsers, 3), core::kInvalidLsn).ok());
  FEED(Commit(0x9000, 0x9030));

  ASSERT_EQ(emitted_.size(), 1u);
  const auto& changes = emitted_[0].changes;
  ASSERT_EQ(changes.size(), 6u);
  EXPECT_EQ(changes[0].op, Operation::kInsert);
  EXPECT_EQ(changes[0].lsn, Lsn(0x8100));
  EXPECT_EQ(changes[0].relation->name, "users");
  EXPECT_EQ(changes[0].old_kind, core::OldTupleKind::kNone);

  EXPECT_EQ(changes[1].op, Operation::kUpdate);
  EXPECT_EQ(changes[1].lsn, Lsn(0x8200));
  EXPECT_EQ(changes[1].old_kind, core::OldTupleKind::kKey);
  EXPECT_EQ(changes[1].old_tuple, (core::Tuple{Value::Text("1"), Value::Null()}));
  EXPECT_EQ(changes[1].new_tuple, (core::Tuple{Value::Text("2"), Value::UnchangedToast()}));

  EXPECT_EQ(changes[2].old_kind, core::OldTupleKind::kNone);
  EXPECT_TRUE(changes[2].old_tuple.empty());

  EXPECT_EQ(changes[3].op, Operation::kDelete);
  EXPECT_EQ(changes[3].old_kind, core::OldTupleKind::kFull);
  EXPECT_EQ(changes[3].old_tuple[1].data, "x");
  EXPECT_TRUE(changes[3].new_tuple.empty());

  EXPECT_EQ(changes[4].op, Operation::kMessage);
  EXPECT_TRUE(changes[4].message_transactional);
  EXPECT_EQ(changes[4].message_prefix, "app");
  EXPECT_EQ(changes[4].message_content, "hello");

  EXPECT_EQ(changes[5].lsn, Lsn(0x9000));
}

TEST_F(TransactionAssemblerTest, TruncateOfSeveralRelations) {
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(Rel(kOrders, "orders", 3));
  FEED(Begin(1, 0x9000));
  TruncateMessage truncate;
  truncate.cascade = true;
  truncate.restart_identity = false;
  truncate.relation_oids = {kUsers, kOrders};
  FEED(std::move(truncate));
  FEED(Commit(0x9000, 0x9030));
  ASSERT_EQ(emitted_.size(), 1u);
  ASSERT_EQ(emitted_[0].changes.size(), 1u);
  const auto& change = emitted_[0].changes[0];
  EXPECT_EQ(change.op, Operation::kTruncate);
  EXPECT_EQ(change.relation, nullptr);
  ASSERT_EQ(change.truncated.size(), 2u);
  EXPECT_EQ(change.truncated[0]->name, "users");
  EXPECT_EQ(change.truncated[1]->name, "orders");
  EXPECT_TRUE(change.truncate_cascade);
  EXPECT_FALSE(change.truncate_restart_identity);

  TruncateMessage unknown;
  unknown.relation_oids = {kUsers, 999};
  FEED(Begin(2, 0xA000));
  FEED_FAILS(std::move(unknown), "Truncate", "999");
}

TEST_F(TransactionAssemblerTest, OriginIsCarriedAndSkippedOriginsDropChanges) {
  options_.skip_origins = {"sluice_pipeline_a"};
  options_.max_fragment_changes = 2;
  Make();
  FEED(Rel(kUsers, "users", 2));

  FEED(Begin(10, 0x5000));
  FEED((OriginMessage{Lsn(0x77), "other_node"}));
  FEED(Ins(kUsers, 1));
  FEED(Commit(0x5000, 0x5010));
  ASSERT_EQ(emitted_.size(), 1u);
  EXPECT_EQ(emitted_[0].origin, "other_node");
  EXPECT_EQ(emitted_[0].origin_lsn, Lsn(0x77));
  EXPECT_EQ(emitted_[0].changes.size(), 1u);

  FEED(Begin(11, 0x6000));
  FEED((OriginMessage{Lsn(0x88), "sluice_pipeline_a"}));
  for (int i = 0; i < 5; ++i) FEED(Ins(kUsers, i));  // more than a fragment: still dropped
  FEED(Commit(0x6000, 0x6010));
  ASSERT_EQ(emitted_.size(), 2u);
  EXPECT_EQ(emitted_[1].xid, 11u);
  EXPECT_EQ(emitted_[1].origin, "sluice_pipeline_a");
  EXPECT_TRUE(emitted_[1].changes.empty());
  EXPECT_TRUE(emitted_[1].last_fragment);
  EXPECT_EQ(emitted_[1].end_lsn, Lsn(0x6010));

  // Skipped streamed transaction: nothing buffered, one empty fragment at commit.
  options_.memory_limit_bytes = 1024;
  FEED(StreamStart(12, true));
  FEED((OriginMessage{Lsn(0x99), "sluice_pipeline_a"}));
  for (int i = 0; i < 50; ++i) FEED(Ins(kUsers, i, 2, 12, 100));
  FEED(StreamStopMessage{});
  EXPECT_EQ(assembler_->buffered_bytes(), 0u);
  EXPECT_EQ(assembler_->spilled_bytes(), 0u);
  FEED(StreamCommit(12, 0x7000, 0x7010));
  ASSERT_EQ(emitted_.size(), 3u);
  EXPECT_EQ(emitted_[2].xid, 12u);
  EXPECT_EQ(emitted_[2].origin, "sluice_pipeline_a");
  EXPECT_EQ(emitted_[2].origin_lsn, Lsn(0x99));
  EXPECT_TRUE(emitted_[2].changes.empty());
  EXPECT_EQ(emitted_[2].end_lsn, Lsn(0x7010));
}

TEST_F(TransactionAssemblerTest, RelationReplacedMidTransactionKeepsOldVersion) {
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(Begin(1, 0x9000));
  FEED(Ins(kUsers, 1, 2));
  FEED(Rel(kUsers, "users", 3));  // ALTER TABLE ... ADD COLUMN in the same transaction
  FEED(Ins(kUsers, 2, 3));
  const std::string at = Lsn(next_lsn_).ToString();
  FEED_FAILS(Ins(kUsers, 3, 2), "Insert", "public.users", "2 values", "3 columns", at.c_str());
  FEED(Commit(0x9000, 0x9030));
  ASSERT_EQ(emitted_.size(), 1u);
  ASSERT_EQ(emitted_[0].changes.size(), 2u);
  EXPECT_EQ(emitted_[0].changes[0].relation->columns.size(), 2u);
  EXPECT_EQ(emitted_[0].changes[1].relation->columns.size(), 3u);
  auto current = assembler_->relations().Get(kUsers);
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(*current, emitted_[0].changes[1].relation);
}

TEST_F(TransactionAssemblerTest, RelationReplacedMidStreamSurvivesSpill) {
  options_.memory_limit_bytes = 1024;
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(StreamStart(50, true));
  for (int i = 0; i < 10; ++i) FEED(Ins(kUsers, i, 2, 50, 100));
  FEED(Rel(kUsers, "users", 3, 50));
  for (int i = 10; i < 20; ++i) FEED(Ins(kUsers, i, 3, 50, 100));
  FEED(StreamStopMessage{});
  EXPECT_GT(assembler_->spilled_bytes(), 0u);
  FEED(StreamCommit(50, 0x9000, 0x9030));
  ASSERT_EQ(Keys(emitted_, 50), Range(0, 20));
  size_t index = 0;
  for (const auto& fragment : emitted_) {
    for (const auto& change : fragment.changes) {
      EXPECT_EQ(change.relation->columns.size(), index < 10 ? 2u : 3u) << index;
      EXPECT_EQ(change.new_tuple.size(), change.relation->columns.size());
      ++index;
    }
  }
}

TEST_F(TransactionAssemblerTest, StreamedTransactionsInterleaveAcrossBlocks) {
  options_.max_fragment_changes = 4;
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(Rel(kOrders, "orders", 1));

  FEED(StreamStart(100, true));
  FEED(Ins(kUsers, 0, 2, 100));
  FEED(Ins(kUsers, 1, 2, 100));
  FEED(StreamStopMessage{});

  FEED(StreamStart(200, true));
  FEED(Ins(kOrders, 1000, 1, 200));
  FEED(StreamStopMessage{});

  // A non-streamed transaction commits between stream blocks and is emitted right away.
  FEED(Begin(150, 0x2000));
  FEED(Ins(kUsers, 500));
  FEED(Commit(0x2000, 0x2010));
  ASSERT_EQ(emitted_.size(), 1u);
  EXPECT_EQ(emitted_[0].xid, 150u);

  FEED(StreamStart(100, false));
  FEED(Ins(kUsers, 2, 2, 101));  // subtransaction of 100
  FEED(Ins(kUsers, 3, 2, 100));
  FEED(StreamStopMessage{});

  FEED(StreamStart(200, false));
  FEED(Ins(kOrders, 1001, 1, 200));
  FEED(StreamStopMessage{});

  FEED(StreamStart(100, false));
  for (int i = 4; i < 10; ++i) FEED(Ins(kUsers, i, 2, 100));
  FEED(StreamStopMessage{});
  EXPECT_EQ(assembler_->open_streamed_transactions(), 2u);

  FEED(StreamCommit(200, 0x3000, 0x3010, 42));
  FEED(StreamCommit(100, 0x4000, 0x4010, 43));
  EXPECT_EQ(assembler_->open_streamed_transactions(), 0u);
  EXPECT_EQ(assembler_->buffered_bytes(), 0u);

  ASSERT_EQ(emitted_.size(), 5u);  // 150, 200, then 100 in fragments of 4, 4, 2
  EXPECT_EQ(emitted_[1].xid, 200u);
  EXPECT_EQ(emitted_[1].commit_lsn, Lsn(0x3000));
  EXPECT_EQ(emitted_[1].end_lsn, Lsn(0x3010));
  EXPECT_EQ(emitted_[1].commit_time, 42);
  EXPECT_TRUE(emitted_[1].last_fragment);
  EXPECT_EQ(Keys(emitted_, 200), (std::vector<std::string>{"1000", "1001"}));

  for (size_t f = 2; f < 5; ++f) {
    EXPECT_EQ(emitted_[f].xid, 100u);
    EXPECT_EQ(emitted_[f].fragment, f - 2);
    EXPECT_EQ(emitted_[f].commit_lsn, Lsn(0x4000));
    EXPECT_EQ(emitted_[f].commit_time, 43);
    EXPECT_EQ(emitted_[f].last_fragment, f == 4);
    EXPECT_EQ(emitted_[f].end_lsn, f == 4 ? Lsn(0x4010) : core::kInvalidLsn);
  }
  EXPECT_EQ(Keys(emitted_, 100), Range(0, 10));
  // Streamed changes keep the WAL position of their own frame.
  EXPECT_LT(emitted_[2].changes[0].lsn, emitted_[2].changes[1].lsn);
  EXPECT_LT(emitted_[2].changes[0].lsn, Lsn(0x2000));
}

TEST_F(TransactionAssemblerTest, SpillsBeyondTinyLimitAndCommitsEverythingInOrder) {
  options_.memory_limit_bytes = 1024;
  options_.max_fragment_changes = 64;
  Make();
  FEED(Rel(kUsers, "users", 2));
  for (int block = 0; block < 5; ++block) {
    FEED(StreamStart(300, block == 0));
    for (int i = 0; i < 40; ++i) FEED(Ins(kUsers, block * 40 + i, 2, 300, 50));
    FEED(StreamStopMessage{});
    FEED(StreamStart(400, block == 0));
    for (int i = 0; i < 3; ++i) FEED(Ins(kUsers, 10000 + block * 3 + i, 2, 400));
    FEED(StreamStopMessage{});
  }
  EXPECT_GT(assembler_->spilled_bytes(), 0u);
  EXPECT_GE(SpillFilesOnDisk(), 1u);

  FEED(StreamCommit(300, 0x9000, 0x9010));
  EXPECT_EQ(Keys(emitted_, 300), Range(0, 200));
  for (const auto& fragment : emitted_) EXPECT_LE(fragment.changes.size(), 64u);
  EXPECT_EQ(emitted_.back().end_lsn, Lsn(0x9010));

  FEED(StreamCommit(400, 0xA000, 0xA010));
  EXPECT_EQ(Keys(emitted_, 400), Range(10000, 10015));
  EXPECT_EQ(SpillFilesOnDisk(), 0u);
  EXPECT_EQ(assembler_->spilled_bytes(), 0u);
  EXPECT_EQ(assembler_->buffered_bytes(), 0u);
}

TEST_F(TransactionAssemblerTest, SingleChangeLargerThanLimitIsSpilledAtOnce) {
  options_.memory_limit_bytes = 256;
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(StreamStart(1, true));
  FEED(Ins(kUsers, 0, 2, 1, 10000));
  EXPECT_EQ(assembler_->buffered_bytes(), 0u);
  FEED(StreamStopMessage{});
  FEED(StreamCommit(1, 0x9000, 0x9010));
  ASSERT_EQ(emitted_.size(), 1u);
  EXPECT_EQ(emitted_[0].changes[0].new_tuple[1].data.size(), 10000u);
}

TEST_F(TransactionAssemblerTest, SubtransactionAbortInMemory) {
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(StreamStart(500, true));
  FEED(Ins(kUsers, 0, 2, 500));
  FEED(Ins(kUsers, 1, 2, 501));  // savepoint a
  FEED(Ins(kUsers, 2, 2, 502));  // savepoint b (child of a)
  FEED(Ins(kUsers, 3, 2, 501));
  FEED(StreamStopMessage{});
  const uint64_t before = assembler_->buffered_bytes();
  FEED((StreamAbortMessage{500, 502}));  // ROLLBACK TO b: drops 2 and 3
  EXPECT_LT(assembler_->buffered_bytes(), before);
  FEED(StreamStart(500, false));
  FEED(Ins(kUsers, 4, 2, 503));
  FEED(StreamStopMessage{});
  FEED((StreamAbortMessage{500, 501}));  // ROLLBACK TO a: drops 1 and 4
  FEED((StreamAbortMessage{500, 502}));  // already gone: nothing to do
  FEED((StreamAbortMessage{500, 999}));  // subtransaction without changes
  FEED(StreamStart(500, false));
  FEED(Ins(kUsers, 5, 2, 500));
  FEED(Ins(kUsers, 6, 2, 504));
  FEED(StreamStopMessage{});
  FEED(StreamCommit(500, 0x9000, 0x9010));
  EXPECT_EQ(Keys(emitted_, 500), (std::vector<std::string>{"0", "5", "6"}));
  EXPECT_EQ(assembler_->buffered_bytes(), 0u);
}

TEST_F(TransactionAssemblerTest, SubtransactionAbortAfterSpill) {
  options_.memory_limit_bytes = 1024;
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(StreamStart(600, true));
  for (int i = 0; i < 10; ++i) FEED(Ins(kUsers, i, 2, 600, 100));
  for (int i = 10; i < 20; ++i) FEED(Ins(kUsers, i, 2, 601, 100));  // spilled mostly
  for (int i = 20; i < 30; ++i) FEED(Ins(kUsers, i, 2, 600, 100));
  for (int i = 30; i < 33; ++i) FEED(Ins(kUsers, i, 2, 602));  // small: stays in memory
  FEED(StreamStopMessage{});
  const uint64_t spilled = assembler_->spilled_bytes();
  ASSERT_GT(spilled, 0u);
  ASSERT_GT(assembler_->buffered_bytes(), 0u);

  // Cut inside memory first, then inside the spill file.
  FEED((StreamAbortMessage{600, 602}));
  EXPECT_EQ(assembler_->spilled_bytes(), spilled);
  FEED((StreamAbortMessage{600, 601}));
  EXPECT_LT(assembler_->spilled_bytes(), spilled);
  EXPECT_EQ(assembler_->buffered_bytes(), 0u);

  FEED(StreamStart(600, false));
  for (int i = 40; i < 45; ++i) FEED(Ins(kUsers, i, 2, 600, 100));
  FEED(StreamStopMessage{});
  FEED(StreamCommit(600, 0x9000, 0x9010));
  std::vector<std::string> expected = Range(0, 10);
  for (const auto& key : Range(40, 45)) expected.push_back(key);
  EXPECT_EQ(Keys(emitted_, 600), expected);
}

TEST_F(TransactionAssemblerTest, WholeStreamAbortDropsBuffersAndSpillFile) {
  options_.memory_limit_bytes = 1024;
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(StreamStart(700, true));
  for (int i = 0; i < 30; ++i) FEED(Ins(kUsers, i, 2, 700, 100));
  FEED(Ins(kUsers, 99, 2, 701));
  FEED(StreamStopMessage{});
  ASSERT_EQ(SpillFilesOnDisk(), 1u);
  FEED((StreamAbortMessage{700, 700}));
  EXPECT_EQ(SpillFilesOnDisk(), 0u);
  EXPECT_EQ(assembler_->open_streamed_transactions(), 0u);
  EXPECT_EQ(assembler_->buffered_bytes(), 0u);
  EXPECT_EQ(assembler_->spilled_bytes(), 0u);
  EXPECT_TRUE(emitted_.empty());
  FEED((StreamAbortMessage{700, 700}));  // unknown now: nothing to drop
  FEED_FAILS(StreamCommit(700, 0x9000, 0x9010), "Stream Commit", "unknown", "700");
}

TEST_F(TransactionAssemblerTest, MemoryBoundHoldsWithManyTransactions) {
  options_.memory_limit_bytes = 4096;
  Make();  // Feed() checks buffered_bytes() <= limit after every message
  FEED(Rel(kUsers, "users", 2));
  for (uint32_t xid = 1; xid <= 8; ++xid) {
    FEED(StreamStart(xid, true));
    for (int i = 0; i < 20; ++i) FEED(Ins(kUsers, static_cast<int>(xid * 1000) + i, 2, xid, 30));
    FEED(StreamStopMessage{});
  }
  EXPECT_GT(assembler_->spilled_bytes(), 0u);
  for (uint32_t xid = 8; xid >= 1; --xid) {
    FEED(StreamCommit(xid, 0x10000 + xid, 0x20000 + xid));
    EXPECT_EQ(Keys(emitted_, xid), Range(static_cast<int>(xid * 1000), xid * 1000 + 20));
  }
  EXPECT_EQ(SpillFilesOnDisk(), 0u);
}

TEST_F(TransactionAssemblerTest, NonTransactionalMessagesStandAlone) {
  Make();
  FEED(Rel(kUsers, "users", 2));
  LogicalMessage outside;
  outside.transactional = false;
  outside.lsn = Lsn(0x4242);
  outside.prefix = "hb";
  outside.content = "1";
  FEED(std::move(outside));
  ASSERT_EQ(emitted_.size(), 1u);
  EXPECT_EQ(emitted_[0].xid, 0u);
  EXPECT_EQ(emitted_[0].commit_lsn, Lsn(0x4242));
  EXPECT_FALSE(emitted_[0].end_lsn.valid());  // never a checkpoint position
  EXPECT_TRUE(emitted_[0].last_fragment);
  ASSERT_EQ(emitted_[0].changes.size(), 1u);
  EXPECT_EQ(emitted_[0].changes[0].op, Operation::kMessage);
  EXPECT_FALSE(emitted_[0].changes[0].message_transactional);
  EXPECT_EQ(emitted_[0].changes[0].message_prefix, "hb");

  // Inside a transaction it waits until the transaction's last fragment is out.
  options_.max_fragment_changes = 1;
  Make();
  emitted_.clear();
  FEED(Rel(kUsers, "users", 2));
  FEED(Begin(5, 0x5000));
  FEED(Ins(kUsers, 1));
  LogicalMessage inside;
  inside.lsn = Lsn(0x4343);
  inside.content = "2";
  FEED(std::move(inside));
  FEED(Ins(kUsers, 2));
  FEED(Commit(0x5000, 0x5010));
  ASSERT_EQ(emitted_.size(), 3u);
  EXPECT_EQ(emitted_[0].xid, 5u);
  EXPECT_EQ(emitted_[1].xid, 5u);
  EXPECT_TRUE(emitted_[1].last_fragment);
  EXPECT_EQ(emitted_[2].xid, 0u);
  EXPECT_EQ(emitted_[2].changes[0].message_content, "2");

  // Inside a stream block it goes out at once: nothing is being emitted then.
  emitted_.clear();
  FEED(StreamStart(9, true));
  LogicalMessage in_stream;
  in_stream.lsn = Lsn(0x4444);
  FEED(std::move(in_stream));
  EXPECT_EQ(emitted_.size(), 1u);
  FEED(StreamStopMessage{});
}

TEST_F(TransactionAssemblerTest, ProtocolErrorsNameMessageAndLsn) {
  Make();
  FEED(Rel(kUsers, "users", 2));

  FEED_FAILS(Commit(0x5000, 0x5010), "Commit", "missing Begin");
  const std::string at = Lsn(next_lsn_).ToString();
  FEED_FAILS(Ins(kUsers, 1), "Insert", "outside a transaction", at.c_str());
  LogicalMessage transactional;
  transactional.transactional = true;
  FEED_FAILS(std::move(transactional), "Message", "outside a transaction");
  FEED_FAILS((OriginMessage{Lsn(1), "x"}), "Origin", "outside");
  FEED_FAILS(StreamStopMessage{}, "Stream Stop", "without Stream Start");
  FEED_FAILS(StreamStart(5, false), "Stream Start", "5", "first segment");
  FEED_FAILS(StreamCommit(5, 0x1, 0x2), "Stream Commit", "unknown", "5");

  FEED(Begin(1, 0x5000));
  FEED_FAILS(Begin(2, 0x6000), "Begin", "transaction 1", "still open");
  FEED_FAILS(Ins(777, 1), "Insert", "777");
  FEED_FAILS(StreamStart(5, true), "Stream Start", "non-streamed transaction 1");
  FEED_FAILS(StreamCommit(5, 0x1, 0x2), "Stream Commit");
  FEED(Ins(kUsers, 1));
  FEED_FAILS((OriginMessage{Lsn(1), "x"}), "Origin", "after changes");
  FEED_FAILS(Commit(0x5008, 0x5010), "Commit", "differs");
  FEED(Commit(0x5000, 0x5010));

  FEED(StreamStart(5, true));
  FEED_FAILS(Begin(2, 0x6000), "Begin", "stream block");
  FEED_FAILS(StreamStart(6, true), "Stream Start", "before Stream Stop");
  FEED_FAILS((StreamAbortMessage{5, 5}), "Stream Abort");
  FEED(StreamStopMessage{});
  FEED_FAILS(StreamStart(5, true), "Stream Start", "already open");

  UpdateMessage bad_old;
  bad_old.relation_oid = kUsers;
  bad_old.old_kind = core::OldTupleKind::kFull;
  bad_old.old_tuple.values = {Value::Text("1")};
  bad_old.new_tuple.values = {Value::Text("1"), Value::Text("2")};
  FEED(Begin(3, 0x7000));
  FEED_FAILS(std::move(bad_old), "Update", "old tuple", "public.users");
}

TEST_F(TransactionAssemblerTest, EmitErrorIsReturned) {
  Make();
  emit_status_ = core::Unavailable("queue closed");
  FEED(Begin(1, 0x5000));
  core::Status status = Feed(Commit(0x5000, 0x5010));
  EXPECT_EQ(status.code(), core::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "queue closed");
}

TEST_F(TransactionAssemblerTest, SpillWithoutDirectoryIsResourceExhausted) {
  options_.spill_dir.clear();
  options_.memory_limit_bytes = 512;
  Make();
  FEED(Rel(kUsers, "users", 2));
  FEED(StreamStart(1, true));
  core::Status status;
  for (int i = 0; i < 20 && status.ok(); ++i) {
    status = assembler_->Process(Ins(kUsers, i, 2, 1, 100), Lsn(0x100 + i));
  }
  EXPECT_EQ(status.code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("spill"), std::string::npos);
}

TEST_F(TransactionAssemblerTest, StaleSpillFilesAreDeletedAtStart) {
  fs::create_directories(options_.spill_dir);
  const std::string stale = options_.spill_dir + "/sluice-spill-1-2-3.spill";
  std::ofstream(stale) << "left over by a crash";
  Make();
  EXPECT_FALSE(fs::exists(stale));
}

TEST_F(TransactionAssemblerTest, TypeMessagesFillTheTypeCache) {
  Make();
  FEED((TypeMessage{std::nullopt, 90001, "public", "mood"}));
  FEED(StreamStart(3, true));
  FEED((TypeMessage{3, 90002, "app", "color"}));
  FEED(StreamStopMessage{});
  auto mood = assembler_->relations().GetType(90001);
  ASSERT_TRUE(mood.ok());
  EXPECT_EQ(mood->name, "mood");
  auto color = assembler_->relations().GetType(90002);
  ASSERT_TRUE(color.ok());
  EXPECT_EQ(color->schema, "app");
  auto unknown = assembler_->relations().GetType(5);
  EXPECT_EQ(unknown.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("5"), std::string::npos);
  auto relation = assembler_->relations().Get(4242);
  EXPECT_EQ(relation.status().code(), core::StatusCode::kCorruption);
  EXPECT_NE(relation.status().message().find("4242"), std::string::npos);
}

}  // namespace
}  // namespace sluice::capture
