#pragma once

// A Sink that keeps what it is given in memory, for unit tests of what drives one (header
// only; production code never includes this).

#include <optional>
#include <vector>

#include "apply/sink.h"

namespace sluice::apply::testing {

class FakeSink final : public Sink {
 public:
  // A committed batch: its fragments in the order applied, and its position.
  struct Batch {
    std::vector<core::Transaction> fragments;
    AppliedPosition position;
  };

  // CommitBatch number `n` (from 1) fails with `status`; the batch is not committed.
  void FailCommit(size_t n, core::Status status) {
    fail_commit_at_ = n;
    fail_status_ = std::move(status);
  }

  core::Result<AppliedPosition> Open() override { return applied_; }
  core::Status BeginBatch() override {
    open_ = Batch{};
    return core::Status::Ok();
  }
  core::Status Apply(const core::Transaction& fragment) override {
    if (!open_) return core::Internal("Apply outside a batch");
    open_->fragments.push_back(fragment);
    return core::Status::Ok();
  }
  core::Status CommitBatch(const AppliedPosition& position) override {
    if (!open_) return core::Internal("CommitBatch outside a batch");
    if (++commits_ == fail_commit_at_) {
      open_.reset();
      return fail_status_;
    }
    open_->position = position;
    committed_.push_back(std::move(*open_));
    open_.reset();
    applied_ = position;
    return core::Status::Ok();
  }
  void AbortBatch() override {
    if (open_) ++aborted_;
    open_.reset();
  }
  core::Status ForgetPosition() override {
    applied_ = {};
    return core::Status::Ok();
  }

  const std::vector<Batch>& committed() const { return committed_; }
  const AppliedPosition& applied() const { return applied_; }
  size_t aborted() const { return aborted_; }

 private:
  std::optional<Batch> open_;
  std::vector<Batch> committed_;
  AppliedPosition applied_;
  size_t commits_ = 0;
  size_t fail_commit_at_ = 0;
  core::Status fail_status_;
  size_t aborted_ = 0;
};

}  // namespace sluice::apply::testing
