#include "core/failpoint.h"

#include <unistd.h>

#include <array>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace sluice::core {
namespace detail {
std::atomic<bool> failpoints_armed{false};
}  // namespace detail

namespace {

enum class Action { kNone, kCrash, kError, kUnavailable };

struct Armed {
  Action action = Action::kNone;
  uint64_t fire_at = 1;  // the pass that fires (1-based)
  uint64_t passes = 0;
};

constexpr size_t kPointCount = std::size(kFailpointNames);

std::mutex armed_mu;
std::array<Armed, kPointCount> armed;  // guarded by armed_mu; index as in kFailpointNames

int IndexOf(std::string_view name) {
  for (size_t i = 0; i < kPointCount; ++i) {
    if (name == kFailpointNames[i]) return static_cast<int>(i);
  }
  return -1;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

std::string KnownNames() {
  std::string names;
  for (const char* name : kFailpointNames) names += (names.empty() ? "" : ", ") + std::string(name);
  return names;
}

// Written with write(2): the process is about to die and must leave this line behind.
[[noreturn]] void Crash(const char* name) {
  std::string line = "sluice: failpoint ";
  line += name;
  line += ": crash\n";
  (void)!write(STDERR_FILENO, line.data(), line.size());
  std::raise(SIGKILL);
  std::_Exit(137);  // not reached: SIGKILL cannot be caught
}

}  // namespace

Status ArmFailpoints(std::string_view spec) {
  std::array<Armed, kPointCount> parsed{};
  bool any = false;
  spec = Trim(spec);
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = Trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;
    const std::string where =
        std::string(kFailpointsVariable) + " item '" + std::string(item) + "'";
    const size_t equals = item.find('=');
    if (equals == std::string_view::npos) {
      return InvalidArgument(where + ": expected name=action");
    }
    const int index = IndexOf(Trim(item.substr(0, equals)));
    if (index < 0)
      return InvalidArgument(where + ": unknown failpoint (known: " + KnownNames() + ")");
    std::string_view action = Trim(item.substr(equals + 1));
    Armed& point = parsed[static_cast<size_t>(index)];
    if (const size_t at = action.find('@'); at != std::string_view::npos) {
      const std::string_view count = action.substr(at + 1);
      const auto [end, error] =
          std::from_chars(count.data(), count.data() + count.size(), point.fire_at);
      if (error != std::errc() || end != count.data() + count.size() || point.fire_at == 0) {
        return InvalidArgument(where + ": the count after '@' must be a positive number");
      }
      action = action.substr(0, at);
    }
    if (action == "crash") {
      point.action = Action::kCrash;
    } else if (action == "error") {
      point.action = Action::kError;
    } else if (action == "unavailable") {
      point.action = Action::kUnavailable;
    } else {
      return InvalidArgument(where + ": unknown action (known: crash, error, unavailable)");
    }
    any = true;
  }
  std::lock_guard lock(armed_mu);
  armed = parsed;
  detail::failpoints_armed.store(any, std::memory_order_relaxed);
  return Status::Ok();
}

Status ArmFailpointsFromEnvironment() {
  const char* spec = std::getenv(kFailpointsVariable);
  if (spec == nullptr) return Status::Ok();
  return ArmFailpoints(spec);
}

namespace detail {

Status HitFailpoint(const char* name) {
  const int index = IndexOf(name);
  if (index < 0) return Internal(std::string("failpoint ") + name + " is not in kFailpointNames");
  Action action = Action::kNone;
  {
    std::lock_guard lock(armed_mu);
    Armed& point = armed[static_cast<size_t>(index)];
    if (point.action == Action::kNone || ++point.passes != point.fire_at) return Status::Ok();
    action = point.action;
  }
  switch (action) {
    case Action::kCrash:
      Crash(name);
    case Action::kError:
      return Internal(std::string("failpoint ") + name + ": error");
    case Action::kUnavailable:
      return Unavailable(std::string("failpoint ") + name + ": unavailable");
    case Action::kNone:
      break;
  }
  return Status::Ok();
}

}  // namespace detail
}  // namespace sluice::core
