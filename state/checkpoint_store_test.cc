#include "state/checkpoint_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace sluice::state {
namespace {

// Child processes are this test binary re-executed (fork + exec, so the child starts without
// the parent's RocksDB threads) with SLUICE_STATE_TEST_CHILD set; they do one job in a global
// test environment (after static initialization, before any test) and _exit with a code the
// parent checks.
//   "save <dir> <lsn>": open, save a checkpoint, _exit(0) without closing the store.
//   "open <dir>":       try to open; write the error to the pipe; exit 0 ok, 3 failed
//                       precondition, 4 other error.
//   "batches <dir>":    commits batch after batch (generation g, from the stored checkpoint's
//                       LSN + 1 on: the checkpoint at LSN g and kBatchTables table records with
//                       rows = g) and writes one byte to the pipe after each; runs until killed.
constexpr int kBatchTables = 40;

void RunChildJob(const std::string& job) {
  const std::string dir = std::getenv("SLUICE_STATE_TEST_DIR");
  if (job == "save") {
    auto store = CheckpointStore::Open(dir);
    if (!store.ok()) _exit(10);
    Checkpoint cp{core::Lsn(std::strtoull(std::getenv("SLUICE_STATE_TEST_LSN"), nullptr, 10)), 777,
                  888};
    if (!(*store)->SaveCheckpoint("crashy", cp).ok()) _exit(11);
    if (!(*store)->Put("crashy", "phase", "streaming").ok()) _exit(12);
    (void)store->release();  // never closed: the process just ends
    _exit(0);
  }
  if (job == "batches") {
    auto store = CheckpointStore::Open(dir);
    if (!store.ok()) _exit(10);
    const int fd = std::atoi(std::getenv("SLUICE_STATE_TEST_FD"));
    const std::string pad(16 << 10, 'p');  // big batches: a kill lands inside a write often
    auto stored = (*store)->LoadCheckpoint("crashy");
    if (!stored.ok()) _exit(13);
    const uint64_t first = stored->has_value() ? (*stored)->durable_lsn.value() + 1 : 1;
    for (uint64_t generation = first;; ++generation) {
      StateBatch batch;
      batch.SaveCheckpoint("crashy", {core::Lsn(generation), 0, 0});
      for (int t = 0; t < kBatchTables; ++t) {
        TableCopyRecord record;
        record.rows = generation;
        record.updated_at_unix_ms = static_cast<int64_t>(pad.size());
        batch.Put(TableCopyKey("crashy", "public.t" + std::to_string(t) + pad), record);
      }
      if (!(*store)->Commit(batch).ok()) _exit(11);
      if (write(fd, "c", 1) != 1) _exit(12);
    }
  }
  if (job == "open") {
    auto store = CheckpointStore::Open(dir);
    if (store.ok()) _exit(0);
    const std::string& m = store.status().message();
    const int fd = std::atoi(std::getenv("SLUICE_STATE_TEST_FD"));
    (void)!write(fd, m.data(), m.size());
    _exit(store.status().code() == core::StatusCode::kFailedPrecondition ? 3 : 4);
  }
  _exit(99);
}

class ChildJobEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (const char* job = std::getenv("SLUICE_STATE_TEST_CHILD")) RunChildJob(job);
  }
};

[[maybe_unused]] ::testing::Environment* const kChildJobEnvironment =
    ::testing::AddGlobalTestEnvironment(new ChildJobEnvironment);

struct ChildResult {
  int exit_code = -1;
  std::string output;
};

