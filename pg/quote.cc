#include "pg/quote.h"

namespace sluice::pg {
namespace {

// `value` between `quote` characters, each `quote` inside doubled (and each backslash too when
// `double_backslashes`).
std::string Enclose(std::string_view value, char quote, bool double_backslashes) {
  std::string out;
  out.reserve(value.size() + 3);
  out += quote;
  for (char c : value) {
    if (c == quote || (double_backslashes && c == '\\')) out += c;
    out += c;
  }
  out += quote;
  return out;
}

}  // namespace

std::string QuoteIdentifier(std::string_view name) { return Enclose(name, '"', false); }

std::string QuoteQualifiedName(std::string_view schema, std::string_view name) {
  return QuoteIdentifier(schema) + "." + QuoteIdentifier(name);
}

std::string QuoteLiteral(std::string_view value) {
  const bool has_backslash = value.find('\\') != std::string_view::npos;
  std::string quoted = Enclose(value, '\'', has_backslash);
  return has_backslash ? "E" + quoted : quoted;
}

std::string QuoteReplicationLiteral(std::string_view value) { return Enclose(value, '\'', false); }

}  // namespace sluice::pg
