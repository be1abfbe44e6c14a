#pragma once

#include <atomic>

namespace sluice::cli {

// Installs SIGINT/SIGTERM handlers that set the returned flag; a second signal exits at once.
// Long-running commands poll the flag and stop after the in-flight work.
const std::atomic<bool>& InstallStopSignals();

// Installs a SIGHUP handler; the returned flag is set on each SIGHUP, and whoever handles the
// reload clears it.
std::atomic<bool>& InstallReloadSignal();

}  // namespace sluice::cli
