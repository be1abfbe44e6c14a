#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice::testing {

// How a test starts a program: the one fork/exec of tests/support (servers' tools, sluice, load
// generators).
struct ChildOptions {
  std::vector<std::string> argv;  // argv[0]: a path, or a name looked up in PATH
  std::vector<std::string> env;   // "NAME=value" entries added to the test's environment
  std::string cwd;                // empty: the test's
  int stdout_fd = -1;             // -1: /dev/null
  int stderr_fd = -1;             // -1: /dev/null
};

// Starts the program. Its stdin is /dev/null and it inherits no other descriptor of the test
// (a server it starts must not hold the test's sockets and files). The caller closes the fds
// it passed once this returns.
core::Result<pid_t> SpawnChild(const ChildOptions& options);

// Exit code convention of shells: 128 + signal for a process killed by a signal.
int ExitCodeOf(int wait_status);

// Waits for `pid` to exit, at most `timeout` (nullopt: as long as it takes), and reaps it: its
// exit code, or kUnavailable if it still runs.
core::Result<int> WaitChild(pid_t pid, std::optional<std::chrono::milliseconds> timeout);

struct CommandResult {
  int exit_code = -1;  // 128 + signal if killed; -1 if it could not run
  std::string output;  // stdout and stderr together
};

// Runs argv to completion in `cwd`. The output goes through a file, not a pipe, so that a
// daemon the command starts (pg_ctl start) can never keep us waiting for EOF.
CommandResult RunToCompletion(const std::vector<std::string>& argv, const std::string& cwd = "");

}  // namespace sluice::testing
