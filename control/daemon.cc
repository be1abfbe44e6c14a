#include "control/daemon.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "config/runnable.h"
#include "control/admin_server.h"
#include "control/config_reload.h"
#include "control/cpu_priority.h"
#include "control/pipeline_runner.h"
#include "control/pipeline_status.h"
#include "control/sink_factory.h"
#include "control/systemd_notifier.h"
#include "core/thread_name.h"
#include "core/wall_clock.h"
#include "state/checkpoint_store.h"

namespace sluice::control {
namespace {

void LogProgress(const PipelineRunner& runner) {
  const PipelineMetrics& m = runner.metrics();
  const core::Lsn durable(m.durable_lsn.load());
  const core::Lsn source(m.source_wal_end.load());
  const uint64_t lag = source > durable ? source.value() - durable.value() : 0;
  spdlog::info("pipeline {}: {} durable {} source {} lag {} bytes, {} transactions applied",
               runner.pipeline().name, PipelinePhaseName(m.phase.load()), durable.ToString(),
               source.ToString(), lag, m.transactions_applied.load());
}

}  // namespace

namespace {

void LogNotifyFailure(const core::Status& status) {
  if (!status.ok()) spdlog::warn("systemd notify: {}", status.message());
}

// SIGHUP: apply log settings and batching limits, refuse the rest by key.
void Reload(const config::Config& running, const ReloadHooks& hooks,
            std::vector<std::unique_ptr<PipelineRunner>>& runners) {
  auto fresh = hooks.load_config();
  if (!fresh.ok()) {
    spdlog::error("reload: the config no longer loads; keeping the running one: {}",
                  fresh.status().message());
    return;
  }
  const ReloadPlan plan = PlanReload(running, *fresh);
  if (!plan.log_level.empty() || !plan.log_format.empty()) {
    core::Status st = hooks.apply_logging(fresh->log.level, fresh->log.format);
    if (st.ok()) {
      spdlog::info("reload: log level {}, format {}", fresh->log.level, fresh->log.format);
    } else {
      spdlog::error("reload: {}", st.message());
    }
  }
  for (const auto& [name, limits] : plan.apply_limits) {
    for (auto& runner : runners) {
      if (runner->pipeline().name != name) continue;
      runner->SetApplyLimits(limits);
      spdlog::info("reload: pipeline {} batches now at most {} transactions, {} bytes, {} ms", name,
                   limits.batch_max_transactions, limits.batch_max_bytes,
                   limits.batch_max_delay.count());
    }
  }
  for (const auto& [name, tables] : plan.tables) {
    for (auto& runner : runners) {
      if (runner->pipeline().name != name) continue;
      std::string list;
      for (const auto& table : tables) list += (list.empty() ? "" : ", ") + table;
      spdlog::info("reload: pipeline {} tables now {}: new tables are copied, then streamed", name,
                   list);
      runner->SetTables(tables);
    }
  }
  for (const auto& key : plan.refused) {
    spdlog::warn("reload: {} changed but cannot change while running; restart sluice to apply it",
                 key);
  }
  if (plan.log_level.empty() && plan.log_format.empty() && plan.apply_limits.empty() &&
      plan.tables.empty() && plan.refused.empty()) {
    spdlog::info("reload: no change");
  }
}

}  // namespace

core::Status RunDaemon(const config::Config& config, const std::atomic<bool>& stop,
                       const ReloadHooks& hooks) {
  // The one decision `sluice check` also reports, before anything is opened or started.
  SLUICE_RETURN_IF_ERROR(config::CheckRunnable(config));
  // Before any thread starts, so that every one inherits it.
  if (core::Status st = SetProcessNice(config.nice); !st.ok()) {
    spdlog::warn("{}; running at the inherited priority", st.message());
  }
  SLUICE_ASSIGN_OR_RETURN(auto store, state::CheckpointStore::Open(config.state_dir));
  std::vector<std::unique_ptr<PipelineRunner>> runners;
  for (const auto& pipeline : config.pipelines) {
    if (!config::RunStartsPipeline(pipeline)) {
      spdlog::info("pipeline {} has no target; skipped by run (see `sluice tail`)", pipeline.name);
      continue;
    }
    runners.push_back(std::make_unique<PipelineRunner>(config, pipeline, *store,
                                                       [&pipeline] { return MakeSink(pipeline); }));
  }
  // Status, metrics and health over HTTP for `sluice status`, Prometheus and load balancers.
  std::vector<StatusCollector::PipelineEntry> live;
  live.reserve(runners.size());
  for (const auto& runner : runners) live.push_back({&runner->pipeline(), &runner->metrics()});
  StatusCollector collector(config, live, store.get());
  AdminServer admin(collector);
  if (core::Status st = admin.Start(config.admin.listen); !st.ok()) {
    spdlog::warn(
        "admin endpoint not available ({}); `sluice status` will answer from the "
        "state directory",
        st.message());
  } else {
    spdlog::info("admin endpoint on {} (/status, /metrics, /healthz)", config.admin.listen);
  }

  std::mutex mu;  // guards first_error
  core::Status first_error;
  std::atomic<size_t> running{runners.size()};
  std::vector<std::thread> threads;
  threads.reserve(runners.size());
  for (auto& runner : runners) {
    threads.emplace_back([&, r = runner.get()] {
      core::NameCurrentThread("apply", r->pipeline().name);
      core::Status status = r->Run(stop);
      if (!status.ok()) {
        spdlog::error("{}", status.message());
        std::lock_guard lock(mu);
        if (first_error.ok()) first_error = status;
      }
      running.fetch_sub(1);
    });
  }
  // systemd: READY=1 once every pipeline copies or streams, WATCHDOG=1 only while they make
  // progress (a stuck pipeline stops the pings and systemd restarts us), STATUS= kept current.
  const SystemdNotifier notifier;
  auto watchdog = notifier.WatchdogInterval();
  if (!watchdog.ok()) spdlog::warn("systemd watchdog: {}", watchdog.status().message());
  const auto watchdog_interval = watchdog.ok() ? *watchdog : std::chrono::microseconds(0);
  const auto tick =
      watchdog_interval.count() > 0
          ? std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_interval / 2)
          : std::chrono::milliseconds(1000);
  // Apply may wait on target locks for a while. And an idle pipeline moves only when its
  // source speaks: about every half receive timeout (or status interval), when sluice asks.
  int64_t stall_ms = int64_t{5} * 60 * 1000;
  for (const auto& runner : runners) {
    const config::SourceConfig& source = runner->pipeline().source;
    const auto quiet =
        source.receive_timeout.count() > 0 ? source.receive_timeout / 2 : source.status_interval;
    stall_ms = std::max<int64_t>(stall_ms, 4 * quiet.count());
  }
  ProgressTracker tracker;
  bool ready_sent = false;
  bool stopping_sent = false;
  auto next_tick = std::chrono::steady_clock::now();
  auto next_status = next_tick;
  auto next_log = std::chrono::steady_clock::now();
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (stop.load() && !stopping_sent) {
      LogNotifyFailure(notifier.Stopping());
      stopping_sent = true;
    }
    if (hooks.reload != nullptr && hooks.reload->exchange(false) && hooks.load_config) {
      LogNotifyFailure(notifier.Reloading());
      Reload(config, hooks, runners);
      ready_sent = false;  // READY=1 again completes the reload for systemd
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_tick && !stopping_sent) {
      next_tick = now + tick;
      std::vector<PipelineHealth> health;
      health.reserve(runners.size());
      for (const auto& runner : runners) {
        health.push_back(
            tracker.Observe(runner->pipeline().name, runner->metrics(), core::UnixMillisNow()));
      }
      if (!ready_sent && AllReady(health)) {
        LogNotifyFailure(notifier.Ready(StatusLine(health)));
        ready_sent = true;
        next_status = now + std::chrono::seconds(5);
      } else if (now >= next_status) {
        LogNotifyFailure(notifier.Status(StatusLine(health)));
        next_status = now + std::chrono::seconds(5);
      }
      if (watchdog_interval.count() > 0 &&
          MakingProgress(health, core::UnixMillisNow(), stall_ms)) {
        LogNotifyFailure(notifier.Watchdog());
      }
    }
    if (now >= next_log) {
      for (const auto& runner : runners) LogProgress(*runner);
      next_log += std::chrono::seconds(10);
    }
  }
  for (auto& t : threads) t.join();
  admin.Stop();
  return first_error;
}

}  // namespace sluice::control
