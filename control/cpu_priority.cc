#include "control/cpu_priority.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "core/number_text.h"

namespace sluice::control {

core::Status SetProcessNice(int nice) {
  std::error_code ec;
  std::filesystem::directory_iterator tasks("/proc/self/task", ec);
  if (ec) {
    return core::Unavailable("cannot list this process's threads in /proc/self/task: " +
                             ec.message());
  }
  for (const auto& task : tasks) {
    const std::string tid = task.path().filename().string();
    SLUICE_ASSIGN_OR_RETURN(const uint32_t id, core::ParseUint32(tid, "/proc/self/task entry"));
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(id), nice) != 0) {
      const int err = errno;
      if (err == ESRCH) continue;  // the thread ended meanwhile
      std::string why = std::strerror(err);
      if (err == EACCES || err == EPERM)
        why += " (a lower value than the current one needs CAP_SYS_NICE)";
      return core::FailedPrecondition("nice: " + std::to_string(nice) +
                                      " could not be set for thread " + tid + ": " + why);
    }
  }
  return core::Status::Ok();
}

}  // namespace sluice::control
