#include "control/tail_runner.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "apply/json_lines_sink.h"
#include "capture/logical_capture.h"
#include "control/apply_loop.h"
#include "control/capture_setup.h"
#include "control/capture_stream.h"
#include "control/durable_watermark.h"
#include "core/pg_time.h"
#include "state/checkpoint_store.h"

namespace sluice::control {
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
    // Printed as `run` would apply it, and nothing confirmed: not a durability sequence.
    apply::JsonLinesSink printer(options.out, options.format == "jsonl");
    core::Status run = capture->Run(
        resume_after, stop,
        [&](core::Transaction&& txn) {
          // As the own pipeline's loop: only what committed before the end position.
          if (options.end_lsn.valid() && txn.commit_lsn >= options.end_lsn) {
            return core::Status::Ok();
          }
          return printer.Apply(txn);
        },
        [&] { return printer.StreamPaused(); }, options.end_lsn);
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

  // The output is this pipeline's target: the same durability sequence as `run` (print and
  // flush, then checkpoint, then confirm to the source), with a batch per checkpoint interval.
  apply::JsonLinesSink sink(options.out, options.format == "jsonl");
  ApplyLoopOptions loop_options;
  loop_options.pipeline = pipeline->name;
  loop_options.limits = [&options] {
    config::ApplyConfig limits;
    limits.batch_max_transactions = SIZE_MAX;
    limits.batch_max_bytes = UINT64_MAX;
    limits.batch_max_delay = options.checkpoint_interval;
    return limits;
  };
  PipelineMetrics metrics;
  DurableWatermark durable;
  CaptureStream stream(*capture, pipeline->name, pipeline->capture.queue_capacity,
                       pipeline->capture.queue_bytes());
  ApplyLoop loop(std::move(loop_options), stream, sink, *store, metrics, durable);
  return loop.Run(resume_after, options.end_lsn, stop);
}

}  // namespace sluice::control
