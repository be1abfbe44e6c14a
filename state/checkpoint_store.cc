#include "state/checkpoint_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>
#include <thread>

namespace sluice::state {
namespace {

constexpr char kFormatVersion[] = "2";
// Format 1 kept the records besides the checkpoint as JSON; they are still read (see
// legacy_records.h).
constexpr char kFormatVersion1[] = "1";

// A read-only open can race with the writer recycling a WAL or MANIFEST file it just listed;
// such an open fails with an I/O error and succeeds when retried.
constexpr int kReadOnlyOpenAttempts = 5;

// Pipelines and migrations alike.
core::Status CheckPipelineName(const std::string& pipeline) {
  if (pipeline.empty() || pipeline.find('/') != std::string::npos) {
    return core::InvalidArgument("invalid pipeline name '" + pipeline +
                                 "' for the state store (must be non-empty, without '/')");
  }
  return core::Status::Ok();
}

core::Status CheckKey(const std::string& pipeline, const std::string& key) {
  SLUICE_RETURN_IF_ERROR(CheckPipelineName(pipeline));
  if (key.empty()) {
    return core::InvalidArgument("empty state key for pipeline '" + pipeline + "'");
  }
  return core::Status::Ok();
}

core::Status FromRocks(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return core::Status::Ok();
  std::string message = context + ": " + s.ToString();
  if (s.IsCorruption()) return core::Corruption(message);
  if (s.IsNotFound()) return core::NotFound(message);
  if (s.IsNoSpace()) return core::ResourceExhausted(message);
  if (s.IsIOError()) return core::Unavailable(message);
  return core::Internal(message);
}

rocksdb::Options StoreOptions() {
  rocksdb::Options options;
  options.create_if_missing = true;
  // The store holds a few keys per pipeline; keep its footprint in the daemon small.
  options.write_buffer_size = 4 << 20;
  options.max_write_buffer_number = 2;
  options.max_total_wal_size = 16 << 20;
  options.max_open_files = 64;
  options.max_background_jobs = 2;
  options.keep_log_file_num = 2;
  options.max_log_file_size = 1 << 20;
  options.max_manifest_file_size = 4 << 20;
  options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(1 << 20);
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // WAL stays on (the default): synced writes go to it before they are acknowledged.
  return options;
}

// RocksDB reports a held LOCK as an I/O error: "lock hold by current process" within one
// process, "While lock file: <dir>/LOCK: Resource temporarily unavailable" across processes.
bool IsLockHeld(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string text = s.ToString();
  return text.find("lock hold by current process") != std::string::npos ||
         text.find("While lock file") != std::string::npos ||
         text.find("/LOCK") != std::string::npos;
}

}  // namespace

CheckpointStore::CheckpointStore(std::string dir, bool read_only, std::unique_ptr<rocksdb::DB> db)
    : dir_(std::move(dir)), read_only_(read_only), db_(std::move(db)) {}

CheckpointStore::~CheckpointStore() {
  if (db_ == nullptr) return;
  rocksdb::Status s = db_->Close();
  if (!s.ok()) spdlog::warn("closing state store {}: {}", dir_, s.ToString());
}

core::Result<std::unique_ptr<CheckpointStore>> CheckpointStore::Open(const std::string& dir,
                                                                     bool read_only) {
  if (dir.empty()) return core::InvalidArgument("state directory is empty");
  std::error_code ec;
  if (read_only) {
    if (!std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec)) {
      return core::NotFound("state directory " + dir +
                            " holds no checkpoint store (has sluice run with this state_dir?)");
    }
  } else {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return core::FailedPrecondition("cannot create state directory " + dir + ": " + ec.message());
    }
  }

  const rocksdb::Options options = StoreOptions();
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (read_only) {
    for (int attempt = 1; attempt <= kReadOnlyOpenAttempts; ++attempt) {
      s = rocksdb::DB::OpenForReadOnly(options, dir, &raw);
      if (s.ok() || !(s.IsIOError() || s.IsCorruption() || s.IsPathNotFound())) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    }
  } else {
    s = rocksdb::DB::Open(options, dir, &raw);
  }
  if (!s.ok()) {
    if (!read_only && IsLockHeld(s)) {
      return core::FailedPrecondition("state directory " + dir +
                                      " is in use by another sluice process (lock held on " + dir +
                                      "/LOCK)");
    }
    return FromRocks(s,
                     std::string("opening state store ") + dir + (read_only ? " read-only" : ""));
  }
  std::unique_ptr<CheckpointStore> store(
      new CheckpointStore(dir, read_only, std::unique_ptr<rocksdb::DB>(raw)));

  std::string version;
  s = store->db_->Get(rocksdb::ReadOptions(), kFormatVersionKey, &version);
  if (s.IsNotFound()) {
    if (!read_only) {
      SLUICE_RETURN_IF_ERROR(store->Write(kFormatVersionKey, &version.assign(kFormatVersion),
                                          "writing format version"));
    }
  } else if (!s.ok()) {
    return FromRocks(s, "state store " + dir + ": reading format version");
  } else if (version == kFormatVersion1) {
    if (!read_only) {
      // Records saved from now on are in the new encoding, which an older sluice cannot read:
      // it refuses the directory at open instead of failing on the first such record.
      SLUICE_RETURN_IF_ERROR(store->Write(kFormatVersionKey, &version.assign(kFormatVersion),
                                          "upgrading format version"));
      spdlog::info("state store {}: format version 1 upgraded to {}", dir, kFormatVersion);
    }
  } else if (version != kFormatVersion) {
    return core::FailedPrecondition("state directory " + dir + " has format version '" + version +
                                    "'; this sluice understands versions 1 and " + kFormatVersion +
                                    " (was it written by a newer sluice?)");
  }
  spdlog::debug("opened state store {}{}", dir, read_only ? " read-only" : "");
  return store;
}

