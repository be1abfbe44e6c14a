#include "capture/spill_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

namespace sluice::capture {
namespace {

constexpr char kFilePrefix[] = "sluice-spill-";
constexpr char kFileSuffix[] = ".spill";
constexpr size_t kHeaderBytes = 8;  // u32 length, u32 crc
constexpr size_t kWriteBufferBytes = size_t{256} * 1024;
constexpr size_t kReadBufferBytes = size_t{256} * 1024;
constexpr uint64_t kIndexStride = 1024;
// Far above any real change (PostgreSQL caps a field at 1 GB): a larger length is damage.
constexpr uint32_t kMaxRecordBytes = 0x7fffffff;

std::atomic<uint64_t> next_file_number{0};

std::string ErrnoText(int err) { return std::strerror(err); }

// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320).
const std::array<uint32_t, 256>& CrcTable() {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return kTable;
}

uint32_t Crc32(std::string_view bytes) {
  const auto& table = CrcTable();
  uint32_t c = 0xffffffffu;
  for (char ch : bytes) c = table[(c ^ static_cast<uint8_t>(ch)) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

void PutU32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  return v;
}

// Reads exactly `n` bytes at `offset`, or fewer only at end of file.
core::Result<size_t> PreadFully(int fd, char* out, size_t n, uint64_t offset,
                                const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return core::Internal("spill file " + path + ": read at byte offset " +
                            std::to_string(offset + done) + ": " + ErrnoText(errno));
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

// mkdir -p, creating missing components with mode 0700.
core::Status MakeDirectories(const std::string& dir) {
  if (dir.empty()) return core::InvalidArgument("spill directory is empty");
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return core::FailedPrecondition("cannot create spill directory " + part + ": " +
                                      ErrnoText(errno));
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return core::FailedPrecondition("spill directory " + dir + " is not a directory");
  }
  return core::Status::Ok();
}

bool IsSpillFileName(std::string_view name) {
  const std::string_view prefix(kFilePrefix), suffix(kFileSuffix);
  return name.size() > prefix.size() + suffix.size() && name.substr(0, prefix.size()) == prefix &&
         name.substr(name.size() - suffix.size()) == suffix;
}

}  // namespace

core::Result<std::unique_ptr<SpillFile>> SpillFile::Create(const std::string& dir, uint32_t xid) {
  SLUICE_RETURN_IF_ERROR(MakeDirectories(dir));
  const std::string path = dir + "/" + kFilePrefix + std::to_string(::getpid()) + "-" +
                           std::to_string(xid) + "-" + std::to_string(next_file_number++) +
                           kFileSuffix;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return core::FailedPrecondition("cannot create spill file " + path + ": " + ErrnoText(errno));
  }
  return std::unique_ptr<SpillFile>(new SpillFile(path, fd));
}

SpillFile::~SpillFile() { (void)Remove(); }

core::Status SpillFile::Remove() {
  if (fd_ < 0) return core::Status::Ok();
  ::close(fd_);
  fd_ = -1;
  write_buffer_.clear();
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
    return core::Internal("cannot remove spill file " + path_ + ": " + ErrnoText(errno));
  }
  return core::Status::Ok();
}

core::Result<uint64_t> SpillFile::Append(const core::Change& change) {
  if (fd_ < 0) return core::FailedPrecondition("spill file " + path_ + " already removed");
  encode_scratch_.clear();
  // Never less than the encoding: a huge value is not copied again as the string grows.
  encode_scratch_.reserve(change.ApproximateBytes());
  codec::EncodeChange(change, relations_, &encode_scratch_);
  if (encode_scratch_.size() > kMaxRecordBytes) {
    return core::ResourceExhausted("change of " + std::to_string(encode_scratch_.size()) +
                                   " bytes too large for spill file " + path_);
  }
  const uint64_t index = record_count_;
  const uint64_t record_bytes = kHeaderBytes + encode_scratch_.size();
  if (index % kIndexStride == 0) sparse_offsets_.push_back(size_bytes_);
  char header[kHeaderBytes];
  PutU32(static_cast<uint32_t>(encode_scratch_.size()), header);
  PutU32(Crc32(encode_scratch_), header + 4);
  if (encode_scratch_.size() >= kWriteBufferBytes) {
    // A large record (a huge value) goes to the file straight from its encoding, not through
    // a second copy in the write buffer, and the encoding's memory is given back.
    SLUICE_RETURN_IF_ERROR(Flush());
    SLUICE_RETURN_IF_ERROR(WriteOut(std::string_view(header, kHeaderBytes)));
    SLUICE_RETURN_IF_ERROR(WriteOut(encode_scratch_));
    std::string().swap(encode_scratch_);
  } else {
    write_buffer_.append(header, kHeaderBytes);
    write_buffer_.append(encode_scratch_);
  }
  size_bytes_ += record_bytes;
  ++record_count_;
  if (write_buffer_.size() >= kWriteBufferBytes) SLUICE_RETURN_IF_ERROR(Flush());
  return index;
}

core::Status SpillFile::Flush() {
  SLUICE_RETURN_IF_ERROR(WriteOut(write_buffer_));
  write_buffer_.clear();
  return core::Status::Ok();
}

core::Status SpillFile::WriteOut(std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::pwrite(fd_, bytes.data() + done, bytes.size() - done,
                         static_cast<off_t>(flushed_bytes_ + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return core::ResourceExhausted("cannot write spill file " + path_ + " at byte offset " +
                                     std::to_string(flushed_bytes_ + done) + ": " +
                                     ErrnoText(errno));
    }
    done += static_cast<size_t>(w);
  }
  flushed_bytes_ += bytes.size();
  return core::Status::Ok();
}

