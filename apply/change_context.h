#pragma once

#include <cstdint>
#include <string>

#include "core/change.h"
#include "core/lsn.h"
#include "core/relation.h"

namespace sluice::apply {

// What an error of a change's statement names, set once when the change is queued and carried
// with its statement until the result is read, as PostgreSQL's apply worker sets its error
// context (ApplyErrorCallbackArg: command, relation, remote transaction, finish LSN) once per
// change: the relation, the command, the row's source LSN and key, and the source transaction
// it came in. A statement of several rows names its first and last row.
//
// Every message about a change's statement (its failure, a COPY's, a row not found) is built
// here, so they all name the same things the same way.
struct ChangeContext {
  // What the statement was doing when it failed.
  enum class Step : uint8_t { kExecute, kPrepare, kCopy };

  core::RelationPtr relation;  // null for a truncate (see `tables`)
  core::Operation op = core::Operation::kInsert;
  core::Lsn lsn;       // of the (first) row: its own, or its transaction's commit LSN
  std::string key;     // DescribeKey of the (first) row
  std::string tables;  // a truncate's tables, "a.t, b.u"
  uint32_t row_count = 1;
  core::Lsn last_lsn;    // of the last row, when row_count > 1
  std::string last_key;  // of the last row, when row_count > 1
  // The source transaction the change came in; unknown (0, invalid) for netted changes, which
  // may come from several.
  uint32_t xid = 0;
  core::Lsn commit_lsn;
  // Netted changes (BatchCompactor): no longer the source's own rows.
  bool compacted = false;

  // "public.t", or a truncate's tables.
  std::string Target() const;
  // Where in the source: "at source LSN L for key K", or for several rows "at source LSNs
  // L1..L2 for keys K1..K2".
  std::string Where() const;
  // What failed, in the texts operators and tests know:
  //  one row:  "apply to public.t failed at source LSN L for key K[ (preparing the insert
  //            statement)]"
  //  rows:     "apply to public.t failed in [preparing ]a statement of N inserts at source LSNs
  //            L1..L2 for keys K1..K2"
  //  truncate: "apply of truncate of public.t failed at source LSN L"
  //  COPY:     "COPY of N inserts into public.t at source LSNs L1..L2"
  std::string Failure(Step step) const;
  // The source transaction, to follow the server's text: "; in source transaction 725,
  // committed at 0/14C0378", or "" when unknown.
  std::string InTransaction() const;
  // The whole message of a failure: Failure(step) + ": " + server_text + InTransaction().
  std::string Message(Step step, const std::string& server_text) const;
};

}  // namespace sluice::apply
