#include "control/tail_runner.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "capture/logical_capture.h"
#include "codec/change_json.h"
#include "control/capture_setup.h"
#include "core/pg_time.h"
#include "state/checkpoint_store.h"

namespace sluice::control {
namespace {

using Clock = std::chrono::steady_clock;

// Prints a transaction's changes as JSON lines (or nothing, for --format none).
class TransactionPrinter {
 public:
  explicit TransactionPrinter(const TailOptions& options) : options_(options) {}

  core::Status Print(const core::Transaction& txn) const {
    if (options_.format != "jsonl" || txn.changes.empty()) return core::Status::Ok();
    const codec::TransactionJson rendered(txn);
    line_.clear();
    for (const core::Change& change : txn.changes) {
      rendered.AppendChange(line_, change);
      line_ += '\n';
    }
    if (std::fwrite(line_.data(), 1, line_.size(), options_.out) != line_.size()) {
      return core::Unavailable("cannot write the stream to the output");
    }
    return core::Status::Ok();
  }

 private:
  const TailOptions& options_;
  mutable std::string line_;
};

// Owns the output and the position: prints, then makes output and checkpoint durable together.
class TailWriter {
 public:
  TailWriter(const TailOptions& options, state::CheckpointStore& store, std::string pipeline,
             capture::LogicalCapture& capture)
      : options_(options),
        printer_(options),
        store_(store),
        pipeline_(std::move(pipeline)),
        capture_(capture) {}

  core::Status Write(core::Transaction&& txn) {
    SLUICE_RETURN_IF_ERROR(printer_.Print(txn));
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
  const TransactionPrinter printer_;
  state::CheckpointStore& store_;
  const std::string pipeline_;
  capture::LogicalCapture& capture_;
  state::Checkpoint pending_;
  core::Lsn saved_;
  Clock::time_point last_checkpoint_ = Clock::now();
};

}  // namespace

namespace {

// A pipeline with a target belongs to `sluice run`: tail reads its stream without confirming
// anything to the slot and without touching its checkpoint, so it cannot move a position run
// depends on. It shows what run would apply next (from the slot, skipping what the checkpoint
// says is applied); while run streams from the slot, or before run ever made it, it reads a
// temporary slot of its own instead, from now on.
core::Result<std::unique_ptr<capture::LogicalCapture>> OpenReadOnly(
    const config::Config& config, const config::PipelineConfig& pipeline, core::Lsn* resume_after) {
  const std::string where = "pipeline " + pipeline.name;
  capture::CaptureOptions options = CaptureOptionsFor(config, pipeline);
  options.read_only = true;
  bool has_position = false;
  auto store = state::CheckpointStore::Open(config.state_dir, /*read_only=*/true);
  if (store.ok()) {
    SLUICE_ASSIGN_OR_RETURN(auto checkpoint, (*store)->LoadCheckpoint(pipeline.name));
    if (checkpoint) {
      has_position = true;
      *resume_after = checkpoint->durable_lsn;
    }
  } else if (store.status().code() != core::StatusCode::kNotFound) {
    return store.status();
  }
  if (has_position) {
    options.slot_policy.may_create = false;
    options.slot_policy.durable_lsn = *resume_after;
    options.slot_policy.remedy =
        "`sluice run` refuses it too; to copy the tables again from a new slot, run: sluice "
        "snapshot --config " +
        config.source_file + " --pipeline " + pipeline.name;
    auto capture = capture::LogicalCapture::Open(options);
    if (capture.ok() || capture.status().code() != core::StatusCode::kUnavailable) {
      if (capture.ok()) {
        spdlog::info("{}: reading slot {} without confirming anything (it is run's)", where,
                     options.slot);
      }
      return capture;
    }
    spdlog::info("{}: {}", where, capture.status().message());
  }
  options.temporary_slot = options.slot.substr(0, 50) + "_tail_" + std::to_string(::getpid());
  *resume_after = core::Lsn();
  spdlog::info("{}: reading a temporary slot of its own ({}): changes from now on", where,
               options.temporary_slot);
  return capture::LogicalCapture::Open(options);
}

}  // namespace

core::Status RunTail(const config::Config& config, const TailOptions& options,
                     const std::atomic<bool>& stop) {
  if (options.format != "jsonl" && options.format != "none") {
    return core::InvalidArgument("unknown --format '" + options.format + "' (jsonl, none)");
  }
  SLUICE_ASSIGN_OR_RETURN(const config::PipelineConfig* pipeline,
                          FindPipeline(config, options.pipeline));
  if (pipeline->target.type != config::TargetType::kNone) {
    core::Lsn resume_after;
    SLUICE_ASSIGN_OR_RETURN(auto capture, OpenReadOnly(config, *pipeline, &resume_after));
    const TransactionPrinter printer(options);
    // Output is flushed whenever the source pauses, so a reader sees each change promptly.
    core::Status run = capture->Run(
        resume_after, stop, [&](core::Transaction&& txn) { return printer.Print(txn); },
        [&] {
          return std::fflush(options.out) == 0
                     ? core::Status::Ok()
                     : core::Unavailable("cannot flush the stream to the output");
        },
        options.end_lsn);
    if (std::fflush(options.out) != 0 && run.ok()) {
      run = core::Unavailable("cannot flush the stream to the output");
    }
    SLUICE_RETURN_IF_ERROR(run);
    return capture->Finish();
  }

  SLUICE_ASSIGN_OR_RETURN(auto store, state::CheckpointStore::Open(config.state_dir));
  SLUICE_ASSIGN_OR_RETURN(auto checkpoint, store->LoadCheckpoint(pipeline->name));
  const core::Lsn resume_after = checkpoint ? checkpoint->durable_lsn : core::Lsn();

  capture::CaptureOptions capture_options = CaptureOptionsFor(config, *pipeline);
  if (checkpoint) {
    // Tail is this pipeline's consumer: once it has a position, a lost slot is refused as run
    // refuses one.
    capture_options.slot_policy.may_create = false;
    capture_options.slot_policy.durable_lsn = resume_after;
    capture_options.slot_policy.remedy =
        "to start over from a new slot, drop this pipeline's state (its checkpoint in " +
        config.state_dir + ") or give it another slot";
  }
  SLUICE_ASSIGN_OR_RETURN(auto capture, capture::LogicalCapture::Open(capture_options));
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
