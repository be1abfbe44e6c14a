#include "capture/replication_frame.h"

#include <cstdio>

namespace sluice::capture {
namespace {

// Printable name of a frame tag for error messages: 'w' prints as 'w', a control byte as 0x01.
std::string TagName(unsigned char tag) {
  char buf[16];
  if (tag >= 0x20 && tag < 0x7f) {
    std::snprintf(buf, sizeof buf, "'%c'", tag);
  } else {
    std::snprintf(buf, sizeof buf, "0x%02x", tag);
  }
  return buf;
}

// Bounds-checked big-endian reader over one frame.
class FrameReader {
 public:
  FrameReader(std::string_view bytes, const char* frame_name)
      : bytes_(bytes), frame_name_(frame_name) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return bytes_.size() - offset_; }

  core::Status ReadU64(const char* field, uint64_t* out) {
    if (remaining() < 8) return Truncated(field, 8);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
      v = (v << 8) | static_cast<unsigned char>(bytes_[offset_ + i]);
    }
    offset_ += 8;
    *out = v;
    return core::Status::Ok();
  }

  core::Status ReadByte(const char* field, uint8_t* out) {
    if (remaining() < 1) return Truncated(field, 1);
    *out = static_cast<unsigned char>(bytes_[offset_]);
    offset_ += 1;
    return core::Status::Ok();
  }

  core::Status ExpectEnd() const {
    if (remaining() == 0) return core::Status::Ok();
    return core::Corruption(std::string(frame_name_) + " frame has " + std::to_string(remaining()) +
                            " unexpected trailing byte(s) at offset " + std::to_string(offset_));
  }

  std::string_view Rest() const { return bytes_.substr(offset_); }

 private:
  core::Status Truncated(const char* field, size_t need) const {
    return core::Corruption(std::string(frame_name_) + " frame truncated at offset " +
                            std::to_string(offset_) + ": field " + field + " needs " +
                            std::to_string(need) + " byte(s), " + std::to_string(remaining()) +
                            " left (frame is " + std::to_string(bytes_.size()) + " bytes)");
  }

  std::string_view bytes_;
  const char* frame_name_;
  size_t offset_ = 0;
};

void AppendU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

core::Result<XLogData> ParseXLogData(std::string_view frame) {
  FrameReader reader(frame, "XLogData ('w')");
  uint8_t tag = 0;
  SLUICE_RETURN_IF_ERROR(reader.ReadByte("tag", &tag));
  uint64_t start = 0, end = 0, send_time = 0;
  SLUICE_RETURN_IF_ERROR(reader.ReadU64("start LSN", &start));
  SLUICE_RETURN_IF_ERROR(reader.ReadU64("end LSN", &end));
  SLUICE_RETURN_IF_ERROR(reader.ReadU64("send time", &send_time));
  XLogData data;
  data.start_lsn = core::Lsn(start);
  data.end_lsn = core::Lsn(end);
  data.send_time = static_cast<core::PgTimestamp>(send_time);
  data.payload = reader.Rest();
  return data;
}

core::Result<PrimaryKeepalive> ParseKeepalive(std::string_view frame) {
  FrameReader reader(frame, "primary keepalive ('k')");
  uint8_t tag = 0;
  SLUICE_RETURN_IF_ERROR(reader.ReadByte("tag", &tag));
  uint64_t wal_end = 0, send_time = 0;
  uint8_t reply = 0;
  SLUICE_RETURN_IF_ERROR(reader.ReadU64("WAL end", &wal_end));
  SLUICE_RETURN_IF_ERROR(reader.ReadU64("send time", &send_time));
  SLUICE_RETURN_IF_ERROR(reader.ReadByte("reply-requested", &reply));
  SLUICE_RETURN_IF_ERROR(reader.ExpectEnd());
  PrimaryKeepalive keepalive;
  keepalive.wal_end = core::Lsn(wal_end);
  keepalive.send_time = static_cast<core::PgTimestamp>(send_time);
  keepalive.reply_requested = reply != 0;  // as the server's own clients read it
  return keepalive;
}

}  // namespace

core::Result<ServerFrame> ParseServerFrame(std::string_view frame) {
  if (frame.empty()) {
    return core::Corruption("empty replication CopyData frame at offset 0 (no frame type byte)");
  }
  const auto tag = static_cast<unsigned char>(frame[0]);
  switch (tag) {
    case kXLogDataTag: {
      SLUICE_ASSIGN_OR_RETURN(XLogData data, ParseXLogData(frame));
      return ServerFrame(data);
    }
    case kPrimaryKeepaliveTag: {
      SLUICE_ASSIGN_OR_RETURN(PrimaryKeepalive keepalive, ParseKeepalive(frame));
      return ServerFrame(keepalive);
    }
    default:
      return core::Corruption("unknown replication CopyData frame type " + TagName(tag) +
                              " at offset 0 (expected 'w' or 'k'; frame is " +
                              std::to_string(frame.size()) + " bytes)");
  }
}

std::string BuildStandbyStatusUpdate(const StandbyStatusUpdate& update) {
  std::string out;
  out.reserve(kStandbyStatusUpdateSize);
  out.push_back(kStandbyStatusUpdateTag);
  AppendU64(&out, update.write_lsn.value());
  AppendU64(&out, update.flush_lsn.value());
  AppendU64(&out, update.apply_lsn.value());
  AppendU64(&out, static_cast<uint64_t>(update.client_time));
  out.push_back(update.reply_requested ? 1 : 0);
  return out;
}

core::Result<StandbyStatusUpdate> ParseStandbyStatusUpdate(std::string_view frame) {
  FrameReader reader(frame, "standby status update ('r')");
  uint8_t tag = 0;
  SLUICE_RETURN_IF_ERROR(reader.ReadByte("tag", &tag));
  if (tag != kStandbyStatusUpdateTag) {
    return core::Corruption("expected standby status update ('r') frame, got type " + TagName(tag) +
                            " at offset 0");
  }
  uint64_t write = 0, flush = 0, apply = 0, client_time = 0;
  uint8_t reply = 0;
  SLUICE_RETURN_IF_ERROR(reader.ReadU64("write LSN", &write));
  SLUICE_RETURN_IF_ERROR(reader.ReadU64("flush LSN", &flush));
  SLUICE_RETURN_IF_ERROR(reader.ReadU64("apply LSN", &apply));
  SLUICE_RETURN_IF_ERROR(reader.ReadU64("client time", &client_time));
  SLUICE_RETURN_IF_ERROR(reader.ReadByte("reply-requested", &reply));
  SLUICE_RETURN_IF_ERROR(reader.ExpectEnd());
  StandbyStatusUpdate update;
  update.write_lsn = core::Lsn(write);
  update.flush_lsn = core::Lsn(flush);
  update.apply_lsn = core::Lsn(apply);
  update.client_time = static_cast<core::PgTimestamp>(client_time);
  update.reply_requested = reply != 0;
  return update;
}

}  // namespace sluice::capture