ChildResult RunChild(const std::string& job, const std::string& dir, const std::string& lsn = "") {
  int pipe_fds[2];
  EXPECT_EQ(pipe(pipe_fds), 0);
  // Everything the child needs is prepared before fork: between fork and exec a child of a
  // multi-threaded process may only make async-signal-safe calls.
  std::vector<std::string> env_strings = {
      "SLUICE_STATE_TEST_FD=" + std::to_string(pipe_fds[1]),
      "SLUICE_STATE_TEST_CHILD=" + job,
      "SLUICE_STATE_TEST_DIR=" + dir,
      "SLUICE_STATE_TEST_LSN=" + lsn,
  };
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  char arg0[] = "checkpoint_store_child";
  char* argv[] = {arg0, nullptr};
  pid_t pid = fork();
  if (pid == 0) {
    close(pipe_fds[0]);
    // Keep the child's own GoogleTest banner out of this test's output.
    const int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    execve("/proc/self/exe", argv, envp.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  ChildResult result;
  char buf[512];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) result.output.append(buf, n);
  close(pipe_fds[0]);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  result.exit_code = WEXITSTATUS(status);
  return result;
}

// Starts the child job `job` and SIGKILLs it `delay` after it has reported `reports` bytes on
// the pipe. Returns how many it reported before it died.
int RunChildUntilKilled(const std::string& job, const std::string& dir, int reports,
                        std::chrono::microseconds delay) {
  int pipe_fds[2];
  EXPECT_EQ(pipe(pipe_fds), 0);
  std::vector<std::string> env_strings = {
      "SLUICE_STATE_TEST_FD=" + std::to_string(pipe_fds[1]),
      "SLUICE_STATE_TEST_CHILD=" + job,
      "SLUICE_STATE_TEST_DIR=" + dir,
  };
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  char arg0[] = "checkpoint_store_child";
  char* argv[] = {arg0, nullptr};
  pid_t pid = fork();
  if (pid == 0) {
    close(pipe_fds[0]);
    const int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    execve("/proc/self/exe", argv, envp.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  int seen = 0;
  char byte;
  while (seen < reports && read(pipe_fds[0], &byte, 1) == 1) ++seen;
  std::this_thread::sleep_for(delay);
  kill(pid, SIGKILL);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "exit status " << status;
  close(pipe_fds[0]);
  return seen;
}

class CheckpointStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "sluice_state_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = root_ + "/state";  // does not exist yet: Open must create it
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::unique_ptr<CheckpointStore> OpenOrDie(bool read_only = false) {
    auto store = CheckpointStore::Open(dir_, read_only);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  std::string root_;
  std::string dir_;
};

TEST_F(CheckpointStoreTest, SaveLoadRoundTrip) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  auto none = store->LoadCheckpoint("orders");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());

  const Checkpoint cp{core::Lsn(0x16B374D848), 123456789, 1700000000123};
  ASSERT_TRUE(store->SaveCheckpoint("orders", cp).ok());
  auto loaded = store->LoadCheckpoint("orders");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ(**loaded, cp);
  // Pipelines are independent.
  auto other = store->LoadCheckpoint("customers");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
}

TEST_F(CheckpointStoreTest, SurvivesReopen) {
  const Checkpoint cp{core::Lsn(42), -5, 99};
  {
    auto store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->SaveCheckpoint("orders", cp).ok());
    ASSERT_TRUE(store->Put("orders", "phase", "streaming").ok());
  }
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  auto loaded = store->LoadCheckpoint("orders");
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ(**loaded, cp);
  auto phase = store->Get("orders", "phase");
  ASSERT_TRUE(phase.ok() && phase->has_value());
  EXPECT_EQ(**phase, "streaming");
}

TEST_F(CheckpointStoreTest, CheckpointNeverMovesBackwards) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->SaveCheckpoint("p", {core::Lsn(200), 2, 20}).ok());
  // Lower LSN: accepted (Ok) but ignored.
  ASSERT_TRUE(store->SaveCheckpoint("p", {core::Lsn(100), 1, 30}).ok());
  auto loaded = store->LoadCheckpoint("p");
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->durable_lsn, core::Lsn(200));
  EXPECT_EQ((*loaded)->updated_at_unix_ms, 20);
  // Equal LSN refreshes the record.
  ASSERT_TRUE(store->SaveCheckpoint("p", {core::Lsn(200), 2, 40}).ok());
  loaded = store->LoadCheckpoint("p");
  EXPECT_EQ((*loaded)->updated_at_unix_ms, 40);
  ASSERT_TRUE(store->SaveCheckpoint("p", {core::Lsn(300), 3, 50}).ok());
  loaded = store->LoadCheckpoint("p");
  EXPECT_EQ((*loaded)->durable_lsn, core::Lsn(300));
}

