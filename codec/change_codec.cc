#include "codec/change_codec.h"

#include <utility>

namespace sluice::codec {
namespace {

// Layout of one encoded change (integers little-endian, "varint" is unsigned LEB128):
//   u8 op, u64 lsn, u8 flags, varint relation (0 = none, else table index + 1),
//   u8 old_kind, tuple old, tuple new,
//   varint truncated count, varint index per truncated relation,
//   varint prefix length + bytes, varint content length + bytes.
// tuple: varint count, then per value u8 kind (+ varint length + bytes for text/binary).
constexpr uint8_t kFlagTruncateCascade = 1 << 0;
constexpr uint8_t kFlagTruncateRestartIdentity = 1 << 1;
constexpr uint8_t kFlagMessageTransactional = 1 << 2;
constexpr uint8_t kKnownFlags =
    kFlagTruncateCascade | kFlagTruncateRestartIdentity | kFlagMessageTransactional;

void PutU8(uint8_t v, std::string* out) { out->push_back(static_cast<char>(v)); }

void PutU64(uint64_t v, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutBytes(std::string_view bytes, std::string* out) {
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

void PutTuple(const core::Tuple& tuple, std::string* out) {
  PutVarint(tuple.size(), out);
  for (const core::Value& value : tuple) {
    PutU8(static_cast<uint8_t>(value.kind), out);
    if (value.kind == core::Value::Kind::kText || value.kind == core::Value::Kind::kBinary) {
      PutBytes(value.data, out);
    }
  }
}

// Bounds-checked reader over one record.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  size_t offset() const { return pos_; }
  bool at_end() const { return pos_ == bytes_.size(); }

  core::Status Error(const std::string& what) const {
    return core::Corruption("encoded change: " + what + " at byte offset " + std::to_string(pos_) +
                            " of " + std::to_string(bytes_.size()));
  }

  core::Result<uint8_t> U8(const char* what) {
    if (bytes_.size() - pos_ < 1) return Error(std::string("truncated ") + what);
    return static_cast<uint8_t>(bytes_[pos_++]);
  }

  core::Result<uint64_t> U64(const char* what) {
    if (bytes_.size() - pos_ < 8) return Error(std::string("truncated ") + what);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
      v |= static_cast<uint64_t>(static_cast<uint8_t>(bytes_[pos_ + i])) << (8 * i);
    }
    pos_ += 8;
    return v;
  }

  core::Result<uint64_t> Varint(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= bytes_.size()) return Error(std::string("truncated ") + what);
      const uint8_t byte = static_cast<uint8_t>(bytes_[pos_++]);
      if (shift == 63 && byte > 1) return Error(std::string("overlong varint in ") + what);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    return Error(std::string("overlong varint in ") + what);
  }

  // A count of items each taking at least `min_item_bytes`: rejects counts the remaining
  // input cannot hold before anything is allocated for them.
  core::Result<uint64_t> Count(const char* what, size_t min_item_bytes) {
    SLUICE_ASSIGN_OR_RETURN(uint64_t n, Varint(what));
    if (n > (bytes_.size() - pos_) / min_item_bytes) {
      return Error(std::string(what) + " " + std::to_string(n) + " exceeds the record");
    }
    return n;
  }

