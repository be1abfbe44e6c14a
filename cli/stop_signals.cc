#include "cli/stop_signals.h"

#include <unistd.h>

#include <csignal>

namespace sluice::cli {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

extern "C" void OnReloadSignal(int) { g_reload = true; }

extern "C" void OnStopSignal(int) {
  if (g_stop.exchange(true)) _exit(130);  // impatient second signal
}

}  // namespace

const std::atomic<bool>& InstallStopSignals() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a closed stdout is an error to report, not a silent death
  return g_stop;
}

std::atomic<bool>& InstallReloadSignal() {
  struct sigaction action {};
  action.sa_handler = OnReloadSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGHUP, &action, nullptr);
  return g_reload;
}

}  // namespace sluice::cli
