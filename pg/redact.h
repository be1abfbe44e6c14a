#pragma once

#include <string>
#include <string_view>

namespace sluice::pg {

// What stands in for a secret in anything sluice prints.
inline constexpr char kRedacted[] = "********";

// `text` (a libpq or server message, or anything that may echo a connection string) with every
// password removed: `password=...` pairs (quoted or not, in key/value or URI query form) become
// `password=********`, and a URI's `user:secret@` becomes `user:********@`. It recognises the
// forms without knowing the connection string; config::RedactSecrets removes the known
// secrets of configured connection strings wherever they appear.
std::string RedactPassword(std::string_view text);

}  // namespace sluice::pg
