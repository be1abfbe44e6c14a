#pragma once

#include <string>
#include <utility>
#include <variant>

namespace sluice::core {

// What went wrong, and so what the caller should do about it.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // caller passed something malformed (bad config value, bad LSN text)
  kCorruption,       // bytes from the network or disk do not parse
  kUnavailable,      // a server is unreachable or went away: retry later
  kNotFound,         // a named object (slot, table, key) does not exist
  kAlreadyExists,
  kFailedPrecondition,  // the world is not in the state we need (wal_level, privileges, lock)
  kResourceExhausted,   // no free slot, memory bound hit
  kUnsupported,         // a protocol feature or type we do not handle
  kAborted,             // stopped on request
  kInternal,            // a bug in sluice
  kDataRejected,        // a target refused the data: a constraint it adds, a type, a value
};

const char* StatusCodeName(StatusCode code);

// An expected failure as a value: what kind of failure (code), whether trying again later may
// succeed (retryable, a separate fact: "too many connections" is exhausted *and* transient), the
// server's own error code when a server said no (a SQLSTATE, a Redis reply type, a librdkafka
// error name), and a message that names what and where (pipeline, table, LSN). Callers decide
// on code(), retryable() and server_code(), never by searching the message. Cheap when ok.
class [[nodiscard]] Status {
 public:
  Status() = default;
  // Retryable exactly when the code is kUnavailable.
  Status(StatusCode code, std::string message)
      : code_(code), retryable_(code == StatusCode::kUnavailable), message_(std::move(message)) {}
  Status(StatusCode code, std::string message, std::string server_code, bool retryable)
      : code_(code),
        retryable_(retryable),
        message_(std::move(message)),
        server_code_(std::move(server_code)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // The server's error code ("23505", "OOM", ...); empty when no server gave one.
  const std::string& server_code() const { return server_code_; }

  // Transient failures worth retrying with backoff.
  bool retryable() const { return retryable_; }

  // Returns a copy whose message is prefixed with `context: ` (code, server code and
  // retryability kept).
  Status WithContext(const std::string& context) const;

  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  bool retryable_ = false;
  std::string message_;
  std::string server_code_;
};

inline Status InvalidArgument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status FailedPrecondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status ResourceExhausted(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status Aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status DataRejected(std::string m) { return {StatusCode::kDataRejected, std::move(m)}; }

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sluice::core

// Propagates a non-ok Status from an expression returning Status.
#define SLUICE_RETURN_IF_ERROR(expr)     \
  do {                                   \
    ::sluice::core::Status _st = (expr); \
    if (!_st.ok()) return _st;           \
  } while (0)

#define SLUICE_CONCAT_INNER(a, b) a##b
#define SLUICE_CONCAT(a, b) SLUICE_CONCAT_INNER(a, b)

// `SLUICE_ASSIGN_OR_RETURN(auto x, Foo());` binds the value or returns the error.
#define SLUICE_ASSIGN_OR_RETURN(lhs, expr) \
  SLUICE_ASSIGN_OR_RETURN_IMPL(SLUICE_CONCAT(_res_, __LINE__), lhs, expr)
// `lhs` is a declaration and `tmp` a fresh name: neither can take parentheses.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define SLUICE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
