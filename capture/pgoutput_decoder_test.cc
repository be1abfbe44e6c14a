#include "capture/pgoutput_decoder.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "capture/byte_reader.h"

namespace sluice::capture {
namespace {

using core::StatusCode;
using core::Value;

// ---- A test-local big-endian writer ----

class Bytes {
 public:
  Bytes& U8(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Bytes& U16(uint16_t v) { return BigEndian(v, 2); }
  Bytes& U32(uint32_t v) { return BigEndian(v, 4); }
  Bytes& U64(uint64_t v) { return BigEndian(v, 8); }
  Bytes& I16(int16_t v) { return U16(static_cast<uint16_t>(v)); }
  Bytes& I32(int32_t v) { return U32(static_cast<uint32_t>(v)); }
  Bytes& I64(int64_t v) { return U64(static_cast<uint64_t>(v)); }
  Bytes& CString(std::string_view s) {
    out_.append(s);
    out_.push_back('\0');
    return *this;
  }
  Bytes& Raw(std::string_view s) {
    out_.append(s);
    return *this;
  }
  // Tuple column values.
  Bytes& Null() { return U8('n'); }
  Bytes& Toast() { return U8('u'); }
  Bytes& Text(std::string_view s) { return U8('t').I32(static_cast<int32_t>(s.size())).Raw(s); }
  Bytes& Binary(std::string_view s) { return U8('b').I32(static_cast<int32_t>(s.size())).Raw(s); }

  std::string str() const { return out_; }
  operator std::string() const { return out_; }  // NOLINT: fixture convenience

 private:
  Bytes& BigEndian(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string out_;
};

// Starts a row-level message: type byte, then the xid when inside a stream block.
Bytes RowMessage(char type, std::optional<uint32_t> xid) {
  Bytes b;
  b.U8(type);
  if (xid) b.U32(*xid);
  return b;
}

// ---- Valid fixtures ----

std::string BeginFixture() {
  return Bytes().U8('B').U64(0x16B374D848).I64(757000000000000).U32(742);
}
std::string CommitFixture() {
  return Bytes().U8('C').U8(0).U64(0x16B374D848).U64(0x16B374D880).I64(757000000000001);
}
std::string OriginFixture() { return Bytes().U8('O').U64(0x100).CString("node_a"); }
std::string RelationFixture(std::optional<uint32_t> xid = std::nullopt) {
  return RowMessage('R', xid)
      .U32(16384)
      .CString("public")
      .CString("accounts")
      .U8('d')
      .I16(3)
      .U8(1)
      .CString("id")
      .U32(23)
      .I32(-1)
      .U8(0)
      .CString("name")
      .U32(1043)
      .I32(68)
      .U8(0)
      .CString("blob")
      .U32(17)
      .I32(-1);
}
std::string TypeFixture(std::optional<uint32_t> xid = std::nullopt) {
  return RowMessage('Y', xid).U32(90001).CString("public").CString("mood");
}
std::string InsertFixture(std::optional<uint32_t> xid = std::nullopt) {
  return RowMessage('I', xid).U32(16384).U8('N').I16(4).Text("42").Null().Toast().Binary(
      std::string("\x00\x01\xff", 3));
}
std::string UpdateFixture(char old_marker, std::optional<uint32_t> xid = std::nullopt) {
  Bytes b = RowMessage('U', xid).U32(16384);
  if (old_marker != 0) b.U8(old_marker).I16(2).Text("41").Null();
  return b.U8('N').I16(2).Text("42").Toast();
}
std::string DeleteFixture(char old_marker, std::optional<uint32_t> xid = std::nullopt) {
  return RowMessage('D', xid).U32(16384).U8(old_marker).I16(2).Text("42").Null();
}
std::string TruncateFixture(uint8_t options, std::optional<uint32_t> xid = std::nullopt) {
  return RowMessage('T', xid).I32(2).U8(options).U32(16384).U32(16390);
}
std::string MessageFixture(uint8_t flags, std::optional<uint32_t> xid = std::nullopt) {
  return RowMessage('M', xid).U8(flags).U64(0x200).CString("sluice").I32(5).Raw(
      std::string("he\0lo", 5));
}
std::string StreamStartFixture(uint32_t xid = 900, bool first = true) {
  return Bytes().U8('S').U32(xid).U8(first ? 1 : 0);
}
std::string StreamStopFixture() { return Bytes().U8('E'); }
std::string StreamCommitFixture() {
  return Bytes().U8('c').U32(900).U8(0).U64(0x300).U64(0x340).I64(757000000000002);
}
std::string StreamAbortFixture(bool with_abort_info) {
  Bytes b = Bytes().U8('A').U32(900).U32(901);
  if (with_abort_info) b.U64(0x380).I64(757000000000003);
  return b;
}

// Decoder set up for a fixture: version, and inside a stream block or not.
PgOutputDecoder MakeDecoder(int version, bool in_stream) {
  PgOutputDecoder decoder(version);
  if (in_stream) {
    auto started = decoder.Decode(StreamStartFixture());
    EXPECT_TRUE(started.ok()) << started.status().ToString();
  }
  return decoder;
}

template <typename T>
T DecodeOk(PgOutputDecoder& decoder, const std::string& bytes) {
  auto result = decoder.Decode(bytes);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (!result.ok()) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(*result)) << "variant index " << result->index();
  if (!std::holds_alternative<T>(*result)) return T{};
  return std::get<T>(std::move(*result));
}

template <typename T>
T DecodeOk(const std::string& bytes, int version = 2) {
  PgOutputDecoder decoder(version);
  return DecodeOk<T>(decoder, bytes);
}

core::Status DecodeError(const std::string& bytes, int version = 2, bool in_stream = false) {
  PgOutputDecoder decoder = MakeDecoder(version, in_stream);
  auto result = decoder.Decode(bytes);
  EXPECT_FALSE(result.ok()) << "decoded " << bytes.size() << " bytes without error";
  EXPECT_EQ(decoder.in_stream(), in_stream) << "a failed decode changed the stream state";
  return result.status();
}

// ---- ByteReader ----

TEST(ByteReaderTest, ReadsBigEndianFieldsAndStrings) {
  const std::string bytes =
      Bytes().U8(0xAB).U16(0x0102).U32(0x01020304).U64(0x0102030405060708).I64(-2).CString("hi");
  ByteReader r(bytes);
  EXPECT_EQ(r.ReadU8("a"), 0xAB);
  EXPECT_EQ(r.ReadU16("b"), 0x0102);
  EXPECT_EQ(r.ReadU32("c"), 0x01020304u);
  EXPECT_EQ(r.ReadU64("d"), 0x0102030405060708u);
  EXPECT_EQ(r.ReadI64("e"), -2);
  EXPECT_EQ(r.ReadCString("f"), "hi");
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(r.offset(), bytes.size());
}

TEST(ByteReaderTest, TruncationIsStickyAndReportsTheField) {
  const std::string bytes = Bytes().U8(1).U16(2);
  ByteReader r(bytes);
  EXPECT_EQ(r.ReadU8("first"), 1);
  EXPECT_EQ(r.ReadU32("second"), 0u);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error(), ByteReader::Error::kTruncated);
  EXPECT_STREQ(r.error_field(), "second");
  EXPECT_EQ(r.error_offset(), 1u);
  EXPECT_EQ(r.error_needed(), 4u);
  // Later reads fail without moving or overwriting the first error.
  EXPECT_EQ(r.ReadU8("third"), 0);
  EXPECT_EQ(r.ReadBytes(1, "fourth"), "");
  EXPECT_STREQ(r.error_field(), "second");
  EXPECT_EQ(r.offset(), 1u);
}

TEST(ByteReaderTest, UnterminatedStringAndOversizedBytesFail) {
  ByteReader unterminated(std::string_view("abc", 3));
  EXPECT_EQ(unterminated.ReadCString("name"), "");
  EXPECT_EQ(unterminated.error(), ByteReader::Error::kUnterminated);
  EXPECT_EQ(unterminated.error_offset(), 0u);

  ByteReader oversized(std::string_view("abc", 3));
  EXPECT_EQ(oversized.ReadBytes(SIZE_MAX, "blob"), "");
  EXPECT_EQ(oversized.error(), ByteReader::Error::kTruncated);

  ByteReader exact(std::string_view("abc", 3));
  EXPECT_EQ(exact.ReadBytes(3, "blob"), "abc");
  EXPECT_TRUE(exact.at_end());
}

TEST(ByteReaderTest, FailRecordsCallerError) {
  ByteReader r(std::string_view("\x01\x02", 2));
  r.ReadU8("a");
  r.Fail("a", 0);
  EXPECT_EQ(r.error(), ByteReader::Error::kInvalid);
  EXPECT_EQ(r.ReadU8("b"), 0);
  EXPECT_STREQ(r.error_field(), "a");
}

// ---- One test per message type ----

TEST(PgOutputDecoderTest, Begin) {
  auto m = DecodeOk<BeginMessage>(BeginFixture());
  EXPECT_EQ(m.final_lsn, core::Lsn(0x16B374D848));
  EXPECT_EQ(m.commit_time, 757000000000000);
  EXPECT_EQ(m.xid, 742u);
}

TEST(PgOutputDecoderTest, Commit) {
  auto m = DecodeOk<CommitMessage>(CommitFixture());
  EXPECT_EQ(m.flags, 0);
  EXPECT_EQ(m.commit_lsn, core::Lsn(0x16B374D848));
  EXPECT_EQ(m.end_lsn, core::Lsn(0x16B374D880));
  EXPECT_EQ(m.commit_time, 757000000000001);
}

TEST(PgOutputDecoderTest, Origin) {
  auto m = DecodeOk<OriginMessage>(OriginFixture());
  EXPECT_EQ(m.origin_lsn, core::Lsn(0x100));
  EXPECT_EQ(m.name, "node_a");
}

TEST(PgOutputDecoderTest, Relation) {
  auto m = DecodeOk<RelationMessage>(RelationFixture());
  EXPECT_FALSE(m.xid.has_value());
  const core::Relation& rel = m.relation;
  EXPECT_EQ(rel.oid, 16384u);
  EXPECT_EQ(rel.schema, "public");
  EXPECT_EQ(rel.name, "accounts");
  EXPECT_EQ(rel.replica_identity, core::ReplicaIdentity::kDefault);
  ASSERT_EQ(rel.columns.size(), 3u);
  EXPECT_EQ(rel.columns[0].name, "id");
  EXPECT_TRUE(rel.columns[0].is_key);
  EXPECT_EQ(rel.columns[0].type_oid, 23u);
  EXPECT_EQ(rel.columns[0].type_modifier, -1);
  EXPECT_EQ(rel.columns[1].name, "name");
  EXPECT_FALSE(rel.columns[1].is_key);
  EXPECT_EQ(rel.columns[1].type_oid, 1043u);
  EXPECT_EQ(rel.columns[1].type_modifier, 68);
  EXPECT_EQ(rel.columns[2].name, "blob");
  EXPECT_EQ(rel.columns[2].type_oid, 17u);
}

TEST(PgOutputDecoderTest, RelationEmptyNamespaceIsKeptAndEveryReplicaIdentityDecodes) {
  const std::pair<char, core::ReplicaIdentity> identities[] = {
      {'d', core::ReplicaIdentity::kDefault},
      {'n', core::ReplicaIdentity::kNothing},
      {'f', core::ReplicaIdentity::kFull},
      {'i', core::ReplicaIdentity::kIndex},
  };
  for (const auto& [byte, identity] : identities) {
    const std::string bytes =
        Bytes().U8('R').U32(11).CString("").CString("pg_class").U8(byte).I16(0);
    auto m = DecodeOk<RelationMessage>(bytes);
    EXPECT_EQ(m.relation.schema, "");  // pg_catalog, as the protocol sends it
    EXPECT_EQ(m.relation.name, "pg_class");
    EXPECT_EQ(m.relation.replica_identity, identity);
    EXPECT_TRUE(m.relation.columns.empty());
  }
}

TEST(PgOutputDecoderTest, RelationColumnFlagsOnlyBitOneMeansKey) {
  const std::string bytes = Bytes()
                                .U8('R')
                                .U32(1)
                                .CString("s")
                                .CString("t")
                                .U8('f')
                                .I16(2)
                                .U8(3)
                                .CString("a")
                                .U32(23)
                                .I32(-1)
                                .U8(2)
                                .CString("b")
                                .U32(23)
                                .I32(-1);
  auto m = DecodeOk<RelationMessage>(bytes);
  ASSERT_EQ(m.relation.columns.size(), 2u);
  EXPECT_TRUE(m.relation.columns[0].is_key);
  EXPECT_FALSE(m.relation.columns[1].is_key);
}

TEST(PgOutputDecoderTest, Type) {
  auto m = DecodeOk<TypeMessage>(TypeFixture());
  EXPECT_FALSE(m.xid.has_value());
  EXPECT_EQ(m.oid, 90001u);
  EXPECT_EQ(m.schema, "public");
  EXPECT_EQ(m.name, "mood");
}

TEST(PgOutputDecoderTest, InsertWithEveryTupleKind) {
  auto m = DecodeOk<InsertMessage>(InsertFixture());
  EXPECT_FALSE(m.xid.has_value());
  EXPECT_EQ(m.relation_oid, 16384u);
  ASSERT_EQ(m.new_tuple.values.size(), 4u);
  EXPECT_EQ(m.new_tuple.values[0], Value::Text("42"));
  EXPECT_EQ(m.new_tuple.values[1], Value::Null());
  EXPECT_EQ(m.new_tuple.values[2], Value::UnchangedToast());
  EXPECT_EQ(m.new_tuple.values[3], Value::Binary(std::string("\x00\x01\xff", 3)));
}

TEST(PgOutputDecoderTest, InsertEmptyValuesAndNoColumns) {
  auto empty_text =
      DecodeOk<InsertMessage>(Bytes().U8('I').U32(1).U8('N').I16(2).Text("").Binary(""));
  ASSERT_EQ(empty_text.new_tuple.values.size(), 2u);
  EXPECT_EQ(empty_text.new_tuple.values[0], Value::Text(""));
  EXPECT_EQ(empty_text.new_tuple.values[1], Value::Binary(""));

  auto no_columns = DecodeOk<InsertMessage>(Bytes().U8('I').U32(1).U8('N').I16(0));
  EXPECT_TRUE(no_columns.new_tuple.values.empty());
}

TEST(PgOutputDecoderTest, UpdateWithoutOldTuple) {
  auto m = DecodeOk<UpdateMessage>(UpdateFixture(0));
  EXPECT_EQ(m.relation_oid, 16384u);
  EXPECT_EQ(m.old_kind, core::OldTupleKind::kNone);
  EXPECT_TRUE(m.old_tuple.values.empty());
  ASSERT_EQ(m.new_tuple.values.size(), 2u);
  EXPECT_EQ(m.new_tuple.values[0], Value::Text("42"));
  EXPECT_EQ(m.new_tuple.values[1], Value::UnchangedToast());
}

TEST(PgOutputDecoderTest, UpdateWithOldKeyAndOldTuple) {
  for (char marker : {'K', 'O'}) {
    auto m = DecodeOk<UpdateMessage>(UpdateFixture(marker));
    EXPECT_EQ(m.old_kind, marker == 'K' ? core::OldTupleKind::kKey : core::OldTupleKind::kFull);
    ASSERT_EQ(m.old_tuple.values.size(), 2u);
    EXPECT_EQ(m.old_tuple.values[0], Value::Text("41"));
    EXPECT_EQ(m.old_tuple.values[1], Value::Null());
    ASSERT_EQ(m.new_tuple.values.size(), 2u);
    EXPECT_EQ(m.new_tuple.values[0], Value::Text("42"));
  }
}

TEST(PgOutputDecoderTest, DeleteWithKeyAndFullOldTuple) {
  for (char marker : {'K', 'O'}) {
    auto m = DecodeOk<DeleteMessage>(DeleteFixture(marker));
    EXPECT_EQ(m.relation_oid, 16384u);
    EXPECT_EQ(m.old_kind, marker == 'K' ? core::OldTupleKind::kKey : core::OldTupleKind::kFull);
    ASSERT_EQ(m.old_tuple.values.size(), 2u);
    EXPECT_EQ(m.old_tuple.values[0], Value::Text("42"));
    EXPECT_EQ(m.old_tuple.values[1], Value::Null());
  }
}

TEST(PgOutputDecoderTest, TruncateEveryOptionCombination) {
  for (uint8_t options = 0; options < 4; ++options) {
    auto m = DecodeOk<TruncateMessage>(TruncateFixture(options));
    EXPECT_EQ(m.cascade, (options & 1) != 0);
    EXPECT_EQ(m.restart_identity, (options & 2) != 0);
    EXPECT_EQ(m.relation_oids, (std::vector<core::Oid>{16384, 16390}));
  }
}

TEST(PgOutputDecoderTest, TruncateWithNoRelations) {
  auto m = DecodeOk<TruncateMessage>(Bytes().U8('T').I32(0).U8(0));
  EXPECT_TRUE(m.relation_oids.empty());
}

TEST(PgOutputDecoderTest, LogicalMessageTransactionalAndNot) {
  for (uint8_t flags : {0, 1}) {
    auto m = DecodeOk<LogicalMessage>(MessageFixture(flags));
    EXPECT_FALSE(m.xid.has_value());
    EXPECT_EQ(m.transactional, flags == 1);
    EXPECT_EQ(m.lsn, core::Lsn(0x200));
    EXPECT_EQ(m.prefix, "sluice");
    EXPECT_EQ(m.content, std::string("he\0lo", 5));
  }
}

TEST(PgOutputDecoderTest, LogicalMessageEmptyContent) {
  auto m = DecodeOk<LogicalMessage>(Bytes().U8('M').U8(0).U64(1).CString("").I32(0));
  EXPECT_EQ(m.prefix, "");
  EXPECT_EQ(m.content, "");
}

// ---- Streaming ----

TEST(PgOutputDecoderTest, StreamStartAndStopTrackTheBlock) {
  PgOutputDecoder decoder(2);
  EXPECT_FALSE(decoder.in_stream());
  auto start = DecodeOk<StreamStartMessage>(decoder, StreamStartFixture(900, true));
  EXPECT_EQ(start.xid, 900u);
  EXPECT_TRUE(start.first_segment);
  EXPECT_TRUE(decoder.in_stream());
  DecodeOk<StreamStopMessage>(decoder, StreamStopFixture());
  EXPECT_FALSE(decoder.in_stream());

  auto again = DecodeOk<StreamStartMessage>(decoder, StreamStartFixture(900, false));
  EXPECT_FALSE(again.first_segment);
  EXPECT_TRUE(decoder.in_stream());
}

TEST(PgOutputDecoderTest, RowMessagesCarryXidOnlyInsideStreamBlock) {
  PgOutputDecoder decoder(2);
  DecodeOk<StreamStartMessage>(decoder, StreamStartFixture(900));
  // Subtransaction xids differ from the block's xid; the decoder reports what was sent.
  EXPECT_EQ(DecodeOk<RelationMessage>(decoder, RelationFixture(900)).xid, 900u);
  EXPECT_EQ(DecodeOk<TypeMessage>(decoder, TypeFixture(900)).xid, 900u);
  auto insert = DecodeOk<InsertMessage>(decoder, InsertFixture(901));
  EXPECT_EQ(insert.xid, 901u);
  EXPECT_EQ(insert.new_tuple.values.size(), 4u);
  auto update = DecodeOk<UpdateMessage>(decoder, UpdateFixture('O', 902));
  EXPECT_EQ(update.xid, 902u);
  EXPECT_EQ(update.old_kind, core::OldTupleKind::kFull);
  EXPECT_EQ(DecodeOk<DeleteMessage>(decoder, DeleteFixture('K', 903)).xid, 903u);
  auto truncate = DecodeOk<TruncateMessage>(decoder, TruncateFixture(3, 904));
  EXPECT_EQ(truncate.xid, 904u);
  EXPECT_TRUE(truncate.cascade);
  EXPECT_EQ(truncate.relation_oids.size(), 2u);
  auto message = DecodeOk<LogicalMessage>(decoder, MessageFixture(1, 905));
  EXPECT_EQ(message.xid, 905u);
  EXPECT_EQ(message.prefix, "sluice");
  // Origin never carries an xid, even inside a block.
  EXPECT_EQ(DecodeOk<OriginMessage>(decoder, OriginFixture()).name, "node_a");
  DecodeOk<StreamStopMessage>(decoder, StreamStopFixture());

  EXPECT_FALSE(DecodeOk<InsertMessage>(decoder, InsertFixture()).xid.has_value());
}

TEST(PgOutputDecoderTest, RowMessageWithoutXidInsideStreamIsRejected) {
  // The same bytes that are valid outside a block are misread inside one: the decoder must
  // not silently accept them as something else.
  const core::Status status = DecodeError(InsertFixture(), 2, /*in_stream=*/true);
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
}

TEST(PgOutputDecoderTest, StreamCommit) {
  auto m = DecodeOk<StreamCommitMessage>(StreamCommitFixture());
  EXPECT_EQ(m.xid, 900u);
  EXPECT_EQ(m.flags, 0);
  EXPECT_EQ(m.commit_lsn, core::Lsn(0x300));
  EXPECT_EQ(m.end_lsn, core::Lsn(0x340));
  EXPECT_EQ(m.commit_time, 757000000000002);
}

TEST(PgOutputDecoderTest, StreamAbortBeforeVersion4) {
  for (int version : {2, 3}) {
    auto m = DecodeOk<StreamAbortMessage>(StreamAbortFixture(false), version);
    EXPECT_EQ(m.xid, 900u);
    EXPECT_EQ(m.subxid, 901u);
    const core::Status status = DecodeError(StreamAbortFixture(true), version);
    EXPECT_EQ(status.code(), StatusCode::kCorruption);
    EXPECT_NE(status.message().find("trailing"), std::string::npos) << status.message();
  }
}

TEST(PgOutputDecoderTest, StreamAbortVersion4WithAndWithoutAbortInfo) {
  // streaming = parallel sends abort LSN and time; streaming = on does not.
  auto parallel = DecodeOk<StreamAbortMessage>(StreamAbortFixture(true), 4);
  EXPECT_EQ(parallel.xid, 900u);
  EXPECT_EQ(parallel.subxid, 901u);
  auto plain = DecodeOk<StreamAbortMessage>(StreamAbortFixture(false), 4);
  EXPECT_EQ(plain.subxid, 901u);

  const std::string partial = StreamAbortFixture(false) + Bytes().U64(0x380).str();
  const core::Status status = DecodeError(partial, 4);
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("abort timestamp"), std::string::npos) << status.message();
}

TEST(PgOutputDecoderTest, StreamMessagesNeedProtocolVersion2) {
  for (const std::string& bytes : {StreamStartFixture(), StreamStopFixture(), StreamCommitFixture(),
                                   StreamAbortFixture(false)}) {
    const core::Status status = DecodeError(bytes, 1);
    EXPECT_EQ(status.code(), StatusCode::kCorruption);
    EXPECT_NE(status.message().find("protocol version"), std::string::npos) << status.message();
  }
}

TEST(PgOutputDecoderTest, StreamOrderViolationsAreRejectedWithoutChangingState) {
  const core::Status stop = DecodeError(StreamStopFixture(), 2, /*in_stream=*/false);
  EXPECT_EQ(stop.code(), StatusCode::kCorruption);
  EXPECT_NE(stop.message().find("Stream Stop"), std::string::npos) << stop.message();

  const core::Status nested = DecodeError(StreamStartFixture(77), 2, /*in_stream=*/true);
  EXPECT_EQ(nested.code(), StatusCode::kCorruption);
  EXPECT_NE(nested.message().find("nested"), std::string::npos) << nested.message();

  for (const std::string& bytes :
       {BeginFixture(), CommitFixture(), StreamCommitFixture(), StreamAbortFixture(false)}) {
    const core::Status inside = DecodeError(bytes, 3, /*in_stream=*/true);
    EXPECT_EQ(inside.code(), StatusCode::kCorruption);
    EXPECT_NE(inside.message().find("inside the stream block of xid 900"), std::string::npos)
        << inside.message();
  }
}

TEST(PgOutputDecoderTest, BrokenStreamStopKeepsTheBlockOpen) {
  PgOutputDecoder decoder = MakeDecoder(2, true);
  EXPECT_FALSE(decoder.Decode(StreamStopFixture() + "x").ok());
  EXPECT_TRUE(decoder.in_stream());
  EXPECT_TRUE(decoder.Decode(StreamStopFixture()).ok());
  EXPECT_FALSE(decoder.in_stream());
}

// ---- Rejections ----

TEST(PgOutputDecoderTest, TwoPhaseMessagesAreUnsupported) {
  for (char type : {'b', 'P', 'K', 'r', 'p'}) {
    const core::Status status = DecodeError(Bytes().U8(type).U64(1).str(), 3);
    EXPECT_EQ(status.code(), StatusCode::kUnsupported) << type;
    EXPECT_NE(status.message().find(std::string("'") + type + "'"), std::string::npos)
        << status.message();
  }
}

TEST(PgOutputDecoderTest, UnknownTypeNamesTheByte) {
  const core::Status status = DecodeError(Bytes().U8('Z').U32(1).str());
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_NE(status.message().find("0x5a ('Z')"), std::string::npos) << status.message();

  const core::Status binary = DecodeError(Bytes().U8(0x00).str());
  EXPECT_NE(binary.message().find("0x00"), std::string::npos) << binary.message();
}

TEST(PgOutputDecoderTest, EmptyMessageIsCorruption) {
  EXPECT_EQ(DecodeError("").code(), StatusCode::kCorruption);
}

TEST(PgOutputDecoderTest, UnsupportedProtocolVersionIsInvalidArgument) {
  for (int version : {0, 5, -1}) {
    PgOutputDecoder decoder(version);
    auto result = decoder.Decode(BeginFixture());
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(PgOutputDecoderTest, ErrorNamesMessageFieldAndOffset) {
  // Insert: type(1) oid(4) 'N'(1) count(2) kind(1) -> value length at offset 9, cut short.
  const std::string bytes = Bytes().U8('I').U32(1).U8('N').I16(1).U8('t').U16(0);
  const core::Status status = DecodeError(bytes);
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_EQ(status.message(),
            "pgoutput Insert message (new tuple column 0): truncated field 'value length' at "
            "byte offset 9 (needs 4 bytes, 2 left)");
}

TEST(PgOutputDecoderTest, TrailingBytesAreNamed) {
  const core::Status status = DecodeError(BeginFixture() + "xy");
  EXPECT_EQ(status.code(), StatusCode::kCorruption);
  EXPECT_EQ(status.message(),
            "pgoutput Begin message: 2 trailing bytes at byte offset 21 after a complete message");
}

struct MalformedCase {
  const char* name;
  std::string bytes;
  const char* expected_text;  // must appear in the error message
  bool in_stream = false;
};

TEST(PgOutputDecoderTest, MalformedInputsTable) {
  const std::string two_gb = Bytes().I32(0x7fffffff);
  const MalformedCase cases[] = {
      {"negative text length", Bytes().U8('I').U32(1).U8('N').I16(1).U8('t').I32(-1),
       "negative length -1"},
      {"text length beyond buffer",
       Bytes().U8('I').U32(1).U8('N').I16(1).U8('t').I32(10).Raw("abc"),
       "truncated field 'value bytes'"},
      {"huge binary length", Bytes().U8('I').U32(1).U8('N').I16(1).U8('b').Raw(two_gb).Raw("x"),
       "needs 2147483647 bytes"},
      {"negative tuple column count", Bytes().U8('I').U32(1).U8('N').I16(-3), "negative value -3"},
      {"tuple column count beyond buffer", Bytes().U8('I').U32(1).U8('N').I16(32767).Null(),
       "new tuple column 1"},
      {"unknown tuple kind", Bytes().U8('I').U32(1).U8('N').I16(2).Null().U8('x'),
       "unknown tuple column kind 0x78 ('x')"},
      {"insert without N", Bytes().U8('I').U32(1).U8('K').I16(0), "expected 'N'"},
      {"update bad marker", Bytes().U8('U').U32(1).U8('X').I16(0), "expected 'K', 'O' or 'N'"},
      {"update old tuple without new", Bytes().U8('U').U32(1).U8('K').I16(1).Null().U8('K'),
       "expected 'N'"},
      {"delete with N", Bytes().U8('D').U32(1).U8('N').I16(0), "expected 'K' or 'O'"},
      {"relation negative column count",
       Bytes().U8('R').U32(1).CString("s").CString("t").U8('d').I16(-1), "negative value -1"},
      {"relation unknown replica identity",
       Bytes().U8('R').U32(1).CString("s").CString("t").U8('x').I16(0),
       "unknown replica identity 0x78 ('x')"},
      {"relation column count beyond buffer",
       Bytes().U8('R').U32(1).CString("s").CString("t").U8('d').I16(1000).U8(0).CString("a"),
       "column 0"},
      {"relation unterminated name", Bytes().U8('R').U32(1).CString("s").Raw("accounts"),
       "unterminated string field 'relation name' at byte offset 7"},
      {"origin unterminated name", Bytes().U8('O').U64(1).Raw("node"),
       "unterminated string field 'origin name'"},
      {"truncate negative count", Bytes().U8('T').I32(-1).U8(0), "negative value -1"},
      {"truncate count beyond buffer", Bytes().U8('T').I32(0x7fffffff).U8(0).U32(1), "relation 1"},
      {"message negative length", Bytes().U8('M').U8(0).U64(1).CString("p").I32(-5),
       "negative length -5"},
      {"message length beyond buffer", Bytes().U8('M').U8(0).U64(1).CString("p").I32(9).Raw("ab"),
       "truncated field 'content'"},
      {"stream insert truncated xid", Bytes().U8('I').U16(1), "truncated field 'xid'", true},
      {"insert trailing byte", InsertFixture() + "!", "1 trailing bytes"},
  };
  for (const MalformedCase& c : cases) {
    SCOPED_TRACE(c.name);
    const core::Status status = DecodeError(c.bytes, 2, c.in_stream);
    EXPECT_EQ(status.code(), StatusCode::kCorruption);
    EXPECT_NE(status.message().find(c.expected_text), std::string::npos) << status.message();
  }
}

// ---- Every valid fixture: truncations and extensions fail cleanly ----

struct Fixture {
  const char* name;
  std::string bytes;
  int version = 2;
  bool in_stream = false;
  // A shorter prefix that is itself a complete message (Stream Abort v4 without abort info).
  std::set<size_t> valid_prefixes = {};
};

std::vector<Fixture> AllFixtures() {
  return {
      {"begin", BeginFixture()},
      {"commit", CommitFixture()},
      {"origin", OriginFixture()},
      {"relation", RelationFixture()},
      {"relation in stream", RelationFixture(900), 2, true},
      {"type", TypeFixture()},
      {"type in stream", TypeFixture(900), 3, true},
      {"insert", InsertFixture(), 1},
      {"insert in stream", InsertFixture(901), 4, true},
      {"update", UpdateFixture(0)},
      {"update old key", UpdateFixture('K')},
      {"update old tuple", UpdateFixture('O')},
      {"update old tuple in stream", UpdateFixture('O', 902), 2, true},
      {"delete key", DeleteFixture('K')},
      {"delete full", DeleteFixture('O')},
      {"delete in stream", DeleteFixture('K', 903), 2, true},
      {"truncate", TruncateFixture(3)},
      {"truncate in stream", TruncateFixture(1, 904), 2, true},
      {"message", MessageFixture(0)},
      {"message transactional in stream", MessageFixture(1, 905), 2, true},
      {"stream start", StreamStartFixture()},
      {"stream stop", StreamStopFixture(), 2, true},
      {"stream commit", StreamCommitFixture()},
      {"stream abort v2", StreamAbortFixture(false)},
      {"stream abort v4 parallel", StreamAbortFixture(true), 4, false, {9}},
  };
}

TEST(PgOutputDecoderTest, FixturesDecode) {
  for (const Fixture& f : AllFixtures()) {
    SCOPED_TRACE(f.name);
    PgOutputDecoder decoder = MakeDecoder(f.version, f.in_stream);
    auto result = decoder.Decode(f.bytes);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
  }
}

TEST(PgOutputDecoderTest, EveryTruncatedPrefixFailsCleanly) {
  for (const Fixture& f : AllFixtures()) {
    for (size_t length = 0; length < f.bytes.size(); ++length) {
      if (f.valid_prefixes.count(length) != 0) continue;
      SCOPED_TRACE(std::string(f.name) + " cut to " + std::to_string(length) + " bytes");
      // A heap copy of exactly `length` bytes, so sanitizers catch any read past the end.
      const std::string prefix = f.bytes.substr(0, length);
      const core::Status status = DecodeError(prefix, f.version, f.in_stream);
      EXPECT_EQ(status.code(), StatusCode::kCorruption) << status.message();
      if (length > 0) {
        EXPECT_NE(status.message().find("byte offset"), std::string::npos) << status.message();
      }
    }
  }
}

TEST(PgOutputDecoderTest, EveryFixtureWithTrailingBytesFails) {
  for (const Fixture& f : AllFixtures()) {
    SCOPED_TRACE(f.name);
    for (const std::string& tail : {std::string(1, '\0'), std::string("N\0\0", 3)}) {
      const core::Status status = DecodeError(f.bytes + tail, f.version, f.in_stream);
      EXPECT_EQ(status.code(), StatusCode::kCorruption) << status.message();
    }
  }
}

// ---- Fuzz seed corpus ----
//
// The fuzz target (fuzz/pgoutput_decoder_fuzz.cc) reads: one header byte, bits 0-1 = protocol
// version - 1, bit 2 = pre-enter a stream block, bit 3 = framed; then either one message
// (unframed) or a sequence of [uint16 big-endian length][message]. This test checks every
// seed is valid for that format; with SLUICE_PGOUTPUT_CORPUS_DIR set it also writes them.

struct Seed {
  std::string name;
  int version;
  bool pre_stream;
  std::vector<std::string> messages;  // more than one -> framed
};

std::string EncodeSeed(const Seed& seed) {
  uint8_t header = static_cast<uint8_t>(seed.version - 1);
  if (seed.pre_stream) header |= 4;
  const bool framed = seed.messages.size() > 1;
  if (framed) header |= 8;
  Bytes b;
  b.U8(header);
  for (const std::string& m : seed.messages) {
    if (framed) b.U16(static_cast<uint16_t>(m.size()));
    b.Raw(m);
  }
  return b;
}

std::vector<Seed> CorpusSeeds() {
  std::vector<Seed> seeds;
  for (const Fixture& f : AllFixtures()) {
    std::string name = f.name;
    for (char& c : name) {
      if (c == ' ') c = '_';
    }
    seeds.push_back({name, f.version, f.in_stream, {f.bytes}});
  }
  seeds.push_back({"txn_sequence",
                   2,
                   false,
                   {BeginFixture(), OriginFixture(), RelationFixture(), InsertFixture(),
                    UpdateFixture('K'), DeleteFixture('O'), CommitFixture()}});
  seeds.push_back(
      {"stream_sequence",
       4,
       false,
       {StreamStartFixture(), RelationFixture(900), InsertFixture(901), MessageFixture(1, 900),
        StreamStopFixture(), StreamAbortFixture(true), StreamCommitFixture()}});
  return seeds;
}

TEST(PgOutputCorpusTest, SeedsAreValidAndWrittenOnRequest) {
  const std::vector<Seed> seeds = CorpusSeeds();
  EXPECT_GE(seeds.size(), 15u);
  EXPECT_LE(seeds.size(), 30u);
  for (const Seed& seed : seeds) {
    SCOPED_TRACE(seed.name);
    PgOutputDecoder decoder = MakeDecoder(seed.version, seed.pre_stream);
    for (const std::string& m : seed.messages) {
      ASSERT_LT(m.size(), 65536u);
      auto result = decoder.Decode(m);
      EXPECT_TRUE(result.ok()) << result.status().ToString();
    }
  }
  const char* dir = std::getenv("SLUICE_PGOUTPUT_CORPUS_DIR");
  if (dir == nullptr || *dir == '\0') return;
  std::filesystem::create_directories(dir);
  for (const Seed& seed : seeds) {
    std::ofstream out(std::filesystem::path(dir) / ("seed_" + seed.name),
                      std::ios::binary | std::ios::trunc);
    const std::string bytes = EncodeSeed(seed);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << "writing seed " << seed.name;
  }
}

}  // namespace
}  // namespace sluice::capture
