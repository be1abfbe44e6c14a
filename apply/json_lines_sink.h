#pragma once

#include <cstdio>
#include <string>

#include "apply/sink.h"

namespace sluice::apply {

// A target that prints the stream: one JSON object per change on a line of its own
// (codec/change_json.h), or nothing at all (`print` false: a stream only consumed). The output
// keeps no position: Open() reports none, and the pipeline's checkpoint says where a restart
// resumes. CommitBatch flushes the output, so everything before a checkpoint is written out;
// lines printed after the last checkpoint may be printed again after a crash.
class JsonLinesSink final : public Sink {
 public:
  JsonLinesSink(std::FILE* out, bool print) : out_(out), print_(print) {}

  core::Result<AppliedPosition> Open() override { return AppliedPosition{}; }
  core::Status BeginBatch() override { return core::Status::Ok(); }
  core::Status Apply(const core::Transaction& fragment) override;
  core::Status CommitBatch(const AppliedPosition& position) override;
  // A reader sees each change as soon as the source pauses.
  core::Status StreamPaused() override { return Flush(); }
  void AbortBatch() override {}
  core::Status ForgetPosition() override { return core::Status::Ok(); }

 private:
  core::Status Flush();

  std::FILE* out_;
  const bool print_;
  std::string line_;
};

}  // namespace sluice::apply
