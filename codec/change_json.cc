#include "codec/change_json.h"

#include "codec/json_text.h"
#include "core/pg_time.h"

namespace sluice::codec {
namespace {

void AppendValue(std::string& out, const core::Value& value) {
  switch (value.kind) {
    case core::Value::Kind::kNull:
      out += "null";
      break;
    case core::Value::Kind::kUnchangedToast:
      out += "{\"unchanged_toast\":true}";
      break;
    case core::Value::Kind::kText:
      AppendJsonString(out, value.data);
      break;
    case core::Value::Kind::kBinary:
      out += "{\"binary\":\"";
      AppendHex(out, value.data);
      out += "\"}";
      break;
  }
}

// Appends ,"<field>":{col:value,...} with either every column or only replica-identity ones.
void AppendTuple(std::string& out, const char* field, const core::Relation& relation,
                 const core::Tuple& tuple, bool key_only) {
  out += ",\"";
  out += field;
  out += "\":{";
  bool first = true;
  const size_t n = std::min(tuple.size(), relation.columns.size());
  for (size_t i = 0; i < n; ++i) {
    if (key_only && !relation.columns[i].is_key) continue;
    if (!first) out += ',';
    first = false;
    AppendJsonString(out, relation.columns[i].name);
    out += ':';
    AppendValue(out, tuple[i]);
  }
  out += '}';
}

// "X/Y" in upper-case hex without leading zeros, as PostgreSQL prints an LSN; no snprintf.
void AppendLsn(std::string& out, core::Lsn lsn) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  auto append_hex = [&](uint32_t v) {
    char buf[8];
    int n = 0;
    do {
      buf[n++] = kDigits[v & 0xf];
      v >>= 4;
    } while (v != 0);
    while (n > 0) out += buf[--n];
  };
  append_hex(static_cast<uint32_t>(lsn.value() >> 32));
  out += '/';
  append_hex(static_cast<uint32_t>(lsn.value()));
}

}  // namespace

TransactionJson::TransactionJson(const core::Transaction& txn) {
  fields_ = ",\"xid\":";
  fields_ += std::to_string(txn.xid);
  fields_ += ",\"commit_lsn\":\"";
  AppendLsn(fields_, txn.commit_lsn);
  fields_ += "\",\"commit_time\":\"";
  fields_ += core::FormatPgTimestamp(txn.commit_time);
  fields_ += '"';
  if (!txn.origin.empty()) {
    fields_ += ",\"origin\":";
    AppendJsonString(fields_, txn.origin);
  }
}

void AppendChangeJson(std::string& out, const core::Transaction& txn, const core::Change& change) {
  TransactionJson(txn).AppendChange(out, change);
}

void TransactionJson::AppendChange(std::string& out, const core::Change& change) const {
  out += "{\"lsn\":\"";
  AppendLsn(out, change.lsn);
  out += '"';
  out += fields_;
  switch (change.op) {
    case core::Operation::kInsert:
    case core::Operation::kUpdate:
    case core::Operation::kDelete: {
      const core::Relation& rel = *change.relation;
      out += ",\"relation\":";
      AppendJsonString(out, rel.QualifiedName());
      out += ",\"op\":\"";
      out += core::OperationName(change.op);
      out += '"';
      if (change.op != core::Operation::kInsert) {
        if (change.old_kind == core::OldTupleKind::kKey) {
          AppendTuple(out, "key", rel, change.old_tuple, /*key_only=*/true);
        } else if (change.old_kind == core::OldTupleKind::kFull) {
          AppendTuple(out, "old", rel, change.old_tuple, /*key_only=*/false);
        } else {
          AppendTuple(out, "key", rel, change.new_tuple, /*key_only=*/true);
        }
      }
      if (change.op != core::Operation::kDelete) {
        AppendTuple(out, "new", rel, change.new_tuple, /*key_only=*/false);
      }
      break;
    }
    case core::Operation::kTruncate: {
      out += ",\"op\":\"truncate\",\"relations\":[";
      for (size_t i = 0; i < change.truncated.size(); ++i) {
        if (i > 0) out += ',';
        AppendJsonString(out, change.truncated[i]->QualifiedName());
      }
      out += "],\"cascade\":";
      out += change.truncate_cascade ? "true" : "false";
      out += ",\"restart_identity\":";
      out += change.truncate_restart_identity ? "true" : "false";
      break;
    }
    case core::Operation::kMessage: {
      out += ",\"op\":\"message\",\"prefix\":";
      AppendJsonString(out, change.message_prefix);
      out += ",\"content\":";
      AppendJsonString(out, change.message_content);
      out += ",\"transactional\":";
      out += change.message_transactional ? "true" : "false";
      break;
    }
  }
  out += '}';
}

}  // namespace sluice::codec