TEST_F(CheckpointStoreTest, DeletedCheckpointStartsOverAtAnyPosition) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->SaveCheckpoint("p", {core::Lsn(500), 5, 50}).ok());
  ASSERT_TRUE(store->SaveCheckpoint("q", {core::Lsn(700), 7, 70}).ok());
  ASSERT_TRUE(store->DeleteCheckpoint("p").ok());
  auto gone = store->LoadCheckpoint("p");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  ASSERT_TRUE(store->DeleteCheckpoint("p").ok()) << "deleting a missing checkpoint is Ok";
  // After the delete a lower position is taken (a new slot may start anywhere).
  ASSERT_TRUE(store->SaveCheckpoint("p", {core::Lsn(100), 1, 80}).ok());
  auto loaded = store->LoadCheckpoint("p");
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->durable_lsn, core::Lsn(100));
  auto other = store->LoadCheckpoint("q");
  ASSERT_TRUE(other.ok() && other->has_value());
  EXPECT_EQ((*other)->durable_lsn, core::Lsn(700)) << "other pipelines keep theirs";
}

TEST_F(CheckpointStoreTest, ConcurrentSavesKeepTheHighest) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (uint64_t i = 0; i < 50; ++i) {
        // Interleaved, out-of-order LSNs from several threads.
        EXPECT_TRUE(store->SaveCheckpoint("p", {core::Lsn(i * 4 + t + 1), 0, 0}).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  auto loaded = store->LoadCheckpoint("p");
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->durable_lsn, core::Lsn(49 * 4 + 3 + 1));
}

TEST_F(CheckpointStoreTest, SecondOpenInSameProcessIsInUse) {
  auto first = OpenOrDie();
  ASSERT_NE(first, nullptr);
  auto second = CheckpointStore::Open(dir_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(), "state directory " + dir_ +
                                           " is in use by another sluice process (lock held on " +
                                           dir_ + "/LOCK)");
  // Released on close.
  first.reset();
  EXPECT_NE(OpenOrDie(), nullptr);
}

TEST_F(CheckpointStoreTest, OpenFromAnotherProcessWhileHeldIsInUse) {
  auto first = OpenOrDie();
  ASSERT_NE(first, nullptr);
  ChildResult child = RunChild("open", dir_);
  EXPECT_EQ(child.exit_code, 3) << child.output;
  EXPECT_EQ(child.output, "state directory " + dir_ +
                              " is in use by another sluice process (lock held on " + dir_ +
                              "/LOCK)");
  first.reset();
  child = RunChild("open", dir_);
  EXPECT_EQ(child.exit_code, 0) << child.output;
}

TEST_F(CheckpointStoreTest, ReadOnlyOpenSeesDataWhileWriterRuns) {
  auto writer = OpenOrDie();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->SaveCheckpoint("orders", {core::Lsn(500), 5, 6}).ok());
  ASSERT_TRUE(writer->Put("orders", "phase", "snapshot").ok());

  auto reader = OpenOrDie(/*read_only=*/true);
  ASSERT_NE(reader, nullptr);
  EXPECT_TRUE(reader->read_only());
  auto loaded = reader->LoadCheckpoint("orders");
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->durable_lsn, core::Lsn(500));
  auto phase = reader->Get("orders", "phase");
  ASSERT_TRUE(phase.ok() && phase->has_value());
  EXPECT_EQ(**phase, "snapshot");
  auto pipelines = reader->Pipelines();
  ASSERT_TRUE(pipelines.ok());
  EXPECT_EQ(*pipelines, std::vector<std::string>{"orders"});

  // Writes through a read-only store are refused.
  auto refused = reader->SaveCheckpoint("orders", {core::Lsn(600), 0, 0});
  EXPECT_EQ(refused.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reader->Put("orders", "k", "v").code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reader->Delete("orders", "k").code(), core::StatusCode::kFailedPrecondition);

  // The writer keeps working; a fresh read-only open sees its new data.
  ASSERT_TRUE(writer->SaveCheckpoint("orders", {core::Lsn(700), 7, 8}).ok());
  reader.reset();
  reader = OpenOrDie(true);
  ASSERT_NE(reader, nullptr);
  loaded = reader->LoadCheckpoint("orders");
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->durable_lsn, core::Lsn(700));
}

