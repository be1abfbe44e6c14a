// `sluice run` speaks systemd's notify protocol: the test plays systemd, listening on a real
// AF_UNIX datagram socket named by NOTIFY_SOCKET.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <thread>

#include "tests/support/pipeline_fixture.h"

namespace sluice::testing {
namespace {

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    bound_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }
  bool ok() const { return bound_; }

  // Every datagram received within `timeout`, appended to `all` until one contains `needle`.
  bool WaitFor(const std::string& needle, std::chrono::seconds timeout, std::string* all) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      timeval tv{0, 200000};
      setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        all->append(buf, static_cast<size_t>(n));
        all->append("\n--\n");
        if (std::string(buf, static_cast<size_t>(n)).find(needle) != std::string::npos) {
          return true;
        }
      }
    }
    return false;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST(DaemonNotifyTest, ReadyStatusWatchdogAndStoppingOnARealSocket) {
  PipelineFixture f;
  ASSERT_TRUE(f.ok()) << f.error();
  ASSERT_TRUE(f.InitPgbench(1).ok());
  NotifySocket notify(f.dir().File("notify.sock"));
  ASSERT_TRUE(notify.ok());
  const std::string yaml =
      "    target:\n      type: postgres\n      dsn: " + nlohmann::json(f.target().Dsn()).dump() +
      "\n      apply: { create_tables: true }\n";
  TailConfig config = WriteTailConfig(f.dir(), f.source(), {"public.*"}, yaml, "notify");

  setenv("NOTIFY_SOCKET", f.dir().File("notify.sock").c_str(), 1);
  setenv("WATCHDOG_USEC", "1000000", 1);  // ping every 0.5 s
  SluiceProcess run;
  const std::string log = f.dir().File("run.err");
  const core::Status started =
      run.Start({"run", "--config", config.path}, f.dir().File("run.out"), log);
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(started.ok());

  std::string received;
  ASSERT_TRUE(notify.WaitFor("READY=1", std::chrono::seconds(120), &received))
      << received << ReadFile(log);
  EXPECT_NE(received.find("STATUS="), std::string::npos) << received;
  // Ready as soon as the pipeline copies or streams; the status line follows it to streaming.
  EXPECT_TRUE(received.find("copying") != std::string::npos ||
              received.find("streaming") != std::string::npos)
      << received;
  ASSERT_TRUE(notify.WaitFor("WATCHDOG=1", std::chrono::seconds(10), &received)) << received;
  EXPECT_TRUE(notify.WaitFor("streaming", std::chrono::seconds(60), &received)) << received;
  ASSERT_TRUE(f.WaitForCatchUp(std::chrono::seconds(120)));
  run.Kill(SIGTERM);
  EXPECT_TRUE(notify.WaitFor("STOPPING=1", std::chrono::seconds(30), &received)) << received;
  auto exit_code = run.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);
}

}  // namespace
}  // namespace sluice::testing
