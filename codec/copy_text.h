#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/change.h"
#include "core/status.h"

namespace sluice::codec {

// PostgreSQL's COPY text format with its defaults (DELIMITER tab, NULL '\N'), the form
// `COPY ... TO STDOUT` sends and `COPY ... FROM STDIN` takes: one row per line ended by a
// newline, columns separated by tabs, a column whose raw text is exactly \N is NULL, and inside
// a value the backslash escapes \b \f \n \r \t \v \\, octal \N, \NN, \NNN and hex \xN, \xNN
// (any other backslashed character stands for itself).

// Appends `text` escaped as COPY TO does: backslash, and the control characters \b \f \n \r \t
// \v, as their two-character escapes; everything else as is. Parsing the result gives `text`.
void AppendCopyTextEscaped(std::string_view text, std::string& out);

// Appends `row` as one line of COPY text. Only kText and kNull values have a COPY text form:
// for any other kind this appends nothing and returns false.
[[nodiscard]] bool AppendCopyTextRow(const core::Tuple& row, std::string& out);

// Parses COPY text into rows of `columns` values each (kText, or kNull for \N), fed in chunks
// split anywhere: mid-row, mid-value, between a backslash and what it escapes. Rows are
// complete only once their newline arrived.
//
// Malformed input (a row with too few or too many columns, a raw carriage return or NUL byte,
// an escape that makes a NUL byte, a backslash at a line's end, the end-of-data marker \. with
// data after it) is kCorruption naming the table, the row number (from 1) and the byte offset
// in the row; the parser is unusable afterwards. Not thread-safe.
class CopyTextParser {
 public:
  // `table` only names errors.
  CopyTextParser(std::string table, size_t columns);

  // Parses `chunk`, appending every row it completes to `rows`.
  [[nodiscard]] core::Status Feed(std::string_view chunk, std::vector<core::Tuple>& rows);

  // The end of the data: kCorruption when a row has begun and not ended.
  [[nodiscard]] core::Status Finish();

  // Rows completed so far.
  uint64_t rows() const { return rows_; }

 private:
  // Parses one whole line (without its newline) into `rows`.
  core::Status ParseLine(std::string_view line, std::vector<core::Tuple>& rows);
  core::Status Malformed(size_t offset, const std::string& what);

  const std::string table_;
  const size_t columns_;
  std::string partial_;  // a row whose newline has not arrived yet
  uint64_t rows_ = 0;
  bool ended_ = false;  // the end-of-data marker \. was seen
  core::Status error_;  // sticky
};

}  // namespace sluice::codec
