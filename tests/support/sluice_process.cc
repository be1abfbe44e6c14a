#include "tests/support/sluice_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#ifndef SLUICE_BINARY_PATH
#error "SLUICE_BINARY_PATH must be defined by the build (tests/CMakeLists.txt)"
#endif

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

bool TraversableByOthers(const fs::path& path) {
  std::error_code ec;
  fs::path current = fs::absolute(path, ec);
  if (ec) return false;
  while (true) {
    struct stat info {};
    if (stat(current.c_str(), &info) != 0) return false;
    if ((info.st_mode & S_IXOTH) == 0) return false;
    if (current == current.root_path()) return true;
    current = current.parent_path();
  }
}

}  // namespace

std::string TempRoot() {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string root = (tmpdir != nullptr && *tmpdir) ? tmpdir : "/tmp";
  if (geteuid() == 0 && !TraversableByOthers(root)) root = "/tmp";
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root;
}

std::string SluiceBinary() {
  // An override lets a developer point the tests at an installed or instrumented binary.
  if (const char* override_path = std::getenv("SLUICE_BINARY");
      override_path != nullptr && *override_path) {
    return override_path;
  }
  return SLUICE_BINARY_PATH;
}

SluiceProcess::~SluiceProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  (void)WaitChild(pid_, std::nullopt);
  pid_ = -1;
}

core::Status SluiceProcess::Start(const std::vector<std::string>& args,
                                  const std::string& stdout_path, const std::string& stderr_path,
                                  const std::vector<std::string>& env) {
  return StartProgram(SluiceBinary(), args, stdout_path, stderr_path, env);
}

core::Status SluiceProcess::StartProgram(const std::string& binary,
                                         const std::vector<std::string>& args,
                                         const std::string& stdout_path,
                                         const std::string& stderr_path,
                                         const std::vector<std::string>& env) {
  if (pid_ > 0) {
    return core::FailedPrecondition("process " + std::to_string(pid_) +
                                    " is still running; Wait() or Kill() it first");
  }
  if (access(binary.c_str(), X_OK) != 0) {
    return core::NotFound("binary " + binary + " is not executable: " + std::strerror(errno));
  }
  const int out_fd = open(stdout_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (out_fd < 0) {
    return core::FailedPrecondition("cannot open " + stdout_path + ": " + std::strerror(errno));
  }
  const int err_fd = open(stderr_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (err_fd < 0) {
    const std::string error = std::strerror(errno);
    close(out_fd);
    return core::FailedPrecondition("cannot open " + stderr_path + ": " + error);
  }

  ChildOptions options;
  options.argv.push_back(binary);
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.env = env;
  options.stdout_fd = out_fd;
  options.stderr_fd = err_fd;
  auto pid = SpawnChild(options);
  close(out_fd);
  close(err_fd);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  return core::Status::Ok();
}

void SluiceProcess::Kill(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

core::Result<int> SluiceProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return core::FailedPrecondition("no sluice process to wait for");
  auto exit_code = WaitChild(pid_, timeout);
  if (exit_code.ok() || exit_code.status().code() != core::StatusCode::kUnavailable) pid_ = -1;
  return exit_code;
}

SluiceRun RunSluice(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  SluiceRun run;
  TempDir output_dir;
  const std::string out_path = output_dir.File("stdout");
  const std::string err_path = output_dir.File("stderr");
  SluiceProcess process;
  const core::Status started = process.Start(args, out_path, err_path);
  if (!started.ok()) {
    run.err = started.ToString();
    return run;
  }
  auto exit_code = process.Wait(timeout);
  if (!exit_code.ok()) {
    process.Kill(SIGKILL);
    exit_code = process.Wait(std::chrono::seconds(30));
  }
  run.exit_code = exit_code.ok() ? *exit_code : -1;
  run.out = ReadFile(out_path);
  run.err = ReadFile(err_path);
  return run;
}

TempDir::TempDir() {
  std::string dir_template = TempRoot() + "/sluice-test-XXXXXX";
  if (mkdtemp(dir_template.data()) == nullptr) {
    // Without a directory no test can proceed; this is the environment, not the code under test.
    std::fprintf(stderr, "TempDir: mkdtemp(%s) failed: %s\n", dir_template.c_str(),
                 std::strerror(errno));
    std::abort();
  }
  // The postgres server (another user when tests run as root) writes here too.
  chmod(dir_template.c_str(), 0777);
  path_ = dir_template;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) ADD_FAILURE() << "cannot write " << path;
}

}  // namespace sluice::testing
