#pragma once

#include <cstdint>
#include <string_view>

#include "capture/pgoutput_message.h"
#include "core/status.h"

namespace sluice::capture {

// Decodes pgoutput logical replication messages (protocol versions 1 to 4), one CopyData 'w'
// payload at a time, into the structs of pgoutput_message.h.
//
// The bytes come from the network and are untrusted: every field is bounds-checked and a
// malformed message yields kCorruption naming the message type, the field and its byte offset
// within the message. Two-phase commit messages ('b', 'P', 'K', 'r', 'p') yield kUnsupported.
//
// State: the decoder tracks whether it is inside a streamed block (Stream Start .. Stream
// Stop), because row-level messages carry the streamed xid only there. A message that fails
// to decode leaves that state unchanged. Stream messages are accepted only with protocol
// version >= 2, and only in a valid order (no nested Stream Start, no Stop outside a block,
// no Begin/Commit/Stream Commit/Stream Abort inside one).
//
// Stream Abort with protocol version 4 carries the abort LSN and timestamp only when
// streaming = parallel; both forms are accepted (the two extra fields are read and dropped).
//
// Not thread-safe: one decoder per replication connection.
class PgOutputDecoder {
 public:
  // `protocol_version` is the proto_version the slot was started with; outside 1..4 every
  // Decode() returns kInvalidArgument.
  explicit PgOutputDecoder(int protocol_version);

  // Decodes one complete message. The result owns its strings; `message` may be freed after.
  core::Result<PgOutputMessage> Decode(std::string_view message);

  bool in_stream() const { return in_stream_; }
  int protocol_version() const { return protocol_version_; }

 private:
  int protocol_version_;
  bool in_stream_ = false;
  uint32_t stream_xid_ = 0;  // xid of the open stream block, for error messages
};

}  // namespace sluice::capture
