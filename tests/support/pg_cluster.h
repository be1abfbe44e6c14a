#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "tests/support/child_process.h"

namespace sluice::testing {

// A throwaway PostgreSQL cluster for one test: initdb + pg_ctl into a fresh temporary
// directory, listening on 127.0.0.1 at a free port, wal_level=logical, trust auth. When the
// test process runs as root the server is run as the `postgres` user (PostgreSQL refuses root).
// The destructor stops the server (immediate mode) and removes the directory, also when the
// test failed. Start() failing is a test failure with the reason; tests never skip.
// Live clusters are also stopped and removed when the test process gets SIGINT/SIGTERM or
// exits without destroying them (SIGKILL cannot be caught). Binaries: the newest
// /usr/lib/postgresql/<major>/bin, else `pg_config --bindir`; SLUICE_PG_BINDIR overrides.
// Not thread-safe: use one cluster object from one thread at a time.
class PgCluster {
 public:
  struct Options {
    // Extra postgresql.conf settings, e.g. {"logical_decoding_work_mem", "64kB"}.
    std::map<std::string, std::string> settings;
    std::string database = "sluice_test";  // created after start
  };

  static core::Result<std::unique_ptr<PgCluster>> Start(Options options);
  static core::Result<std::unique_ptr<PgCluster>> Start() { return Start(Options{}); }
  ~PgCluster();

  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& database() const { return options_.database; }

  // libpq conninfo for the test database (or `dbname`) as superuser `postgres`.
  std::string Dsn() const { return Dsn(options_.database); }
  std::string Dsn(const std::string& dbname) const;

  // Runs SQL (several statements allowed) in the test database; error names the SQL.
  core::Status Exec(const std::string& sql) const;
  // Runs a query; rows of nullable text values.
  using Row = std::vector<std::optional<std::string>>;
  core::Result<std::vector<Row>> Query(const std::string& sql) const;
  // First column of the first row; error when there is no row or it is null.
  core::Result<std::string> QueryValue(const std::string& sql) const;

  // pg_ctl stop -m fast / immediate, and start again on the same port and data.
  core::Status Stop(bool immediate = false);
  core::Status StartAgain();
  bool running() const { return running_; }

  // The server log so far (for failure messages).
  std::string ServerLog() const;

 private:
  PgCluster() = default;
  Options options_;
  std::string base_dir_;  // temporary directory holding data/ and the log
  std::string data_dir_;
  int port_ = 0;
  bool running_ = false;
};

// Runs `argv` as the postgres user when we are root (runuser, in directory /), else as
// ourselves; returns exit status (128+signal if killed) and combined stdout+stderr.
CommandResult RunAsPostgres(const std::vector<std::string>& argv);

// The PostgreSQL binaries' directory the clusters use (initdb, pg_ctl, pgbench, ...).
core::Result<std::string> PostgresBinDir();

// A free TCP port on 127.0.0.1 (bind to port 0 and read it back).
int FreeLoopbackPort();

}  // namespace sluice::testing
