#include "capture/pgoutput_decoder.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "capture/byte_reader.h"

namespace sluice::capture {
namespace {

constexpr int kMinProtocolVersion = 1;
constexpr int kMaxProtocolVersion = 4;
constexpr int kFirstStreamingVersion = 2;
constexpr int kFirstParallelAbortVersion = 4;

// Smallest encoding of one Relation column: flags, empty name + NUL, type oid, modifier.
constexpr size_t kMinRelationColumnBytes = 1 + 1 + 4 + 4;

// Message flag bits.
constexpr uint8_t kMessageTransactional = 1;
constexpr uint8_t kTruncateCascade = 1;
constexpr uint8_t kTruncateRestartIdentity = 2;

// ---- Error formatting (cold path only) ----

// "0x41 ('A')" or "0x05".
std::string DescribeByte(uint8_t byte) {
  char buf[16];
  if (byte >= 0x20 && byte < 0x7f) {
    std::snprintf(buf, sizeof(buf), "0x%02x ('%c')", byte, static_cast<char>(byte));
  } else {
    std::snprintf(buf, sizeof(buf), "0x%02x", byte);
  }
  return buf;
}

std::string Where(const char* message_name, std::string_view context) {
  std::string where = "pgoutput ";
  where += message_name;
  where += " message";
  if (!context.empty()) {
    where += " (";
    where += context;
    where += ")";
  }
  return where;
}

// Turns the reader's sticky error into a Status.
core::Status ReaderError(const ByteReader& r, const char* message_name,
                         std::string_view context = {}) {
  std::string text = Where(message_name, context);
  const std::string offset = std::to_string(r.error_offset());
  switch (r.error()) {
    case ByteReader::Error::kUnterminated:
      text += ": unterminated string field '" + std::string(r.error_field()) + "' at byte offset " +
              offset + " (no NUL before the end of the message)";
      break;
    case ByteReader::Error::kTruncated:
      text += ": truncated field '" + std::string(r.error_field()) + "' at byte offset " + offset +
              " (needs " + std::to_string(r.error_needed()) + " bytes, " +
              std::to_string(r.size() - r.error_offset()) + " left)";
      break;
    case ByteReader::Error::kInvalid:
    case ByteReader::Error::kNone:  // not reached: callers check ok() first
      text += ": invalid field '" + std::string(r.error_field()) + "' at byte offset " + offset;
      break;
  }
  return core::Corruption(std::move(text));
}

core::Status InvalidField(const char* message_name, std::string_view context, const char* field,
                          size_t offset, std::string_view problem) {
  std::string text = Where(message_name, context);
  text += ": invalid field '";
  text += field;
  text += "' at byte offset " + std::to_string(offset) + ": ";
  text += problem;
  return core::Corruption(std::move(text));
}

std::string ColumnContext(const char* tuple_name, int column) {
  return std::string(tuple_name) + " column " + std::to_string(column);
}

// The end of every message: the reader must be clean and fully consumed.
core::Status Finish(const ByteReader& r, const char* message_name) {
  if (!r.ok()) return ReaderError(r, message_name);
  if (!r.at_end()) {
    return core::Corruption(Where(message_name, {}) + ": " + std::to_string(r.remaining()) +
                            " trailing bytes at byte offset " + std::to_string(r.offset()) +
                            " after a complete message");
  }
  return core::Status::Ok();
}

// ---- Field groups ----

std::optional<uint32_t> ReadStreamXid(ByteReader& r, bool in_stream) {
  if (!in_stream) return std::nullopt;
  return r.ReadU32("xid");
}

// TupleData: int16 column count, then per column a kind byte and, for text and binary, an
// int32 length and the bytes.
core::Status ReadTuple(ByteReader& r, const char* message_name, const char* tuple_name,
                       core::Tuple& out) {
  const size_t count_offset = r.offset();
  const int16_t count = r.ReadI16("column count");
  if (!r.ok()) return ReaderError(r, message_name, tuple_name);
  if (count < 0) {
    return InvalidField(message_name, tuple_name, "column count", count_offset,
                        "negative value " + std::to_string(count));
  }
  // Each column takes at least one byte: a lying count cannot make us over-allocate.
  out.reserve(std::min<size_t>(static_cast<size_t>(count), r.remaining()));
  for (int column = 0; column < count; ++column) {
    const size_t kind_offset = r.offset();
    const uint8_t kind = r.ReadU8("column kind");
    if (!r.ok()) return ReaderError(r, message_name, ColumnContext(tuple_name, column));
    switch (kind) {
      case 'n':
        out.emplace_back();
        break;
      case 'u':
        out.emplace_back().kind = core::Value::Kind::kUnchangedToast;
        break;
      case 't':
      case 'b': {
        const size_t length_offset = r.offset();
        const int32_t length = r.ReadI32("value length");
        if (!r.ok()) return ReaderError(r, message_name, ColumnContext(tuple_name, column));
        if (length < 0) {
          return InvalidField(message_name, ColumnContext(tuple_name, column), "value length",
                              length_offset, "negative length " + std::to_string(length));
        }
        const std::string_view bytes = r.ReadBytes(static_cast<size_t>(length), "value bytes");
        if (!r.ok()) return ReaderError(r, message_name, ColumnContext(tuple_name, column));
        core::Value& value = out.emplace_back();
        value.kind = kind == 't' ? core::Value::Kind::kText : core::Value::Kind::kBinary;
        value.data.assign(bytes.data(), bytes.size());
        break;
      }
      default:
        return InvalidField(message_name, ColumnContext(tuple_name, column), "column kind",
                            kind_offset, "unknown tuple column kind " + DescribeByte(kind));
    }
  }
  return core::Status::Ok();
}

// ---- Messages: each fills `out` from the bytes after the type byte ----

void DecodeBegin(ByteReader& r, BeginMessage& out) {
  out.final_lsn = core::Lsn(r.ReadU64("final lsn"));
  out.commit_time = r.ReadI64("commit timestamp");
  out.xid = r.ReadU32("xid");
}

void DecodeCommit(ByteReader& r, CommitMessage& out) {
  out.flags = r.ReadU8("flags");
  out.commit_lsn = core::Lsn(r.ReadU64("commit lsn"));
  out.end_lsn = core::Lsn(r.ReadU64("end lsn"));
  out.commit_time = r.ReadI64("commit timestamp");
}

void DecodeOrigin(ByteReader& r, OriginMessage& out) {
  out.origin_lsn = core::Lsn(r.ReadU64("origin lsn"));
  out.name = r.ReadCString("origin name");
}

bool IsReplicaIdentity(uint8_t c) {
  switch (static_cast<core::ReplicaIdentity>(c)) {
    case core::ReplicaIdentity::kDefault:
    case core::ReplicaIdentity::kNothing:
    case core::ReplicaIdentity::kFull:
    case core::ReplicaIdentity::kIndex:
      return true;
  }
  return false;
}

core::Status DecodeRelation(ByteReader& r, bool in_stream, RelationMessage& out) {
  constexpr const char* kName = "Relation";
  out.xid = ReadStreamXid(r, in_stream);
  core::Relation& rel = out.relation;
  rel.oid = r.ReadU32("relation oid");
  // An empty namespace means pg_catalog; kept as sent.
  rel.schema = r.ReadCString("namespace");
  rel.name = r.ReadCString("relation name");
  const size_t identity_offset = r.offset();
  const uint8_t identity = r.ReadU8("replica identity");
  const size_t count_offset = r.offset();
  const int16_t count = r.ReadI16("column count");
  if (!r.ok()) return ReaderError(r, kName);
  if (!IsReplicaIdentity(identity)) {
    return InvalidField(kName, {}, "replica identity", identity_offset,
                        "unknown replica identity " + DescribeByte(identity));
  }
  rel.replica_identity = static_cast<core::ReplicaIdentity>(identity);
  if (count < 0) {
    return InvalidField(kName, {}, "column count", count_offset,
                        "negative value " + std::to_string(count));
  }
  rel.columns.reserve(
      std::min<size_t>(static_cast<size_t>(count), r.remaining() / kMinRelationColumnBytes));
  for (int i = 0; i < count; ++i) {
    core::Column& column = rel.columns.emplace_back();
    column.is_key = (r.ReadU8("column flags") & 1) != 0;
    column.name = r.ReadCString("column name");
    column.type_oid = r.ReadU32("column type oid");
    column.type_modifier = r.ReadI32("column type modifier");
    if (!r.ok()) return ReaderError(r, kName, "column " + std::to_string(i));
  }
  return core::Status::Ok();
}

void DecodeType(ByteReader& r, bool in_stream, TypeMessage& out) {
  out.xid = ReadStreamXid(r, in_stream);
  out.oid = r.ReadU32("type oid");
  out.schema = r.ReadCString("namespace");
  out.name = r.ReadCString("type name");
}

// Reads a tuple-kind byte and requires 'N' (new tuple follows).
core::Status ExpectNewTuple(ByteReader& r, const char* message_name) {
  const size_t offset = r.offset();
  const uint8_t marker = r.ReadU8("tuple marker");
  if (!r.ok()) return ReaderError(r, message_name);
  if (marker != 'N') {
    return InvalidField(message_name, {}, "tuple marker", offset,
                        "expected 'N' (new tuple), got " + DescribeByte(marker));
  }
  return core::Status::Ok();
}

core::Status DecodeInsert(ByteReader& r, bool in_stream, InsertMessage& out) {
  constexpr const char* kName = "Insert";
  out.xid = ReadStreamXid(r, in_stream);
  out.relation_oid = r.ReadU32("relation oid");
  SLUICE_RETURN_IF_ERROR(ExpectNewTuple(r, kName));
  return ReadTuple(r, kName, "new tuple", out.new_tuple.values);
}

core::Status DecodeUpdate(ByteReader& r, bool in_stream, UpdateMessage& out) {
  constexpr const char* kName = "Update";
  out.xid = ReadStreamXid(r, in_stream);
  out.relation_oid = r.ReadU32("relation oid");
  const size_t offset = r.offset();
  const uint8_t marker = r.ReadU8("tuple marker");
  if (!r.ok()) return ReaderError(r, kName);
  switch (marker) {
    case 'K':
    case 'O':
      out.old_kind = marker == 'K' ? core::OldTupleKind::kKey : core::OldTupleKind::kFull;
      SLUICE_RETURN_IF_ERROR(ReadTuple(r, kName, "old tuple", out.old_tuple.values));
      SLUICE_RETURN_IF_ERROR(ExpectNewTuple(r, kName));
      break;
    case 'N':
      out.old_kind = core::OldTupleKind::kNone;
      break;
    default:
      return InvalidField(kName, {}, "tuple marker", offset,
                          "expected 'K', 'O' or 'N', got " + DescribeByte(marker));
  }
  return ReadTuple(r, kName, "new tuple", out.new_tuple.values);
}

core::Status DecodeDelete(ByteReader& r, bool in_stream, DeleteMessage& out) {
  constexpr const char* kName = "Delete";
  out.xid = ReadStreamXid(r, in_stream);
  out.relation_oid = r.ReadU32("relation oid");
  const size_t offset = r.offset();
  const uint8_t marker = r.ReadU8("tuple marker");
  if (!r.ok()) return ReaderError(r, kName);
  if (marker != 'K' && marker != 'O') {
    return InvalidField(kName, {}, "tuple marker", offset,
                        "expected 'K' or 'O', got " + DescribeByte(marker));
  }
  out.old_kind = marker == 'K' ? core::OldTupleKind::kKey : core::OldTupleKind::kFull;
  return ReadTuple(r, kName, "old tuple", out.old_tuple.values);
}

core::Status DecodeTruncate(ByteReader& r, bool in_stream, TruncateMessage& out) {
  constexpr const char* kName = "Truncate";
  out.xid = ReadStreamXid(r, in_stream);
  const size_t count_offset = r.offset();
  const int32_t count = r.ReadI32("relation count");
  const uint8_t options = r.ReadU8("options");
  if (!r.ok()) return ReaderError(r, kName);
  if (count < 0) {
    return InvalidField(kName, {}, "relation count", count_offset,
                        "negative value " + std::to_string(count));
  }
  // Other option bits are not defined; PostgreSQL's own reader ignores them too.
  out.cascade = (options & kTruncateCascade) != 0;
  out.restart_identity = (options & kTruncateRestartIdentity) != 0;
  out.relation_oids.reserve(std::min<size_t>(static_cast<size_t>(count), r.remaining() / 4));
  for (int32_t i = 0; i < count; ++i) {
    const core::Oid oid = r.ReadU32("relation oid");
    if (!r.ok()) return ReaderError(r, kName, "relation " + std::to_string(i));
    out.relation_oids.push_back(oid);
  }
  return core::Status::Ok();
}

core::Status DecodeLogicalMessage(ByteReader& r, bool in_stream, LogicalMessage& out) {
  constexpr const char* kName = "Logical Decoding";
  out.xid = ReadStreamXid(r, in_stream);
  out.transactional = (r.ReadU8("flags") & kMessageTransactional) != 0;
  out.lsn = core::Lsn(r.ReadU64("message lsn"));
  out.prefix = r.ReadCString("prefix");
  const size_t length_offset = r.offset();
  const int32_t length = r.ReadI32("content length");
  if (!r.ok()) return ReaderError(r, kName);
  if (length < 0) {
    return InvalidField(kName, {}, "content length", length_offset,
                        "negative length " + std::to_string(length));
  }
  out.content = r.ReadBytes(static_cast<size_t>(length), "content");
  return core::Status::Ok();
}

void DecodeStreamStart(ByteReader& r, StreamStartMessage& out) {
  out.xid = r.ReadU32("xid");
  out.first_segment = r.ReadU8("first segment") != 0;
}

void DecodeStreamCommit(ByteReader& r, StreamCommitMessage& out) {
  out.xid = r.ReadU32("xid");
  out.flags = r.ReadU8("flags");
  out.commit_lsn = core::Lsn(r.ReadU64("commit lsn"));
  out.end_lsn = core::Lsn(r.ReadU64("end lsn"));
  out.commit_time = r.ReadI64("commit timestamp");
}

void DecodeStreamAbort(ByteReader& r, int protocol_version, StreamAbortMessage& out) {
  out.xid = r.ReadU32("xid");
  out.subxid = r.ReadU32("subxid");
  // Version 4 adds the abort LSN and time, but only with streaming = parallel: read them
  // when present; Finish() rejects anything else left over.
  if (protocol_version >= kFirstParallelAbortVersion && r.ok() && !r.at_end()) {
    (void)r.ReadU64("abort lsn");
    (void)r.ReadI64("abort timestamp");
  }
}

// Runs `fill` (void or Status-returning) on a fresh alternative T and checks the message end.
template <typename T, typename Fill>
core::Result<PgOutputMessage> DecodeAs(ByteReader& r, const char* message_name, Fill&& fill) {
  PgOutputMessage message(std::in_place_type<T>);
  T& out = std::get<T>(message);
  if constexpr (std::is_same_v<decltype(fill(r, out)), void>) {
    fill(r, out);
  } else {
    core::Status status = fill(r, out);
    if (!status.ok()) return status;
  }
  core::Status status = Finish(r, message_name);
  if (!status.ok()) return status;
  return message;
}

const char* TwoPhaseMessageName(uint8_t type) {
  switch (type) {
    case 'b':
      return "Begin Prepare";
    case 'P':
      return "Prepare";
    case 'K':
      return "Commit Prepared";
    case 'r':
      return "Rollback Prepared";
    case 'p':
      return "Stream Prepare";
    default:
      return nullptr;
  }
}

}  // namespace

PgOutputDecoder::PgOutputDecoder(int protocol_version) : protocol_version_(protocol_version) {}

core::Result<PgOutputMessage> PgOutputDecoder::Decode(std::string_view message) {
  if (protocol_version_ < kMinProtocolVersion || protocol_version_ > kMaxProtocolVersion) {
    return core::InvalidArgument("pgoutput decoder: unsupported protocol version " +
                                 std::to_string(protocol_version_) + " (supported: 1 to 4)");
  }
  if (message.empty()) {
    return core::Corruption("pgoutput message: empty (no message type byte at byte offset 0)");
  }
  ByteReader r(message);
  const uint8_t type = r.ReadU8("message type");
  const bool in_stream = in_stream_;

  // Messages that only make sense outside (or only inside) a stream block.
  auto outside_stream_only = [&](const char* name) -> core::Status {
    if (!in_stream) return core::Status::Ok();
    return core::Corruption(Where(name, {}) + " at byte offset 0 inside the stream block of xid " +
                            std::to_string(stream_xid_) + " (expected Stream Stop first)");
  };
  auto streaming_version = [&](const char* name) -> core::Status {
    if (protocol_version_ >= kFirstStreamingVersion) return core::Status::Ok();
    return core::Corruption(Where(name, {}) + " at byte offset 0 requires protocol version >= " +
                            std::to_string(kFirstStreamingVersion) + " (decoder uses " +
                            std::to_string(protocol_version_) + ")");
  };

  switch (type) {
    case 'B':
      SLUICE_RETURN_IF_ERROR(outside_stream_only("Begin"));
      return DecodeAs<BeginMessage>(r, "Begin", DecodeBegin);
    case 'C':
      SLUICE_RETURN_IF_ERROR(outside_stream_only("Commit"));
      return DecodeAs<CommitMessage>(r, "Commit", DecodeCommit);
    case 'O':
      return DecodeAs<OriginMessage>(r, "Origin", DecodeOrigin);
    case 'R':
      return DecodeAs<RelationMessage>(r, "Relation", [&](ByteReader& br, RelationMessage& out) {
        return DecodeRelation(br, in_stream, out);
      });
    case 'Y':
      return DecodeAs<TypeMessage>(
          r, "Type", [&](ByteReader& br, TypeMessage& out) { DecodeType(br, in_stream, out); });
    case 'I':
      return DecodeAs<InsertMessage>(r, "Insert", [&](ByteReader& br, InsertMessage& out) {
        return DecodeInsert(br, in_stream, out);
      });
    case 'U':
      return DecodeAs<UpdateMessage>(r, "Update", [&](ByteReader& br, UpdateMessage& out) {
        return DecodeUpdate(br, in_stream, out);
      });
    case 'D':
      return DecodeAs<DeleteMessage>(r, "Delete", [&](ByteReader& br, DeleteMessage& out) {
        return DecodeDelete(br, in_stream, out);
      });
    case 'T':
      return DecodeAs<TruncateMessage>(r, "Truncate", [&](ByteReader& br, TruncateMessage& out) {
        return DecodeTruncate(br, in_stream, out);
      });
    case 'M':
      return DecodeAs<LogicalMessage>(r, "Logical Decoding",
                                      [&](ByteReader& br, LogicalMessage& out) {
                                        return DecodeLogicalMessage(br, in_stream, out);
                                      });
    case 'S': {
      SLUICE_RETURN_IF_ERROR(streaming_version("Stream Start"));
      auto result = DecodeAs<StreamStartMessage>(r, "Stream Start", DecodeStreamStart);
      if (!result.ok()) return result;
      const uint32_t xid = std::get<StreamStartMessage>(*result).xid;
      if (in_stream) {
        return core::Corruption("pgoutput Stream Start message for xid " + std::to_string(xid) +
                                " at byte offset 0 nested inside the stream block of xid " +
                                std::to_string(stream_xid_));
      }
      in_stream_ = true;
      stream_xid_ = xid;
      return result;
    }
    case 'E': {
      SLUICE_RETURN_IF_ERROR(streaming_version("Stream Stop"));
      if (!in_stream) {
        return core::Corruption(
            "pgoutput Stream Stop message at byte offset 0 outside a stream block");
      }
      auto result =
          DecodeAs<StreamStopMessage>(r, "Stream Stop", [](ByteReader&, StreamStopMessage&) {});
      if (!result.ok()) return result;
      in_stream_ = false;
      stream_xid_ = 0;
      return result;
    }
    case 'c':
      SLUICE_RETURN_IF_ERROR(streaming_version("Stream Commit"));
      SLUICE_RETURN_IF_ERROR(outside_stream_only("Stream Commit"));
      return DecodeAs<StreamCommitMessage>(r, "Stream Commit", DecodeStreamCommit);
    case 'A':
      SLUICE_RETURN_IF_ERROR(streaming_version("Stream Abort"));
      SLUICE_RETURN_IF_ERROR(outside_stream_only("Stream Abort"));
      return DecodeAs<StreamAbortMessage>(r, "Stream Abort",
                                          [&](ByteReader& br, StreamAbortMessage& out) {
                                            DecodeStreamAbort(br, protocol_version_, out);
                                          });
    default:
      break;
  }
  if (const char* two_phase = TwoPhaseMessageName(type)) {
    return core::Unsupported(std::string("pgoutput two-phase ") + two_phase + " message " +
                             DescribeByte(type) +
                             " is not supported (start replication without two_phase)");
  }
  return core::Corruption("unknown pgoutput message type " + DescribeByte(type) +
                          " at byte offset 0");
}

}  // namespace sluice::capture
