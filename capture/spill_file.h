#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "codec/change_codec.h"
#include "core/change.h"
#include "core/status.h"

namespace sluice::capture {

class SpillReader;

// An append-only file of encoded changes of one in-progress (streamed) transaction, in a spill
// directory private to one assembler. Spill is scratch space, never a source of truth: after a
// crash the replication slot resends every uncommitted transaction, so there is no fsync and
// files left by a previous run are deleted (RemoveStaleSpillFiles).
//
// Records are framed as u32 length, u32 CRC-32 of the payload, payload (EncodeChange). Writes
// are buffered in memory up to a small fixed size; a record larger than that is written
// directly, and neither writer nor reader keeps the memory a large record needed. Relations are
// stored by index into the file's own RelationTable, which lives in memory as long as the file.
//
// Not thread-safe. The file is closed and removed when the object is destroyed.
class SpillFile {
 public:
  // Creates the directory if missing (mode 0700) and a new empty file in it for `xid`.
  static core::Result<std::unique_ptr<SpillFile>> Create(const std::string& dir, uint32_t xid);

  ~SpillFile();
  SpillFile(const SpillFile&) = delete;
  SpillFile& operator=(const SpillFile&) = delete;

  // Appends `change`; returns its record index (0 for the first record).
  core::Result<uint64_t> Append(const core::Change& change);

  // Drops record `index` and everything after it, keeping records [0, index). Used when a
  // subtransaction aborts. `index` > record_count() is kInvalidArgument.
  core::Status TruncateToRecord(uint64_t index);

  // A reader over the records present now, from the first. The file must not be appended to
  // or truncated while the reader is used, and must outlive it.
  core::Result<std::unique_ptr<SpillReader>> OpenReader();

  // Closes and deletes the file (also done by the destructor). Idempotent.
  core::Status Remove();

  uint64_t record_count() const { return record_count_; }
  uint64_t size_bytes() const { return size_bytes_; }
  const std::string& path() const { return path_; }

 private:
  friend class SpillReader;

  SpillFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  core::Status Flush();
  // Writes `bytes` at flushed_bytes_ and advances it.
  core::Status WriteOut(std::string_view bytes);
  // Byte offset of record `index` (< record_count_), found from the sparse index.
  core::Result<uint64_t> OffsetOfRecord(uint64_t index);

  std::string path_;
  int fd_ = -1;
  codec::RelationTable relations_;
  std::string write_buffer_;
  std::string encode_scratch_;
  uint64_t record_count_ = 0;
  uint64_t size_bytes_ = 0;     // including buffered bytes
  uint64_t flushed_bytes_ = 0;  // bytes on disk
  // Offset of every kIndexStride-th record: truncation seeks from the nearest one without
  // keeping an offset per record in memory.
  std::vector<uint64_t> sparse_offsets_;
};

// Reads the records of a SpillFile in order, in chunks bounded by count and approximate bytes.
class SpillReader {
 public:
  // Appends the next changes to `*out`: at most `max_changes` (> 0), stopping after the chunk
  // reaches `max_bytes` (Change::ApproximateBytes). Returns false (appending nothing) at the
  // end. Damaged records are kCorruption naming the file and byte offset.
  core::Result<bool> NextChunk(std::vector<core::Change>* out, size_t max_changes,
                               uint64_t max_bytes);

  uint64_t records_read() const { return next_record_; }

 private:
  friend class SpillFile;
  explicit SpillReader(const SpillFile& file) : file_(file), end_record_(file.record_count_) {}

  // Makes at least `n` unread bytes available in buffer_, reading from the file.
  core::Status Fill(size_t n);
  core::Status Error(const std::string& what) const;

  const SpillFile& file_;
  uint64_t end_record_;
  uint64_t next_record_ = 0;
  uint64_t file_offset_ = 0;  // of buffer_[0]
  std::string buffer_;
  size_t buffer_pos_ = 0;
};

// Deletes spill files (by their name pattern) left in `dir` by a previous run. A missing
// directory is fine.
core::Status RemoveStaleSpillFiles(const std::string& dir);

}  // namespace sluice::capture
