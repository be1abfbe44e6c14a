// sluice: the command-line front end. Thin by design: parse arguments, load the config, call
// into control/, map the result to a sysexits code.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "cli/exit_codes.h"
#include "cli/logging.h"
#include "cli/stop_signals.h"
#include "config/config_loader.h"
#include "control/check_runner.h"
#include "control/daemon.h"
#include "control/snapshot_command.h"
#include "control/status_command.h"
#include "control/tail_runner.h"
#include "core/failpoint.h"

namespace sluice::cli {
namespace {

// Logs a failure once, where the context is richest, and turns it into an exit code.
int Fail(const core::Status& status) {
  if (status.ok() || status.code() == core::StatusCode::kAborted) return kExitOk;
  spdlog::error("{}", status.message());
  std::fflush(stderr);
  return ExitCodeFor(status);
}

core::Result<config::Config> LoadConfigAndLogging(const std::string& path) {
  SLUICE_ASSIGN_OR_RETURN(config::Config config, config::LoadConfigFile(path));
  SLUICE_RETURN_IF_ERROR(SetUpLogging(config.log.level, config.log.format));
  return config;
}

int RunTailCommand(const std::string& config_path, control::TailOptions options,
                   const std::string& end_lsn_text) {
  auto config = LoadConfigAndLogging(config_path);
  if (!config.ok()) return Fail(config.status());
  if (!end_lsn_text.empty()) {
    auto end_lsn = core::Lsn::Parse(end_lsn_text);
    if (!end_lsn.ok())
      return Fail(core::InvalidArgument("--endpos: " + end_lsn.status().message()));
    options.end_lsn = *end_lsn;
  }
  const std::atomic<bool>& stop = InstallStopSignals();
  return Fail(control::RunTail(*config, options, stop));
}

int RunDaemonCommand(const std::string& config_path) {
  auto config = LoadConfigAndLogging(config_path);
  if (!config.ok()) return Fail(config.status());
  const std::atomic<bool>& stop = InstallStopSignals();
  control::ReloadHooks hooks;
  hooks.reload = &InstallReloadSignal();
  hooks.load_config = [config_path] { return config::LoadConfigFile(config_path); };
  hooks.apply_logging = SetUpLogging;
  spdlog::info("sluice run: {} pipeline(s) from {}", config->pipelines.size(), config_path);
  core::Status status = control::RunDaemon(*config, stop, hooks);
  if (status.ok()) spdlog::info("sluice run: stopped cleanly");
  return Fail(status);
}

int RunCheckCommand(const std::string& config_path) {
  auto config = LoadConfigAndLogging(config_path);
  if (!config.ok()) return Fail(config.status());
  return Fail(control::RunCheck(*config, stdout));
}

int RunSnapshotCommand(const std::string& config_path, const control::SnapshotOptions& options) {
  auto config = LoadConfigAndLogging(config_path);
  if (!config.ok()) return Fail(config.status());
  const std::atomic<bool>& stop = InstallStopSignals();
  core::Status status = control::RunSnapshot(*config, options, stop, stdout);
  if (status.code() == core::StatusCode::kAborted) {
    // Interrupted: not done, and not an error either; running it again finishes it.
    spdlog::warn("{}; run sluice snapshot again to finish it", status.message());
    return kExitUnavailable;
  }
  return Fail(status);
}

int RunStatus(const std::string& config_path, bool json, bool watch) {
  auto config = config::LoadConfigFile(config_path);
  if (!config.ok()) return Fail(config.status());
  return control::RunStatusCommand(*config, json, watch, stdout);
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{
      "sluice: change-data-capture replication for reversible, zero-downtime "
      "PostgreSQL migrations"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sluice 0.1.0");
  (void)SetUpLogging("info", "text");

  std::string config_path;
  bool status_json = false;
  bool status_watch = false;
  CLI::App* status = app.add_subcommand(
      "status", "Every pipeline's phase, positions, lag, rates, copy progress and last error");
  status->add_option("-c,--config", config_path, "configuration file")->required();
  status->add_flag("--json", status_json, "print JSON (as served on /status)");
  status->add_flag("--watch", status_watch, "refresh every 2 seconds");
  CLI::App* check = app.add_subcommand(
      "check", "Check config, servers, privileges, slots and tables; print what run would do");
  check->add_option("-c,--config", config_path, "configuration file")->required();
  CLI::App* run = app.add_subcommand(
      "run", "Run every pipeline of the config: initial copy, then stream and apply (daemon)");
  run->add_option("-c,--config", config_path, "configuration file")->required();

  control::SnapshotOptions snapshot_options;
  CLI::App* snapshot = app.add_subcommand(
      "snapshot",
      "Copy tables again at a new consistent point (daemon stopped): every table from a new "
      "slot, or --tables only, while the rest stream on without a gap");
  snapshot->add_option("-c,--config", config_path, "configuration file")->required();
  snapshot->add_option("-p,--pipeline", snapshot_options.pipeline,
                       "pipeline to copy; default: the only one");
  snapshot
      ->add_option("-t,--tables", snapshot_options.tables,
                   "only these tables (schema.table); they are emptied on the target first")
      ->expected(1, -1);

  control::TailOptions tail_options;
  std::string end_lsn_text;
  CLI::App* tail = app.add_subcommand(
      "tail",
      "Print the decoded, ordered stream of committed changes (JSON lines). On a pipeline with "
      "a target it confirms and checkpoints nothing: it reads the slot from where run goes on, "
      "or a temporary slot from now on while run streams");
  tail->add_option("-c,--config", config_path, "configuration file")->required();
  tail->add_option("-p,--pipeline", tail_options.pipeline,
                   "pipeline to tail (resumes after its checkpoint); default: the only one");
  tail->add_option("--format", tail_options.format, "jsonl (default) or none (count only)");
  tail->add_option("--endpos", end_lsn_text,
                   "print what committed before this LSN (X/Y), then stop");
  int checkpoint_ms = 1000;
  tail->add_option("--checkpoint-interval-ms", checkpoint_ms,
                   "how often to checkpoint what was printed (default 1000)")
      ->check(CLI::Range(1, 3600000));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  // Crash tests name the point to die at (core/failpoint.h); a typo must not pass unnoticed.
  if (core::Status armed = core::ArmFailpointsFromEnvironment(); !armed.ok()) {
    spdlog::error("{}", armed.message());
    return kExitUsage;
  }
  if (run->parsed()) return RunDaemonCommand(config_path);
  if (check->parsed()) return RunCheckCommand(config_path);
  if (status->parsed()) return RunStatus(config_path, status_json, status_watch);
  if (snapshot->parsed()) return RunSnapshotCommand(config_path, snapshot_options);
  if (tail->parsed()) {
    tail_options.checkpoint_interval = std::chrono::milliseconds(checkpoint_ms);
    return RunTailCommand(config_path, tail_options, end_lsn_text);
  }
  return kExitUsage;
}

}  // namespace sluice::cli

// Errors travel as Status values; an exception that reaches here is a bug, and std::terminate
// (its message, the core dump) keeps where it came from better than a catch could.
int main(int argc, char** argv) {  // NOLINT(bugprone-exception-escape)
  return sluice::cli::Main(argc, argv);
}
