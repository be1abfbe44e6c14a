#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sluice::capture {

// A bounds-checked big-endian reader over bytes it does not own (the view must outlive it).
//
// Errors are sticky: the first read that does not fit (or a Fail() call) records what was
// being read and where; every later read returns zero / an empty view without advancing.
// This keeps the hot path free of per-field Status objects: callers read a group of fields
// and check ok() before using a value for control flow (lengths, counts, kinds).
//
// Field names are string literals (stored as pointers, never copied). Not thread-safe; cheap
// to construct, meant to live on the stack for one message.
class ByteReader {
 public:
  enum class Error : uint8_t {
    kNone,
    kTruncated,     // fewer bytes left than the field needs
    kUnterminated,  // a NUL-terminated string ran to the end of the buffer
    kInvalid,       // the caller rejected a value (see Fail)
  };

  explicit ByteReader(std::string_view data) : data_(data) {}

  uint8_t ReadU8(const char* field) {
    if (!Require(1, field)) return 0;
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint16_t ReadU16(const char* field) { return static_cast<uint16_t>(ReadBigEndian(2, field)); }
  uint32_t ReadU32(const char* field) { return static_cast<uint32_t>(ReadBigEndian(4, field)); }
  uint64_t ReadU64(const char* field) { return ReadBigEndian(8, field); }
  int16_t ReadI16(const char* field) { return static_cast<int16_t>(ReadU16(field)); }
  int32_t ReadI32(const char* field) { return static_cast<int32_t>(ReadU32(field)); }
  int64_t ReadI64(const char* field) { return static_cast<int64_t>(ReadU64(field)); }

  // A string ending in NUL; the view excludes the terminator, which is consumed.
  std::string_view ReadCString(const char* field) {
    if (!ok()) return {};
    const char* begin = data_.data() + pos_;
    const void* nul = std::memchr(begin, '\0', data_.size() - pos_);
    if (nul == nullptr) {
      SetError(Error::kUnterminated, field, data_.size() - pos_ + 1);
      return {};
    }
    const size_t length = static_cast<const char*>(nul) - begin;
    pos_ += length + 1;
    return {begin, length};
  }

  // The next `n` bytes as a view into the buffer.
  std::string_view ReadBytes(size_t n, const char* field) {
    if (!Require(n, field)) return {};
    std::string_view bytes = data_.substr(pos_, n);
    pos_ += n;
    return bytes;
  }

  // Records a caller-detected problem with the field that starts at `field_offset` (e.g. a
  // negative length just read). Keeps an earlier error if there is one.
  void Fail(const char* field, size_t field_offset) {
    if (!ok()) return;
    error_ = Error::kInvalid;
    error_field_ = field;
    error_offset_ = field_offset;
    error_needed_ = 0;
  }

  bool ok() const { return error_ == Error::kNone; }
  size_t offset() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  bool at_end() const { return pos_ == data_.size(); }
  size_t size() const { return data_.size(); }

  // Details of the first error (meaningful only when !ok()).
  Error error() const { return error_; }
  const char* error_field() const { return error_field_; }
  size_t error_offset() const { return error_offset_; }  // where the failing field starts
  size_t error_needed() const { return error_needed_; }  // bytes the field needed at least

 private:
  bool Require(size_t n, const char* field) {
    if (!ok()) return false;
    if (data_.size() - pos_ < n) {
      SetError(Error::kTruncated, field, n);
      return false;
    }
    return true;
  }

  uint64_t ReadBigEndian(size_t n, const char* field) {
    if (!Require(n, field)) return 0;
    const auto* p = reinterpret_cast<const unsigned char*>(data_.data() + pos_);
    uint64_t value = 0;
    for (size_t i = 0; i < n; ++i) value = (value << 8) | p[i];
    pos_ += n;
    return value;
  }

  void SetError(Error error, const char* field, size_t needed) {
    error_ = error;
    error_field_ = field;
    error_offset_ = pos_;
    error_needed_ = needed;
  }

  std::string_view data_;
  size_t pos_ = 0;
  Error error_ = Error::kNone;
  const char* error_field_ = "";
  size_t error_offset_ = 0;
  size_t error_needed_ = 0;
};

}  // namespace sluice::capture
