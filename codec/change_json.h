#pragma once

#include <string>

#include "core/change.h"
#include "core/transaction.h"

namespace sluice::codec {

// Renders one change of a committed transaction as one line of JSON (no trailing newline),
// appended to `out`. The format of `sluice tail --format jsonl`:
//
//   {"lsn":"0/16B3748","xid":735,"commit_lsn":"0/16B37C8","commit_time":"2026-...Z",
//    "origin":"node_a",            // only when the transaction came from a replication origin
//    "relation":"public.orders",   // schema.table as sent by the source, unquoted
//    "op":"update",
//    "key":{"id":"7"},             // update/delete: the replica-identity columns that locate
//                                  // the old row (for an update that kept its key: from new)
//    "old":{...},                  // update/delete under REPLICA IDENTITY FULL: the whole old row
//    "new":{"id":"7","note":{"unchanged_toast":true}}}
//
// Values stay in PostgreSQL's text form as JSON strings (numbers too: nothing is rounded); SQL
// NULL is null; an unchanged TOAST value is {"unchanged_toast":true}; a binary-format value is
// {"binary":"<hex>"}. Truncate lines carry "relations", "cascade" and "restart_identity";
// logical messages carry "prefix", "content" and "transactional".
void AppendChangeJson(std::string& out, const core::Transaction& txn, const core::Change& change);

// The transaction-level fields of a line (xid, commit LSN and time, origin), rendered once per
// transaction instead of once per change: the hot path of `sluice tail`.
class TransactionJson {
 public:
  explicit TransactionJson(const core::Transaction& txn);
  void AppendChange(std::string& out, const core::Change& change) const;

 private:
  std::string fields_;  // ,"xid":..,"commit_lsn":"..","commit_time":".."[,"origin":".."]
};

}  // namespace sluice::codec
