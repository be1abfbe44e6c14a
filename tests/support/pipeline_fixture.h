#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/pg_cluster.h"
#include "tests/support/sluice_fixture.h"
#include "tests/support/sluice_process.h"

namespace sluice::testing {

// Two real clusters (source, target) and helpers for end-to-end pipeline tests.
class PipelineFixture {
 public:
  // Starts both clusters; check ok() / error() before use.
  PipelineFixture();
  bool ok() const { return source_ && target_; }
  const std::string& error() const { return error_; }

  PgCluster& source() { return *source_; }
  PgCluster& target() { return *target_; }
  const TempDir& dir() const { return dir_; }

  // pgbench -i on the source (history gets REPLICA IDENTITY FULL: it has no primary key), plus
  // the marker table WaitForCatchUp uses.
  core::Status InitPgbench(int scale);
  // Starts a pgbench TPC-B load on the source for `seconds` (or `transactions` per client when
  // > 0), as a child process.
  core::Status StartLoad(SluiceProcess& load, int seconds, int clients = 2);

  // Writes marker rows on the source (table public.sluice_marker, made by InitPgbench and
  // published with public.*) and waits until the target has them: the initial copy is then
  // done and the target has applied everything committed before. False on timeout.
  bool WaitForCatchUp(std::chrono::seconds timeout);

  // "" when every table is identical row by row on both sides, else the differences.
  std::string Diff(const std::vector<std::string>& tables);

 private:
  // Writes the next marker row on the source and waits for it on the target.
  bool WaitForMarker(std::chrono::steady_clock::time_point deadline);

  std::unique_ptr<PgCluster> source_;
  std::unique_ptr<PgCluster> target_;
  std::string error_;
  TempDir dir_;
  int marker_ = 0;
};

extern const std::vector<std::string> kPgbenchTables;

}  // namespace sluice::testing
