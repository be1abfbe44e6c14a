#pragma once

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "config/config.h"
#include "core/status.h"

namespace sluice::control {

// Exit code when neither the daemon nor the state directory could answer (EX_UNAVAILABLE).
inline constexpr int kStatusUnavailableExit = 69;

// The daemon's GET /status document from the admin endpoint `listen` (host:port; a wildcard
// host such as 0.0.0.0 or :: is asked on loopback). Every step (connect, send, each read) is
// bounded by `timeout`. kUnavailable when nothing answers, kInternal/kInvalidArgument for a
// non-200 answer or a malformed body. `*reached` (when given) says whether something accepted
// the connection: a daemon that is there but does not answer is not a daemon that is down.
core::Result<nlohmann::json> FetchDaemonStatus(
    const std::string& listen, std::chrono::milliseconds timeout = std::chrono::seconds(3),
    bool* reached = nullptr);

// `sluice status`: asks the daemon's admin endpoint first; when nothing listens there,
// reports from the checkpoint store (opened read-only) plus each source's current WAL
// position, saying the daemon is down. When something listens but does not answer in time,
// the same report says so ("daemon": "not_answering", phases unknown) instead of "down". `json`
// prints the JSON document, else the table. `watch` redraws every 2 s in place (ANSI clear screen,
// cursor home) until SIGINT. Returns 0 when it could answer, kStatusUnavailableExit when neither
// the daemon nor the state directory was available (the reason goes to stderr).
int RunStatusCommand(const config::Config& config, bool json, bool watch, std::FILE* out);

}  // namespace sluice::control
