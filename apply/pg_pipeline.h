#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apply/change_context.h"
#include "core/status.h"
#include "pg/connection.h"

namespace sluice::apply {

// The mechanics of libpq pipeline mode on one target session, and nothing of what the
// statements mean: statements are queued without waiting for their results, each entry
// remembering what it belongs to (a change's context, or a label for other steps); sync points;
// results read as they arrive, in send order; flow control, so that neither libpq's output
// buffer nor the server's socket grows without bound; and the first error, which sticks with
// its context until ClearError() (later statements of the pipeline are skipped by the server).
//
// A change's statement that succeeds goes to the Listener, which gives the result its meaning
// (rows applied, rows not found, a statement the server now has). A query's rows go where its
// entry says. A COMMIT that the server answers with ROLLBACK is an error.
//
// Owns the connection. Transport failures drop it (ConnectionLost): the Listener hears of it,
// since whatever the server held for the session went with it.
//
// Threads: one thread at a time.
class PgPipeline {
 public:
  enum class Kind : uint8_t { kRow, kPrepare, kCommand, kCommit, kQuery, kSync };

  // One queued entry, in send order; results come back in the same order.
  struct Entry {
    Kind kind = Kind::kCommand;
    ChangeContext change;  // kRow, kPrepare: what an error names
    // kPrepare: the caller's key of the statement; kCommand, kQuery: what the step is.
    std::string label;
    std::shared_ptr<std::vector<pg::Row>> rows;  // kQuery: where the rows go
  };

  class Listener {
   public:
    virtual ~Listener() = default;
    // A change's statement (kRow) or its preparation (kPrepare) succeeded with `result`.
    virtual void OnChangeDone(const Entry& entry, const PGresult* result) = 0;
    // The connection was dropped: prepared statements and the open transaction are gone.
    virtual void OnSessionLost() = 0;
  };

  // `depth`: statements queued before a sync point (at least 1). `listener` must outlive this.
  PgPipeline(Listener& listener, size_t depth);

  // Takes `conn`, in ordinary blocking mode: set-up steps use connection() until Enter().
  void Attach(std::unique_ptr<pg::Connection> conn);
  // Drops the connection and everything pending; tells the listener.
  void Close();
  bool connected() const { return conn_ != nullptr; }
  // The session, for synchronous steps outside pipeline mode (connected() must hold).
  pg::Connection& connection() { return *conn_; }
  // Unavailable naming `what` when not connected.
  core::Status RequireConnection(std::string_view what) const;

  // Enters pipeline mode, non-blocking.
  core::Status Enter();
  // Syncs, waits for everything queued, and leaves pipeline mode (for COPY and the like).
  core::Status Leave();

  // Queues a statement with text parameters; with `rows`, its result rows are stored there.
  core::Status SendCommand(const std::string& sql, std::string label,
                           const std::vector<std::optional<std::string>>& params = {},
                           std::shared_ptr<std::vector<pg::Row>> rows = nullptr);
  // Queues a statement of a change that is not a prepared one (a truncate): a failure is named
  // by `change`, a success goes to the listener as kRow.
  core::Status SendChangeCommand(const std::string& sql, ChangeContext change);
  // Queues COMMIT, whose answer must be COMMIT (a failed transaction answers ROLLBACK).
  core::Status SendCommit();
  // Queues the preparation of statement `name` for `change`; `key` comes back in the entry.
  core::Status SendPrepare(const std::string& name, const std::string& sql, int param_count,
                           ChangeContext change, std::string key);
  // Queues prepared statement `name` with `count` text parameters (null for NULL), `bytes` of
  // them, for `change`. When what libpq holds unsent and `bytes` together pass the unsent bound,
  // waits first until libpq has sent it. AfterSend() comes next.
  core::Status SendPrepared(const std::string& name, const char* const* values, int count,
                            uint64_t bytes, ChangeContext change);
  // After each statement queued: waits until libpq has sent it when much is unsent, syncs at
  // the pipeline depth, reads results now and then (and waits for them when far behind).
  core::Status AfterSend();
  core::Status Sync();
  // Flushes output and reads the results that are ready; with `wait`, blocks until at most
  // `max_pending` entries remain unanswered. Returns only transport failures (the connection
  // is dropped then); a statement's error is recorded in error().
  core::Status Pump(bool wait, size_t max_pending);
  // Sync, then wait for everything queued: a transport failure, else error().
  core::Status SyncAndDrain();

  // Drops the connection and returns (and records) a retryable status naming `what`.
  core::Status ConnectionLost(std::string_view what, const PGresult* result = nullptr);

  // The first error since ClearError(): of a statement (error_change() names the change, when
  // it was one), of the transport, or one the owner recorded.
  const core::Status& error() const { return error_; }
  const ChangeContext* error_change() const { return error_change_ ? &*error_change_ : nullptr; }
  // Keeps `status` (not OK) as the error unless there is one already.
  void RecordError(core::Status status, const ChangeContext* change = nullptr);
  void ClearError();

  // Sync points queued and not answered yet: 0 means the server has done all it was sent.
  size_t syncs_in_flight() const { return syncs_in_flight_; }

 private:
  void HandleResult(Entry& entry, const PGresult* result);

  Listener& listener_;
  const size_t depth_;
  std::unique_ptr<pg::Connection> conn_;
  core::Status error_;
  std::optional<ChangeContext> error_change_;
  std::deque<Entry> pending_;
  size_t syncs_in_flight_ = 0;  // kSync entries in pending_
  size_t since_sync_ = 0;
  size_t sends_since_pump_ = 0;
  // Parameter bytes of the statements handed to libpq since its output was last seen empty:
  // bounded (kMaxUnsentBytes, or one larger statement alone), because libpq's output buffer
  // grows to hold them all and never shrinks.
  uint64_t unsent_bytes_ = 0;
};

}  // namespace sluice::apply
