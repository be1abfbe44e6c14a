#include "tests/support/child_process.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

extern char** environ;

namespace sluice::testing {

core::Result<pid_t> SpawnChild(const ChildOptions& options) {
  if (options.argv.empty()) return core::InvalidArgument("SpawnChild: no program given");
  // Everything the child needs is built before fork: it may only make async-signal-safe calls.
  std::vector<std::string> argv_storage = options.argv;
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = options.env;
  for (char** entry = environ; *entry != nullptr; ++entry) env_storage.emplace_back(*entry);
  std::vector<char*> envp;
  for (std::string& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);
  const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();

  const pid_t pid = fork();
  if (pid < 0) return core::Internal("fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    const int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, STDIN_FILENO);
      dup2(options.stdout_fd >= 0 ? options.stdout_fd : devnull, STDOUT_FILENO);
      dup2(options.stderr_fd >= 0 ? options.stderr_fd : devnull, STDERR_FILENO);
    }
    close_range(3, ~0U, 0);
    if (cwd != nullptr && chdir(cwd) != 0) _exit(126);
    execvpe(argv[0], argv.data(), envp.data());
    const char message[] = "exec failed\n";
    (void)!write(STDERR_FILENO, message, sizeof message - 1);
    _exit(127);
  }
  return pid;
}

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

core::Result<int> WaitChild(pid_t pid, std::optional<std::chrono::milliseconds> timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout.value_or(std::chrono::hours(0));
  while (true) {
    int wait_status = 0;
    const pid_t done = waitpid(pid, &wait_status, timeout ? WNOHANG : 0);
    if (done == pid) return ExitCodeOf(wait_status);
    if (done < 0 && errno != EINTR) {
      return core::Internal("waitpid for pid " + std::to_string(pid) + ": " + std::strerror(errno));
    }
    if (!timeout || done < 0) continue;  // interrupted: wait again
    if (std::chrono::steady_clock::now() >= deadline) {
      return core::Unavailable("pid " + std::to_string(pid) + " still running after " +
                               std::to_string(timeout->count()) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

CommandResult RunToCompletion(const std::vector<std::string>& argv, const std::string& cwd) {
  CommandResult result;
  const char* tmp = std::getenv("TMPDIR");
  std::string output_template =
      std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/sluice-cmd-XXXXXX";
  const int output_fd = mkostemp(output_template.data(), O_CLOEXEC);
  if (output_fd < 0) {
    result.output =
        "cannot create a temporary file for command output: " + std::string(std::strerror(errno));
    return result;
  }
  unlink(output_template.c_str());

  ChildOptions options;
  options.argv = argv;
  options.cwd = cwd;
  options.stdout_fd = output_fd;
  options.stderr_fd = output_fd;
  auto pid = SpawnChild(options);
  if (!pid.ok()) {
    result.output = pid.status().message();
    close(output_fd);
    return result;
  }
  auto exit_code = WaitChild(*pid, std::nullopt);
  if (exit_code.ok()) result.exit_code = *exit_code;
  lseek(output_fd, 0, SEEK_SET);
  char buffer[8192];
  ssize_t got;
  while ((got = read(output_fd, buffer, sizeof buffer)) > 0) result.output.append(buffer, got);
  close(output_fd);
  return result;
}

}  // namespace sluice::testing
