#include "tests/support/pg_cluster.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "tests/support/sluice_process.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kStartAttempts = 5;       // fresh ports tried when the chosen one was taken
constexpr size_t kLogTailBytes = 4000;  // of the server log, in failure messages
constexpr size_t kSqlInMessage = 200;

std::string Truncated(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  return text.substr(0, limit) + "...";
}

std::string Tail(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  return "..." + text.substr(text.size() - limit);
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool RunningAsRoot() { return geteuid() == 0; }

// The `postgres` account the server runs as when we are root.
struct PostgresUser {
  uid_t uid;
  gid_t gid;
};
std::optional<PostgresUser> LookupPostgresUser() {
  struct passwd* entry = getpwnam("postgres");
  if (entry == nullptr) return std::nullopt;
  return PostgresUser{entry->pw_uid, entry->pw_gid};
}

std::string FindRunuser() {
  for (const char* candidate : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"}) {
    if (access(candidate, X_OK) == 0) return candidate;
  }
  return "runuser";  // resolved through PATH by execvp
}

// Newest /usr/lib/postgresql/<major>/bin with an initdb, else `pg_config --bindir`.
core::Result<std::string> PgBinDir() {
  static const core::Result<std::string> found = []() -> core::Result<std::string> {
    if (const char* forced = std::getenv("SLUICE_PG_BINDIR"); forced != nullptr && *forced) {
      return std::string(forced);
    }
    int best_major = -1;
    std::string best;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      const std::string name = entry.path().filename().string();
      char* end = nullptr;
      const long major = std::strtol(name.c_str(), &end, 10);
      if (end == name.c_str() || *end != '\0') continue;
      const std::string bin = entry.path().string() + "/bin";
      if (access((bin + "/initdb").c_str(), X_OK) != 0) continue;
      if (major > best_major) {
        best_major = static_cast<int>(major);
        best = bin;
      }
    }
    if (!best.empty()) return best;
    CommandResult pg_config = RunToCompletion({"pg_config", "--bindir"});
    while (!pg_config.output.empty() &&
           (pg_config.output.back() == '\n' || pg_config.output.back() == '\r')) {
      pg_config.output.pop_back();
    }
    if (pg_config.exit_code == 0 && access((pg_config.output + "/initdb").c_str(), X_OK) == 0) {
      return pg_config.output;
    }
    return core::FailedPrecondition(
        "no PostgreSQL server binaries: neither /usr/lib/postgresql/<major>/bin/initdb nor "
        "`pg_config --bindir` found (run scripts/install-deps.sh)");
  }();
  return found;
}

CommandResult RunAsPostgresIn(const std::vector<std::string>& argv, const std::string& cwd) {
  if (!RunningAsRoot()) return RunToCompletion(argv, cwd);
  std::vector<std::string> wrapped = {FindRunuser(), "-u", "postgres", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return RunToCompletion(wrapped, cwd);
}

std::string CommandLine(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& arg : argv) {
    if (!line.empty()) line += ' ';
    line += arg;
  }
  return line;
}

// postgresql.conf string literal.
std::string ConfQuoted(const std::string& value) {
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'') quoted += '\'';
    quoted += c;
  }
  return quoted + "'";
}

