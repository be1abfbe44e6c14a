#include "apply/change_context.h"

namespace sluice::apply {

std::string ChangeContext::Target() const {
  return relation != nullptr ? relation->QualifiedName() : tables;
}

std::string ChangeContext::Where() const {
  if (row_count > 1) {
    return "at source LSNs " + lsn.ToString() + ".." + last_lsn.ToString() + " for keys " + key +
           ".." + last_key;
  }
  std::string where = "at source LSN " + lsn.ToString();
  if (!key.empty()) where += " for key " + key;
  return where;
}

std::string ChangeContext::Failure(Step step) const {
  const std::string op_name = core::OperationName(op);
  if (step == Step::kCopy) {
    return "COPY of " + std::to_string(row_count) + " " + op_name + "s into " + Target() +
           " at source LSNs " + lsn.ToString() + ".." + last_lsn.ToString();
  }
  if (op == core::Operation::kTruncate) {
    return "apply of truncate of " + Target() + " failed " + Where();
  }
  const bool preparing = step == Step::kPrepare;
  if (row_count > 1) {
    return "apply to " + Target() + " failed in " + (preparing ? "preparing " : "") +
           "a statement of " + std::to_string(row_count) + " " + op_name + "s " + Where();
  }
  return "apply to " + Target() + " failed " + Where() +
         (preparing ? " (preparing the " + op_name + " statement)" : "");
}

std::string ChangeContext::InTransaction() const {
  if (!commit_lsn.valid()) return "";
  return "; in source transaction " + std::to_string(xid) + ", committed at " +
         commit_lsn.ToString();
}

std::string ChangeContext::Message(Step step, const std::string& server_text) const {
  return Failure(step) + ": " + server_text + InTransaction();
}

}  // namespace sluice::apply
