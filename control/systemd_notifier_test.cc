#include "control/systemd_notifier.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sluice::control {
namespace {

// Sets environment variables for one test and puts the old values back afterwards.
class ScopedEnv {
 public:
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        unsetenv(it->first.c_str());
      }
    }
  }
  void Set(const std::string& name, const std::string& value) {
    Save(name);
    setenv(name.c_str(), value.c_str(), 1);
  }
  void Unset(const std::string& name) {
    Save(name);
    unsetenv(name.c_str());
  }

 private:
  void Save(const std::string& name) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// A datagram socket standing in for systemd's notification socket, in a fresh temp dir.
class NotifySocket {
 public:
  NotifySocket() {
    char dir_template[] = "/tmp/sluice-notify-XXXXXX";
    const char* dir = mkdtemp(dir_template);
    EXPECT_NE(dir, nullptr) << std::strerror(errno);
    dir_ = dir ? dir : "";
    path_ = dir_ + "/notify.sock";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0)
        << std::strerror(errno);
    // A safety net so a missing datagram fails the test instead of hanging it.
    timeval timeout{30, 0};
    EXPECT_EQ(setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)), 0);
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  const std::string& path() const { return path_; }

  // The next datagram, or "<no datagram: ...>".
  std::string Receive() {
    char buffer[4096];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n < 0) return std::string("<no datagram: ") + std::strerror(errno) + ">";
    return std::string(buffer, static_cast<size_t>(n));
  }

  // True when no datagram is waiting (nothing was sent).
  bool Empty() {
    char buffer[16];
    return recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT) < 0 && errno == EAGAIN;
  }

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

TEST(SystemdNotifierTest, SendsExactDatagrams) {
  NotifySocket socket;
  ScopedEnv env;
  env.Set("NOTIFY_SOCKET", socket.path());
  SystemdNotifier notifier;
  EXPECT_TRUE(SystemdNotifier::Enabled());

  ASSERT_TRUE(notifier.Ready("2 pipelines streaming; no lag").ok());
  EXPECT_EQ(socket.Receive(), "READY=1\nSTATUS=2 pipelines streaming; no lag");
  ASSERT_TRUE(notifier.Status("orders copying").ok());
  EXPECT_EQ(socket.Receive(), "STATUS=orders copying");
  ASSERT_TRUE(notifier.Watchdog().ok());
  EXPECT_EQ(socket.Receive(), "WATCHDOG=1");
  ASSERT_TRUE(notifier.Reloading().ok());
  EXPECT_EQ(socket.Receive(), "RELOADING=1");
  ASSERT_TRUE(notifier.Stopping().ok());
  EXPECT_EQ(socket.Receive(), "STOPPING=1");
  EXPECT_TRUE(socket.Empty());
  // The environment is left in place for later notifications.
  EXPECT_STREQ(std::getenv("NOTIFY_SOCKET"), socket.path().c_str());
}

TEST(SystemdNotifierTest, StatusNewlinesBecomeSpaces) {
  NotifySocket socket;
  ScopedEnv env;
  env.Set("NOTIFY_SOCKET", socket.path());
  SystemdNotifier notifier;
  ASSERT_TRUE(notifier.Status("first\nREADY=1").ok());
  EXPECT_EQ(socket.Receive(), "STATUS=first READY=1");
  ASSERT_TRUE(notifier.Ready("a\nb").ok());
  EXPECT_EQ(socket.Receive(), "READY=1\nSTATUS=a b");
}

TEST(SystemdNotifierTest, NoSocketIsANoOp) {
  ScopedEnv env;
  env.Unset("NOTIFY_SOCKET");
  SystemdNotifier notifier;
  EXPECT_FALSE(SystemdNotifier::Enabled());
  EXPECT_TRUE(notifier.Ready("x").ok());
  EXPECT_TRUE(notifier.Status("x").ok());
  EXPECT_TRUE(notifier.Watchdog().ok());
  EXPECT_TRUE(notifier.Reloading().ok());
  EXPECT_TRUE(notifier.Stopping().ok());
}

TEST(SystemdNotifierTest, UnreachableSocketIsUnavailable) {
  std::string missing;
  {
    NotifySocket socket;  // its directory is removed at the end of this scope
    missing = socket.path();
  }
  ScopedEnv env;
  env.Set("NOTIFY_SOCKET", missing);
  const core::Status status = SystemdNotifier().Watchdog();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), core::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("WATCHDOG=1"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find(missing), std::string::npos) << status.message();
}

