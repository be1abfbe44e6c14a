#include "state/checkpoint_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>
#include <thread>

namespace sluice::state {
namespace {

constexpr char kFormatVersionKey[] = "meta/format_version";
constexpr char kFormatVersion[] = "1";
constexpr char kPipelinePrefix[] = "pipeline/";
constexpr uint8_t kCheckpointVersion = 1;
constexpr size_t kCheckpointSize = 1 + 8 + 8 + 8;

// A read-only open can race with the writer recycling a WAL or MANIFEST file it just listed;
// such an open fails with an I/O error and succeeds when retried.
constexpr int kReadOnlyOpenAttempts = 5;

std::string PipelineRoot(const std::string& pipeline) { return kPipelinePrefix + pipeline + "/"; }
std::string CheckpointKey(const std::string& pipeline) {
  return PipelineRoot(pipeline) + "checkpoint";
}
std::string ValueKeyPrefix(const std::string& pipeline) { return PipelineRoot(pipeline) + "kv/"; }

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

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
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
  } else if (version != kFormatVersion) {
    return core::FailedPrecondition("state directory " + dir + " has format version '" + version +
                                    "'; this sluice understands version " + kFormatVersion);
  }
  spdlog::debug("opened state store {}{}", dir, read_only ? " read-only" : "");
  return store;
}

std::string CheckpointStore::EncodeCheckpoint(const Checkpoint& checkpoint) {
  std::string out;
  out.reserve(kCheckpointSize);
  out.push_back(static_cast<char>(kCheckpointVersion));
  PutFixed64(&out, checkpoint.durable_lsn.value());
  PutFixed64(&out, static_cast<uint64_t>(checkpoint.commit_time));
  PutFixed64(&out, static_cast<uint64_t>(checkpoint.updated_at_unix_ms));
  return out;
}

core::Result<Checkpoint> CheckpointStore::DecodeCheckpoint(const std::string& bytes) {
  if (bytes.empty()) return core::Corruption("checkpoint record is empty");
  const auto version = static_cast<uint8_t>(bytes[0]);
  if (version != kCheckpointVersion) {
    return core::Corruption("checkpoint record has version " + std::to_string(version) +
                            ", expected " + std::to_string(kCheckpointVersion));
  }
  if (bytes.size() != kCheckpointSize) {
    return core::Corruption("checkpoint record is " + std::to_string(bytes.size()) +
                            " bytes, expected " + std::to_string(kCheckpointSize));
  }
  Checkpoint checkpoint;
  checkpoint.durable_lsn = core::Lsn(GetFixed64(bytes.data() + 1));
  checkpoint.commit_time = static_cast<int64_t>(GetFixed64(bytes.data() + 9));
  checkpoint.updated_at_unix_ms = static_cast<int64_t>(GetFixed64(bytes.data() + 17));
  return checkpoint;
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
  SLUICE_RETURN_IF_ERROR(CheckPipelineName(pipeline));
  SLUICE_RETURN_IF_ERROR(CheckWritable("saving a checkpoint"));
  std::lock_guard<std::mutex> lock(checkpoint_mu_);
  SLUICE_ASSIGN_OR_RETURN(std::optional<Checkpoint> stored, LoadCheckpoint(pipeline));
  if (stored.has_value() && checkpoint.durable_lsn < stored->durable_lsn) {
    spdlog::debug("pipeline {}: ignoring checkpoint {} behind stored {}", pipeline,
                  checkpoint.durable_lsn.ToString(), stored->durable_lsn.ToString());
    return core::Status::Ok();
  }
  const std::string bytes = EncodeCheckpoint(checkpoint);
  return Write(CheckpointKey(pipeline), &bytes,
               "saving checkpoint " + checkpoint.durable_lsn.ToString() + " for pipeline '" +
                   pipeline + "'");
}

core::Status CheckpointStore::DeleteCheckpoint(const std::string& pipeline) {
  SLUICE_RETURN_IF_ERROR(CheckPipelineName(pipeline));
  SLUICE_RETURN_IF_ERROR(CheckWritable("deleting a checkpoint"));
  std::lock_guard<std::mutex> lock(checkpoint_mu_);
  return Write(CheckpointKey(pipeline), nullptr,
               "deleting the checkpoint of pipeline '" + pipeline + "'");
}

core::Result<std::optional<Checkpoint>> CheckpointStore::LoadCheckpoint(
    const std::string& pipeline) {
  SLUICE_RETURN_IF_ERROR(CheckPipelineName(pipeline));
  std::string bytes;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), CheckpointKey(pipeline), &bytes);
  if (s.IsNotFound()) return std::optional<Checkpoint>();
  SLUICE_RETURN_IF_ERROR(
      FromRocks(s, "state store " + dir_ + ": loading checkpoint for pipeline '" + pipeline + "'"));
  auto decoded = DecodeCheckpoint(bytes);
  if (!decoded.ok()) {
    return decoded.status().WithContext("state store " + dir_ + ": checkpoint for pipeline '" +
                                        pipeline + "'");
  }
  return std::optional<Checkpoint>(*decoded);
}

core::Status CheckpointStore::Put(const std::string& pipeline, const std::string& key,
                                  const std::string& value) {
  SLUICE_RETURN_IF_ERROR(CheckKey(pipeline, key));
  SLUICE_RETURN_IF_ERROR(CheckWritable("Put"));
  return Write(ValueKeyPrefix(pipeline) + key, &value,
               "writing '" + key + "' for pipeline '" + pipeline + "'");
}

core::Result<std::optional<std::string>> CheckpointStore::Get(const std::string& pipeline,
                                                              const std::string& key) {
  SLUICE_RETURN_IF_ERROR(CheckKey(pipeline, key));
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), ValueKeyPrefix(pipeline) + key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  SLUICE_RETURN_IF_ERROR(FromRocks(
      s, "state store " + dir_ + ": reading '" + key + "' for pipeline '" + pipeline + "'"));
  return std::optional<std::string>(std::move(value));
}

core::Status CheckpointStore::Delete(const std::string& pipeline, const std::string& key) {
  SLUICE_RETURN_IF_ERROR(CheckKey(pipeline, key));
  SLUICE_RETURN_IF_ERROR(CheckWritable("Delete"));
  return Write(ValueKeyPrefix(pipeline) + key, nullptr,
               "deleting '" + key + "' for pipeline '" + pipeline + "'");
}

core::Result<std::vector<std::pair<std::string, std::string>>> CheckpointStore::List(
    const std::string& pipeline, const std::string& key_prefix) {
  SLUICE_RETURN_IF_ERROR(CheckPipelineName(pipeline));
  const std::string root = ValueKeyPrefix(pipeline);
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
  const rocksdb::Slice prefix(kPipelinePrefix);
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
      it->Seek(PipelineRoot(name).substr(0, prefix.size() + name.size()) + "0");
    }
  }
  SLUICE_RETURN_IF_ERROR(FromRocks(it->status(), "state store " + dir_ + ": listing pipelines"));
  // Key order is not name order ("a-b/" sorts before "a/"); names are unique already.
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace sluice::state
