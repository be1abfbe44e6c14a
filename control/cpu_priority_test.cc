#include "control/cpu_priority.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace sluice::control {
namespace {

// Raising the nice value of this test process is harmless (it only yields more), and is the
// direction that needs no privilege.
TEST(CpuPriorityTest, SetsEveryThreadAndThreadsStartedLaterInheritIt) {
  std::atomic<bool> stop{false};
  std::atomic<pid_t> before_tid{0};
  std::thread before([&] {
    before_tid = static_cast<pid_t>(syscall(SYS_gettid));
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (before_tid == 0) std::this_thread::yield();

  const int target = std::min(19, getpriority(PRIO_PROCESS, 0) + 3);
  ASSERT_TRUE(SetProcessNice(target).ok());
  EXPECT_EQ(getpriority(PRIO_PROCESS, 0), target);  // this thread
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(before_tid.load())), target);
  int later_nice = -100;
  std::thread later([&] { later_nice = getpriority(PRIO_PROCESS, 0); });
  later.join();
  EXPECT_EQ(later_nice, target);

  stop = true;
  before.join();
}

}  // namespace
}  // namespace sluice::control