TEST_F(CheckpointStoreTest, ReadOnlyOpensRepeatedlyWhileWriterIsBusy) {
  auto writer = OpenOrDie();
  ASSERT_NE(writer, nullptr);
  std::atomic<uint64_t> saved{0};
  std::atomic<bool> stop{false};
  std::thread busy([&] {
    // Enough writes to roll memtables and WAL files under the readers.
    const std::string filler(64 << 10, 'x');
    for (uint64_t i = 1; !stop.load(); ++i) {
      ASSERT_TRUE(writer->SaveCheckpoint("p", {core::Lsn(i), 0, 0}).ok());
      ASSERT_TRUE(writer->Put("p", "filler/" + std::to_string(i % 200), filler).ok());
      saved.store(i);
    }
  });
  while (saved.load() == 0) std::this_thread::yield();
  for (int round = 0; round < 30; ++round) {
    const uint64_t before = saved.load();
    auto reader = CheckpointStore::Open(dir_, /*read_only=*/true);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    auto loaded = (*reader)->LoadCheckpoint("p");
    ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status().ToString();
    EXPECT_GE((*loaded)->durable_lsn.value(), before);
  }
  stop.store(true);
  busy.join();
}

TEST_F(CheckpointStoreTest, ReadOnlyOpenOfMissingStoreIsNotFound) {
  auto store = CheckpointStore::Open(dir_, /*read_only=*/true);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), core::StatusCode::kNotFound);
  EXPECT_NE(store.status().message().find(dir_), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_));  // read-only never creates anything
}

TEST_F(CheckpointStoreTest, CheckpointSurvivesProcessExitWithoutClose) {
  ChildResult child = RunChild("save", dir_, "123456");
  ASSERT_EQ(child.exit_code, 0) << child.output;
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  auto loaded = store->LoadCheckpoint("crashy");
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status().ToString();
  EXPECT_EQ(**loaded, (Checkpoint{core::Lsn(123456), 777, 888}));
  auto phase = store->Get("crashy", "phase");
  ASSERT_TRUE(phase.ok() && phase->has_value());
  EXPECT_EQ(**phase, "streaming");
}

TEST_F(CheckpointStoreTest, GenericValuesAreNamespacedByPipeline) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("a", "snapshot/public.orders", "done").ok());
  ASSERT_TRUE(store->Put("a", "snapshot/public.items", "42").ok());
  ASSERT_TRUE(store->Put("a", "phase", "copy").ok());
  ASSERT_TRUE(store->Put("a-b", "snapshot/public.x", "other pipeline").ok());
  ASSERT_TRUE(store->Put("b", "bin", std::string("\0\x01\xff", 3)).ok());
  // A value named like the checkpoint does not clobber it.
  ASSERT_TRUE(store->SaveCheckpoint("a", {core::Lsn(9), 0, 0}).ok());
  ASSERT_TRUE(store->Put("a", "checkpoint", "not a checkpoint").ok());
  auto cp = store->LoadCheckpoint("a");
  ASSERT_TRUE(cp.ok() && cp->has_value()) << cp.status().ToString();
  EXPECT_EQ((*cp)->durable_lsn, core::Lsn(9));

  auto snap = store->List("a", "snapshot/");
  ASSERT_TRUE(snap.ok());
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(*snap, (Pairs{{"snapshot/public.items", "42"}, {"snapshot/public.orders", "done"}}));
  auto all = store->List("a", "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 4u);
  auto bin = store->Get("b", "bin");
  ASSERT_TRUE(bin.ok() && bin->has_value());
  EXPECT_EQ(**bin, std::string("\0\x01\xff", 3));

  ASSERT_TRUE(store->Delete("a", "phase").ok());
  ASSERT_TRUE(store->Delete("a", "never-there").ok());
  auto phase = store->Get("a", "phase");
  ASSERT_TRUE(phase.ok());
  EXPECT_FALSE(phase->has_value());

  ASSERT_TRUE(store->SaveCheckpoint("c", {core::Lsn(1), 0, 0}).ok());
  auto names = store->Pipelines();
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "a-b", "b", "c"}));
}

