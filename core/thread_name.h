#pragma once

#include <string>
#include <string_view>

namespace sluice::core {

// Linux keeps at most 15 bytes of a thread's name (plus the terminating NUL).
inline constexpr size_t kMaxThreadNameBytes = 15;

// "role:subject" cut to what Linux keeps, e.g. "cap:orders" for the capture thread of pipeline
// "orders". A cut never splits a UTF-8 character.
std::string ThreadName(std::string_view role, std::string_view subject);

// Names the calling thread, so `top -H`, `ps -L`, perf and gdb tell sluice's threads apart.
// Best effort: a name the kernel refuses leaves the thread as it was.
void NameCurrentThread(std::string_view role, std::string_view subject = {});

// The calling thread's name as the kernel has it.
std::string CurrentThreadName();

}  // namespace sluice::core
