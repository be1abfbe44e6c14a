// A source that stops answering without closing anything (a walsender or a whole server
// SIGSTOPped: no FIN, no error) must be noticed: the pipeline gives up on the silent stream
// within source.receive_timeout and retries, the lag grows instead of reading 0, `sluice status`
// and /healthz keep answering about a daemon that runs, and once the source runs again
// everything it committed reaches the target, row by row.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "tests/support/pipeline_fixture.h"
#include "tests/support/table_compare.h"

namespace sluice::testing {
namespace {

// Bounds for waits on things that will happen; failure guards, not performance expectations.
constexpr auto kPatience = std::chrono::seconds(120);

// Stops processes with SIGSTOP and always resumes them (SIGCONT), also when the test fails, so
// the cluster can be stopped and removed.
class StoppedProcesses {
 public:
  StoppedProcesses() = default;
  ~StoppedProcesses() { Resume(); }
  StoppedProcesses(const StoppedProcesses&) = delete;
  StoppedProcesses& operator=(const StoppedProcesses&) = delete;

  bool Stop(pid_t pid) {
    if (kill(pid, SIGSTOP) != 0) return false;
    pids_.push_back(pid);
    return true;
  }
  void Resume() {
    for (auto it = pids_.rbegin(); it != pids_.rend(); ++it) kill(*it, SIGCONT);
    pids_.clear();
  }

 private:
  std::vector<pid_t> pids_;
};

// The server's postmaster (first line of postmaster.pid) and its children, postmaster first.
std::vector<pid_t> ServerProcesses(const PgCluster& cluster) {
  std::ifstream pid_file(cluster.data_dir() + "/postmaster.pid");
  pid_t postmaster = 0;
  pid_file >> postmaster;
  std::vector<pid_t> pids = {postmaster};
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...; comm may hold spaces, so read after the last ')'.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == postmaster) pids.push_back(std::stoi(name));
  }
  return pids;
}

