#include "codec/change_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "codec/json_text.h"

namespace sluice::codec {
namespace {

core::RelationPtr MakeRelation() {
  auto rel = std::make_shared<core::Relation>();
  rel->oid = 16384;
  rel->schema = "My Schema";
  rel->name = "Odd \"Table\" ü";
  rel->columns = {{"id", 23, -1, true}, {"note text", 25, -1, false}, {"blob", 17, -1, false}};
  return rel;
}

core::Transaction MakeTransaction() {
  core::Transaction txn;
  txn.xid = 735;
  txn.commit_lsn = core::Lsn(0x16B37C8);
  txn.end_lsn = core::Lsn(0x16B37F8);
  txn.commit_time = 0;
  return txn;
}

nlohmann::json Render(const core::Transaction& txn, const core::Change& change) {
  std::string out;
  AppendChangeJson(out, txn, change);
  return nlohmann::json::parse(out);  // throws (fails the test) on invalid JSON
}

TEST(ChangeJsonTest, UpdateWithOldKeyShowsKeyAndNewValues) {
  core::Change change;
  change.op = core::Operation::kUpdate;
  change.lsn = core::Lsn(0x16B3748);
  change.relation = MakeRelation();
  change.old_kind = core::OldTupleKind::kKey;
  change.old_tuple = {core::Value::Text("1"), core::Value::Null(), core::Value::Null()};
  change.new_tuple = {core::Value::Text("2"), core::Value::UnchangedToast(),
                      core::Value::Binary(std::string("\x00\xff", 2))};
  const auto j = Render(MakeTransaction(), change);
  EXPECT_EQ(j["lsn"], "0/16B3748");
  EXPECT_EQ(j["xid"], 735);
  EXPECT_EQ(j["commit_lsn"], "0/16B37C8");
  EXPECT_EQ(j["commit_time"], "2000-01-01T00:00:00.000000Z");
  EXPECT_EQ(j["relation"], "My Schema.Odd \"Table\" ü");
  EXPECT_EQ(j["op"], "update");
  EXPECT_EQ(j["key"], nlohmann::json({{"id", "1"}}));
  EXPECT_EQ(j["new"]["id"], "2");
  EXPECT_EQ(j["new"]["note text"], nlohmann::json({{"unchanged_toast", true}}));
  EXPECT_EQ(j["new"]["blob"], nlohmann::json({{"binary", "00ff"}}));
  EXPECT_FALSE(j.contains("origin"));
}

TEST(ChangeJsonTest, DeleteUnderReplicaIdentityFullShowsWholeOldRow) {
  core::Change change;
  change.op = core::Operation::kDelete;
  change.relation = MakeRelation();
  change.old_kind = core::OldTupleKind::kFull;
  change.old_tuple = {core::Value::Text("3"), core::Value::Text("x"), core::Value::Null()};
  change.lsn = core::Lsn(uint64_t{0xA} << 32);
  auto txn = MakeTransaction();
  txn.origin = "node_b";
  const auto j = Render(txn, change);
  EXPECT_EQ(j["lsn"], "A/0");
  EXPECT_EQ(j["op"], "delete");
  EXPECT_EQ(j["old"]["note text"], "x");
  EXPECT_TRUE(j["old"]["blob"].is_null());
  EXPECT_FALSE(j.contains("new"));
  EXPECT_EQ(j["origin"], "node_b");
}

TEST(ChangeJsonTest, UpdateWithoutOldTupleTakesKeyFromNewRow) {
  core::Change change;
  change.op = core::Operation::kUpdate;
  change.relation = MakeRelation();
  change.new_tuple = {core::Value::Text("9"), core::Value::Text("n"), core::Value::Null()};
  const auto j = Render(MakeTransaction(), change);
  EXPECT_EQ(j["key"], nlohmann::json({{"id", "9"}}));
}

TEST(ChangeJsonTest, TruncateAndMessage) {
  core::Change truncate;
  truncate.op = core::Operation::kTruncate;
  truncate.truncated = {MakeRelation(), MakeRelation()};
  truncate.truncate_cascade = true;
  auto j = Render(MakeTransaction(), truncate);
  EXPECT_EQ(j["op"], "truncate");
  EXPECT_EQ(j["relations"].size(), 2u);
  EXPECT_EQ(j["cascade"], true);
  EXPECT_EQ(j["restart_identity"], false);

  core::Change message;
  message.op = core::Operation::kMessage;
  message.message_prefix = "sluice";
  message.message_content = std::string("a\"b\n\x01", 5);
  message.message_transactional = true;
  j = Render(MakeTransaction(), message);
  EXPECT_EQ(j["prefix"], "sluice");
  EXPECT_EQ(j["content"], std::string("a\"b\n\x01", 5));
  EXPECT_EQ(j["transactional"], true);
}

TEST(JsonTextTest, InvalidUtf8BecomesEscapedBytesAndStaysValidJson) {
  std::string out;
  AppendJsonString(out, std::string("ok \xC3\xA9 bad \xC3 \xFF \xED\xA0\x80", 15));
  const auto parsed = nlohmann::json::parse(out);
  EXPECT_EQ(parsed.get<std::string>().substr(0, 5), "ok \xC3\xA9");
  EXPECT_NE(out.find("\\u00c3"), std::string::npos);
  EXPECT_NE(out.find("\\u00ff"), std::string::npos);
}

}  // namespace
}  // namespace sluice::codec