// libpq conninfo value.
std::string ConninfoQuoted(const std::string& value) {
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

std::string SqlIdentifier(const std::string& name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

// ---------------------------------------------------------------------------------------------
// Emergency cleanup: clusters still alive when the test binary gets SIGINT/SIGTERM (or exits
// without destroying them) are stopped and removed, so no stray postmasters outlive the test.
// The signal handler may only use async-signal-safe calls, so the registry is a fixed array of
// plain buffers guarded by an atomic state per slot.

constexpr int kRegistrySlots = 64;
constexpr size_t kPathCapacity = 1024;

enum SlotState : int { kFree = 0, kFilling = 1, kLive = 2 };

struct RegistrySlot {
  std::atomic<int> state{kFree};
  std::atomic<pid_t> postmaster_pid{0};
  // The test process that started the cluster: a forked child (death test, child before exec)
  // inherits handlers and registry but must not tear down its parent's clusters.
  std::atomic<pid_t> owner_pid{0};
  char base_dir[kPathCapacity];
  char pid_file[kPathCapacity];
};

std::array<RegistrySlot, kRegistrySlots> registry;
std::once_flag handlers_installed;
struct sigaction previous_sigint {};
struct sigaction previous_sigterm {};

void SleepMillis(long millis) {
  timespec delay{millis / 1000, (millis % 1000) * 1000000L};
  while (nanosleep(&delay, &delay) != 0 && errno == EINTR) {
  }
}

// Immediate shutdown is SIGQUIT to the postmaster (what `pg_ctl stop -m immediate` sends).
// The postmaster removes postmaster.pid as it exits; waiting on the file rather than the pid
// also works when nobody reaps the reparented postmaster. Async-signal-safe.
void EmergencyStopAll() {
  const pid_t self = getpid();
  for (auto& slot : registry) {
    if (slot.state.load() != kLive || slot.owner_pid.load() != self) continue;
    const pid_t pid = slot.postmaster_pid.load();
    if (pid > 0) kill(pid, SIGQUIT);
  }
  for (auto& slot : registry) {
    if (slot.state.load() != kLive || slot.owner_pid.load() != self) continue;
    for (int waited = 0; waited < 10000 && access(slot.pid_file, F_OK) == 0; waited += 20) {
      SleepMillis(20);
    }
    // In a signal handler: a bare fork and exec, not SpawnChild (which allocates).
    const pid_t rm = fork();
    if (rm == 0) {
      char* const rm_argv[] = {const_cast<char*>("rm"), const_cast<char*>("-rf"), slot.base_dir,
                               nullptr};
      execv("/bin/rm", rm_argv);
      _exit(127);
    }
    if (rm > 0) {
      int ignored = 0;
      while (waitpid(rm, &ignored, 0) < 0 && errno == EINTR) {
      }
    }
    slot.state.store(kFree);
  }
}

void OnTerminatingSignal(int signal_number) {
  const int saved_errno = errno;
  EmergencyStopAll();
  // Restore whatever was there before and re-raise: the signal is blocked while we run, so it
  // is delivered with the old disposition (usually: terminate) as soon as we return.
  sigaction(signal_number, signal_number == SIGINT ? &previous_sigint : &previous_sigterm, nullptr);
  raise(signal_number);
  errno = saved_errno;
}

void InstallCleanupHandlers() {
  std::call_once(handlers_installed, [] {
    struct sigaction action {};
    action.sa_handler = OnTerminatingSignal;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, SIGINT);
    sigaddset(&action.sa_mask, SIGTERM);
    sigaction(SIGINT, &action, &previous_sigint);
    sigaction(SIGTERM, &action, &previous_sigterm);
    std::atexit(EmergencyStopAll);
  });
}

// Returns the slot index, or -1 when the registry is full (cleanup then relies on destructors).
int RegisterCluster(const std::string& base_dir, const std::string& pid_file, pid_t pid) {
  InstallCleanupHandlers();
  if (base_dir.size() >= kPathCapacity || pid_file.size() >= kPathCapacity) return -1;
  for (int i = 0; i < kRegistrySlots; ++i) {
    int expected = kFree;
    if (!registry[i].state.compare_exchange_strong(expected, kFilling)) continue;
    std::memcpy(registry[i].base_dir, base_dir.c_str(), base_dir.size() + 1);
    std::memcpy(registry[i].pid_file, pid_file.c_str(), pid_file.size() + 1);
    registry[i].postmaster_pid.store(pid);
    registry[i].owner_pid.store(getpid());
    registry[i].state.store(kLive);
    return i;
  }
  return -1;
}

int FindSlot(const std::string& base_dir) {
  for (int i = 0; i < kRegistrySlots; ++i) {
    if (registry[i].state.load() == kLive && base_dir == registry[i].base_dir) return i;
  }
  return -1;
}

void UnregisterCluster(const std::string& base_dir) {
  const int slot = FindSlot(base_dir);
  if (slot >= 0) registry[slot].state.store(kFree);
}

// First line of postmaster.pid is the postmaster's pid.
pid_t ReadPostmasterPid(const std::string& data_dir) {
  std::ifstream in(data_dir + "/postmaster.pid");
  long pid = 0;
  if (!(in >> pid)) return 0;
  return static_cast<pid_t>(pid);
}

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using ConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;
using ResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

std::string TrimmedError(const char* message) {
  std::string text = message == nullptr ? "" : message;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Runs `sql` on `dsn`; returns the last result when it succeeded.
core::Result<ResultPtr> RunSql(const std::string& dsn, int port, const std::string& sql) {
  ConnPtr conn(PQconnectdb(dsn.c_str()));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return core::Unavailable("cannot connect to test cluster on port " + std::to_string(port) +
                             " to run `" + Truncated(sql, kSqlInMessage) +
                             "`: " + TrimmedError(PQerrorMessage(conn.get())));
  }
  ResultPtr result(PQexec(conn.get(), sql.c_str()));
  const ExecStatusType status =
      result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY) {
    const char* error =
        result != nullptr ? PQresultErrorMessage(result.get()) : PQerrorMessage(conn.get());
    return core::InvalidArgument("SQL `" + Truncated(sql, kSqlInMessage) +
                                 "` failed on test cluster port " + std::to_string(port) + ": " +
                                 TrimmedError(error));
  }
  return result;
}

}  // namespace

