#include "codec/change_codec.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/test_builders.h"

namespace sluice::codec {
namespace {

using core::Change;
using core::Operation;
using core::Value;

core::RelationPtr MakeRelation(core::Oid oid, const std::string& name, int columns) {
  std::vector<core::Column> list;
  for (int i = 0; i < columns; ++i) {
    const std::string column = "c" + std::to_string(i);
    list.push_back(i == 0 ? core::testing::KeyColumn(column) : core::testing::PlainColumn(column));
  }
  return core::testing::MakeRelation(oid, name, std::move(list));
}

void ExpectSameChange(const Change& a, const Change& b) {
  EXPECT_EQ(a.op, b.op);
  EXPECT_EQ(a.lsn, b.lsn);
  EXPECT_EQ(a.relation, b.relation);  // the very same version object
  EXPECT_EQ(a.old_kind, b.old_kind);
  EXPECT_EQ(a.old_tuple, b.old_tuple);
  EXPECT_EQ(a.new_tuple, b.new_tuple);
  EXPECT_EQ(a.truncated, b.truncated);
  EXPECT_EQ(a.truncate_cascade, b.truncate_cascade);
  EXPECT_EQ(a.truncate_restart_identity, b.truncate_restart_identity);
  EXPECT_EQ(a.message_transactional, b.message_transactional);
  EXPECT_EQ(a.message_prefix, b.message_prefix);
  EXPECT_EQ(a.message_content, b.message_content);
}

Change RoundTrip(const Change& change, RelationTable& table) {
  std::string bytes;
  EncodeChange(change, table, &bytes);
  auto decoded = DecodeChange(bytes, table);
  EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
  return decoded.ok() ? std::move(decoded).value() : Change{};
}

TEST(ChangeCodecTest, RoundTripsEveryOperation) {
  RelationTable table;
  auto users = MakeRelation(16384, "users", 3);
  auto orders = MakeRelation(16390, "orders", 1);

  Change insert;
  insert.op = Operation::kInsert;
  insert.lsn = core::Lsn(0x16B374D848);
  insert.relation = users;
  insert.new_tuple = {Value::Text("1"), Value::Null(), Value::Binary(std::string("\0\xff", 2))};
  ExpectSameChange(RoundTrip(insert, table), insert);

  Change update;
  update.op = Operation::kUpdate;
  update.lsn = core::Lsn(~0ull);
  update.relation = users;
  update.old_kind = core::OldTupleKind::kFull;
  update.old_tuple = {Value::Text("1"), Value::Text("a"), Value::Null()};
  update.new_tuple = {Value::Text("1"), Value::UnchangedToast(),
                      Value::Text(std::string(300, 'x'))};
  ExpectSameChange(RoundTrip(update, table), update);

  Change update_no_old;
  update_no_old.op = Operation::kUpdate;
  update_no_old.relation = orders;
  update_no_old.new_tuple = {Value::Text("")};
  ExpectSameChange(RoundTrip(update_no_old, table), update_no_old);

  Change del;
  del.op = Operation::kDelete;
  del.relation = users;
  del.old_kind = core::OldTupleKind::kKey;
  del.old_tuple = {Value::Text("1"), Value::Null(), Value::Null()};
  ExpectSameChange(RoundTrip(del, table), del);

  Change truncate;
  truncate.op = Operation::kTruncate;
  truncate.truncated = {users, orders};
  truncate.truncate_cascade = true;
  truncate.truncate_restart_identity = true;
  ExpectSameChange(RoundTrip(truncate, table), truncate);

  Change message;
  message.op = Operation::kMessage;
  message.message_transactional = true;
  message.message_prefix = "sluice";
  message.message_content = std::string("bin\0ary", 7);
  ExpectSameChange(RoundTrip(message, table), message);

  EXPECT_EQ(table.size(), 2u);
}

TEST(ChangeCodecTest, ReplacedRelationKeepsItsOwnVersion) {
  RelationTable table;
  auto v1 = MakeRelation(16384, "users", 2);
  auto v2 = MakeRelation(16384, "users", 3);  // ALTER TABLE ADD COLUMN: same OID

  Change before;
  before.relation = v1;
  before.new_tuple = {Value::Text("1"), Value::Text("a")};
  Change after;
  after.relation = v2;
  after.new_tuple = {Value::Text("2"), Value::Text("b"), Value::Text("c")};
  std::string before_bytes, after_bytes;
  EncodeChange(before, table, &before_bytes);
  EncodeChange(after, table, &after_bytes);
  EXPECT_EQ(table.size(), 2u);

  auto decoded_before = DecodeChange(before_bytes, table);
  auto decoded_after = DecodeChange(after_bytes, table);
  ASSERT_TRUE(decoded_before.ok());
  ASSERT_TRUE(decoded_after.ok());
  EXPECT_EQ(decoded_before->relation, v1);
  EXPECT_EQ(decoded_before->relation->columns.size(), 2u);
  EXPECT_EQ(decoded_after->relation, v2);
  EXPECT_EQ(decoded_after->relation->columns.size(), 3u);
}

TEST(ChangeCodecTest, EveryTruncationIsCorruption) {
  RelationTable table;
  Change change;
  change.relation = MakeRelation(1, "t", 2);
  change.old_kind = core::OldTupleKind::kKey;
  change.op = Operation::kUpdate;
  change.old_tuple = {Value::Text("k"), Value::Null()};
  change.new_tuple = {Value::Text("k"), Value::Text("value")};
  change.message_prefix = "p";
  std::string bytes;
  EncodeChange(change, table, &bytes);
  ASSERT_TRUE(DecodeChange(bytes, table).ok());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto decoded = DecodeChange(std::string_view(bytes).substr(0, n), table);
    ASSERT_FALSE(decoded.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_EQ(decoded.status().code(), core::StatusCode::kCorruption);
  }
  auto trailing = DecodeChange(bytes + "x", table);
  ASSERT_FALSE(trailing.ok());
  EXPECT_NE(trailing.status().message().find("trailing"), std::string::npos);
}

TEST(ChangeCodecTest, RejectsBadFieldsWithOffsets) {
  RelationTable table;
  Change change;
  change.relation = MakeRelation(1, "t", 1);
  change.new_tuple = {Value::Text("v")};
  std::string good;
  EncodeChange(change, table, &good);
  // Layout: op(0) lsn(1..8) flags(9) relation(10) old_kind(11) old count(12) new count(13)
  // kind(14) len(15) 'v'(16) ...
  auto corrupt = [&](size_t at, char byte) {
    std::string bad = good;
    bad[at] = byte;
    auto decoded = DecodeChange(bad, table);
    EXPECT_FALSE(decoded.ok()) << "byte " << at;
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().code(), core::StatusCode::kCorruption);
    }
    return decoded.ok() ? std::string() : decoded.status().message();
  };
  EXPECT_NE(corrupt(0, 9).find("unknown operation"), std::string::npos);
  EXPECT_NE(corrupt(9, static_cast<char>(0x80)).find("unknown flags"), std::string::npos);
  EXPECT_NE(corrupt(10, 7).find("relation index"), std::string::npos);
  EXPECT_NE(corrupt(11, 3).find("old tuple kind"), std::string::npos);
  EXPECT_NE(corrupt(13, 120).find("exceeds the record"), std::string::npos);
  EXPECT_NE(corrupt(14, 9).find("unknown value kind"), std::string::npos);
  EXPECT_NE(corrupt(15, 100).find("byte offset"), std::string::npos);
  // A tuple that no longer matches the relation's columns.
  std::string two_values = good;
  two_values[13] = 2;
  two_values.insert(17, std::string("\0", 1));  // one more null value
  auto mismatch = DecodeChange(two_values, table);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("public.t"), std::string::npos);
}

TEST(ChangeCodecTest, RejectsOverlongVarint) {
  RelationTable table;
  std::string bytes(1, '\0');                 // insert
  bytes.append(8, '\0');                      // lsn
  bytes.push_back('\0');                      // flags
  bytes.append(11, static_cast<char>(0xff));  // relation index that never ends
  auto decoded = DecodeChange(bytes, table);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("varint"), std::string::npos);
}

TEST(ChangeCodecTest, EmptyTableRejectsAnyRelationReference) {
  RelationTable writer;
  Change change;
  change.op = Operation::kTruncate;
  change.truncated = {MakeRelation(5, "t", 1)};
  std::string bytes;
  EncodeChange(change, writer, &bytes);
  RelationTable empty;
  auto decoded = DecodeChange(bytes, empty);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("relation index 0 out of range"), std::string::npos);
}

}  // namespace
}  // namespace sluice::codec
