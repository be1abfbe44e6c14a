#include "control/stream_filter.h"

#include <gtest/gtest.h>

#include <memory>

#include "core/test_builders.h"

namespace sluice::control {
namespace {

core::RelationPtr Table(core::Oid oid, const std::string& name) {
  return core::testing::MakeRelation(oid, name, {});
}

core::Change Insert(const core::RelationPtr& relation) {
  return core::testing::MakeInsert(relation, {});
}

core::Transaction At(uint64_t commit_lsn, std::vector<core::Change> changes) {
  return core::testing::MakeTransaction(commit_lsn, std::move(changes));
}

std::vector<std::string> Names(const core::Transaction& txn) {
  std::vector<std::string> names;
  for (const auto& change : txn.changes) {
    if (change.relation) names.push_back(change.relation->name);
    for (const auto& r : change.truncated) names.push_back("truncate " + r->name);
  }
  return names;
}

const auto kA = Table(1, "a");
const auto kB = Table(2, "b");

TEST(StreamFilterTest, NothingToDoWhenEveryTableStartsWithTheStream) {
  StreamFilter filter({{1, "public.a"}}, {"public.a"}, {}, /*track_unknown=*/false);
  EXPECT_FALSE(filter.active());
}

TEST(StreamFilterTest, ALaterCopyHoldsTheChangesCommittedBeforeIt) {
  StreamFilter filter({{1, "public.a"}, {2, "public.b"}}, {"public.a", "public.b"},
                      {{"public.b", core::Lsn(0x500)}}, true);
  core::Transaction before = At(0x4ff, {Insert(kA), Insert(kB), Insert(kA)});
  EXPECT_EQ(filter.Filter(before), "");
  EXPECT_EQ(Names(before), (std::vector<std::string>{"a", "a"}));
  core::Transaction at = At(0x500, {Insert(kB)});
  EXPECT_EQ(filter.Filter(at), "");
  EXPECT_EQ(Names(at), (std::vector<std::string>{"b"}))
      << "a commit at the copy's point is not in it";
}

TEST(StreamFilterTest, TruncatesLoseOnlyTheTablesTheCopyHolds) {
  StreamFilter filter({{1, "public.a"}, {2, "public.b"}}, {"public.a", "public.b"},
                      {{"public.b", core::Lsn(0x500)}}, true);
  core::Change truncate;
  truncate.op = core::Operation::kTruncate;
  truncate.truncated = {kA, kB};
  core::Transaction both = At(0x100, {truncate});
  EXPECT_EQ(filter.Filter(both), "");
  EXPECT_EQ(Names(both), (std::vector<std::string>{"truncate a"}));
  truncate.truncated = {kB};
  core::Transaction only_b = At(0x100, {truncate});
  EXPECT_EQ(filter.Filter(only_b), "");
  EXPECT_TRUE(only_b.changes.empty());
}

TEST(StreamFilterTest, APublishedTableNeverCopiedStopsTheStreamUntouched) {
  StreamFilter filter({{1, "public.a"}, {2, "public.b"}}, {"public.a"}, {}, true);
  core::Transaction txn = At(0x100, {Insert(kA), Insert(kB)});
  EXPECT_EQ(filter.Filter(txn), "public.b");
  EXPECT_EQ(Names(txn), (std::vector<std::string>{"a", "b"}));
}

TEST(StreamFilterTest, TablesThatAreNotPublishedAreDroppedAndReportedOnce) {
  StreamFilter filter({{1, "public.a"}}, {"public.a"}, {}, true);
  core::Transaction txn = At(0x100, {Insert(kA), Insert(kB), Insert(kB)});
  EXPECT_EQ(filter.Filter(txn), "");
  EXPECT_EQ(Names(txn), (std::vector<std::string>{"a"}));
  EXPECT_EQ(filter.TakeUnpublished(), (std::vector<std::string>{"public.b"}));
  core::Transaction again = At(0x200, {Insert(kB)});
  EXPECT_EQ(filter.Filter(again), "");
  EXPECT_TRUE(filter.TakeUnpublished().empty());
}

TEST(StreamFilterTest, ARenamedTableIsMatchedByOid) {
  // Logged as "old_name", published now as public.a.
  StreamFilter filter({{1, "public.a"}}, {"public.a"}, {{"public.a", core::Lsn(0x500)}}, true);
  core::Transaction txn = At(0x600, {Insert(Table(1, "old_name"))});
  EXPECT_EQ(filter.Filter(txn), "");
  EXPECT_EQ(Names(txn), (std::vector<std::string>{"old_name"}));
}

}  // namespace
}  // namespace sluice::control
