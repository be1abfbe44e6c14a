#include "apply/pg_pipeline.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "pg/sql_state.h"

namespace sluice::apply {
namespace {

// Results are read every this many sends, so neither side's socket buffer fills up.
constexpr size_t kSendsPerPump = 64;
// Statement parameters handed to libpq and not yet sent: beyond this, the pipeline waits until
// libpq has sent them. libpq's output buffer grows to hold whatever is queued in it and never
// shrinks, so this keeps it near max(this, the largest statement).
constexpr uint64_t kMaxUnsentBytes = 8u << 20;

}  // namespace

PgPipeline::PgPipeline(Listener& listener, size_t depth)
    : listener_(listener), depth_(std::max<size_t>(1, depth)) {}

void PgPipeline::Attach(std::unique_ptr<pg::Connection> conn) {
  Close();
  conn_ = std::move(conn);
}

void PgPipeline::Close() {
  conn_.reset();
  pending_.clear();
  syncs_in_flight_ = 0;
  since_sync_ = 0;
  sends_since_pump_ = 0;
  unsent_bytes_ = 0;
  listener_.OnSessionLost();
}

core::Status PgPipeline::RequireConnection(std::string_view what) const {
  if (!conn_) {
    return core::Unavailable(std::string(what) + ": the target connection is not open (Open() " +
                             "reconnects)");
  }
  return core::Status::Ok();
}

core::Status PgPipeline::ConnectionLost(std::string_view what, const PGresult* result) {
  std::string message = std::string(what) + ": connection to the target";
  if (conn_) {
    message += " at " + conn_->endpoint() + " lost: " + pg::ServerErrorText(result, conn_->raw());
  } else {
    message += " is not open";
  }
  Close();
  core::Status status = core::Unavailable(std::move(message));
  RecordError(status);
  return status;
}

void PgPipeline::RecordError(core::Status status, const ChangeContext* change) {
  if (!error_.ok() || status.ok()) return;
  error_ = std::move(status);
  if (change != nullptr) error_change_ = *change;
}

void PgPipeline::ClearError() {
  error_ = core::Status::Ok();
  error_change_.reset();
}

core::Status PgPipeline::Enter() {
  PGconn* raw = conn_->raw();
  if (PQenterPipelineMode(raw) != 1 || PQsetnonblocking(raw, 1) != 0) {
    return core::Internal("cannot enter libpq pipeline mode on " + conn_->endpoint() + ": " +
                          pg::ServerErrorText(nullptr, raw));
  }
  return core::Status::Ok();
}

core::Status PgPipeline::Leave() {
  SLUICE_RETURN_IF_ERROR(SyncAndDrain());
  PGconn* raw = conn_->raw();
  if (PQexitPipelineMode(raw) != 1 || PQsetnonblocking(raw, 0) != 0) {
    return ConnectionLost("leaving pipeline mode");
  }
  return core::Status::Ok();
}

core::Status PgPipeline::SendCommand(const std::string& sql, std::string label,
                                     const std::vector<std::optional<std::string>>& params,
                                     std::shared_ptr<std::vector<pg::Row>> rows) {
  SLUICE_RETURN_IF_ERROR(RequireConnection(label));
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (PQsendQueryParams(conn_->raw(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                        values.data(), nullptr, nullptr, 0) != 1) {
    return ConnectionLost("sending " + label);
  }
  Entry entry;
  entry.kind = rows ? Kind::kQuery : Kind::kCommand;
  entry.label = std::move(label);
  entry.rows = std::move(rows);
  pending_.push_back(std::move(entry));
  ++since_sync_;
  return core::Status::Ok();
}

core::Status PgPipeline::SendChangeCommand(const std::string& sql, ChangeContext change) {
  SLUICE_RETURN_IF_ERROR(
      SendCommand(sql, std::string(core::OperationName(change.op)) + " of " + change.Target()));
  Entry& entry = pending_.back();
  entry.kind = Kind::kRow;
  entry.change = std::move(change);
  return AfterSend();
}

core::Status PgPipeline::SendCommit() {
  SLUICE_RETURN_IF_ERROR(SendCommand("COMMIT", "COMMIT"));
  pending_.back().kind = Kind::kCommit;
  return core::Status::Ok();
}

core::Status PgPipeline::SendPrepare(const std::string& name, const std::string& sql,
                                     int param_count, ChangeContext change, std::string key) {
  SLUICE_RETURN_IF_ERROR(RequireConnection("preparing a statement"));
  if (PQsendPrepare(conn_->raw(), name.c_str(), sql.c_str(), param_count, nullptr) != 1) {
    return ConnectionLost("preparing a statement for " + change.Target());
  }
  Entry entry;
  entry.kind = Kind::kPrepare;
  entry.change = std::move(change);
  entry.label = std::move(key);
  pending_.push_back(std::move(entry));
  ++since_sync_;
  return core::Status::Ok();
}

core::Status PgPipeline::SendPrepared(const std::string& name, const char* const* values, int count,
                                      uint64_t bytes, ChangeContext change) {
  SLUICE_RETURN_IF_ERROR(RequireConnection("sending a change"));
  if (unsent_bytes_ != 0 && unsent_bytes_ + bytes > kMaxUnsentBytes) {
    // Everything queued must leave first: a large statement then has libpq's buffer to itself.
    SLUICE_RETURN_IF_ERROR(Pump(/*wait=*/true, /*max_pending=*/SIZE_MAX));
    SLUICE_RETURN_IF_ERROR(error_);
  }
  if (PQsendQueryPrepared(conn_->raw(), name.c_str(), count, values, nullptr, nullptr, 0) != 1) {
    return ConnectionLost("sending " + std::string(change.row_count > 1 ? "changes" : "a change") +
                          " for " + change.Target());
  }
  unsent_bytes_ += bytes;
  Entry entry;
  entry.kind = Kind::kRow;
  entry.change = std::move(change);
  pending_.push_back(std::move(entry));
  ++since_sync_;
  return core::Status::Ok();
}

core::Status PgPipeline::AfterSend() {
  if (unsent_bytes_ > kMaxUnsentBytes) {
    // A large statement (or many): wait until libpq has sent it, reading results meanwhile.
    SLUICE_RETURN_IF_ERROR(Pump(/*wait=*/true, /*max_pending=*/SIZE_MAX));
    SLUICE_RETURN_IF_ERROR(error_);
  }
  if (since_sync_ >= depth_) SLUICE_RETURN_IF_ERROR(Sync());
  if (++sends_since_pump_ >= kSendsPerPump) {
    // Read what is ready; if the server is far behind, wait for it so memory stays bounded.
    const bool far_behind = pending_.size() > 4 * depth_;
    SLUICE_RETURN_IF_ERROR(Pump(far_behind, 2 * depth_));
    return error_;
  }
  return core::Status::Ok();
}

core::Status PgPipeline::Sync() {
  SLUICE_RETURN_IF_ERROR(RequireConnection("pipeline sync"));
  if (PQpipelineSync(conn_->raw()) != 1) return ConnectionLost("sending a pipeline sync");
  Entry entry;
  entry.kind = Kind::kSync;
  pending_.push_back(std::move(entry));
  ++syncs_in_flight_;
  since_sync_ = 0;
  return core::Status::Ok();
}

core::Status PgPipeline::Pump(bool wait, size_t max_pending) {
  SLUICE_RETURN_IF_ERROR(RequireConnection("reading results"));
  sends_since_pump_ = 0;
  while (true) {
    PGconn* raw = conn_->raw();
    const int flushed = PQflush(raw);  // 0: all sent, 1: more to send, -1: failure
    if (flushed < 0) return ConnectionLost("sending to the target");
    if (flushed == 0) unsent_bytes_ = 0;
    if (PQconsumeInput(raw) != 1) return ConnectionLost("reading from the target");

    while (!pending_.empty() && !PQisBusy(raw)) {
      pg::ResultPtr result(PQgetResult(raw));
      if (PQstatus(raw) != CONNECTION_OK) return ConnectionLost("reading results", result.get());
      Entry& front = pending_.front();
      if (front.kind == Kind::kSync) {
        if (!result) {
          // libpq has nothing queued although we expect a sync: our bookkeeping is off.
          RecordError(core::Internal("pipeline out of step on " + conn_->endpoint() +
                                     " (no result where a sync was expected)"));
          return ConnectionLost("reading results");
        }
        if (PQresultStatus(result.get()) == PGRES_PIPELINE_SYNC) {
          pending_.pop_front();
          --syncs_in_flight_;
        } else {
          // An error outside any statement (e.g. the server is shutting down).
          HandleResult(front, result.get());
        }
        continue;
      }
      if (!result) {  // the front statement's results are complete
        pending_.pop_front();
        continue;
      }
      HandleResult(front, result.get());
    }

    const bool caught_up = pending_.size() <= max_pending && flushed == 0;
    if (!wait || caught_up) return core::Status::Ok();

    pollfd fd{};
    fd.fd = PQsocket(raw);
    if (fd.fd < 0) return ConnectionLost("waiting for results");
    fd.events = POLLIN | (flushed == 1 ? POLLOUT : 0);
    const int ready = poll(&fd, 1, 1000);
    if (ready < 0 && errno != EINTR) return ConnectionLost("waiting for results");
  }
}

void PgPipeline::HandleResult(Entry& entry, const PGresult* result) {
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
    switch (entry.kind) {
      case Kind::kRow:
      case Kind::kPrepare:
        listener_.OnChangeDone(entry, result);
        break;
      case Kind::kQuery:
        *entry.rows = pg::ResultRows(result);
        break;
      case Kind::kCommit: {
        const std::string tag = PQcmdStatus(const_cast<PGresult*>(result));
        if (tag != "COMMIT") {
          // COMMIT of a failed transaction reports ROLLBACK instead of an error.
          RecordError(core::Internal("COMMIT on " + conn_->endpoint() + " rolled back instead (" +
                                     tag + ")"));
        }
        break;
      }
      case Kind::kCommand:
      case Kind::kSync:
        break;
    }
    return;
  }
  if (status == PGRES_PIPELINE_ABORTED) return;  // skipped after an earlier error
  if (!error_.ok()) return;                      // report the first error only

  const std::string sqlstate = pg::ResultSqlState(result);
  const std::string server_text = pg::ServerErrorText(result, conn_->raw());
  if (entry.kind == Kind::kRow || entry.kind == Kind::kPrepare) {
    const auto step = entry.kind == Kind::kPrepare ? ChangeContext::Step::kPrepare
                                                   : ChangeContext::Step::kExecute;
    RecordError(pg::StatusForSqlState(sqlstate, entry.change.Message(step, server_text)),
                &entry.change);
    return;
  }
  RecordError(pg::StatusForSqlState(sqlstate,
                                    entry.label + " on " + conn_->endpoint() + ": " + server_text));
}

core::Status PgPipeline::SyncAndDrain() {
  if (since_sync_ > 0 || pending_.empty() || pending_.back().kind != Kind::kSync) {
    SLUICE_RETURN_IF_ERROR(Sync());
  }
  SLUICE_RETURN_IF_ERROR(Pump(/*wait=*/true, /*max_pending=*/0));
  return error_;
}

}  // namespace sluice::apply