  core::Result<std::string> Bytes(const char* what) {
    SLUICE_ASSIGN_OR_RETURN(uint64_t n, Varint(what));
    if (n > bytes_.size() - pos_) {
      return Error(std::string(what) + " length " + std::to_string(n) + " exceeds the record");
    }
    std::string s(bytes_.substr(pos_, n));
    pos_ += n;
    return s;
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

core::Result<core::Tuple> GetTuple(Reader& in, const char* what) {
  SLUICE_ASSIGN_OR_RETURN(uint64_t count, in.Count(what, 1));
  core::Tuple tuple;
  tuple.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    SLUICE_ASSIGN_OR_RETURN(uint8_t kind, in.U8("value kind"));
    if (kind > static_cast<uint8_t>(core::Value::Kind::kBinary)) {
      return in.Error("unknown value kind " + std::to_string(kind));
    }
    core::Value value;
    value.kind = static_cast<core::Value::Kind>(kind);
    if (value.kind == core::Value::Kind::kText || value.kind == core::Value::Kind::kBinary) {
      SLUICE_ASSIGN_OR_RETURN(value.data, in.Bytes("value"));
    }
    tuple.push_back(std::move(value));
  }
  return tuple;
}

}  // namespace

uint32_t RelationTable::IndexOf(const core::RelationPtr& relation) {
  auto [it, inserted] =
      index_of_.try_emplace(relation->id(), static_cast<uint32_t>(relations_.size()));
  if (inserted) relations_.push_back(relation);
  return it->second;
}

core::Result<core::RelationPtr> RelationTable::At(uint64_t index) const {
  if (index >= relations_.size()) {
    return core::Corruption("encoded change: relation index " + std::to_string(index) +
                            " out of range (table has " + std::to_string(relations_.size()) + ")");
  }
  return relations_[index];
}

void EncodeChange(const core::Change& change, RelationTable& relations, std::string* out) {
  PutU8(static_cast<uint8_t>(change.op), out);
  PutU64(change.lsn.value(), out);
  uint8_t flags = 0;
  if (change.truncate_cascade) flags |= kFlagTruncateCascade;
  if (change.truncate_restart_identity) flags |= kFlagTruncateRestartIdentity;
  if (change.message_transactional) flags |= kFlagMessageTransactional;
  PutU8(flags, out);
  PutVarint(change.relation ? uint64_t{relations.IndexOf(change.relation)} + 1 : 0, out);
  PutU8(static_cast<uint8_t>(change.old_kind), out);
  PutTuple(change.old_tuple, out);
  PutTuple(change.new_tuple, out);
  PutVarint(change.truncated.size(), out);
  for (const core::RelationPtr& relation : change.truncated) {
    PutVarint(relations.IndexOf(relation), out);
  }
  PutBytes(change.message_prefix, out);
  PutBytes(change.message_content, out);
}

core::Result<core::Change> DecodeChange(std::string_view bytes, const RelationTable& relations) {
  Reader in(bytes);
  core::Change change;

  SLUICE_ASSIGN_OR_RETURN(uint8_t op, in.U8("operation"));
  if (op > static_cast<uint8_t>(core::Operation::kMessage)) {
    return in.Error("unknown operation " + std::to_string(op));
  }
  change.op = static_cast<core::Operation>(op);
  SLUICE_ASSIGN_OR_RETURN(uint64_t lsn, in.U64("lsn"));
  change.lsn = core::Lsn(lsn);
  SLUICE_ASSIGN_OR_RETURN(uint8_t flags, in.U8("flags"));
  if ((flags & ~kKnownFlags) != 0) return in.Error("unknown flags " + std::to_string(flags));
  change.truncate_cascade = (flags & kFlagTruncateCascade) != 0;
  change.truncate_restart_identity = (flags & kFlagTruncateRestartIdentity) != 0;
  change.message_transactional = (flags & kFlagMessageTransactional) != 0;

  SLUICE_ASSIGN_OR_RETURN(uint64_t relation_ref, in.Varint("relation index"));
  if (relation_ref != 0) {
    SLUICE_ASSIGN_OR_RETURN(change.relation, relations.At(relation_ref - 1));
  }
  SLUICE_ASSIGN_OR_RETURN(uint8_t old_kind, in.U8("old tuple kind"));
  if (old_kind > static_cast<uint8_t>(core::OldTupleKind::kFull)) {
    return in.Error("unknown old tuple kind " + std::to_string(old_kind));
  }
  change.old_kind = static_cast<core::OldTupleKind>(old_kind);
  SLUICE_ASSIGN_OR_RETURN(change.old_tuple, GetTuple(in, "old tuple"));
  SLUICE_ASSIGN_OR_RETURN(change.new_tuple, GetTuple(in, "new tuple"));

  SLUICE_ASSIGN_OR_RETURN(uint64_t truncated, in.Count("truncated relation count", 1));
  change.truncated.reserve(truncated);
  for (uint64_t i = 0; i < truncated; ++i) {
    SLUICE_ASSIGN_OR_RETURN(uint64_t index, in.Varint("truncated relation index"));
    SLUICE_ASSIGN_OR_RETURN(core::RelationPtr relation, relations.At(index));
    change.truncated.push_back(std::move(relation));
  }
  SLUICE_ASSIGN_OR_RETURN(change.message_prefix, in.Bytes("message prefix"));
  SLUICE_ASSIGN_OR_RETURN(change.message_content, in.Bytes("message content"));
  if (!in.at_end()) return in.Error("trailing bytes after change");

  // The encoder only ever sees changes whose tuples match their relation; anything else is
  // damage that would otherwise surface much later as a confusing apply error.
  if (change.relation) {
    const size_t columns = change.relation->columns.size();
    const bool has_new =
        change.op == core::Operation::kInsert || change.op == core::Operation::kUpdate;
    if ((has_new && change.new_tuple.size() != columns) ||
        (change.old_kind != core::OldTupleKind::kNone && change.old_tuple.size() != columns)) {
      return core::Corruption("encoded change: tuple size does not match the " +
                              std::to_string(columns) + " columns of " +
                              change.relation->QualifiedName());
    }
  }
  return change;
}

}  // namespace sluice::codec
