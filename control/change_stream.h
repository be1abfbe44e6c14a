#pragma once

#include <chrono>
#include <cstdint>

#include "core/lsn.h"
#include "core/status.h"
#include "core/transaction.h"

namespace sluice::control {

// The stream was idle with everything before `lsn` delivered: by then `transactions_delivered`
// whole transactions (those with an end LSN) had been handed to the consumer. Once the consumer
// has made that many durable, it may acknowledge `lsn` itself, so an idle pipeline's source
// does not keep WAL written by other databases or unpublished tables forever.
struct StreamIdle {
  core::Lsn lsn;
  uint64_t transactions_delivered = 0;
};

// What the source last said about itself, for lag and the watchdog.
struct StreamSourceState {
  core::Lsn wal_end;          // the source's WAL end as last reported
  int64_t heard_unix_ms = 0;  // wall clock of the source's last word; 0 = not yet
};

enum class StreamNext {
  kFragment,    // `out` holds the next fragment
  kNothingYet,  // the wait ended without one (a timeout, or Wake())
  kEnded,       // the stream ended (stopped, reached its end, or failed: see Finish())
};

// One ordered stream of committed source transactions, as apply consumes it: fragments of whole
// transactions in commit order (core::Transaction), idle moments with a position, an end. The
// consumer acknowledges what it made durable; the stream never lets its source forget anything
// past the last acknowledgement. The logical replication slot is one implementation
// (CaptureStream); a migration's reverse stream and a Kafka-backed stream are others.
//
// Threads: the consumer calls everything from one thread, except Acknowledge(), source() and
// idle(), which any thread may call.
class ChangeStream {
 public:
  virtual ~ChangeStream() = default;

  // Starts delivering transactions that end after `resume` (invalid: from the stream's own
  // position) and ends once every transaction ending before `end` is delivered (invalid: runs
  // until stopped).
  virtual core::Status Start(core::Lsn resume, core::Lsn end) = 0;

  // The next fragment, waiting at most `wait`.
  virtual StreamNext Next(core::Transaction& out, std::chrono::milliseconds wait) = 0;

  // Fragments delivered by the source and not yet taken by Next() (0: apply is ahead).
  virtual size_t backlog() const = 0;

  virtual StreamIdle idle() const = 0;
  virtual StreamSourceState source() const = 0;

  // Everything up to `lsn` is durable downstream: the source may forget it.
  virtual void Acknowledge(core::Lsn lsn) = 0;

  // Ends the stream: Next() returns what is already delivered, then kEnded.
  virtual void Stop() = 0;

  // Stops, waits for the stream to wind down and sends the last acknowledgement. The stream's
  // own error, if it ended on one (not when it was stopped or reached its end).
  virtual core::Status Finish() = 0;
};

}  // namespace sluice::control