CommandResult RunAsPostgres(const std::vector<std::string>& argv) {
  // As root, start in / so the postgres user is not refused our working directory.
  return RunAsPostgresIn(argv, RunningAsRoot() ? "/" : "");
}

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    socklen_t length = sizeof address;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      port = ntohs(address.sin_port);
    }
  }
  close(fd);
  return port;
}

namespace {

// Creates the cluster's temporary directory, owned by postgres when we are root.
core::Result<std::string> MakeBaseDir() {
  std::string dir_template = TempRoot() + "/sluice-pg-XXXXXX";
  if (mkdtemp(dir_template.data()) == nullptr) {
    return core::FailedPrecondition("cannot create a temporary directory from " + dir_template +
                                    ": " + std::strerror(errno));
  }
  if (RunningAsRoot()) {
    const auto user = LookupPostgresUser();
    if (!user) {
      fs::remove_all(dir_template);
      return core::FailedPrecondition(
          "running as root but there is no `postgres` user to run the server as (install "
          "postgresql with scripts/install-deps.sh)");
    }
    if (chown(dir_template.c_str(), user->uid, user->gid) != 0) {
      const std::string error = std::strerror(errno);
      fs::remove_all(dir_template);
      return core::FailedPrecondition("cannot chown " + dir_template + " to postgres: " + error);
    }
  }
  return dir_template;
}

core::Status RunInitdb(const std::string& bin_dir, const std::string& base_dir,
                       const std::string& data_dir) {
  std::string failures;
  for (const char* locale : {"C.UTF-8", "C"}) {
    const std::vector<std::string> argv = {bin_dir + "/initdb",
                                           "-D",
                                           data_dir,
                                           "--auth=trust",
                                           "-U",
                                           "postgres",
                                           "--encoding=UTF8",
                                           std::string("--locale=") + locale,
                                           "--no-sync"};
    const CommandResult result = RunAsPostgresIn(argv, base_dir);
    if (result.exit_code == 0) return core::Status::Ok();
    failures += "`" + CommandLine(argv) + "` exited with " + std::to_string(result.exit_code) +
                ":\n" + Tail(result.output, kLogTailBytes) + "\n";
    std::error_code ec;
    fs::remove_all(data_dir, ec);  // initdb leaves a partial directory on some failures
  }
  return core::FailedPrecondition("initdb failed:\n" + failures);
}

core::Status AppendToFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::app);
  out << text;
  out.close();
  if (!out) return core::FailedPrecondition("cannot append to " + path);
  return core::Status::Ok();
}