TEST_F(CheckpointStoreTest, RejectsBadNames) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->SaveCheckpoint("", {core::Lsn(1), 0, 0}).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->SaveCheckpoint("a/b", {core::Lsn(1), 0, 0}).code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Put("a", "", "v").code(), core::StatusCode::kInvalidArgument);
  EXPECT_FALSE(store->Get("x/y", "k").ok());
  EXPECT_FALSE(store->List("", "").ok());
}

TEST_F(CheckpointStoreTest, OpenFailsWhenDirectoryCannotBeCreated) {
  const std::string file = root_ + "/plainfile";
  std::ofstream(file) << "x";
  auto store = CheckpointStore::Open(file + "/state");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find(file + "/state"), std::string::npos);
}

TEST_F(CheckpointStoreTest, BatchWritesEveryRecordTogetherAndSurvivesReopen) {
  const Checkpoint cp{core::Lsn(0x5000), 11, 12};
  const SlotRecord slot{"sluice_p", SlotState::kCreated, core::Lsn(0x4000)};
  const TableCopyRecord copy{10, 20, 30, 40, 1, 1, true, 50, core::Lsn(0x4000)};
  const MigrationRecord migration{MigrationPhase::kCutover, core::Lsn(0x4800), core::Lsn(0x100),
                                  60};
  {
    auto store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Save(SnapshotRequestKey("p"), SnapshotRequest{{"public.a"}}).ok());
    StateBatch batch;
    batch.SaveCheckpoint("p", cp)
        .Put(SlotKey("p"), slot)
        .Put(SnapshotKey("p"), SnapshotRecord{true})
        .Put(TableCopyKey("p", "public.a"), copy)
        .Put(TableCopyKey("p", "public.b"), TableCopyRecord{})
        .Delete(SnapshotRequestKey("p"))
        .Put(MigrationKey("m"), migration);
    EXPECT_EQ(batch.size(), 7u);
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  auto loaded_cp = store->LoadCheckpoint("p");
  ASSERT_TRUE(loaded_cp.ok() && loaded_cp->has_value()) << loaded_cp.status().ToString();
  EXPECT_EQ(**loaded_cp, cp);
  auto loaded_slot = store->Load(SlotKey("p"));
  ASSERT_TRUE(loaded_slot.ok() && loaded_slot->has_value());
  EXPECT_EQ(**loaded_slot, slot);
  auto snapshot = store->Load(SnapshotKey("p"));
  ASSERT_TRUE(snapshot.ok() && snapshot->has_value());
  EXPECT_TRUE((*snapshot)->done);
  auto copies = store->LoadAll(TableCopyPrefix("p"));
  ASSERT_TRUE(copies.ok()) << copies.status().ToString();
  EXPECT_EQ(*copies, (std::map<std::string, TableCopyRecord>{{"public.a", copy},
                                                             {"public.b", TableCopyRecord{}}}));
  auto request = store->Load(SnapshotRequestKey("p"));
  ASSERT_TRUE(request.ok());
  EXPECT_FALSE(request->has_value());
  auto loaded_migration = store->Load(MigrationKey("m"));
  ASSERT_TRUE(loaded_migration.ok() && loaded_migration->has_value());
  EXPECT_EQ(**loaded_migration, migration);
  // A migration is not a pipeline.
  auto pipelines = store->Pipelines();
  ASSERT_TRUE(pipelines.ok());
  EXPECT_EQ(*pipelines, std::vector<std::string>{"p"});
}

