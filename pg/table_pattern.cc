#include "pg/table_pattern.h"

#include <algorithm>
#include <cctype>

#include "pg/quote.h"

namespace sluice::pg {
namespace {

constexpr size_t kMaxIdentifierBytes = 63;  // PostgreSQL's NAMEDATALEN - 1

bool IsUnquotedIdentChar(char c, bool first) {
  const auto u = static_cast<unsigned char>(c);
  if (std::isalpha(u) || c == '_' || u >= 0x80) return true;
  return !first && (std::isdigit(u) || c == '$');
}

// Reads one identifier at text[*pos].
core::Result<std::string> ReadIdentifier(const std::string& text, size_t* pos, const char* what) {
  size_t i = *pos;
  std::string out;
  if (i < text.size() && text[i] == '"') {
    ++i;
    while (true) {
      if (i >= text.size()) {
        return core::InvalidArgument("unterminated quoted " + std::string(what) + " in '" + text +
                                     "'");
      }
      if (text[i] == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          out.push_back('"');
          i += 2;
          continue;
        }
        ++i;
        break;
      }
      out.push_back(text[i++]);
    }
    if (out.empty()) {
      return core::InvalidArgument("empty quoted " + std::string(what) + " in '" + text + "'");
    }
  } else {
    while (i < text.size() && IsUnquotedIdentChar(text[i], i == *pos)) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(text[i]))));
      ++i;
    }
    if (out.empty()) {
      return core::InvalidArgument("expected a " + std::string(what) + " name at offset " +
                                   std::to_string(*pos) + " of '" + text +
                                   "' (a table is written schema.table or schema.*)");
    }
  }
  if (out.size() > kMaxIdentifierBytes) {
    return core::InvalidArgument(std::string(what) + " name in '" + text +
                                 "' is longer than 63 bytes");
  }
  *pos = i;
  return out;
}

}  // namespace

std::string DisplayIdentifier(std::string_view name) {
  const bool plain = !name.empty() &&
                     (std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return std::islower(static_cast<unsigned char>(c)) ||
                              std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '$';
                     });
  return plain ? std::string(name) : QuoteIdentifier(name);
}

std::string TablePattern::DisplayName() const {
  return DisplayIdentifier(schema) + "." +
         (all_tables ? std::string("*") : DisplayIdentifier(table));
}

std::string TablePattern::ToString() const {
  return QuoteIdentifier(schema) + "." + (all_tables ? "*" : QuoteIdentifier(table));
}

core::Result<TablePattern> ParseTablePattern(std::string_view text_view) {
  const std::string text(text_view);
  TablePattern pattern;
  size_t pos = 0;
  SLUICE_ASSIGN_OR_RETURN(pattern.schema, ReadIdentifier(text, &pos, "schema"));
  if (pos >= text.size() || text[pos] != '.') {
    return core::InvalidArgument("expected schema.table or schema.*, got '" + text + "'");
  }
  ++pos;
  if (pos < text.size() && text[pos] == '*') {
    pattern.all_tables = true;
    ++pos;
  } else {
    SLUICE_ASSIGN_OR_RETURN(pattern.table, ReadIdentifier(text, &pos, "table"));
  }
  if (pos != text.size()) {
    return core::InvalidArgument("unexpected '" + text.substr(pos) + "' after the table in '" +
                                 text + "' (expected schema.table or schema.*)");
  }
  return pattern;
}

}  // namespace sluice::pg
