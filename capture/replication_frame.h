#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/lsn.h"
#include "core/status.h"
#include "core/transaction.h"

namespace sluice::capture {

// The CopyData frames of PostgreSQL's streaming replication protocol (the sub-protocol spoken
// inside CopyBoth after START_REPLICATION). All integers are big-endian; timestamps are
// microseconds since 2000-01-01 UTC (core::PgTimestamp).
//
// The bytes come from the network and are untrusted: parsing is bounds-checked and a malformed
// frame is a kCorruption status naming the frame type and the byte offset.

inline constexpr char kXLogDataTag = 'w';
inline constexpr char kPrimaryKeepaliveTag = 'k';
inline constexpr char kStandbyStatusUpdateTag = 'r';

// 'w' + start + end + send time.
inline constexpr size_t kXLogDataHeaderSize = 1 + 8 + 8 + 8;
// 'k' + wal end + send time + reply-requested.
inline constexpr size_t kPrimaryKeepaliveSize = 1 + 8 + 8 + 1;
// 'r' + write + flush + apply + client time + reply-requested.
inline constexpr size_t kStandbyStatusUpdateSize = 1 + 8 + 8 + 8 + 8 + 1;

// Server → client: a chunk of (logically decoded) WAL. In logical replication `start_lsn` is
// the LSN the output plugin attributed to the message (for a commit: the end of the commit
// record, i.e. what a client confirms once the transaction is durable) and `end_lsn` the
// server's WAL position when it was sent.
struct XLogData {
  core::Lsn start_lsn;
  core::Lsn end_lsn;
  core::PgTimestamp send_time = 0;
  // Borrows the buffer that was parsed: valid only as long as that buffer is.
  std::string_view payload;
};

// Server → client: "I am alive, my WAL ends at `wal_end`"; reply_requested asks for an
// immediate standby status update (the server disconnects after wal_sender_timeout without one).
struct PrimaryKeepalive {
  core::Lsn wal_end;
  core::PgTimestamp send_time = 0;
  bool reply_requested = false;
};

// Client → server: progress report. For a logical slot, `flush_lsn` becomes the slot's
// confirmed_flush_lsn, which lets the server recycle WAL: never send more than is durable.
struct StandbyStatusUpdate {
  core::Lsn write_lsn;
  core::Lsn flush_lsn;
  core::Lsn apply_lsn;
  core::PgTimestamp client_time = 0;
  bool reply_requested = false;
};

using ServerFrame = std::variant<XLogData, PrimaryKeepalive>;

// Parses one server → client CopyData frame ('w' or 'k'). On success an XLogData's payload
// points into `frame`. Trailing bytes after a keepalive are a kCorruption (the format is fixed).
core::Result<ServerFrame> ParseServerFrame(std::string_view frame);

// Serializes a standby status update ('r', 34 bytes).
std::string BuildStandbyStatusUpdate(const StandbyStatusUpdate& update);

// Parses an 'r' frame (the inverse of BuildStandbyStatusUpdate; used by tests and the fuzzer).
core::Result<StandbyStatusUpdate> ParseStandbyStatusUpdate(std::string_view frame);

}  // namespace sluice::capture
