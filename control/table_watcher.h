#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace sluice::control {

struct TableWatcherOptions {
  std::string pipeline;  // for messages
  std::string dsn;
  std::chrono::milliseconds connect_timeout{10000};
  std::string publication;
  // The pipeline's table patterns when sluice manages the publication (create_publication):
  // tables they name now are added to it, as the pipeline's start would. Empty: the publication
  // is someone else's and only read.
  std::vector<std::string> patterns;
  // Tables the pipeline has copied or streams ("schema.name").
  std::set<std::string> known;
  std::chrono::milliseconds interval{10000};
};

// Notices, while a pipeline streams, tables it should stream but has not copied: a table
// created in a "schema.*" the pipeline follows (a superuser's publication takes it in by
// itself, anyone else's only through ALTER PUBLICATION, which the pipeline's next start does),
// or a table someone added to the publication. Such a table's earlier rows are not in the
// stream, so the pipeline stops streaming at a transaction boundary and copies it first (see
// PipelineRunner). Polls the source on a connection of its own; a source it cannot reach is
// asked again at the next interval (the stream notices an outage by itself).
//
// Threads: one thread of its own, started by the constructor and joined by the destructor;
// found(), tables() and error() from any thread.
class TableWatcher {
 public:
  explicit TableWatcher(TableWatcherOptions options);
  ~TableWatcher();
  TableWatcher(const TableWatcher&) = delete;
  TableWatcher& operator=(const TableWatcher&) = delete;

  // New tables were found (tables()), or the pipeline's tables can no longer be published as
  // they are (error(): e.g. a new table without a usable replica identity).
  bool found() const { return found_.load(std::memory_order_acquire); }
  std::vector<std::string> tables() const;
  core::Status error() const;

 private:
  void Loop();

  const TableWatcherOptions options_;
  std::atomic<bool> found_{false};
  mutable std::mutex mu_;  // guards stopping_ and tables_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::string> tables_;
  core::Status error_;
  std::thread thread_;
};

}  // namespace sluice::control
