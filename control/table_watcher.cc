#include "control/table_watcher.h"

#include <spdlog/spdlog.h>

#include <memory>

#include "capture/publication_manager.h"
#include "capture/replication_connection.h"
#include "core/thread_name.h"

namespace sluice::control {

TableWatcher::TableWatcher(TableWatcherOptions options) : options_(std::move(options)) {
  thread_ = std::thread([this] {
    core::NameCurrentThread("tables", options_.pipeline);
    Loop();
  });
}

TableWatcher::~TableWatcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::vector<std::string> TableWatcher::tables() const {
  std::lock_guard lock(mu_);
  return tables_;
}

core::Status TableWatcher::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

void TableWatcher::Loop() {
  std::unique_ptr<pg::Connection> connection;
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (wake_.wait_for(lock, options_.interval, [this] { return stopping_; })) return;
    }
    if (!connection) {
      auto connected = pg::Connection::Connect(options_.dsn, {.timeout = options_.connect_timeout});
      if (!connected.ok()) {
        spdlog::debug("pipeline {}: looking for new tables: {}", options_.pipeline,
                      connected.status().message());
        continue;
      }
      connection = std::move(connected).value();
    }
    capture::PublicationManager publications(*connection);
    if (!options_.patterns.empty()) {
      core::Status ensured =
          publications.EnsurePublication(options_.publication, options_.patterns);
      if (!ensured.ok() && !ensured.retryable()) {
        std::lock_guard lock(mu_);
        error_ = ensured.WithContext("pipeline " + options_.pipeline + ": a new table");
        found_.store(true, std::memory_order_release);
        return;
      }
    }
    auto published = publications.PublishedTables(options_.publication);
    if (!published.ok()) {
      spdlog::debug("pipeline {}: looking for new tables: {}", options_.pipeline,
                    published.status().message());
      connection.reset();  // made again next time
      continue;
    }
    std::vector<std::string> fresh;
    for (const capture::TableInfo& table : *published) {
      const std::string name = table.schema + "." + table.name;
      if (!options_.known.contains(name)) fresh.push_back(name);
    }
    if (fresh.empty()) continue;
    std::string list;
    for (const auto& name : fresh) list += (list.empty() ? "" : ", ") + name;
    spdlog::info("pipeline {}: new table(s) {}: copying before streaming them", options_.pipeline,
                 list);
    std::lock_guard lock(mu_);
    tables_ = std::move(fresh);
    found_.store(true, std::memory_order_release);
    return;
  }
}

}  // namespace sluice::control
