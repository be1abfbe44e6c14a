#pragma once

#include <atomic>

#include "config/config.h"
#include "core/status.h"

namespace sluice::control {

// `sluice run`: every pipeline of the config that has a target, each on its own thread, until
// `stop`. A pipeline that fails permanently stops alone (its error is logged and kept); the
// others go on. Returns the first permanent failure once every pipeline has ended, else Ok.
core::Status RunDaemon(const config::Config& config, const std::atomic<bool>& stop);

}  // namespace sluice::control