core::Status CheckpointStore::CheckWritable(const char* what) const {
  if (!read_only_) return core::Status::Ok();
  return core::FailedPrecondition(std::string("state store ") + dir_ + " is open read-only; " +
                                  what + " is not allowed");
}

core::Status CheckpointStore::Write(const std::string& key, const std::string* value,
                                    const std::string& what) {
  rocksdb::WriteOptions options;
  options.sync = true;  // acknowledged means on disk
  rocksdb::Status s = value != nullptr ? db_->Put(options, key, *value) : db_->Delete(options, key);
  return FromRocks(s, "state store " + dir_ + ": " + what);
}

core::Status CheckpointStore::SaveCheckpoint(const std::string& pipeline,
                                             const Checkpoint& checkpoint) {
  StateBatch batch;
  batch.SaveCheckpoint(pipeline, checkpoint);
  return Commit(batch);
}

core::Status CheckpointStore::DeleteCheckpoint(const std::string& pipeline) {
  StateBatch batch;
  batch.DeleteCheckpoint(pipeline);
  return Commit(batch);
}

core::Status CheckpointStore::Commit(const StateBatch& batch) {
  for (const StateBatch::Write& write : batch.writes_) {
    SLUICE_RETURN_IF_ERROR(CheckPipelineName(write.owner));
  }
  SLUICE_RETURN_IF_ERROR(CheckWritable("writing"));
  if (batch.empty()) return core::Status::Ok();

  std::lock_guard<std::mutex> lock(checkpoint_mu_);
  rocksdb::WriteBatch writes;
  std::string what;
  // Each pipeline's checkpoint as the batch leaves it so far (nullopt: none).
  std::map<std::string, std::optional<core::Lsn>> checkpoints;
  for (const StateBatch::Write& write : batch.writes_) {
    std::string step;
    rocksdb::Status s;
    switch (write.kind) {
      case StateBatch::Kind::kPut:
        step = std::string(write.record_name) + " of '" + write.owner + "'";
        s = writes.Put(write.key, write.value);
        break;
      case StateBatch::Kind::kDelete:
        step = std::string("deleting the ") + write.record_name + " of '" + write.owner + "'";
        s = writes.Delete(write.key);
        break;
      case StateBatch::Kind::kDeleteCheckpoint:
        step = "deleting the checkpoint of pipeline '" + write.owner + "'";
        s = writes.Delete(write.key);
        checkpoints[write.owner] = std::nullopt;
        break;
      case StateBatch::Kind::kSaveCheckpoint: {
        auto current = checkpoints.find(write.owner);
        if (current == checkpoints.end()) {
          SLUICE_ASSIGN_OR_RETURN(std::optional<Checkpoint> stored, LoadCheckpoint(write.owner));
          std::optional<core::Lsn> lsn;
          if (stored) lsn = stored->durable_lsn;
          current = checkpoints.emplace(write.owner, lsn).first;
        }
        if (current->second && write.checkpoint_lsn < *current->second) {
          spdlog::debug("pipeline {}: ignoring checkpoint {} behind stored {}", write.owner,
                        write.checkpoint_lsn.ToString(), current->second->ToString());
          continue;
        }
        step = "saving checkpoint " + write.checkpoint_lsn.ToString() + " for pipeline '" +
               write.owner + "'";
        s = writes.Put(write.key, write.value);
        current->second = write.checkpoint_lsn;
        break;
      }
    }
    SLUICE_RETURN_IF_ERROR(FromRocks(s, "state store " + dir_ + ": " + step));
    what += (what.empty() ? "" : ", ") + step;
  }
  if (writes.Count() == 0) return core::Status::Ok();  // only checkpoints that were behind
  rocksdb::WriteOptions options;
  options.sync = true;  // acknowledged means on disk
  return FromRocks(db_->Write(options, &writes), "state store " + dir_ + ": " + what);
}

