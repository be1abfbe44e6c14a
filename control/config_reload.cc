#include "control/config_reload.h"

namespace sluice::control {
namespace {

bool SameBatching(const config::ApplyConfig& a, const config::ApplyConfig& b) {
  return a.batch_max_transactions == b.batch_max_transactions &&
         a.batch_max_bytes == b.batch_max_bytes && a.batch_max_delay == b.batch_max_delay;
}

// Every field of a pipeline that a restart would be needed for, with its key path.
void CompareFixed(const config::PipelineConfig& a, const config::PipelineConfig& b,
                  const std::string& at, std::vector<std::string>* refused) {
  auto check = [&](bool same, const char* key) {
    if (!same) refused->push_back(at + "." + key);
  };
  check(a.source.dsn == b.source.dsn, "source.dsn");
  check(a.source.slot == b.source.slot, "source.slot");
  check(a.source.publication == b.source.publication, "source.publication");
  check(a.source.create_publication == b.source.create_publication, "source.create_publication");
  check(a.source.adopt_slot == b.source.adopt_slot, "source.adopt_slot");
  check(a.source.protocol_version == b.source.protocol_version, "source.protocol_version");
  check(a.source.streaming == b.source.streaming, "source.streaming");
  check(a.source.binary == b.source.binary, "source.binary");
  check(a.source.skip_origins == b.source.skip_origins, "source.skip_origins");
  check(a.source.status_interval == b.source.status_interval, "source.status_interval");
  check(a.source.connect_timeout == b.source.connect_timeout, "source.connect_timeout");
  check(a.target.type == b.target.type, "target.type");
  check(a.target.dsn == b.target.dsn, "target.dsn");
  check(a.target.apply.copy_jobs == b.target.apply.copy_jobs, "target.apply.copy_jobs");
  // The sink takes these when it is made (once per pipeline, kept across retries).
  check(a.target.postgres.create_tables == b.target.postgres.create_tables,
        "target.postgres.create_tables");
  check(a.target.postgres.session_replication_role == b.target.postgres.session_replication_role,
        "target.postgres.session_replication_role");
  check(a.target.postgres.compact == b.target.postgres.compact, "target.postgres.compact");
  check(a.target.postgres.flush_on_pause_bytes == b.target.postgres.flush_on_pause_bytes,
        "target.postgres.flush_on_pause");
  check(a.target.postgres.schema_changes == b.target.postgres.schema_changes,
        "target.postgres.schema_changes");
  check(a.snapshot == b.snapshot, "snapshot");
  check(a.capture.memory_limit_bytes == b.capture.memory_limit_bytes, "capture.memory_limit");
  check(a.capture.spill_dir == b.capture.spill_dir, "capture.spill_dir");
  check(a.capture.max_fragment_changes == b.capture.max_fragment_changes,
        "capture.max_fragment_changes");
  check(a.capture.max_fragment_bytes == b.capture.max_fragment_bytes, "capture.max_fragment_bytes");
  check(a.capture.queue_capacity == b.capture.queue_capacity, "capture.queue_capacity");
}

}  // namespace

ReloadPlan PlanReload(const config::Config& running, const config::Config& fresh) {
  ReloadPlan plan;
  if (running.log.level != fresh.log.level) plan.log_level = fresh.log.level;
  if (running.log.format != fresh.log.format) plan.log_format = fresh.log.format;
  if (running.state_dir != fresh.state_dir) plan.refused.push_back("state_dir");
  if (running.admin.listen != fresh.admin.listen) plan.refused.push_back("admin.listen");
  if (running.nice != fresh.nice) plan.refused.push_back("nice");

  std::map<std::string, const config::PipelineConfig*> fresh_by_name;
  for (const auto& p : fresh.pipelines) fresh_by_name[p.name] = &p;
  for (const auto& old_p : running.pipelines) {
    auto it = fresh_by_name.find(old_p.name);
    if (it == fresh_by_name.end()) {
      plan.refused.push_back("pipelines[" + old_p.name + "] (removed)");
      continue;
    }
    const auto& new_p = *it->second;
    CompareFixed(old_p, new_p, "pipelines[" + old_p.name + "]", &plan.refused);
    if (old_p.source.tables != new_p.source.tables) plan.tables[old_p.name] = new_p.source.tables;
    if (!SameBatching(old_p.target.apply, new_p.target.apply)) {
      plan.apply_limits[old_p.name] = new_p.target.apply;
    }
    fresh_by_name.erase(it);
  }
  for (const auto& [name, p] : fresh_by_name) {
    (void)p;
    plan.refused.push_back("pipelines[" + name + "] (added)");
  }
  if (running.migrations.size() != fresh.migrations.size()) plan.refused.push_back("migrations");
  return plan;
}

}  // namespace sluice::control
