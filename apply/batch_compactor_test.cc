#include "apply/batch_compactor.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "core/test_builders.h"

namespace sluice::apply {
namespace {

using core::Change;
using core::OldTupleKind;
using core::Operation;
using core::RelationPtr;
using core::Value;

RelationPtr MakeTable(core::Oid oid, std::string name,
                      core::ReplicaIdentity identity = core::ReplicaIdentity::kDefault) {
  const bool keyed = identity != core::ReplicaIdentity::kFull;
  return core::testing::MakeRelation(
      oid, std::move(name), {{"id", 23, -1, true}, {"n", 23, -1, !keyed}, {"doc", 25, -1, !keyed}},
      identity);
}

Change Insert(RelationPtr relation, int id, int n, std::string doc) {
  return core::testing::MakeInsert(std::move(relation),
                                   {Value::Text(std::to_string(id)), Value::Text(std::to_string(n)),
                                    Value::Text(std::move(doc))});
}

// An update keeping the key; an empty `doc` means "sent as unchanged TOAST".
Change Update(RelationPtr relation, int id, int n, std::string doc) {
  Change change = Insert(std::move(relation), id, n, doc);
  change.op = Operation::kUpdate;
  if (doc.empty()) change.new_tuple[2] = Value::UnchangedToast();
  return change;
}

Change Delete(RelationPtr relation, int id) {
  return core::testing::MakeDelete(std::move(relation),
                                   {Value::Text(std::to_string(id)), Value::Null(), Value::Null()});
}

// A table as the target would hold it: key text -> column texts.
using Rows = std::map<std::string, std::vector<std::string>>;

// Applies one change with the semantics of the sink's row-at-a-time statements.
void ApplyOne(const Change& change, Rows& rows) {
  switch (change.op) {
    case Operation::kInsert: {  // upsert
      std::vector<std::string>& row = rows[change.new_tuple[0].data];
      row.clear();
      for (const Value& v : change.new_tuple) row.push_back(v.data);
      break;
    }
    case Operation::kUpdate: {  // finds the row by key or does nothing
      auto it = rows.find(change.new_tuple[0].data);
      if (it == rows.end()) break;
      for (size_t i = 0; i < change.new_tuple.size(); ++i) {
        if (!change.new_tuple[i].is_unchanged_toast()) it->second[i] = change.new_tuple[i].data;
      }
      break;
    }
    case Operation::kDelete:
      rows.erase(change.old_tuple[0].data);
      break;
    default:
      break;
  }
}

// "insert 1", "delete 3": what a drained change does to which key.
std::string Describe(const Change& change) {
  const Value& key = change.op == Operation::kDelete ? change.old_tuple[0] : change.new_tuple[0];
  return std::string(core::OperationName(change.op)) + " " + key.data;
}

TEST(BatchCompactorTest, NetsEachRowToItsLastState) {
  auto t = MakeTable(1, "t");
  BatchCompactor compactor;
  const core::Lsn lsn(0x100);
  ASSERT_TRUE(compactor.Add(Insert(t, 1, 10, "a"), CompactionMode::kByKey, lsn));
  ASSERT_TRUE(compactor.Add(Update(t, 1, 11, ""), CompactionMode::kByKey, lsn));  // merged
  ASSERT_TRUE(compactor.Add(Update(t, 2, 20, ""), CompactionMode::kByKey, lsn));  // update
  ASSERT_TRUE(compactor.Add(Update(t, 2, 21, ""), CompactionMode::kByKey, lsn));  // update
  ASSERT_TRUE(compactor.Add(Insert(t, 3, 30, "c"), CompactionMode::kByKey, lsn));
  ASSERT_TRUE(compactor.Add(Delete(t, 3), CompactionMode::kByKey, lsn));  // gone
  ASSERT_TRUE(compactor.Add(Delete(t, 4), CompactionMode::kByKey, lsn));
  ASSERT_TRUE(compactor.Add(Insert(t, 4, 40, "d"), CompactionMode::kByKey, lsn));  // upsert
  EXPECT_EQ(compactor.absorbed(), 8u);
  EXPECT_EQ(compactor.netted(), 4u);

  std::vector<std::vector<std::string>> seen;
  ASSERT_TRUE(compactor
                  .Drain([&](const std::vector<const Change*>& group) {
                    std::vector<std::string> described;
                    for (const Change* c : group) described.push_back(Describe(*c));
                    seen.push_back(described);
                    return core::Status::Ok();
                  })
                  .ok());
  ASSERT_EQ(seen.size(), 3u);  // deletes, upserts, updates
  EXPECT_EQ(seen[0], (std::vector<std::string>{"delete 3"}));
  EXPECT_EQ(seen[1], (std::vector<std::string>{"insert 1", "insert 4"}));
  EXPECT_EQ(seen[2], (std::vector<std::string>{"update 2"}));
  EXPECT_TRUE(compactor.empty());
  EXPECT_EQ(compactor.bytes(), 0u);
}

TEST(BatchCompactorTest, UpsertKeepsTheHeldValueOfAnUnchangedToastColumn) {
  auto t = MakeTable(1, "t");
  BatchCompactor compactor;
  ASSERT_TRUE(compactor.Add(Insert(t, 1, 10, "payload"), CompactionMode::kByKey, core::Lsn(1)));
  ASSERT_TRUE(compactor.Add(Update(t, 1, 11, ""), CompactionMode::kByKey, core::Lsn(2)));
  ASSERT_TRUE(compactor
                  .Drain([&](const std::vector<const Change*>& group) {
                    EXPECT_EQ(group.size(), 1u);
                    EXPECT_EQ(group[0]->op, Operation::kInsert);
                    EXPECT_EQ(group[0]->new_tuple[1].data, "11");
                    EXPECT_EQ(group[0]->new_tuple[2].data, "payload");
                    EXPECT_EQ(group[0]->lsn, core::Lsn(2));
                    return core::Status::Ok();
                  })
                  .ok());
}

TEST(BatchCompactorTest, UpdatesGroupByTheColumnsTheySet) {
  auto t = MakeTable(1, "t");
  BatchCompactor compactor;
  ASSERT_TRUE(compactor.Add(Update(t, 1, 1, ""), CompactionMode::kByKey, core::Lsn(1)));
  ASSERT_TRUE(compactor.Add(Update(t, 2, 2, "x"), CompactionMode::kByKey, core::Lsn(1)));
  ASSERT_TRUE(compactor.Add(Update(t, 3, 3, ""), CompactionMode::kByKey, core::Lsn(1)));
  std::vector<size_t> sizes;
  ASSERT_TRUE(compactor
                  .Drain([&](const std::vector<const Change*>& group) {
                    sizes.push_back(group.size());
                    for (const Change* c : group) {
                      EXPECT_EQ(c->new_tuple[2].is_unchanged_toast(),
                                group[0]->new_tuple[2].is_unchanged_toast());
                    }
                    return core::Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(sizes, (std::vector<size_t>{2, 1}));
}

TEST(BatchCompactorTest, RefusesWhatMustKeepItsPlace) {
  auto t = MakeTable(1, "t");
  auto full = MakeTable(2, "f", core::ReplicaIdentity::kFull);
  BatchCompactor compactor;
  const core::Lsn lsn(1);
  EXPECT_FALSE(compactor.Add(Insert(t, 1, 1, "a"), CompactionMode::kNone, lsn));

  Change key_change = Update(t, 2, 1, "a");
  key_change.old_kind = OldTupleKind::kKey;
  key_change.old_tuple = {Value::Text("1"), Value::Null(), Value::Null()};
  EXPECT_FALSE(compactor.Add(key_change, CompactionMode::kByKey, lsn));

  Change toast_key = Update(t, 1, 1, "a");
  toast_key.new_tuple[0] = Value::UnchangedToast();
  EXPECT_FALSE(compactor.Add(toast_key, CompactionMode::kByKey, lsn));

  // Keyless tables: inserts append, updates and deletes by full row are not absorbed.
  EXPECT_TRUE(compactor.Add(Insert(full, 1, 1, "a"), CompactionMode::kAppendOnly, lsn));
  EXPECT_TRUE(compactor.Add(Insert(full, 1, 1, "a"), CompactionMode::kAppendOnly, lsn));
  Change full_delete = Delete(full, 1);
  full_delete.old_kind = OldTupleKind::kFull;
  EXPECT_FALSE(compactor.Add(full_delete, CompactionMode::kAppendOnly, lsn));
  // kByKey on a table without a usable key is refused too.
  EXPECT_FALSE(compactor.Add(Insert(full, 1, 1, "a"), CompactionMode::kByKey, lsn));

  // A new version of a held relation (ALTER TABLE) waits for a drain.
  ASSERT_TRUE(compactor.Add(Insert(t, 5, 1, "a"), CompactionMode::kByKey, lsn));
  auto t_v2 = MakeTable(1, "t");
  EXPECT_FALSE(compactor.Add(Insert(t_v2, 6, 1, "a"), CompactionMode::kByKey, lsn));
  size_t drained = 0;
  ASSERT_TRUE(compactor
                  .Drain([&](const std::vector<const Change*>& group) {
                    drained += group.size();
                    return core::Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(drained, 3u);  // two appended inserts, one upsert
  EXPECT_TRUE(compactor.Add(Insert(t_v2, 6, 1, "a"), CompactionMode::kByKey, lsn));
}

TEST(BatchCompactorTest, DrainStopsAtTheFirstErrorAndEmpties) {
  auto t = MakeTable(1, "t");
  auto u = MakeTable(2, "u");
  BatchCompactor compactor;
  ASSERT_TRUE(compactor.Add(Insert(t, 1, 1, "a"), CompactionMode::kByKey, core::Lsn(1)));
  ASSERT_TRUE(compactor.Add(Insert(u, 1, 1, "a"), CompactionMode::kByKey, core::Lsn(1)));
  int calls = 0;
  auto status = compactor.Drain([&](const std::vector<const Change*>&) {
    ++calls;
    return core::Internal("boom");
  });
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(compactor.empty());
}

// The property the sink relies on: for any sequence of absorbable changes, sending the drained
// net changes (in drain order) leaves every table exactly as sending each change in order.
TEST(BatchCompactorTest, NetChangesLeaveTheSameRowsAsTheSequence) {
  std::mt19937 rng(20261122);
  auto t = MakeTable(1, "t");
  auto u = MakeTable(2, "u");
  for (int round = 0; round < 300; ++round) {
    std::map<core::Oid, Rows> sequential;
    for (const auto& rel : {t, u}) {
      for (int id = 0; id < 6; ++id) {
        if (rng() % 2) {
          sequential[rel->oid][std::to_string(id)] = {std::to_string(id), "0", "start"};
        }
      }
    }
    std::map<core::Oid, Rows> compacted = sequential;
    BatchCompactor compactor;
    const int changes = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < changes; ++i) {
      const RelationPtr& rel = rng() % 2 ? t : u;
      const int id = static_cast<int>(rng() % 6);
      const int n = static_cast<int>(rng() % 1000);
      Change change;
      switch (rng() % 4) {
        case 0:
          change = Insert(rel, id, n, "i" + std::to_string(n));
          break;
        case 1:
          change = Update(rel, id, n, "u" + std::to_string(n));
          break;
        case 2:
          change = Update(rel, id, n, "");  // unchanged TOAST
          break;
        default:
          change = Delete(rel, id);
          break;
      }
      ApplyOne(change, sequential[rel->oid]);
      ASSERT_TRUE(compactor.Add(change, CompactionMode::kByKey, core::Lsn(i + 1)));
    }
    ASSERT_TRUE(compactor
                    .Drain([&](const std::vector<const Change*>& group) {
                      std::map<std::string, int> keys;
                      for (const Change* c : group) {
                        const auto& key =
                            c->op == Operation::kDelete ? c->old_tuple[0] : c->new_tuple[0];
                        EXPECT_EQ(++keys[key.data], 1) << "a group touches a row twice";
                        EXPECT_EQ(c->op, group[0]->op);
                        ApplyOne(*c, compacted[c->relation->oid]);
                      }
                      return core::Status::Ok();
                    })
                    .ok());
    ASSERT_EQ(sequential, compacted) << "round " << round;
  }
}

}  // namespace
}  // namespace sluice::apply
