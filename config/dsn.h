#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "pg/redact.h"

// Helpers for libpq connection strings, in both forms libpq accepts:
//   key/value: "host=db1 port=5432 password='it\'s' user=x"  (values unquoted, or in single
//              quotes; a backslash escapes the next character in either)
//   URI:       "postgresql://user:secret@host:5432/db?sslmode=require&password=..."
//              (scheme postgresql:// or postgres://; percent-encoding)
// Parsing follows libpq's own rules (fe-connect.c) so that what we redact or override is
// exactly what libpq would read. Secrets are the values of `password` and `sslpassword`.
// All functions are pure and thread-safe.

namespace sluice::config {

using pg::kRedacted;

// True if `dsn` is in URI form.
bool IsUriDsn(const std::string& dsn);

// `dsn` with every secret value replaced by ******** (quoted values become unquoted
// ********; the URI's user:password@ becomes user:********@). Everything else is kept as
// written. Malformed strings are redacted as far as they can be tokenized.
std::string RedactDsn(const std::string& dsn);

// `text` (say, a server or libpq error message) with every occurrence of any secret found in
// `dsns` replaced by ********. Both the decoded secret and its spelling inside the DSN (quoted,
// escaped or percent-encoded) are replaced.
std::string RedactSecrets(const std::string& text, const std::vector<std::string>& dsns);

// `dsn` with parameter `key` set to `value`: existing occurrences of the key are overridden in
// place, otherwise the parameter is appended (" key=value", or "?key=value" / "&key=value" for
// URIs). The value is quoted or percent-encoded as the form requires. Used to add
// replication=database, application_name, fallback_application_name.
std::string DsnWithParam(const std::string& dsn, const std::string& key, const std::string& value);

// Checks `dsn` with libpq's PQconninfoParse (syntax and known keywords; nothing is
// contacted). The error, kInvalidArgument, is libpq's message; when `dsn` may hold a secret
// (MayHoldSecret), any part of the string libpq quotes that could belong to one is replaced by
// ******** (a malformed string cannot tell where a password ends: in "password=a b", "b" may be
// part of it), and the message says how to quote.
core::Status ValidateDsn(const std::string& dsn);

// True if `text` may hold a secret if read as a connection string: it names password or
// sslpassword (in any case, anywhere), or is a URI with user information (user:secret@).
// Conservative by design: for deciding whether a value may be shown in a message.
bool MayHoldSecret(const std::string& text);

// Expands ${VAR} references (config/environment.h) in a connection string so that any value of
// VAR reaches libpq unchanged, whatever characters it holds:
//   key/value  a reference inside a parameter value makes the whole value single-quoted, with
//              ' and \ backslash-escaped (password=${PW} -> password='it\'s'); inside a value
//              already in single quotes, the variable's value is escaped in place.
//   URI        a reference in the user name, password, database name or a query parameter
//              value is percent-encoded (postgresql://u:${PW}@h/db -> u:p%40ss%20x@h/db); in
//              the host list and in query keys it is inserted as is (it may stand for
//              "host:port,host2").
// A reference anywhere else (say, the whole string) is expanded as is. Errors are
// ExpandEnvironment's (they name the variable, never a value).
core::Result<std::string> ExpandDsnEnvironment(const std::string& dsn_template);

}  // namespace sluice::config
