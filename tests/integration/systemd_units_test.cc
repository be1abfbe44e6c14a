// The shipped systemd units and example configuration: `systemd-analyze verify` accepts both
// units (the template as an instance), they keep the contract the daemon relies on
// (Type=notify, watchdog, state directory, hardening), and the example config loads.
// systemd-analyze works offline; no running systemd is needed.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "tests/support/child_process.h"

namespace {

namespace fs = std::filesystem;
using sluice::testing::CommandResult;
using sluice::testing::RunToCompletion;

constexpr char kInstalledBinary[] = "/usr/local/bin/sluice";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// Every "Key=value" line of a unit file (comments and section headers skipped), in order.
std::multimap<std::string, std::string> Directives(const std::string& unit_text) {
  std::multimap<std::string, std::string> directives;
  std::istringstream lines(unit_text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
    const size_t equals = line.find('=');
    if (equals == std::string::npos) continue;
    directives.emplace(line.substr(0, equals), line.substr(equals + 1));
  }
  return directives;
}

std::string Only(const std::multimap<std::string, std::string>& directives,
                 const std::string& key) {
  EXPECT_EQ(directives.count(key), 1u) << key;
  auto it = directives.find(key);
  return it == directives.end() ? std::string("<missing>") : it->second;
}

class SystemdUnitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/sluice-units-XXXXXX";
    const char* dir = mkdtemp(dir_template);
    ASSERT_NE(dir, nullptr);
    dir_ = dir;
    ASSERT_TRUE(fs::exists(SLUICE_BINARY_PATH)) << SLUICE_BINARY_PATH;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Copies the unit from the source tree as `installed_name`, its ExecStart pointing at the
  // binary just built (verify checks that the executable exists), and runs verify on it.
  CommandResult Verify(const std::string& source_name, const std::string& installed_name) {
    std::string text = ReadFile(fs::path(SLUICE_SOURCE_DIR) / "systemd" / source_name);
    const std::string exec = std::string("ExecStart=") + kInstalledBinary + " ";
    const size_t at = text.find(exec);
    EXPECT_NE(at, std::string::npos) << source_name << " has no " << exec;
    if (at != std::string::npos) {
      text.replace(at, exec.size(), std::string("ExecStart=") + SLUICE_BINARY_PATH + " ");
    }
    const fs::path unit = fs::path(dir_) / installed_name;
    WriteFile(unit, text);
    return RunToCompletion({"systemd-analyze", "verify", unit.string()});
  }

  // `systemd-analyze security --offline` exposure score (0 best .. 10 worst), or -1.
  double Exposure(const std::string& source_name, const std::string& installed_name) {
    const fs::path unit = fs::path(dir_) / installed_name;
    fs::copy_file(fs::path(SLUICE_SOURCE_DIR) / "systemd" / source_name, unit,
                  fs::copy_options::overwrite_existing);
    const CommandResult result = RunToCompletion(
        {"systemd-analyze", "security", "--offline=true", "--no-pager", unit.string()});
    std::smatch match;
    const std::regex score("Overall exposure level for [^:]*: ([0-9.]+)");
    if (!std::regex_search(result.output, match, score)) {
      ADD_FAILURE() << "no exposure level in:\n" << result.output;
      return -1;
    }
    return std::stod(match[1].str());
  }

  std::string dir_;
};

TEST_F(SystemdUnitsTest, MainUnitVerifies) {
  const CommandResult result = Verify("sluice.service", "sluice.service");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  // verify exits 0 even for unknown keys or unparsable values ("..., ignoring"), so any
  // output at all is a failure. (A missing User= is not checked offline.)
  EXPECT_EQ(result.output, "");
}

TEST_F(SystemdUnitsTest, TemplateInstanceVerifies) {
  const CommandResult result = Verify("sluice@.service", "sluice@demo.service");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  // verify exits 0 even for unknown keys or unparsable values ("..., ignoring"), so any
  // output at all is a failure. (A missing User= is not checked offline.)
  EXPECT_EQ(result.output, "");
}

