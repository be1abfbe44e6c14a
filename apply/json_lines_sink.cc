#include "apply/json_lines_sink.h"

#include "codec/change_json.h"

namespace sluice::apply {

core::Status JsonLinesSink::Apply(const core::Transaction& fragment) {
  if (!print_ || fragment.changes.empty()) return core::Status::Ok();
  const codec::TransactionJson rendered(fragment);
  line_.clear();
  for (const core::Change& change : fragment.changes) {
    rendered.AppendChange(line_, change);
    line_ += '\n';
  }
  if (std::fwrite(line_.data(), 1, line_.size(), out_) != line_.size()) {
    return core::Unavailable("cannot write the stream to the output");
  }
  return core::Status::Ok();
}

core::Status JsonLinesSink::CommitBatch(const AppliedPosition& position) {
  (void)position;  // the pipeline's checkpoint keeps it
  return Flush();
}

core::Status JsonLinesSink::Flush() {
  if (std::fflush(out_) != 0) return core::Unavailable("cannot flush the stream to the output");
  return core::Status::Ok();
}

}  // namespace sluice::apply
