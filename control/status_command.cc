#include "control/status_command.h"

#include <httplib.h>

#include <atomic>
#include <csignal>
#include <optional>
#include <thread>

#include "control/admin_server.h"
#include "control/pipeline_status.h"

namespace sluice::control {
namespace {

constexpr auto kWatchInterval = std::chrono::seconds(2);
constexpr char kClearScreen[] = "\033[H\033[2J";

std::atomic<bool> g_interrupted{false};

extern "C" void OnSigint(int) { g_interrupted.store(true); }

// One rendering of the status, or the reason there is none.
struct Answer {
  bool ok = false;
  std::string text;
};

Answer Render(const config::Config& config, StatusCollector& local, bool json) {
  bool reached = false;
  auto daemon = FetchDaemonStatus(config.admin.listen, std::chrono::seconds(3), &reached);
  if (daemon.ok()) {
    if (json) return {true, daemon->dump(2) + "\n"};
    auto statuses = StatusesFromJson(*daemon);
    if (statuses.ok())
      return {true, RenderStatusTable(*statuses, /*daemon_running=*/true,
                                      config.admin.retained_wal_warning_bytes)};
    // An answer we cannot read: fall through to the state directory.
  }
  auto statuses = local.Collect();
  if (!statuses.ok()) {
    return {false, "sluice status: " + daemon.status().message() + "; " +
                       statuses.status().message() + "\n"};
  }
  // Something listens but did not answer: probably a stuck daemon, certainly not a stopped one,
  // so what it is doing is unknown rather than "stopped".
  const bool not_answering = reached && !daemon.ok();
  if (not_answering) {
    for (auto& s : *statuses) {
      if (s.phase == PipelinePhaseName(PipelinePhase::kStopped)) s.phase = "unknown";
    }
  }
  if (json) {
    nlohmann::json document = ToJson(*statuses);
    if (not_answering) {
      document["daemon"] = "not_answering";
      document["daemon_error"] = daemon.status().message();
    }
    return {true, document.dump(2) + "\n"};
  }
  const std::string header = not_answering
                                 ? "daemon: NOT ANSWERING at " + config.admin.listen + " (" +
                                       daemon.status().message() +
                                       "); below: the state directory's view, phases unknown\n"
                                 : "";
  return {true, RenderStatusTable(*statuses, /*daemon_running=*/false,
                                  config.admin.retained_wal_warning_bytes, header)};
}

}  // namespace

core::Result<nlohmann::json> FetchDaemonStatus(const std::string& listen,
                                               std::chrono::milliseconds timeout, bool* reached) {
  if (reached != nullptr) *reached = false;
  SLUICE_ASSIGN_OR_RETURN(ListenAddress address, ParseListenAddress(listen));
  if (address.host.empty() || address.host == "0.0.0.0") address.host = "127.0.0.1";
  if (address.host == "::") address.host = "::1";
  if (address.port == 0) return core::Unavailable("admin.listen has port 0: nothing to ask");
  httplib::Client client(address.host, address.port);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  auto response = client.Get("/status");
  if (!response) {
    // A refused (or unroutable) connection is the only sign that nothing is there.
    if (reached != nullptr) {
      *reached = response.error() != httplib::Error::Connection &&
                 response.error() != httplib::Error::ConnectionTimeout;
    }
    return core::Unavailable("no answer from the daemon at " + listen + ": " +
                             httplib::to_string(response.error()));
  }
  if (reached != nullptr) *reached = true;
  if (response->status != 200) {
    return core::Internal("the daemon at " + listen + " answered HTTP " +
                          std::to_string(response->status) + ": " + response->body);
  }
  auto json = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return core::InvalidArgument("the daemon at " + listen + " sent a status that is not JSON");
  }
  return json;
}

int RunStatusCommand(const config::Config& config, bool json, bool watch, std::FILE* out) {
  StatusCollector local(config);  // kept across refreshes: source connections are reused
  if (!watch) {
    Answer answer = Render(config, local, json);
    if (!answer.ok) {
      std::fputs(answer.text.c_str(), stderr);
      return kStatusUnavailableExit;
    }
    std::fputs(answer.text.c_str(), out);
    std::fflush(out);
    return 0;
  }

  g_interrupted.store(false);
  struct sigaction action {};
  struct sigaction previous {};
  action.sa_handler = OnSigint;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &previous);
  while (!g_interrupted.load()) {
    Answer answer = Render(config, local, json);
    std::string screen = kClearScreen + answer.text;
    if (!answer.ok) screen += "(retrying every 2 s; Ctrl-C to quit)\n";
    std::fputs(screen.c_str(), out);
    std::fflush(out);
    const auto next = std::chrono::steady_clock::now() + kWatchInterval;
    while (!g_interrupted.load() && std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  sigaction(SIGINT, &previous, nullptr);
  return 0;
}

}  // namespace sluice::control
