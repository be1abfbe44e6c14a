#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/status.h"
#include "tests/support/child_process.h"

namespace sluice::testing {

// Path of the sluice binary under test (set by CMake; the SLUICE_BINARY environment variable
// overrides it).
std::string SluiceBinary();

// A child `sluice ...` process for integration tests: stdout and stderr go to files that the
// test reads; Kill() sends any signal (SIGKILL for crash tests); the destructor kills and reaps.
class SluiceProcess {
 public:
  SluiceProcess() = default;
  ~SluiceProcess();
  SluiceProcess(const SluiceProcess&) = delete;
  SluiceProcess& operator=(const SluiceProcess&) = delete;

  // Starts `sluice <args...>`; stdout/stderr are appended to the given files. `env` entries
  // ("NAME=value", e.g. SLUICE_FAILPOINTS=...) are added to the test's environment.
  core::Status Start(const std::vector<std::string>& args, const std::string& stdout_path,
                     const std::string& stderr_path, const std::vector<std::string>& env = {});
  // Starts any program (absolute path) the same way, e.g. pgbench as a load generator.
  core::Status StartProgram(const std::string& binary, const std::vector<std::string>& args,
                            const std::string& stdout_path, const std::string& stderr_path,
                            const std::vector<std::string>& env = {});
  void Kill(int signal);
  // Waits for exit up to `timeout`; returns the exit code (128+signal if killed) or an error.
  core::Result<int> Wait(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// Runs `sluice <args...>` to completion (bounded by `timeout`) and returns exit code and output.
struct SluiceRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};
SluiceRun RunSluice(const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Where tests make temporary files: $TMPDIR, unless other users (the postgres server, when
// the tests run as root) could not reach it; then /tmp.
std::string TempRoot();

// A fresh temporary directory (below TempRoot()) removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& content);

}  // namespace sluice::testing