TEST_F(CheckpointStoreTest, BatchWithABadNameWritesNothing) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  StateBatch batch;
  batch.SaveCheckpoint("p", {core::Lsn(9), 0, 0})
      .Put(SnapshotKey("p"), SnapshotRecord{true})
      .Put(SlotKey("a/b"), SlotRecord{"s", SlotState::kCreated, core::Lsn(1)});
  EXPECT_EQ(store->Commit(batch).code(), core::StatusCode::kInvalidArgument);
  auto cp = store->LoadCheckpoint("p");
  ASSERT_TRUE(cp.ok());
  EXPECT_FALSE(cp->has_value());
  auto snapshot = store->Load(SnapshotKey("p"));
  ASSERT_TRUE(snapshot.ok());
  EXPECT_FALSE(snapshot->has_value());
  EXPECT_TRUE(store->Commit(StateBatch()).ok()) << "an empty batch is nothing to do";
}

TEST_F(CheckpointStoreTest, BatchKeepsCheckpointsFromMovingBackwards) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->SaveCheckpoint("p", {core::Lsn(200), 2, 20}).ok());
  // Behind the stored one: left out; the rest of the batch lands.
  StateBatch behind;
  behind.SaveCheckpoint("p", {core::Lsn(100), 1, 10}).Put(SnapshotKey("p"), SnapshotRecord{true});
  ASSERT_TRUE(store->Commit(behind).ok());
  EXPECT_EQ((*store->LoadCheckpoint("p"))->durable_lsn, core::Lsn(200));
  EXPECT_TRUE((*store->Load(SnapshotKey("p")))->done);
  // Within one batch, against the one before it.
  StateBatch twice;
  twice.SaveCheckpoint("p", {core::Lsn(400), 4, 40}).SaveCheckpoint("p", {core::Lsn(300), 3, 30});
  ASSERT_TRUE(store->Commit(twice).ok());
  EXPECT_EQ((*store->LoadCheckpoint("p"))->durable_lsn, core::Lsn(400));
  // After a delete in the batch, any position is taken.
  StateBatch over;
  over.DeleteCheckpoint("p").SaveCheckpoint("p", {core::Lsn(50), 5, 50});
  ASSERT_TRUE(store->Commit(over).ok());
  EXPECT_EQ(**store->LoadCheckpoint("p"), (Checkpoint{core::Lsn(50), 5, 50}));
}

TEST_F(CheckpointStoreTest, BatchThroughAReadOnlyStoreIsRefused) {
  { ASSERT_NE(OpenOrDie(), nullptr); }
  auto reader = OpenOrDie(/*read_only=*/true);
  ASSERT_NE(reader, nullptr);
  StateBatch batch;
  batch.Put(SnapshotKey("p"), SnapshotRecord{true});
  EXPECT_EQ(reader->Commit(batch).code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reader->Save(SnapshotKey("p"), SnapshotRecord{true}).code(),
            core::StatusCode::kFailedPrecondition);
}

TEST_F(CheckpointStoreTest, DamagedRecordIsCorruptionNamingWhere) {
  auto store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("p", "slot", std::string("\x01\x05", 2)).ok());
  auto slot = store->Load(SlotKey("p"));
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.status().code(), core::StatusCode::kCorruption);
  EXPECT_NE(slot.status().message().find("pipeline/p/kv/slot"), std::string::npos)
      << slot.status().message();
  ASSERT_TRUE(store->Put("p", "copy/public.a", std::string("\x07", 1)).ok());
  EXPECT_EQ(store->LoadAll(TableCopyPrefix("p")).status().code(), core::StatusCode::kCorruption);
}