bool PortWasTaken(const std::string& log) {
  return log.find("could not bind") != std::string::npos ||
         log.find("Address already in use") != std::string::npos ||
         log.find("could not create any TCP/IP sockets") != std::string::npos;
}

}  // namespace

core::Result<std::unique_ptr<PgCluster>> PgCluster::Start(Options options) {
  SLUICE_ASSIGN_OR_RETURN(const std::string bin_dir, PgBinDir());
  SLUICE_ASSIGN_OR_RETURN(std::string base_dir, MakeBaseDir());

  std::unique_ptr<PgCluster> cluster(new PgCluster());
  cluster->options_ = std::move(options);
  cluster->base_dir_ = base_dir;
  cluster->data_dir_ = base_dir + "/data";
  // From here on the destructor removes base_dir on every failure path.

  SLUICE_RETURN_IF_ERROR(RunInitdb(bin_dir, base_dir, cluster->data_dir_));

  std::string conf =
      "\n# sluice test cluster\n"
      "listen_addresses = '127.0.0.1'\n"
      "unix_socket_directories = " +
      ConfQuoted(base_dir) +
      "\n"
      "wal_level = logical\n"
      "max_replication_slots = 40\n"
      "max_wal_senders = 20\n"
      "fsync = off\n"
      "full_page_writes = off\n"
      "shared_buffers = 128MB\n"
      "logging_collector = off\n";
  for (const auto& [name, value] : cluster->options_.settings) {
    conf += name + " = " + ConfQuoted(value) + "\n";
  }
  const std::string conf_path = cluster->data_dir_ + "/postgresql.conf";
  SLUICE_RETURN_IF_ERROR(AppendToFile(conf_path, conf));

  std::string failures;
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    const int port = FreeLoopbackPort();
    if (port <= 0) return core::Unavailable("no free TCP port on 127.0.0.1");
    // A later `port` line overrides an earlier one, so retries just append.
    SLUICE_RETURN_IF_ERROR(AppendToFile(conf_path, "port = " + std::to_string(port) + "\n"));
    cluster->port_ = port;
    const size_t log_before = cluster->ServerLog().size();
    const core::Status started = cluster->StartAgain();
    if (started.ok()) break;
    const std::string new_log = cluster->ServerLog().substr(log_before);
    if (!PortWasTaken(new_log) || attempt == kStartAttempts) {
      return started.WithContext(failures.empty() ? "starting test cluster"
                                                  : "starting test cluster after " + failures);
    }
    failures += "port " + std::to_string(port) + " was taken; ";
  }

  if (cluster->options_.database != "postgres") {
    auto created = RunSql(cluster->Dsn("postgres"), cluster->port_,
                          "CREATE DATABASE " + SqlIdentifier(cluster->options_.database));
    if (!created.ok()) {
      return created.status().WithContext("creating test database\nserver log:\n" +
                                          Tail(cluster->ServerLog(), kLogTailBytes));
    }
  }
  return cluster;
}

PgCluster::~PgCluster() {
  if (base_dir_.empty()) return;
  if (running_) {
    (void)Stop(/*immediate=*/true);
  }
  UnregisterCluster(base_dir_);
  std::error_code ec;
  fs::remove_all(base_dir_, ec);
  if (ec) {
    std::fprintf(stderr, "PgCluster: cannot remove %s: %s\n", base_dir_.c_str(),
                 ec.message().c_str());
  }
}

