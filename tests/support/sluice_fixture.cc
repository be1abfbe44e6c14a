#include "tests/support/sluice_fixture.h"

#include <gtest/gtest.h>

#include <sstream>

namespace sluice::testing {

TailConfig WriteTailConfig(const TempDir& dir, const PgCluster& cluster,
                           const std::vector<std::string>& tables,
                           const std::string& extra_pipeline_yaml, const std::string& pipeline,
                           const std::string& extra_source_yaml) {
  TailConfig config;
  config.path = dir.File(pipeline + ".yaml");
  config.state_dir = dir.File(pipeline + "-state");
  std::ostringstream yaml;
  yaml << "state_dir: " << nlohmann::json(config.state_dir).dump() << "\n"
       << "log: { level: info, format: text }\n"
       << "pipelines:\n"
       << "  - name: " << pipeline << "\n"
       << "    source:\n"
       << "      dsn: " << nlohmann::json(cluster.Dsn()).dump() << "\n"
       << "      tables: [";
  for (size_t i = 0; i < tables.size(); ++i) {
    yaml << (i ? ", " : "") << nlohmann::json(tables[i]).dump();
  }
  yaml << "]\n" << extra_source_yaml << extra_pipeline_yaml;
  WriteFile(config.path, yaml.str());
  return config;
}

TailConfig WritePipelineConfig(const TempDir& dir, const PgCluster& source, const PgCluster& target,
                               const std::vector<std::string>& tables,
                               const std::string& extra_yaml, const std::string& pipeline) {
  std::string target_yaml =
      "    target:\n      type: postgres\n      dsn: " + nlohmann::json(target.Dsn()).dump() + "\n";
  return WriteTailConfig(dir, source, tables, target_yaml + extra_yaml, pipeline);
}

std::vector<nlohmann::json> ParseJsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << line;
    if (!parsed.is_discarded()) lines.push_back(std::move(parsed));
  }
  return lines;
}

std::string CurrentWalLsn(const PgCluster& cluster) {
  auto lsn = cluster.QueryValue("SELECT pg_current_wal_lsn()::text");
  EXPECT_TRUE(lsn.ok()) << lsn.status().ToString();
  return lsn.ok() ? *lsn : "0/0";
}

std::vector<nlohmann::json> TailUntilNow(const PgCluster& cluster, const TailConfig& config) {
  const std::string end = CurrentWalLsn(cluster);
  SluiceRun run =
      RunSluice({"tail", "--config", config.path, "--endpos", end}, std::chrono::seconds(180));
  EXPECT_EQ(run.exit_code, 0) << "sluice tail failed:\n" << run.err;
  return ParseJsonLines(run.out);
}

}  // namespace sluice::testing