// kill -9 at any moment of a stream of big batches: after reopening, every record of the last
// batch is there, or none is; never a mix of two batches.
TEST_F(CheckpointStoreTest, BatchIsAllOrNothingAcrossKillNine) {
  uint64_t previous = 0;   // the generation the last round ended with
  std::mt19937 random(3);  // seeded: the same schedule every run
  for (int round = 0; round < 8; ++round) {
    // The kill lands somewhere in the child's next batches, not just after a commit.
    const auto delay = std::chrono::microseconds(random() % 30000);
    const int reported = RunChildUntilKilled("batches", dir_, 2 + round * 3, delay);
    ASSERT_GT(reported, 0);
    auto store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    auto cp = store->LoadCheckpoint("crashy");
    ASSERT_TRUE(cp.ok() && cp->has_value()) << cp.status().ToString();
    const uint64_t generation = (*cp)->durable_lsn.value();
    auto copies = store->LoadAll(TableCopyPrefix("crashy"));
    ASSERT_TRUE(copies.ok()) << copies.status().ToString();
    ASSERT_EQ(copies->size(), static_cast<size_t>(kBatchTables));
    for (const auto& [table, record] : *copies) {
      ASSERT_EQ(record.rows, generation) << table.substr(0, 12) << " in round " << round;
    }
    // Every batch the child reported is durable.
    EXPECT_GE(generation, previous + static_cast<uint64_t>(reported));
    previous = generation;
  }
}

// A store as the previous format wrote it (format version 1, JSON records, written here through
// RocksDB directly with the old bytes) opens and reads the same, read-only and writable.
TEST_F(CheckpointStoreTest, StoreOfFormatOneOpensAndReadsTheSame) {
  std::string checkpoint_bytes(1, '\x01');
  for (uint64_t v : {uint64_t{0x16B374D848}, uint64_t{777}, uint64_t{888}}) {
    for (int i = 0; i < 8; ++i)
      checkpoint_bytes.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    const std::vector<std::pair<std::string, std::string>> old = {
        {"meta/format_version", "1"},
        {"pipeline/orders/checkpoint", checkpoint_bytes},
        {"pipeline/orders/kv/slot",
         R"({"consistent_point":"16/B3700000","name":"sluice_orders","state":"created"})"},
        {"pipeline/orders/kv/snapshot", "done"},
        {"pipeline/orders/kv/copy/public.items",
         R"({"bytes":300,"done":true,"estimated_bytes":400,"estimated_rows":20,"ranges":1,)"
         R"("ranges_done":1,"rows":15,"snapshot_lsn":"16/B3700000","updated_at_unix_ms":5})"},
        {"pipeline/orders/kv/copy/public.more", R"({"done":false})"},
        {"pipeline/orders/kv/resnapshot", R"({"tables":["public.more"]})"},
        {"pipeline/orders/kv/last_error",
         R"({"at_unix_ms":1700000000123,"message":"boom","permanent":false})"},
    };
    for (const auto& [key, value] : old) {
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, value).ok());
    }
    ASSERT_TRUE(db->Close().ok());
  }
  auto format_version = [this] {
    rocksdb::DB* raw = nullptr;
    EXPECT_TRUE(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string version;
    EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "meta/format_version", &version).ok());
    return version;
  };
  auto expect_as_written = [](CheckpointStore& store) {
    auto cp = store.LoadCheckpoint("orders");
    ASSERT_TRUE(cp.ok() && cp->has_value()) << cp.status().ToString();
    EXPECT_EQ(**cp, (Checkpoint{core::Lsn(0x16B374D848), 777, 888}));
    auto slot = store.Load(SlotKey("orders"));
    ASSERT_TRUE(slot.ok() && slot->has_value()) << slot.status().ToString();
    EXPECT_EQ(**slot, (SlotRecord{"sluice_orders", SlotState::kCreated, core::Lsn(0x16B3700000)}));
    auto snapshot = store.Load(SnapshotKey("orders"));
    ASSERT_TRUE(snapshot.ok() && snapshot->has_value());
    EXPECT_TRUE((*snapshot)->done);
    auto copies = store.LoadAll(TableCopyPrefix("orders"));
    ASSERT_TRUE(copies.ok()) << copies.status().ToString();
    EXPECT_EQ(*copies,
              (std::map<std::string, TableCopyRecord>{
                  {"public.items", {15, 300, 20, 400, 1, 1, true, 5, core::Lsn(0x16B3700000)}},
                  {"public.more", TableCopyRecord{}}}));
    auto request = store.Load(SnapshotRequestKey("orders"));
    ASSERT_TRUE(request.ok() && request->has_value());
    EXPECT_EQ((*request)->tables, std::vector<std::string>{"public.more"});
    auto error = store.Load(LastErrorKey("orders"));
    ASSERT_TRUE(error.ok() && error->has_value());
    EXPECT_EQ(**error, (PipelineErrorRecord{"boom", 1700000000123, false}));
  };

  {
    auto reader = OpenOrDie(/*read_only=*/true);
    ASSERT_NE(reader, nullptr);
    expect_as_written(*reader);
  }
  EXPECT_EQ(format_version(), "1") << "a read-only open changes nothing";
  {
    auto store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    expect_as_written(*store);
    // Saved again: in the current encoding, and read back the same.
    ASSERT_TRUE(store
                    ->Save(SlotKey("orders"), SlotRecord{"sluice_orders", SlotState::kAdopted,
                                                         core::Lsn(0x16B3700000)})
                    .ok());
    auto raw = store->Get("orders", "slot");
    ASSERT_TRUE(raw.ok() && raw->has_value());
    EXPECT_EQ((**raw)[0], 1) << "version byte, not JSON";
    EXPECT_EQ((*store->Load(SlotKey("orders")))->state, SlotState::kAdopted);
  }
  EXPECT_EQ(format_version(), "2") << "a writable open marks the store as the new format";
}

