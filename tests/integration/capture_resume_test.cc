// `sluice tail` killed with SIGKILL at random moments while the source takes writes: after each
// restart it resumes from its checkpoint, and across all runs no committed change is missing.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/pg_cluster.h"
#include "tests/support/sluice_fixture.h"
#include "tests/support/sluice_process.h"

namespace sluice::testing {
namespace {

// Inserted ids in the order one run printed them; a line cut short by the kill is ignored.
std::vector<int> IdsPrinted(const std::string& text) {
  std::vector<int> ids;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline after it: the process died while writing it
    auto j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    if (!j.is_discarded() && j["op"] == "insert")
      ids.push_back(std::stoi(j["new"]["id"].get<std::string>()));
  }
  return ids;
}

TEST(CaptureResumeTest, KillNineAtRandomMomentsLosesNothing) {
  auto cluster_or = PgCluster::Start();
  ASSERT_TRUE(cluster_or.ok()) << cluster_or.status().ToString();
  PgCluster& cluster = **cluster_or;
  ASSERT_TRUE(cluster.Exec("CREATE TABLE public.t (id int PRIMARY KEY, pad text)").ok());
  TempDir dir;
  // A short checkpoint interval so kills land between checkpoints as well as right after them.
  TailConfig config = WriteTailConfig(dir, cluster, {"public.t"});
  ASSERT_TRUE(TailUntilNow(cluster, config).empty());

  constexpr int kTransactions = 400;
  constexpr int kRowsPerTransaction = 5;
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    for (int t = 0; t < kTransactions; ++t) {
      std::ostringstream sql;
      sql << "INSERT INTO public.t SELECT g, repeat('p', 200) FROM generate_series("
          << t * kRowsPerTransaction + 1 << ", " << (t + 1) * kRowsPerTransaction << ") g";
      if (!cluster.Exec(sql.str()).ok()) writer_failed = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });

  std::mt19937 random(20261122);  // seeded: a failure can be replayed
  std::uniform_int_distribution<int> run_ms(200, 1500);
  std::vector<std::vector<int>> runs;
  for (int k = 0; k < 8; ++k) {
    const std::string out = dir.File("run" + std::to_string(k) + ".jsonl");
    SluiceProcess tail;
    ASSERT_TRUE(tail.Start({"tail", "--config", config.path, "--checkpoint-interval-ms", "100"},
                           out, dir.File("tail.err"))
                    .ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(random)));
    tail.Kill(SIGKILL);
    ASSERT_TRUE(tail.Wait(std::chrono::seconds(10)).ok());
    runs.push_back(IdsPrinted(ReadFile(out)));
  }
  writer.join();
  ASSERT_FALSE(writer_failed.load());
  std::vector<int> last;
  for (const auto& line : TailUntilNow(cluster, config)) {
    if (line["op"] == "insert") last.push_back(std::stoi(line["new"]["id"].get<std::string>()));
  }
  runs.push_back(last);

  // Every committed row was printed by some run; each run is in commit order and starts no later
  // than right after the last row an earlier run printed (resume from the checkpoint, no gap).
  std::set<int> seen;
  int highest = 0;
  for (size_t k = 0; k < runs.size(); ++k) {
    const auto& ids = runs[k];
    if (ids.empty()) continue;
    EXPECT_LE(ids.front(), highest + 1) << "run " << k << " skipped rows after the checkpoint";
    for (size_t i = 1; i < ids.size(); ++i) {
      EXPECT_EQ(ids[i], ids[i - 1] + 1) << "run " << k << " out of order or with a gap";
    }
    seen.insert(ids.begin(), ids.end());
    highest = std::max(highest, ids.back());
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kTransactions * kRowsPerTransaction));
  EXPECT_EQ(highest, kTransactions * kRowsPerTransaction);
  // The kills must have hit a checkpointing process, not only fresh starts.
  const std::string log = ReadFile(dir.File("tail.err"));
  size_t resumed = 0;
  for (size_t at = log.find("tailing from checkpoint"); at != std::string::npos;
       at = log.find("tailing from checkpoint", at + 1)) {
    ++resumed;
  }
  EXPECT_GE(resumed, 4u) << log;
}

}  // namespace
}  // namespace sluice::testing
