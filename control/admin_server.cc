#include "control/admin_server.h"

#include <httplib.h>

#include <charconv>

#include "core/thread_name.h"

namespace sluice::control {

core::Result<ListenAddress> ParseListenAddress(const std::string& listen) {
  ListenAddress address;
  std::string port;
  if (!listen.empty() && listen.front() == '[') {  // [::1]:7878
    const size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return core::InvalidArgument("admin.listen \"" + listen + "\" is not [host]:port");
    }
    address.host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return core::InvalidArgument("admin.listen \"" + listen + "\" is not host:port");
    }
    address.host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), address.port);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() ||
      address.port < 0 || address.port > 65535) {
    return core::InvalidArgument("admin.listen \"" + listen + "\" has no valid port (0-65535)");
  }
  return address;
}

struct AdminServer::Http {
  httplib::Server server;
  std::atomic<bool> finished{false};  // listen_after_bind returned
};

AdminServer::AdminServer(StatusCollector& collector)
    : collector_(collector), http_(std::make_unique<Http>()) {}

AdminServer::~AdminServer() { Stop(); }

core::Status AdminServer::Start(const std::string& listen) {
  if (server_thread_.joinable()) {
    return core::FailedPrecondition("admin server already serving on port " +
                                    std::to_string(port_));
  }
  SLUICE_ASSIGN_OR_RETURN(ListenAddress address, ParseListenAddress(listen));
  http_ = std::make_unique<Http>();  // an httplib::Server is not reused after stop()
  httplib::Server& server = http_->server;
  // Monitoring traffic is light: two workers, not one per core.
  server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  server.set_read_timeout(std::chrono::seconds(5));
  server.set_write_timeout(std::chrono::seconds(5));

  server.Get("/status", [this](const httplib::Request&, httplib::Response& response) {
    auto statuses = collector_.CollectCached();
    if (!statuses.ok()) {
      response.status = 500;
      response.set_content(statuses.status().message() + "\n", "text/plain");
      return;
    }
    response.set_content(ToJson(*statuses).dump() + "\n", "application/json");
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    auto statuses = collector_.CollectCached();
    if (!statuses.ok()) {
      response.status = 500;
      response.set_content(statuses.status().message() + "\n", "text/plain");
      return;
    }
    response.set_content(RenderPrometheus(*statuses), "text/plain; version=0.0.4");
  });
  server.Get("/healthz", [this](const httplib::Request&, httplib::Response& response) {
    auto statuses = collector_.CollectCached();
    if (!statuses.ok()) {
      response.status = 503;
      response.set_content(statuses.status().message() + "\n", "text/plain");
      return;
    }
    std::string reasons;
    for (const auto& s : *statuses) {
      if (IsHealthyPhase(s.phase)) continue;
      reasons += "pipeline " + s.name + ": " + s.phase;
      if (!s.last_error.empty()) reasons += ": " + s.last_error;
      reasons += "\n";
    }
    response.status = reasons.empty() ? 200 : 503;
    response.set_content(reasons.empty() ? "ok\n" : reasons, "text/plain");
  });

  // One round of source answers before the first request; after that the sampler keeps them
  // fresh and requests never wait for a source.
  collector_.RefreshSources();
  if (address.port == 0) {
    port_ = server.bind_to_any_port(address.host);
    if (port_ <= 0) {
      return core::Unavailable("admin server: cannot bind " + address.host + " to a free port");
    }
  } else {
    if (!server.bind_to_port(address.host, address.port)) {
      return core::Unavailable("admin server: cannot listen on " + listen +
                               " (address in use or not local?)");
    }
    port_ = address.port;
  }
  server_thread_ = std::thread([http = http_.get()] {
    core::NameCurrentThread("admin-http");
    http->server.listen_after_bind();
    http->finished = true;
  });
  {
    std::lock_guard lock(sampler_mu_);
    stopping_ = false;
  }
  sampler_thread_ = std::thread([this] {
    core::NameCurrentThread("admin-sampler");
    Sample();
  });
  return core::Status::Ok();
}

void AdminServer::Sample() {
  std::unique_lock lock(sampler_mu_);
  while (!stopping_) {
    lock.unlock();
    collector_.SampleRates();
    collector_.RefreshSources();  // bounded by the collector's source timeout
    lock.lock();
    sampler_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
  }
}

void AdminServer::Stop() {
  if (sampler_thread_.joinable()) {
    {
      std::lock_guard lock(sampler_mu_);
      stopping_ = true;
    }
    sampler_cv_.notify_all();
    sampler_thread_.join();
  }
  if (server_thread_.joinable()) {
    // stop() only acts on a running server: the thread may not have entered its accept loop
    // yet, so wait for it before asking it to end.
    while (!http_->server.is_running() && !http_->finished) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    http_->server.stop();
    server_thread_.join();
  }
}

}  // namespace sluice::control
