#include "control/stream_filter.h"

#include <algorithm>

namespace sluice::control {

StreamFilter::StreamFilter(std::vector<Table> published, std::set<std::string> known,
                           std::map<std::string, core::Lsn> table_starts, bool track_unknown)
    : known_(std::move(known)),
      starts_(std::move(table_starts)),
      track_unknown_(track_unknown),
      active_(track_unknown || !starts_.empty()) {
  for (Table& table : published) published_[table.oid] = std::move(table.name);
}

const StreamFilter::Verdict& StreamFilter::VerdictFor(const core::RelationPtr& relation) {
  // Runs once per change: consecutive changes mostly share their relation.
  if (last_relation_ == relation->id()) return *last_verdict_;
  const Verdict& verdict = LookUp(relation);
  last_relation_ = relation->id();
  last_verdict_ = &verdict;
  return verdict;
}

const StreamFilter::Verdict& StreamFilter::LookUp(const core::RelationPtr& relation) {
  auto it = verdicts_.find(relation->id());
  if (it != verdicts_.end()) return it->second;
  Verdict verdict;
  auto published = published_.find(relation->oid);
  const std::string name =
      published != published_.end() ? published->second : relation->QualifiedName();
  if (track_unknown_ && published == published_.end()) {
    verdict.kind = Verdict::Kind::kUnpublished;
  } else if (track_unknown_ && !known_.contains(name)) {
    verdict.kind = Verdict::Kind::kUncopied;
    verdict.name = name;
  } else if (auto start = starts_.find(name); start != starts_.end()) {
    verdict.kind = Verdict::Kind::kSkipBefore;
    verdict.start = start->second;
  }
  return verdicts_.emplace(relation->id(), std::move(verdict)).first->second;
}

bool StreamFilter::Keeps(const core::Transaction& txn, const Verdict& verdict) const {
  switch (verdict.kind) {
    case Verdict::Kind::kApply:
    case Verdict::Kind::kUncopied:
      return true;
    case Verdict::Kind::kSkipBefore:
      return !txn.commit_lsn.valid() || txn.commit_lsn >= verdict.start;
    case Verdict::Kind::kUnpublished:
      return false;
  }
  return true;
}

std::string StreamFilter::Filter(core::Transaction& txn) {
  if (!active_) return "";
  // First pass: an uncopied table stops everything before anything is changed; most
  // transactions have nothing to drop and end here.
  bool drops = false;
  for (const core::Change& change : txn.changes) {
    if (change.relation) {
      const Verdict& v = VerdictFor(change.relation);
      if (v.kind == Verdict::Kind::kUncopied) return v.name;
      drops = drops || v.kind != Verdict::Kind::kApply;
    }
    for (const core::RelationPtr& relation : change.truncated) {
      const Verdict& v = VerdictFor(relation);
      if (v.kind == Verdict::Kind::kUncopied) return v.name;
      drops = drops || v.kind != Verdict::Kind::kApply;
    }
  }
  if (!drops) return "";
  auto note_unpublished = [&](const core::RelationPtr& relation, const Verdict& v) {
    if (v.kind != Verdict::Kind::kUnpublished) return;
    if (reported_.insert(relation->QualifiedName()).second) {
      unpublished_.push_back(relation->QualifiedName());
    }
  };
  std::erase_if(txn.changes, [&](core::Change& change) {
    if (change.op == core::Operation::kTruncate) {
      std::erase_if(change.truncated, [&](const core::RelationPtr& relation) {
        const Verdict& v = VerdictFor(relation);
        note_unpublished(relation, v);
        return !Keeps(txn, v);
      });
      return change.truncated.empty();
    }
    if (!change.relation) return false;  // a logical message
    const Verdict& v = VerdictFor(change.relation);
    note_unpublished(change.relation, v);
    return !Keeps(txn, v);
  });
  return "";
}

std::vector<std::string> StreamFilter::TakeUnpublished() {
  std::vector<std::string> out;
  out.swap(unpublished_);
  return out;
}

}  // namespace sluice::control