TEST_F(CheckpointStoreTest, StoreOfAnUnknownFormatIsRefused) {
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "meta/format_version", "3").ok());
    ASSERT_TRUE(db->Close().ok());
  }
  for (bool read_only : {false, true}) {
    auto store = CheckpointStore::Open(dir_, read_only);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), core::StatusCode::kFailedPrecondition);
    EXPECT_NE(store.status().message().find("format version '3'"), std::string::npos)
        << store.status().message();
  }
}

TEST(CheckpointEncodingTest, IsVersionedLittleEndian) {
  const Checkpoint cp{core::Lsn(0x0102030405060708), -1, 0x11};
  const std::string bytes = EncodeRecord(cp);
  ASSERT_EQ(bytes.size(), 25u);
  EXPECT_EQ(bytes[0], 1);
  EXPECT_EQ(static_cast<uint8_t>(bytes[1]), 0x08);
  EXPECT_EQ(static_cast<uint8_t>(bytes[8]), 0x01);
  EXPECT_EQ(static_cast<uint8_t>(bytes[9]), 0xff);
  EXPECT_EQ(static_cast<uint8_t>(bytes[17]), 0x11);
  Checkpoint decoded;
  ASSERT_TRUE(DecodeRecord(bytes, &decoded).ok());
  EXPECT_EQ(decoded, cp);
}

TEST(CheckpointEncodingTest, RejectsUnknownVersionsAndSizes) {
  std::string bytes = EncodeRecord(Checkpoint{core::Lsn(1), 0, 0});
  Checkpoint decoded;
  EXPECT_EQ(DecodeRecord("", &decoded).code(), core::StatusCode::kCorruption);
  EXPECT_EQ(DecodeRecord(bytes.substr(0, 24), &decoded).code(), core::StatusCode::kCorruption);
  EXPECT_EQ(DecodeRecord(bytes + "x", &decoded).code(), core::StatusCode::kCorruption);
  bytes[0] = 2;
  const core::Status bad = DecodeRecord(bytes, &decoded);
  EXPECT_EQ(bad.code(), core::StatusCode::kCorruption);
  EXPECT_NE(bad.message().find("version 2"), std::string::npos) << bad.message();
}

}  // namespace
}  // namespace sluice::state
