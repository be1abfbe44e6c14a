#include "codec/copy_text.h"

#include <array>
#include <cstring>

namespace sluice::codec {
namespace {

// The letter that escapes each byte in COPY TO's output (0: written as is). PostgreSQL also
// escapes the delimiter, which is the tab here.
constexpr std::array<char, 256> kEscapeLetter = [] {
  std::array<char, 256> letters{};
  letters['\b'] = 'b';
  letters['\f'] = 'f';
  letters['\n'] = 'n';
  letters['\r'] = 'r';
  letters['\t'] = 't';
  letters['\v'] = 'v';
  letters['\\'] = '\\';
  return letters;
}();

bool IsOctal(char c) { return c >= '0' && c <= '7'; }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void AppendCopyTextEscaped(std::string_view text, std::string& out) {
  size_t plain_from = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char letter = kEscapeLetter[static_cast<unsigned char>(text[i])];
    if (letter == 0) continue;
    out.append(text, plain_from, i - plain_from);
    out += '\\';
    out += letter;
    plain_from = i + 1;
  }
  out.append(text, plain_from);
}

bool AppendCopyTextRow(const core::Tuple& row, std::string& out) {
  const size_t original_size = out.size();
  for (size_t i = 0; i < row.size(); ++i) {
    if (i > 0) out += '\t';
    const core::Value& value = row[i];
    if (value.kind == core::Value::Kind::kNull) {
      out += "\\N";
    } else if (value.kind == core::Value::Kind::kText) {
      AppendCopyTextEscaped(value.data, out);
    } else {
      out.resize(original_size);
      return false;
    }
  }
  out += '\n';
  return true;
}

CopyTextParser::CopyTextParser(std::string table, size_t columns)
    : table_(std::move(table)), columns_(columns) {}

core::Status CopyTextParser::Malformed(size_t offset, const std::string& what) {
  error_ = core::Corruption("COPY text of " + table_ + ", row " + std::to_string(rows_ + 1) +
                            ", byte " + std::to_string(offset + 1) + ": " + what);
  return error_;
}

core::Status CopyTextParser::Feed(std::string_view chunk, std::vector<core::Tuple>& rows) {
  if (!error_.ok()) return error_;
  size_t pos = 0;
  while (pos < chunk.size()) {
    const void* newline = std::memchr(chunk.data() + pos, '\n', chunk.size() - pos);
    if (newline == nullptr) {
      partial_.append(chunk, pos);
      break;
    }
    const size_t end = static_cast<size_t>(static_cast<const char*>(newline) - chunk.data());
    const std::string_view line = chunk.substr(pos, end - pos);
    core::Status parsed;
    if (partial_.empty()) {
      parsed = ParseLine(line, rows);
    } else {  // the row began in an earlier chunk
      partial_.append(line);
      parsed = ParseLine(partial_, rows);
      partial_.clear();
    }
    SLUICE_RETURN_IF_ERROR(parsed);
    pos = end + 1;
  }
  return core::Status::Ok();
}

core::Status CopyTextParser::Finish() {
  if (!error_.ok()) return error_;
  if (!partial_.empty()) return Malformed(partial_.size(), "the data ends inside the row");
  return core::Status::Ok();
}

core::Status CopyTextParser::ParseLine(std::string_view line, std::vector<core::Tuple>& rows) {
  if (ended_) return Malformed(0, "data after the end-of-data marker \\.");
  if (line == "\\.") {
    ended_ = true;
    return core::Status::Ok();
  }
  core::Tuple row;
  row.reserve(columns_);
  size_t i = 0;
  // A table without columns has one empty line per row.
  while (columns_ > 0) {
    if (row.size() == columns_) {
      return Malformed(i - 1, "more than the table's " + std::to_string(columns_) + " columns");
    }
    if (line.substr(i, 2) == "\\N" && (i + 2 == line.size() || line[i + 2] == '\t')) {
      // Only the raw text \N is NULL; inside a longer value \N stands for N.
      row.push_back(core::Value::Null());
      i += 2;
    } else {
      std::string value;
      size_t plain_from = i;
      for (; i < line.size(); ++i) {
        const char c = line[i];
        if (c == '\t') break;
        if (c != '\\' && c != '\r' && c != '\0') continue;
        if (c == '\r') return Malformed(i, "a raw carriage return (COPY writes it as \\r)");
        if (c == '\0') return Malformed(i, "a NUL byte");
        value.append(line, plain_from, i - plain_from);
        const size_t escape_at = i;
        if (++i == line.size()) {
          return Malformed(escape_at, "a backslash at the end of the line");
        }
        const char escaped = line[i];
        switch (escaped) {
          case 'b':
            value += '\b';
            break;
          case 'f':
            value += '\f';
            break;
          case 'n':
            value += '\n';
            break;
          case 'r':
            value += '\r';
            break;
          case 't':
            value += '\t';
            break;
          case 'v':
            value += '\v';
            break;
          case '.':
            return Malformed(escape_at, "the end-of-data marker \\. inside a row");
          case '\r':
            return Malformed(i, "a raw carriage return (COPY writes it as \\r)");
          case '\0':
            return Malformed(i, "a NUL byte");
          case 'x': {
            // \x with no hex digit after it stands for x, as in PostgreSQL.
            int byte = i + 1 < line.size() ? HexDigit(line[i + 1]) : -1;
            if (byte < 0) {
              value += 'x';
              break;
            }
            ++i;
            if (i + 1 < line.size() && HexDigit(line[i + 1]) >= 0)
              byte = byte * 16 + HexDigit(line[++i]);
            if (byte == 0) return Malformed(escape_at, "an escape that makes a NUL byte");
            value += static_cast<char>(byte);
            break;
          }
          default:
            if (IsOctal(escaped)) {
              int byte = escaped - '0';
              for (int digits = 1; digits < 3 && i + 1 < line.size() && IsOctal(line[i + 1]);
                   ++digits) {
                byte = byte * 8 + (line[++i] - '0');
              }
              byte &= 0xff;  // \777 wraps, as in PostgreSQL
              if (byte == 0) return Malformed(escape_at, "an escape that makes a NUL byte");
              value += static_cast<char>(byte);
            } else {
              value += escaped;  // any other escaped character stands for itself
            }
        }
        plain_from = i + 1;
      }
      value.append(line, plain_from, i - plain_from);
      row.push_back(core::Value::Text(std::move(value)));
    }
    if (i == line.size()) break;
    ++i;  // the tab
  }
  if (columns_ == 0 && !line.empty())
    return Malformed(0, "data in a row of a table without columns");
  if (row.size() != columns_) {
    return Malformed(line.size(), std::to_string(row.size()) + " columns where the table has " +
                                      std::to_string(columns_));
  }
  rows.push_back(std::move(row));
  ++rows_;
  return core::Status::Ok();
}

}  // namespace sluice::codec
