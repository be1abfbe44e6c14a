#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/pg_cluster.h"
#include "tests/support/sluice_process.h"

namespace sluice::testing {

// A capture-only sluice configuration for one pipeline over `cluster`, written to a file in
// `dir`, with its state directory beside it. `extra_pipeline_yaml` is appended to the
// pipeline's mapping (indented by the caller with 4 spaces), `extra_source_yaml` to its source
// mapping (6 spaces).
struct TailConfig {
  std::string path;
  std::string state_dir;
};
TailConfig WriteTailConfig(const TempDir& dir, const PgCluster& cluster,
                           const std::vector<std::string>& tables,
                           const std::string& extra_pipeline_yaml = "",
                           const std::string& pipeline = "cap",
                           const std::string& extra_source_yaml = "");

// A full pipeline (source -> PostgreSQL target) config, written to `dir`/<pipeline>.yaml.
// `extra_yaml` is appended to the pipeline mapping (4-space indent).
TailConfig WritePipelineConfig(const TempDir& dir, const PgCluster& source, const PgCluster& target,
                               const std::vector<std::string>& tables,
                               const std::string& extra_yaml = "",
                               const std::string& pipeline = "pipe");

// Parses JSON lines; a line that is not JSON fails the calling test.
std::vector<nlohmann::json> ParseJsonLines(const std::string& text);

// The source's current WAL insert position, as text.
std::string CurrentWalLsn(const PgCluster& cluster);

// Runs `sluice tail --config <path> --endpos <current LSN>` and returns the parsed lines;
// fails the test (with stderr) on a non-zero exit.
std::vector<nlohmann::json> TailUntilNow(const PgCluster& cluster, const TailConfig& config);

}  // namespace sluice::testing
