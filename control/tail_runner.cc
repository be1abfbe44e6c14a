#include "control/tail_runner.h"

#include <spdlog/spdlog.h>

#include "capture/logical_capture.h"
#include "control/capture_setup.h"
#include "control/change_json.h"
#include "core/pg_time.h"
#include "state/checkpoint_store.h"

namespace sluice::control {
namespace {

using Clock = std::chrono::steady_clock;

// Owns the output and the position: prints, then makes output and checkpoint durable together.
class TailWriter {
 public:
  TailWriter(const TailOptions& options, state::CheckpointStore& store, std::string pipeline,
             capture::LogicalCapture& capture)
      : options_(options), store_(store), pipeline_(std::move(pipeline)), capture_(capture) {}

  core::Status Write(core::Transaction&& txn) {
    if (options_.format == "jsonl" && !txn.changes.empty()) {
      const TransactionJson rendered(txn);
      line_.clear();
      for (const core::Change& change : txn.changes) {
        rendered.AppendChange(line_, change);
        line_ += '\n';
      }
      if (std::fwrite(line_.data(), 1, line_.size(), options_.out) != line_.size()) {
        return core::Unavailable("cannot write the stream to the output");
      }
    }
    if (txn.last_fragment && txn.end_lsn.valid()) {
      pending_ = {txn.end_lsn, txn.commit_time};
      if (Clock::now() - last_checkpoint_ >= options_.checkpoint_interval) return Checkpoint();
    }
    return core::Status::Ok();
  }

  core::Status Checkpoint() {
    last_checkpoint_ = Clock::now();
    if (!pending_.durable_lsn.valid() || pending_.durable_lsn <= saved_) return core::Status::Ok();
    if (std::fflush(options_.out) != 0) {
      return core::Unavailable("cannot flush the stream to the output");
    }
    pending_.updated_at_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
    SLUICE_RETURN_IF_ERROR(store_.SaveCheckpoint(pipeline_, pending_));
    saved_ = pending_.durable_lsn;
    capture_.SetDurableLsn(saved_);
    return core::Status::Ok();
  }

 private:
  const TailOptions& options_;
  state::CheckpointStore& store_;
  const std::string pipeline_;
  capture::LogicalCapture& capture_;
  std::string line_;
  state::Checkpoint pending_;
  core::Lsn saved_;
  Clock::time_point last_checkpoint_ = Clock::now();
};

}  // namespace

core::Status RunTail(const config::Config& config, const TailOptions& options,
                     const std::atomic<bool>& stop) {
  if (options.format != "jsonl" && options.format != "none") {
    return core::InvalidArgument("unknown --format '" + options.format + "' (jsonl, none)");
  }
  SLUICE_ASSIGN_OR_RETURN(const config::PipelineConfig* pipeline,
                          FindPipeline(config, options.pipeline));
  SLUICE_ASSIGN_OR_RETURN(auto store, state::CheckpointStore::Open(config.state_dir));
  SLUICE_ASSIGN_OR_RETURN(auto checkpoint, store->LoadCheckpoint(pipeline->name));
  const core::Lsn resume_after = checkpoint ? checkpoint->durable_lsn : core::Lsn();

  SLUICE_ASSIGN_OR_RETURN(auto capture,
                          capture::LogicalCapture::Open(CaptureOptionsFor(config, *pipeline)));
  spdlog::info("pipeline {}: tailing from {}", pipeline->name,
               resume_after.valid() ? "checkpoint " + resume_after.ToString()
                                    : std::string("the slot's position"));

  TailWriter writer(options, *store, pipeline->name, *capture);
  core::Status run = capture->Run(
      resume_after, stop, [&](core::Transaction&& txn) { return writer.Write(std::move(txn)); },
      [&] { return writer.Checkpoint(); }, options.end_lsn);
  // Whatever was printed before an error is still worth its checkpoint.
  core::Status saved = writer.Checkpoint();
  if (!run.ok()) return run;
  SLUICE_RETURN_IF_ERROR(saved);
  return capture->Finish();
}

}  // namespace sluice::control
