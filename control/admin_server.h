#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "control/pipeline_status.h"
#include "core/status.h"

namespace sluice::control {

// "host:port" (or "[v6]:port") split in two; port 0..65535 (0 = any free port).
struct ListenAddress {
  std::string host;
  int port = 0;
};
core::Result<ListenAddress> ParseListenAddress(const std::string& listen);

// The daemon's HTTP endpoint (admin.listen):
//   GET /status   the JSON of ToJson(collector.Collect())
//   GET /metrics  Prometheus text (RenderPrometheus); there is no batch latency histogram,
//                 PipelineMetrics has no latency distribution to export
//   GET /healthz  200 "ok" when every pipeline is starting, copying, streaming or retrying,
//                 else 503 with one line per unhealthy pipeline (phase and last error)
// Requests answer at once from what the daemon has: live metrics, the state store, and the
// sources' last answers (StatusCollector::CollectCached), never waiting for a source. A sampler
// thread asks the sources every second (each question bounded by the collector's source
// timeout, so a hung source makes its answer older and its last_error say why, not the
// endpoint slow) and feeds the collector's rows/s meters, so the rate is recent even when
// nobody asks.
//
// Threads: Start and Stop from one owning thread; the collector is borrowed and must outlive
// the server (Stop joins everything that uses it).
class AdminServer {
 public:
  explicit AdminServer(StatusCollector& collector);
  ~AdminServer();  // Stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds `listen` ("127.0.0.1:7878"; port 0 = any free port, see port()) and serves on a
  // thread of its own. kInvalidArgument for a malformed address, kUnavailable when it cannot
  // bind (address in use), kFailedPrecondition when already started.
  core::Status Start(const std::string& listen);
  // Stops serving and joins the threads. Idempotent.
  void Stop();

  int port() const { return port_; }  // the bound port after Start

 private:
  struct Http;  // keeps httplib out of this header

  void Sample();

  StatusCollector& collector_;
  std::unique_ptr<Http> http_;
  std::thread server_thread_;
  std::thread sampler_thread_;
  std::mutex sampler_mu_;
  std::condition_variable sampler_cv_;
  bool stopping_ = false;  // guarded by sampler_mu_
  int port_ = 0;
};

}  // namespace sluice::control