// Inserts rows on the source until stopped, each in its own transaction; the source's WAL
// moves on all the while. Counts the rows it committed.
class Writer {
 public:
  explicit Writer(const PgCluster& source) : source_(source) {
    thread_ = std::thread([this] {
      while (!stop_) {
        const int id = next_id_ + 1;
        if (source_
                .Exec("INSERT INTO public.items VALUES (" + std::to_string(id) + ", 'row " +
                      std::to_string(id) + "')")
                .ok()) {
          next_id_ = id;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  ~Writer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int rows() const { return next_id_; }

 private:
  const PgCluster& source_;
  std::atomic<bool> stop_{false};
  std::atomic<int> next_id_{0};
  std::thread thread_;
};

class HungSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(f_.ok()) << f_.error();
    ASSERT_TRUE(f_.source().Exec("CREATE TABLE public.items (id int PRIMARY KEY, note text)").ok());
  }

  // Starts `sluice run` with the given source.receive_timeout.
  void StartSluice(const std::string& receive_timeout) {
    admin_port_ = FreeLoopbackPort();
    const std::string target_yaml = "    target:\n      type: postgres\n      dsn: " +
                                    nlohmann::json(f_.target().Dsn()).dump() +
                                    "\n      apply: { create_tables: true }\n";
    // Small timeouts so the test does not wait a minute for each; status_interval below the
    // receive timeout as in production.
    config_ = WriteTailConfig(f_.dir(), f_.source(), {"public.items"}, target_yaml, "hung",
                              "      receive_timeout: " + receive_timeout +
                                  "\n      connect_timeout: 2s\n      status_interval: 500ms\n");
    WriteFile(config_.path, "admin: { listen: \"127.0.0.1:" + std::to_string(admin_port_) +
                                "\" }\n" + ReadFile(config_.path));
    log_ = f_.dir().File("run.err");
    ASSERT_TRUE(run_.Start({"run", "--config", config_.path}, f_.dir().File("run.out"), log_).ok());
  }

  nlohmann::json Status() {
    SluiceRun r = RunSluice({"status", "--config", config_.path, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    if (j.is_discarded() || !j.contains("pipelines") || j["pipelines"].size() != 1) return {};
    j["pipelines"][0]["daemon"] = j["daemon"];
    return j["pipelines"][0];
  }

  // Polls `sluice status --json` until `done` holds for the pipeline; the last answer.
  nlohmann::json StatusWhen(const std::function<bool(const nlohmann::json&)>& done,
                            const std::string& what) {
    nlohmann::json status;
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (std::chrono::steady_clock::now() < deadline) {
      status = Status();
      if (!status.is_null() && done(status)) return status;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "status never showed " << what << "; last: " << status.dump() << "\n"
                  << ReadFile(log_);
    return status;
  }

  bool TargetHas(int rows) {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (std::chrono::steady_clock::now() < deadline) {
      auto n = f_.target().QueryValue("SELECT count(*) FROM public.items");
      if (n.ok() && std::stoi(*n) >= rows) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  pid_t Walsender() {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (std::chrono::steady_clock::now() < deadline) {
      auto pid = f_.source().QueryValue(
          "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'sluice_hung'");
      if (pid.ok()) return std::stoi(*pid);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return 0;
  }

  // /healthz and the table form of `sluice status` answer (how fast is not the point).
  void ExpectStatusAndHealthAnswer() {
    httplib::Client admin("127.0.0.1", admin_port_);
    admin.set_connection_timeout(std::chrono::seconds(30));
    admin.set_read_timeout(std::chrono::seconds(30));
    auto health = admin.Get("/healthz");
    ASSERT_TRUE(health) << httplib::to_string(health.error());
    EXPECT_EQ(health->status, 200) << health->body;  // retrying is healthy: the loop is alive
    SluiceRun table = RunSluice({"status", "--config", config_.path});
    EXPECT_EQ(table.exit_code, 0) << table.err;
    EXPECT_NE(table.out.find("daemon: running"), std::string::npos) << table.out;
  }

  // Everything written reaches the target once the source runs again, the error goes away
  // after progress, and sluice stops cleanly.
  void ExpectRecovery(Writer& writer) {
    writer.Stop();
    ASSERT_TRUE(TargetHas(writer.rows())) << ReadFile(log_);
    EXPECT_EQ(DiffTable(f_.source(), f_.target(), "public.items"), "");
    const nlohmann::json recovered = StatusWhen(
        [](const nlohmann::json& s) { return s["phase"] == "streaming" && s["last_error"] == ""; },
        "streaming without an error");
    EXPECT_EQ(recovered["last_error"], "") << recovered.dump();
    run_.Kill(SIGTERM);
    auto exit_code = run_.Wait(std::chrono::seconds(60));
    ASSERT_TRUE(exit_code.ok());
    EXPECT_EQ(*exit_code, 0) << ReadFile(log_);
  }

  PipelineFixture f_;
  int admin_port_ = 0;
  TailConfig config_;
  std::string log_;
  SluiceProcess run_;
};

TEST_F(HungSourceTest, AStoppedWalsenderIsNoticedAndTheStreamRecoversWhenItRuns) {
  StartSluice("2s");
  Writer writer(f_.source());
  ASSERT_TRUE(TargetHas(20)) << ReadFile(log_);
  const pid_t walsender = Walsender();
  ASSERT_GT(walsender, 0);

  StoppedProcesses stopped;
  ASSERT_TRUE(stopped.Stop(walsender));
  // Within the receive timeout the pipeline gives up on the stream and retries, saying why;
  // its old walsender still holds the slot, which is waited out, not taken for another client.
  const nlohmann::json retrying = StatusWhen(
      [](const nlohmann::json& s) {
        return s["phase"] == "retrying" &&
               s["last_error"].get<std::string>().find("silent") != std::string::npos;
      },
      "retrying after a silent stream");
  EXPECT_EQ(retrying["daemon"], "running");
  EXPECT_NE(retrying["last_error"].get<std::string>().find("sluice_hung"), std::string::npos)
      << retrying.dump();
  // The source writes on while nothing arrives: the lag grows.
  ASSERT_TRUE(retrying["lag_seconds"].is_number()) << retrying.dump();
  const double first_lag = retrying["lag_seconds"].get<double>();
  const nlohmann::json later = StatusWhen(
      [&](const nlohmann::json& s) {
        return s["lag_seconds"].is_number() && s["lag_seconds"].get<double>() > first_lag;
      },
      "a growing lag");
  EXPECT_GT(later["lag_seconds"].get<double>(), first_lag) << later.dump();
  EXPECT_NE(later["phase"], "failed") << later.dump();
  ExpectStatusAndHealthAnswer();

  stopped.Resume();  // it notices the closed connection, exits and frees the slot
  ExpectRecovery(writer);
}

TEST_F(HungSourceTest, AStoppedSourceServerLeavesStatusAnswering) {
  StartSluice("2s");
  Writer writer(f_.source());
  ASSERT_TRUE(TargetHas(20)) << ReadFile(log_);

  StoppedProcesses stopped;
  for (pid_t pid : ServerProcesses(f_.source())) ASSERT_TRUE(stopped.Stop(pid)) << pid;
  // The daemon runs and says what it cannot reach, again and again while the server is stopped.
  for (int answers = 0; answers < 3; ++answers) {
    const nlohmann::json status = StatusWhen(
        [](const nlohmann::json& s) {
          return s["daemon"] == "running" && s["phase"] == "retrying" &&
                 s["last_error"].get<std::string>().find("source unreachable") != std::string::npos;
        },
        "a running daemon retrying an unreachable source");
    EXPECT_EQ(status["daemon"], "running") << status.dump();
    ExpectStatusAndHealthAnswer();
  }

  stopped.Resume();
  ExpectRecovery(writer);
}

// The watchdog's input: without a receive timeout nothing ends the silent stream, and an idle
// loop that hears nothing must not count as progress (else systemd would never restart a
// daemon stuck on a hung source). A healthy idle stream does count: the source answers.
TEST_F(HungSourceTest, WithoutAReceiveTimeoutASilentStreamIsNoProgress) {
  StartSluice("0");
  ASSERT_TRUE(f_.source().Exec("INSERT INTO public.items VALUES (0, 'first')").ok());
  ASSERT_TRUE(TargetHas(1)) << ReadFile(log_);
  // Idle and healthy: progress moves on as the source answers sluice's requests.
  const nlohmann::json idle = StatusWhen(
      [](const nlohmann::json& s) { return s["last_progress_unix_ms"].get<int64_t>() > 0; },
      "progress");
  const int64_t idle_progress = idle["last_progress_unix_ms"].get<int64_t>();
  StatusWhen(
      [&](const nlohmann::json& s) {
        return s["last_progress_unix_ms"].get<int64_t>() > idle_progress;
      },
      "progress on an idle source");

  const pid_t walsender = Walsender();
  ASSERT_GT(walsender, 0);
  StoppedProcesses stopped;
  ASSERT_TRUE(stopped.Stop(walsender));
  Writer writer(f_.source());
  // Once the silence shows as lag, progress stops where it was while the lag keeps growing.
  const nlohmann::json silent =
      StatusWhen([](const nlohmann::json& s) { return s["lag_seconds"].get<double>() > 0; }, "lag");
  const int64_t stuck_at = silent["last_progress_unix_ms"].get<int64_t>();
  const double lag = silent["lag_seconds"].get<double>();
  const nlohmann::json later =
      StatusWhen([&](const nlohmann::json& s) { return s["lag_seconds"].get<double>() > lag + 2; },
                 "a lag two seconds longer");
  EXPECT_EQ(later["last_progress_unix_ms"].get<int64_t>(), stuck_at) << later.dump();
  EXPECT_EQ(later["phase"], "streaming") << later.dump();  // nothing else will notice

  stopped.Resume();
  ExpectRecovery(writer);
}

}  // namespace
}  // namespace sluice::testing
