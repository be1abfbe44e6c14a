#include "tests/support/pipeline_fixture.h"

#include <thread>

#include "tests/support/table_compare.h"

namespace sluice::testing {

const std::vector<std::string> kPgbenchTables = {
    "public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_tellers",
    "public.pgbench_history"};

PipelineFixture::PipelineFixture() {
  auto source = PgCluster::Start();
  if (!source.ok()) {
    error_ = "source: " + source.status().ToString();
    return;
  }
  auto target = PgCluster::Start();
  if (!target.ok()) {
    error_ = "target: " + target.status().ToString();
    return;
  }
  source_ = std::move(source).value();
  target_ = std::move(target).value();
}

core::Status PipelineFixture::InitPgbench(int scale) {
  SLUICE_ASSIGN_OR_RETURN(std::string bin, PostgresBinDir());
  CommandResult init =
      RunAsPostgres({bin + "/pgbench", "-i", "-q", "-s", std::to_string(scale), "-h", "127.0.0.1",
                     "-p", std::to_string(source_->port()), "-U", "postgres", source_->database()});
  if (init.exit_code != 0) return core::Internal("pgbench -i failed: " + init.output);
  return source_->Exec(
      "ALTER TABLE pgbench_history REPLICA IDENTITY FULL;"
      "CREATE TABLE IF NOT EXISTS public.sluice_marker (id int PRIMARY KEY)");
}

core::Status PipelineFixture::StartLoad(SluiceProcess& load, int seconds, int clients) {
  SLUICE_ASSIGN_OR_RETURN(std::string bin, PostgresBinDir());
  return load.StartProgram(
      bin + "/pgbench",
      {"-n", "-c", std::to_string(clients), "-j", "1", "-T", std::to_string(seconds), "-h",
       "127.0.0.1", "-p", std::to_string(source_->port()), "-U", "postgres", source_->database()},
      dir_.File("pgbench.out"), dir_.File("pgbench.err"));
}

bool PipelineFixture::WaitForCatchUp(std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // A marker written before the slot's snapshot arrives with the initial copy of its table,
  // which may end before other tables' copies do. A second marker, written once the first is
  // on the target, is past that snapshot: it comes by the stream, which starts after the copy.
  return WaitForMarker(deadline) && WaitForMarker(deadline);
}

bool PipelineFixture::WaitForMarker(std::chrono::steady_clock::time_point deadline) {
  const int id = ++marker_;
  if (!source_->Exec("INSERT INTO public.sluice_marker VALUES (" + std::to_string(id) + ")").ok()) {
    return false;
  }
  while (std::chrono::steady_clock::now() < deadline) {
    auto found =
        target_->Query("SELECT 1 FROM public.sluice_marker WHERE id = " + std::to_string(id));
    if (found.ok() && !found->empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string PipelineFixture::Diff(const std::vector<std::string>& tables) {
  return DiffTables(*source_, *target_, tables);
}

}  // namespace sluice::testing