core::Result<uint64_t> SpillFile::OffsetOfRecord(uint64_t index) {
  uint64_t offset = sparse_offsets_[index / kIndexStride];
  for (uint64_t i = index - index % kIndexStride; i < index; ++i) {
    char header[kHeaderBytes];
    SLUICE_ASSIGN_OR_RETURN(size_t n, PreadFully(fd_, header, kHeaderBytes, offset, path_));
    if (n != kHeaderBytes) {
      return core::Corruption("spill file " + path_ + ": truncated record header at byte offset " +
                              std::to_string(offset));
    }
    offset += kHeaderBytes + GetU32(header);
    if (offset > size_bytes_) {
      return core::Corruption("spill file " + path_ + ": record " + std::to_string(i) +
                              " runs past the end of the file");
    }
  }
  return offset;
}

core::Status SpillFile::TruncateToRecord(uint64_t index) {
  if (fd_ < 0) return core::FailedPrecondition("spill file " + path_ + " already removed");
  if (index > record_count_) {
    return core::InvalidArgument("cannot truncate spill file " + path_ + " to record " +
                                 std::to_string(index) + ": it has " +
                                 std::to_string(record_count_));
  }
  if (index == record_count_) return core::Status::Ok();
  SLUICE_RETURN_IF_ERROR(Flush());
  SLUICE_ASSIGN_OR_RETURN(uint64_t offset, OffsetOfRecord(index));
  if (::ftruncate(fd_, static_cast<off_t>(offset)) != 0) {
    return core::Internal("cannot truncate spill file " + path_ + " to byte offset " +
                          std::to_string(offset) + ": " + ErrnoText(errno));
  }
  record_count_ = index;
  size_bytes_ = flushed_bytes_ = offset;
  sparse_offsets_.resize((index + kIndexStride - 1) / kIndexStride);
  return core::Status::Ok();
}

core::Result<std::unique_ptr<SpillReader>> SpillFile::OpenReader() {
  if (fd_ < 0) return core::FailedPrecondition("spill file " + path_ + " already removed");
  SLUICE_RETURN_IF_ERROR(Flush());
  return std::unique_ptr<SpillReader>(new SpillReader(*this));
}

core::Status SpillReader::Error(const std::string& what) const {
  return core::Corruption("spill file " + file_.path_ + ": " + what + " (record " +
                          std::to_string(next_record_) + ", byte offset " +
                          std::to_string(file_offset_ + buffer_pos_) + ")");
}

core::Status SpillReader::Fill(size_t n) {
  if (buffer_.size() - buffer_pos_ >= n) return core::Status::Ok();
  buffer_.erase(0, buffer_pos_);
  file_offset_ += buffer_pos_;
  buffer_pos_ = 0;
  const size_t have = buffer_.size();
  const size_t want = std::max(n - have, kReadBufferBytes);
  buffer_.resize(have + want);
  auto read = PreadFully(file_.fd_, buffer_.data() + have, want, file_offset_ + have, file_.path_);
  if (!read.ok()) {
    buffer_.resize(have);
    return read.status();
  }
  buffer_.resize(have + *read);
  if (buffer_.size() < n) return Error("file ends inside a record");
  return core::Status::Ok();
}

core::Result<bool> SpillReader::NextChunk(std::vector<core::Change>* out, size_t max_changes,
                                          uint64_t max_bytes) {
  if (file_.fd_ < 0) return core::FailedPrecondition("spill file " + file_.path_ + " removed");
  if (next_record_ >= end_record_) return false;
  size_t added = 0;
  uint64_t bytes = 0;
  while (next_record_ < end_record_ && added < std::max<size_t>(max_changes, 1) &&
         bytes < max_bytes) {
    SLUICE_RETURN_IF_ERROR(Fill(kHeaderBytes));
    const uint32_t length = GetU32(buffer_.data() + buffer_pos_);
    const uint32_t crc = GetU32(buffer_.data() + buffer_pos_ + 4);
    if (length > kMaxRecordBytes ||
        file_offset_ + buffer_pos_ + kHeaderBytes + length > file_.flushed_bytes_) {
      return Error("record length " + std::to_string(length) + " runs past the end of the file");
    }
    SLUICE_RETURN_IF_ERROR(Fill(kHeaderBytes + length));
    std::string_view payload(buffer_.data() + buffer_pos_ + kHeaderBytes, length);
    if (Crc32(payload) != crc) return Error("checksum mismatch");
    auto change = codec::DecodeChange(payload, file_.relations_);
    if (!change.ok()) return Error(change.status().message());
    bytes += change->ApproximateBytes();
    out->push_back(std::move(change).value());
    buffer_pos_ += kHeaderBytes + length;
    ++next_record_;
    ++added;
    if (buffer_.capacity() > 2 * kReadBufferBytes) {
      // It grew for a large record, now decoded: give that memory back.
      buffer_.erase(0, buffer_pos_);
      file_offset_ += buffer_pos_;
      buffer_pos_ = 0;
      buffer_.shrink_to_fit();
    }
  }
  return true;
}

core::Status RemoveStaleSpillFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return core::Status::Ok();
    return core::FailedPrecondition("cannot list spill directory " + dir + ": " + ErrnoText(errno));
  }
  core::Status status;
  while (struct dirent* entry = ::readdir(d)) {
    if (!IsSpillFileName(entry->d_name)) continue;
    const std::string path = dir + "/" + entry->d_name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && status.ok()) {
      status = core::FailedPrecondition("cannot remove stale spill file " + path + ": " +
                                        ErrnoText(errno));
    }
  }
  ::closedir(d);
  return status;
}

}  // namespace sluice::capture
