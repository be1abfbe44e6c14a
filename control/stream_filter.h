#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/lsn.h"
#include "core/relation.h"
#include "core/transaction.h"

namespace sluice::control {

// What the stream may hand to apply for a pipeline whose tables were copied at different
// positions. Pure: no I/O, unit-tested.
//
//   * A table copied later than where streaming resumes (`table_starts`, "schema.name" ->
//     the copy's snapshot position) already holds every transaction committed before that
//     position, so those transactions' changes to it are dropped (truncates lose it from
//     their list). A commit LSN at or past the position is applied: a temporary slot's
//     exported snapshot sees exactly the commits whose record starts before its consistent
//     point, and its stream would begin with the rest.
//   * With `track_unknown` (the pipeline copies tables before streaming them), a change to a
//     published table the pipeline has not copied stops the filter: Filter() returns the table,
//     and the caller copies it before streaming on. A change to a table that is not published
//     (any more: dropped, or taken out of the publication) is dropped, once reported.
// Relations are matched by OID against the publication as it is now, so a table renamed since
// a change was logged is still the same table.
class StreamFilter {
 public:
  struct Table {
    core::Oid oid = 0;
    std::string name;  // "schema.name" now
  };

  StreamFilter(std::vector<Table> published, std::set<std::string> known,
               std::map<std::string, core::Lsn> table_starts, bool track_unknown);

  // Whether Filter() can change anything (false: the caller may skip it).
  bool active() const { return active_; }

  // Drops from `txn` what the copies already hold. Returns "" or the name of a published table
  // that has not been copied (then `txn` is left as it was).
  std::string Filter(core::Transaction& txn);

  // Tables whose changes were dropped because they are not published, each reported once by
  // the caller (names as the stream gave them).
  std::vector<std::string> TakeUnpublished();

 private:
  struct Verdict {
    enum class Kind { kApply, kSkipBefore, kUncopied, kUnpublished } kind = Kind::kApply;
    core::Lsn start;   // kSkipBefore
    std::string name;  // kUncopied: the table's name now
  };
  const Verdict& VerdictFor(const core::RelationPtr& relation);
  const Verdict& LookUp(const core::RelationPtr& relation);
  // Whether `txn`'s changes to `relation` are kept.
  bool Keeps(const core::Transaction& txn, const Verdict& verdict) const;

  std::unordered_map<core::Oid, std::string> published_;
  std::set<std::string> known_;
  std::map<std::string, core::Lsn> starts_;
  bool track_unknown_;
  bool active_;
  // By relation version (a rename on the source is a new version with a new name).
  std::unordered_map<core::RelationId, Verdict, core::RelationIdHash> verdicts_;
  // The last relation looked up and its verdict (verdicts_ never erases, and unordered_map
  // keeps its elements where they are, so it stays valid).
  std::optional<core::RelationId> last_relation_;
  const Verdict* last_verdict_ = nullptr;
  std::vector<std::string> unpublished_;
  std::set<std::string> reported_;
};

}  // namespace sluice::control
