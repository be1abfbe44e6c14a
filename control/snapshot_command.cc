#include "control/snapshot_command.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "capture/publication_manager.h"
#include "control/capture_setup.h"
#include "control/pipeline_runner.h"
#include "control/pipeline_state.h"
#include "control/sink_factory.h"
#include "pg/table_pattern.h"
#include "state/checkpoint_store.h"

namespace sluice::control {

core::Status RunSnapshot(const config::Config& config, const SnapshotOptions& options,
                         const std::atomic<bool>& stop, std::FILE* out) {
  SLUICE_ASSIGN_OR_RETURN(const config::PipelineConfig* pipeline,
                          FindPipeline(config, options.pipeline));
  const std::string where = "pipeline " + pipeline->name;
  if (pipeline->target.type == config::TargetType::kNone) {
    return core::InvalidArgument(where + " has no target: there is nothing to copy into");
  }
  if (pipeline->snapshot != "initial") {
    return core::InvalidArgument(where + " has snapshot: " + pipeline->snapshot +
                                 "; sluice snapshot copies tables, which needs snapshot: initial");
  }
  state::SnapshotRequest request;
  for (const std::string& text : options.tables) {
    SLUICE_ASSIGN_OR_RETURN(pg::TablePattern pattern, pg::ParseTablePattern(text));
    if (pattern.all_tables) {
      return core::InvalidArgument("--tables " + text + ": name tables, not a schema");
    }
    const std::string table = pattern.schema + "." + pattern.table;
    if (std::find(request.tables.begin(), request.tables.end(), table) == request.tables.end()) {
      request.tables.push_back(table);
    }
  }

  if (!request.all()) {
    // Checked before anything is recorded: a request is kept until it is done.
    SLUICE_ASSIGN_OR_RETURN(auto source,
                            pg::Connection::Connect(pipeline->source.dsn,
                                                    {.timeout = pipeline->source.connect_timeout}));
    capture::PublicationManager publications(*source);
    std::set<std::string> known;
    auto published = publications.PublishedTables(pipeline->source.publication);
    if (published.ok()) {
      for (const auto& table : *published) known.insert(table.schema + "." + table.name);
    } else if (published.status().code() != core::StatusCode::kNotFound) {
      return published.status().WithContext(where);
    }
    if (pipeline->source.create_publication) {
      SLUICE_ASSIGN_OR_RETURN(auto named, publications.ResolveTables(pipeline->source.tables));
      for (const auto& table : named) known.insert(table.schema + "." + table.name);
    }
    for (const std::string& table : request.tables) {
      if (!known.contains(table)) {
        std::string tables;
        for (const std::string& name : known) tables += (tables.empty() ? "" : ", ") + name;
        return core::InvalidArgument(where + ": --tables " + table +
                                     " is not one of the pipeline's tables (" + tables + ")");
      }
    }
  }

  auto store = state::CheckpointStore::Open(config.state_dir);
  if (!store.ok()) {
    return store.status().WithContext(
        where +
        ": sluice snapshot works with the daemon stopped (systemctl stop sluice; "
        "sluice snapshot ...; systemctl start sluice)");
  }
  PipelineState state(**store, pipeline->name);
  // An unfinished request can only grow: an interrupted "every table" stays that.
  SLUICE_ASSIGN_OR_RETURN(std::optional<state::SnapshotRequest> pending, state.LoadRequest());
  if (pending) {
    if (pending->all() || request.all()) {
      request.tables.clear();
    } else {
      for (const std::string& table : pending->tables) {
        if (std::find(request.tables.begin(), request.tables.end(), table) ==
            request.tables.end()) {
          request.tables.push_back(table);
        }
      }
    }
    spdlog::info("{}: finishing an earlier, interrupted sluice snapshot", where);
  }
  SLUICE_RETURN_IF_ERROR(state.SaveRequest(request));

  std::string list;
  for (const std::string& table : request.tables) list += (list.empty() ? "" : ", ") + table;
  std::fprintf(out, "pipeline %s: copying %s\n", pipeline->name.c_str(),
               request.all() ? "every table from a new slot" : list.c_str());
  std::fflush(out);

  PipelineRunner runner(config, *pipeline, **store, [pipeline] { return MakeSink(*pipeline); });
  SLUICE_RETURN_IF_ERROR(runner.Prepare(stop));

  const PipelineMetrics& metrics = runner.metrics();
  SLUICE_ASSIGN_OR_RETURN(auto checkpoint, (*store)->LoadCheckpoint(pipeline->name));
  std::fprintf(out,
               "pipeline %s: copied %llu rows into %llu tables; `sluice run` streams on from %s\n",
               pipeline->name.c_str(), static_cast<unsigned long long>(metrics.copy_rows.load()),
               static_cast<unsigned long long>(metrics.copy_tables_done.load()),
               checkpoint ? checkpoint->durable_lsn.ToString().c_str() : "the slot's position");
  return core::Status::Ok();
}

}  // namespace sluice::control