TEST(SystemdNotifierTest, WatchdogInterval) {
  const std::string our_pid = std::to_string(getpid());
  const std::string other_pid = std::to_string(getpid() == 1 ? 2 : 1);
  struct Case {
    const char* what;
    std::optional<std::string> usec;
    std::optional<std::string> pid;
    int64_t expected_usec;  // -1: an error
  };
  const std::vector<Case> cases = {
      {"no watchdog", std::nullopt, std::nullopt, 0},
      {"for any process", "60000000", std::nullopt, 60000000},
      {"for us", "30000000", our_pid, 30000000},
      {"for another process", "30000000", other_pid, 0},
      {"malformed usec", "soon", std::nullopt, -1},
      {"zero usec", "0", std::nullopt, -1},
      {"malformed pid", "30000000", std::string("me"), -1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ScopedEnv env;
    if (c.usec) {
      env.Set("WATCHDOG_USEC", *c.usec);
    } else {
      env.Unset("WATCHDOG_USEC");
    }
    if (c.pid) {
      env.Set("WATCHDOG_PID", *c.pid);
    } else {
      env.Unset("WATCHDOG_PID");
    }
    auto interval = SystemdNotifier().WatchdogInterval();
    if (c.expected_usec < 0) {
      ASSERT_FALSE(interval.ok());
      EXPECT_EQ(interval.status().code(), core::StatusCode::kInvalidArgument);
      EXPECT_NE(interval.status().message().find("WATCHDOG_USEC"), std::string::npos);
    } else {
      ASSERT_TRUE(interval.ok()) << interval.status().message();
      EXPECT_EQ(interval->count(), c.expected_usec);
    }
    // Read, never consumed: the daemon may ask again.
    if (c.usec) {
      EXPECT_STREQ(std::getenv("WATCHDOG_USEC"), c.usec->c_str());
    }
  }
}

PipelineHealth Health(std::string name, std::string phase, int64_t last_progress_ms,
                      uint64_t lag_bytes = 0) {
  PipelineHealth h;
  h.name = std::move(name);
  h.copying_or_streaming = phase == "copying" || phase == "streaming";
  h.phase = std::move(phase);
  h.last_progress_unix_ms = last_progress_ms;
  h.lag_bytes = lag_bytes;
  return h;
}

TEST(PipelineHealthTest, AllReady) {
  struct Case {
    const char* what;
    std::vector<PipelineHealth> pipelines;
    bool expected;
  };
  const std::vector<Case> cases = {
      {"none", {}, false},
      {"one streaming", {Health("a", "streaming", 0)}, true},
      {"one copying", {Health("a", "copying", 0)}, true},
      {"copying and streaming", {Health("a", "copying", 0), Health("b", "streaming", 0)}, true},
      {"one starting", {Health("a", "streaming", 0), Health("b", "starting", 0)}, false},
      {"one retrying", {Health("a", "retrying", 0), Health("b", "streaming", 0)}, false},
      {"one failed", {Health("a", "streaming", 0), Health("b", "failed", 0)}, false},
      {"one stopped", {Health("a", "stopped", 0)}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(AllReady(c.pipelines), c.expected);
  }
}

TEST(PipelineHealthTest, MakingProgress) {
  constexpr int64_t kNow = 1'700'000'000'000;
  constexpr int64_t kStall = 120'000;
  struct Case {
    const char* what;
    std::vector<PipelineHealth> pipelines;
    bool expected;
  };
  const std::vector<Case> cases = {
      {"none", {}, true},
      {"just now", {Health("a", "streaming", kNow)}, true},
      {"exactly at the limit", {Health("a", "streaming", kNow - kStall)}, true},
      {"one ms past the limit", {Health("a", "streaming", kNow - kStall - 1)}, false},
      {"a copy that stalled", {Health("a", "copying", kNow - 10 * kStall)}, false},
      {"never progressed while streaming", {Health("a", "streaming", 0)}, false},
      {"one of two stuck",
       {Health("a", "streaming", kNow), Health("b", "streaming", kNow - kStall - 1)},
       false},
      {"retrying is not judged",
       {Health("a", "streaming", kNow), Health("b", "retrying", kNow - 100 * kStall)},
       true},
      {"starting is not judged", {Health("a", "starting", 0)}, true},
      {"failed is not judged", {Health("a", "failed", 0), Health("b", "copying", kNow - 5)}, true},
      {"clock stepped back", {Health("a", "streaming", kNow + 5000)}, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(MakingProgress(c.pipelines, kNow, kStall), c.expected);
  }
}

TEST(PipelineHealthTest, StatusLine) {
  struct Case {
    std::vector<PipelineHealth> pipelines;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{}, "no pipelines"},
      {{Health("orders", "streaming", 0)}, "1 pipeline streaming; no lag"},
      {{Health("orders", "streaming", 0, 1258291), Health("users", "streaming", 0, 10)},
       "2 pipelines streaming; orders lag 1.2 MB"},
      {{Health("a", "retrying", 0), Health("orders", "streaming", 0, 512),
        Health("b", "streaming", 0)},
       "3 pipelines: 2 streaming, 1 retrying; orders lag 512 B"},
      {{Health("a", "copying", 0), Health("b", "starting", 0, 1024),
        Health("c", "failed", 0, 3ull << 30)},
       "3 pipelines: 1 copying, 1 starting, 1 failed; c lag 3.0 GB"},
      {{Health("big", "streaming", 0, 1536)}, "1 pipeline streaming; big lag 1.5 kB"},
      {{Health("x", "streaming", 0, 1023)}, "1 pipeline streaming; x lag 1023 B"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(StatusLine(c.pipelines), c.expected);
  }
}

TEST(ProgressTrackerTest, CountsCopyAndApplyCountersAsProgress) {
  PipelineMetrics m;
  ProgressTracker tracker;
  m.phase = PipelinePhase::kCopying;
  m.last_progress_unix_ms = 0;  // the runner does not stamp copy progress

  PipelineHealth h = tracker.Observe("orders", m, 1000);  // first sight: a grace period
  EXPECT_EQ(h.name, "orders");
  EXPECT_EQ(h.phase, "copying");
  EXPECT_TRUE(h.copying_or_streaming);
  EXPECT_EQ(h.last_progress_unix_ms, 1000);

  EXPECT_EQ(tracker.Observe("orders", m, 5000).last_progress_unix_ms, 1000);  // nothing moved
  m.copy_rows = 10;
  EXPECT_EQ(tracker.Observe("orders", m, 6000).last_progress_unix_ms, 6000);
  EXPECT_EQ(tracker.Observe("orders", m, 9000).last_progress_unix_ms, 6000);
  m.copy_tables_done = 1;
  EXPECT_EQ(tracker.Observe("orders", m, 10000).last_progress_unix_ms, 10000);

  m.phase = PipelinePhase::kStreaming;  // a phase change is progress too
  h = tracker.Observe("orders", m, 11000);
  EXPECT_EQ(h.phase, "streaming");
  EXPECT_EQ(h.last_progress_unix_ms, 11000);

  m.last_progress_unix_ms = 20000;  // the runner's own stamp wins when newer
  EXPECT_EQ(tracker.Observe("orders", m, 21000).last_progress_unix_ms, 20000);
  m.transactions_applied = 3;
  m.changes_applied = 9;
  EXPECT_EQ(tracker.Observe("orders", m, 30000).last_progress_unix_ms, 30000);

  m.phase = PipelinePhase::kRetrying;
  h = tracker.Observe("orders", m, 40000);
  EXPECT_FALSE(h.copying_or_streaming);
  EXPECT_EQ(h.phase, "retrying");
}

TEST(ProgressTrackerTest, LagAndPipelinesAreSeparate) {
  PipelineMetrics a;
  PipelineMetrics b;
  a.phase = PipelinePhase::kStreaming;
  a.durable_lsn = 1000;
  a.source_wal_end = 4096 + 1000;
  b.phase = PipelinePhase::kStreaming;
  b.durable_lsn = 5000;
  b.source_wal_end = 4000;  // the source report is older than the durable position
  ProgressTracker tracker;
  EXPECT_EQ(tracker.Observe("a", a, 100).lag_bytes, 4096u);
  EXPECT_EQ(tracker.Observe("b", b, 200).lag_bytes, 0u);
  a.copy_rows = 1;
  EXPECT_EQ(tracker.Observe("a", a, 300).last_progress_unix_ms, 300);
  EXPECT_EQ(tracker.Observe("b", b, 400).last_progress_unix_ms, 200);
}

}  // namespace
}  // namespace sluice::control
