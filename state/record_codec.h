#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/lsn.h"
#include "core/status.h"

namespace sluice::state {

// The one encoding of every record in the state store: a version byte, then the record's fields
// in a fixed order, each as
//   integer, LSN   8 bytes, little-endian (signed values as their two's complement)
//   bool, enum     1 byte
//   string         4-byte little-endian length, then the bytes
//   string list    4-byte little-endian count, then each string
// A record type owns its version number and field order (state_records.h); a new field means a
// new version, which older readers refuse instead of guessing.
class RecordWriter {
 public:
  explicit RecordWriter(uint8_t version) { out_.push_back(static_cast<char>(version)); }

  RecordWriter& U8(uint8_t value);
  RecordWriter& Bool(bool value) { return U8(value ? 1 : 0); }
  RecordWriter& U64(uint64_t value);
  RecordWriter& I64(int64_t value) { return U64(static_cast<uint64_t>(value)); }
  RecordWriter& Lsn(core::Lsn lsn) { return U64(lsn.value()); }
  RecordWriter& String(std::string_view value);
  RecordWriter& StringList(const std::vector<std::string>& values);

  // The record; the writer is spent.
  std::string Finish() { return std::move(out_); }

 private:
  void U32(uint32_t value);
  std::string out_;
};

// Reads what RecordWriter wrote. A read past the end marks the reader failed (and yields zero
// values); Finish() then reports kCorruption, as it does for bytes left over.
class RecordReader {
 public:
  // `what` names the record in errors, e.g. "slot record".
  RecordReader(std::string_view bytes, std::string what);

  // The version byte (0 for an empty record, which Finish() reports).
  uint8_t version() const { return version_; }
  // kCorruption naming `what` and the versions this sluice reads.
  core::Status UnknownVersion(const std::string& known) const;

  uint8_t U8();
  bool Bool();
  uint64_t U64();
  int64_t I64() { return static_cast<int64_t>(U64()); }
  core::Lsn Lsn() { return core::Lsn(U64()); }
  std::string String();
  std::vector<std::string> StringList();

  // Ok when every byte was read and nothing was missing.
  core::Status Finish() const;

 private:
  bool Take(size_t n, const char** at);
  uint32_t U32();

  std::string_view bytes_;
  const std::string what_;
  size_t pos_ = 0;
  uint8_t version_ = 0;
  bool failed_ = false;
  std::string problem_;  // the first thing that went wrong
};

}  // namespace sluice::state
