#include "state/record_codec.h"

namespace sluice::state {

RecordWriter& RecordWriter::U8(uint8_t value) {
  out_.push_back(static_cast<char>(value));
  return *this;
}

RecordWriter& RecordWriter::U64(uint64_t value) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  return *this;
}

void RecordWriter::U32(uint32_t value) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

RecordWriter& RecordWriter::String(std::string_view value) {
  // State records are small (names, messages); a 4 GB string is a bug, not data.
  U32(static_cast<uint32_t>(value.size()));
  out_.append(value);
  return *this;
}

RecordWriter& RecordWriter::StringList(const std::vector<std::string>& values) {
  U32(static_cast<uint32_t>(values.size()));
  for (const std::string& value : values) String(value);
  return *this;
}

RecordReader::RecordReader(std::string_view bytes, std::string what)
    : bytes_(bytes), what_(std::move(what)) {
  if (bytes_.empty()) {
    failed_ = true;
    problem_ = "is empty";
    return;
  }
  version_ = static_cast<uint8_t>(bytes_[0]);
  pos_ = 1;
}

core::Status RecordReader::UnknownVersion(const std::string& known) const {
  return core::Corruption(what_ + " has version " + std::to_string(version_) +
                          "; this sluice reads version " + known +
                          " (written by a newer sluice, or damaged)");
}

bool RecordReader::Take(size_t n, const char** at) {
  if (failed_) return false;
  if (bytes_.size() - pos_ < n) {
    failed_ = true;
    problem_ = "is " + std::to_string(bytes_.size()) + " bytes, too short for its fields";
    return false;
  }
  *at = bytes_.data() + pos_;
  pos_ += n;
  return true;
}

uint8_t RecordReader::U8() {
  const char* at = nullptr;
  return Take(1, &at) ? static_cast<uint8_t>(*at) : 0;
}

bool RecordReader::Bool() {
  const uint8_t value = U8();
  if (value > 1 && !failed_) {
    failed_ = true;
    problem_ = "has a boolean field of value " + std::to_string(value);
  }
  return value == 1;
}

uint64_t RecordReader::U64() {
  const char* at = nullptr;
  if (!Take(8, &at)) return 0;
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= uint64_t{static_cast<uint8_t>(at[i])} << (8 * i);
  return value;
}

uint32_t RecordReader::U32() {
  const char* at = nullptr;
  if (!Take(4, &at)) return 0;
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= uint32_t{static_cast<uint8_t>(at[i])} << (8 * i);
  return value;
}

std::string RecordReader::String() {
  const uint32_t size = U32();
  const char* at = nullptr;
  if (!Take(size, &at)) return {};
  return std::string(at, size);
}

std::vector<std::string> RecordReader::StringList() {
  const uint32_t count = U32();
  std::vector<std::string> values;
  // Each string takes at least its 4-byte length: a count the bytes cannot hold is damage.
  if (count > (bytes_.size() - pos_) / 4) {
    if (!failed_) {
      failed_ = true;
      problem_ = "has a list of " + std::to_string(count) + " strings in " +
                 std::to_string(bytes_.size()) + " bytes";
    }
    return values;
  }
  for (uint32_t i = 0; i < count && !failed_; ++i) values.push_back(String());
  return values;
}

core::Status RecordReader::Finish() const {
  if (failed_) return core::Corruption(what_ + " " + problem_);
  if (pos_ != bytes_.size()) {
    return core::Corruption(what_ + " has " + std::to_string(bytes_.size() - pos_) +
                            " bytes after its last field");
  }
  return core::Status::Ok();
}

}  // namespace sluice::state