std::string PgCluster::Dsn(const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) +
         " user=postgres dbname=" + ConninfoQuoted(dbname) + " connect_timeout=10";
}

core::Status PgCluster::Exec(const std::string& sql) const {
  auto result = RunSql(Dsn(), port_, sql);
  return result.ok() ? core::Status::Ok() : result.status();
}

core::Result<std::vector<PgCluster::Row>> PgCluster::Query(const std::string& sql) const {
  SLUICE_ASSIGN_OR_RETURN(ResultPtr result, RunSql(Dsn(), port_, sql));
  std::vector<Row> rows;
  const int row_count = PQntuples(result.get());
  const int column_count = PQnfields(result.get());
  rows.reserve(row_count);
  for (int r = 0; r < row_count; ++r) {
    Row row;
    row.reserve(column_count);
    for (int c = 0; c < column_count; ++c) {
      if (PQgetisnull(result.get(), r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(result.get(), r, c),
                                     static_cast<size_t>(PQgetlength(result.get(), r, c))));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

core::Result<std::string> PgCluster::QueryValue(const std::string& sql) const {
  SLUICE_ASSIGN_OR_RETURN(std::vector<Row> rows, Query(sql));
  if (rows.empty() || rows.front().empty()) {
    return core::NotFound("SQL `" + Truncated(sql, kSqlInMessage) + "` returned no rows");
  }
  if (!rows.front().front().has_value()) {
    return core::NotFound("SQL `" + Truncated(sql, kSqlInMessage) + "` returned NULL");
  }
  return *rows.front().front();
}

core::Status PgCluster::Stop(bool immediate) {
  SLUICE_ASSIGN_OR_RETURN(const std::string bin_dir, PgBinDir());
  const std::vector<std::string> argv = {bin_dir + "/pg_ctl",
                                         "-D",
                                         data_dir_,
                                         "-m",
                                         immediate ? "immediate" : "fast",
                                         "-w",
                                         "-t",
                                         "60",
                                         "stop"};
  const CommandResult result = RunAsPostgresIn(argv, base_dir_);
  running_ = false;
  if (const int slot = FindSlot(base_dir_); slot >= 0) registry[slot].postmaster_pid.store(0);
  if (result.exit_code != 0) {
    return core::Internal("`" + CommandLine(argv) + "` exited with " +
                          std::to_string(result.exit_code) + ": " + result.output +
                          "\nserver log:\n" + Tail(ServerLog(), kLogTailBytes));
  }
  return core::Status::Ok();
}

core::Status PgCluster::StartAgain() {
  if (running_) return core::FailedPrecondition("test cluster " + data_dir_ + " already running");
  SLUICE_ASSIGN_OR_RETURN(const std::string bin_dir, PgBinDir());
  const std::vector<std::string> argv = {bin_dir + "/pg_ctl",
                                         "-D",
                                         data_dir_,
                                         "-l",
                                         base_dir_ + "/server.log",
                                         "-w",
                                         "-t",
                                         "60",
                                         "start"};
  const CommandResult result = RunAsPostgresIn(argv, base_dir_);
  if (result.exit_code != 0) {
    return core::Unavailable("`" + CommandLine(argv) + "` exited with " +
                             std::to_string(result.exit_code) + ": " + result.output +
                             "\nserver log:\n" + Tail(ServerLog(), kLogTailBytes));
  }
  running_ = true;
  const pid_t pid = ReadPostmasterPid(data_dir_);
  if (const int slot = FindSlot(base_dir_); slot >= 0) {
    registry[slot].postmaster_pid.store(pid);
  } else {
    RegisterCluster(base_dir_, data_dir_ + "/postmaster.pid", pid);
  }
  return core::Status::Ok();
}

std::string PgCluster::ServerLog() const { return ReadWholeFile(base_dir_ + "/server.log"); }

core::Result<std::string> PostgresBinDir() { return PgBinDir(); }

}  // namespace sluice::testing