core::Result<std::optional<std::string>> CheckpointStore::ReadKey(const std::string& owner,
                                                                  const std::string& key,
                                                                  const char* what) {
  SLUICE_RETURN_IF_ERROR(CheckPipelineName(owner));
  std::string bytes;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &bytes);
  if (s.IsNotFound()) return std::optional<std::string>();
  SLUICE_RETURN_IF_ERROR(FromRocks(
      s, "state store " + dir_ + ": reading the " + what + " of '" + owner + "' (" + key + ")"));
  return std::optional<std::string>(std::move(bytes));
}

core::Result<std::vector<std::pair<std::string, std::string>>> CheckpointStore::ScanPrefix(
    const std::string& owner, const std::string& prefix, const char* what) {
  SLUICE_RETURN_IF_ERROR(CheckPipelineName(owner));
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    out.emplace_back(it->key().ToString().substr(prefix.size()), it->value().ToString());
  }
  SLUICE_RETURN_IF_ERROR(FromRocks(it->status(), "state store " + dir_ + ": listing the " + what +
                                                     "s of '" + owner + "' (" + prefix + ")"));
  return out;
}

core::Status CheckpointStore::InContext(const core::Status& status, const std::string& owner,
                                        const std::string& key) const {
  if (status.ok()) return status;
  return status.WithContext("state store " + dir_ + ": '" + owner + "' (" + key + ")");
}

core::Status CheckpointStore::Put(const std::string& pipeline, const std::string& key,
                                  const std::string& value) {
  SLUICE_RETURN_IF_ERROR(CheckKey(pipeline, key));
  SLUICE_RETURN_IF_ERROR(CheckWritable("Put"));
  return Write(PipelineValueRoot(pipeline) + key, &value,
               "writing '" + key + "' for pipeline '" + pipeline + "'");
}

core::Result<std::optional<std::string>> CheckpointStore::Get(const std::string& pipeline,
                                                              const std::string& key) {
  SLUICE_RETURN_IF_ERROR(CheckKey(pipeline, key));
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), PipelineValueRoot(pipeline) + key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  SLUICE_RETURN_IF_ERROR(FromRocks(
      s, "state store " + dir_ + ": reading '" + key + "' for pipeline '" + pipeline + "'"));
  return std::optional<std::string>(std::move(value));
}

core::Status CheckpointStore::Delete(const std::string& pipeline, const std::string& key) {
  SLUICE_RETURN_IF_ERROR(CheckKey(pipeline, key));
  SLUICE_RETURN_IF_ERROR(CheckWritable("Delete"));
  return Write(PipelineValueRoot(pipeline) + key, nullptr,
               "deleting '" + key + "' for pipeline '" + pipeline + "'");
}

core::Result<std::vector<std::pair<std::string, std::string>>> CheckpointStore::List(
    const std::string& pipeline, const std::string& key_prefix) {
  SLUICE_RETURN_IF_ERROR(CheckPipelineName(pipeline));
  const std::string root = PipelineValueRoot(pipeline);
  const std::string prefix = root + key_prefix;
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    out.emplace_back(it->key().ToString().substr(root.size()), it->value().ToString());
  }
  SLUICE_RETURN_IF_ERROR(FromRocks(
      it->status(),
      "state store " + dir_ + ": listing '" + key_prefix + "' for pipeline '" + pipeline + "'"));
  return out;
}

core::Result<std::vector<std::string>> CheckpointStore::Pipelines() {
  std::vector<std::string> names;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const rocksdb::Slice prefix(kPipelineKeyRoot);
  it->Seek(prefix);
  while (it->Valid() && it->key().starts_with(prefix)) {
    const std::string rest = it->key().ToString().substr(prefix.size());
    const size_t slash = rest.find('/');
    const std::string name = rest.substr(0, slash);
    if (!name.empty()) names.push_back(name);
    if (slash == std::string::npos) {
      it->Next();
    } else {
      // '0' follows '/' in byte order: skip every remaining key of this pipeline.
      it->Seek(PipelineKeyRoot(name).substr(0, prefix.size() + name.size()) + "0");
    }
  }
  SLUICE_RETURN_IF_ERROR(FromRocks(it->status(), "state store " + dir_ + ": listing pipelines"));
  // Key order is not name order ("a-b/" sorts before "a/"); names are unique already.
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace sluice::state