TEST_F(SystemdUnitsTest, UnitsKeepTheDaemonContract) {
  struct Unit {
    std::string file;
    std::string config;
    std::string state_directory;
    std::string environment_file;
  };
  const std::vector<Unit> units = {
      {"sluice.service", "/etc/sluice/sluice.yaml", "sluice", "-/etc/sluice/sluice.env"},
      {"sluice@.service", "/etc/sluice/%i.yaml", "sluice/%i", "-/etc/sluice/%i.env"},
  };
  for (const Unit& unit : units) {
    SCOPED_TRACE(unit.file);
    const auto d = Directives(ReadFile(fs::path(SLUICE_SOURCE_DIR) / "systemd" / unit.file));
    EXPECT_EQ(Only(d, "ExecStart"), std::string(kInstalledBinary) + " run --config " + unit.config);
    EXPECT_EQ(Only(d, "StateDirectory"), unit.state_directory);
    EXPECT_EQ(Only(d, "EnvironmentFile"), unit.environment_file);
    EXPECT_EQ(Only(d, "Type"), "notify");
    EXPECT_EQ(Only(d, "NotifyAccess"), "main");
    EXPECT_EQ(Only(d, "ExecReload"), "/bin/kill -HUP $MAINPID");
    EXPECT_EQ(Only(d, "WatchdogSec"), "60");
    EXPECT_EQ(Only(d, "Restart"), "on-failure");
    EXPECT_EQ(Only(d, "RestartSec"), "5");
    EXPECT_EQ(Only(d, "RestartPreventExitStatus"), "64 65 78");
    EXPECT_EQ(Only(d, "TimeoutStopSec"), "60");
    EXPECT_EQ(Only(d, "User"), "sluice");
    EXPECT_EQ(Only(d, "Group"), "sluice");
    EXPECT_EQ(Only(d, "DynamicUser"), "no");
    EXPECT_EQ(Only(d, "LimitNOFILE"), "65536");
    EXPECT_EQ(Only(d, "ProtectSystem"), "strict");
    EXPECT_EQ(Only(d, "CapabilityBoundingSet"), "");
    EXPECT_EQ(Only(d, "RestrictAddressFamilies"), "AF_UNIX AF_INET AF_INET6");
    EXPECT_EQ(Only(d, "MemoryDenyWriteExecute"), "yes");
    EXPECT_EQ(Only(d, "SystemCallArchitectures"), "native");
    // sluice sets its own nice value (`nice:`): of @resources, only setpriority comes back.
    std::vector<std::string> filters;
    for (auto [it, end] = d.equal_range("SystemCallFilter"); it != end; ++it) {
      filters.push_back(it->second);
    }
    EXPECT_EQ(filters, (std::vector<std::string>{"@system-service", "~@privileged @resources",
                                                 "setpriority"}));
    // Only the state directory is writable: nothing may widen that.
    EXPECT_EQ(d.count("ReadWritePaths"), 0u);
  }
}

TEST_F(SystemdUnitsTest, UnitsAreHardened) {
  // systemd-analyze's scale: below 2.0 is "OK" (the best band short of fully sandboxed).
  EXPECT_LT(Exposure("sluice.service", "sluice.service"), 2.0);
  EXPECT_LT(Exposure("sluice@.service", "sluice@demo.service"), 2.0);
}

TEST(SystemdExampleConfigTest, Loads) {
  const std::string path = std::string(SLUICE_SOURCE_DIR) + "/systemd/sluice.example.yaml";
  auto config = sluice::config::LoadConfigFile(path);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->state_dir, "/var/lib/sluice");
  ASSERT_EQ(config->pipelines.size(), 1u);
  const auto& pipeline = config->pipelines[0];
  EXPECT_EQ(pipeline.name, "orders");
  EXPECT_EQ(pipeline.target.type, sluice::config::TargetType::kPostgres);
  EXPECT_EQ(pipeline.source.tables.size(), 2u);
  EXPECT_EQ(pipeline.capture.spill_dir, "/var/lib/sluice/spill/orders");
  EXPECT_TRUE(config->migrations.empty());
}

TEST(SystemdExampleConfigTest, LoadsAsAnInstanceConfig) {
  // What the template's comments tell users to do: state_dir under the instance's directory.
  std::string text = ReadFile(fs::path(SLUICE_SOURCE_DIR) / "systemd" / "sluice.example.yaml");
  const std::string from = "state_dir: /var/lib/sluice\n";
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, from.size(), "state_dir: /var/lib/sluice/demo\n");
  auto config = sluice::config::ParseConfig(text, "demo.yaml");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->pipelines.at(0).capture.spill_dir, "/var/lib/sluice/demo/spill/orders");
}

}  // namespace
