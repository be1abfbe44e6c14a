// libFuzzer target for codec::CopyTextParser, which reads the COPY text a source sends during
// the initial copy: arbitrary bytes must parse or fail with kCorruption, never crash or read out
// of bounds; where the chunks are cut must not matter; and what parses must come back the same
// through the writer (AppendCopyTextRow).
//
// Input layout (seeds: codec/copy_text_test.cc):
//   byte 0: bits 0-2 = the table's number of columns, bits 3-7 = chunk length - 1
//   rest:   the COPY text, fed once whole and once in chunks of that length

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "codec/copy_text.h"

namespace {

using sluice::codec::CopyTextParser;
using sluice::core::Tuple;

void Check(bool condition) {
  if (!condition) std::abort();
}

struct Outcome {
  bool ok = false;
  std::vector<Tuple> rows;
};

Outcome Parse(std::string_view text, size_t columns, size_t chunk) {
  CopyTextParser parser("fuzz.t", columns);
  Outcome outcome;
  for (size_t at = 0; at < text.size(); at += chunk) {
    // A heap copy of exactly the chunk, so any read past its end trips AddressSanitizer.
    const std::string piece(text.substr(at, chunk));
    const sluice::core::Status status = parser.Feed(piece, outcome.rows);
    if (!status.ok()) {
      Check(status.code() == sluice::core::StatusCode::kCorruption);
      Check(status.message().find("fuzz.t") != std::string::npos);
      return outcome;
    }
  }
  const sluice::core::Status finished = parser.Finish();
  Check(finished.ok() || finished.code() == sluice::core::StatusCode::kCorruption);
  outcome.ok = finished.ok();
  if (outcome.ok) Check(parser.rows() == outcome.rows.size());
  return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t columns = data[0] & 7;
  const size_t chunk = 1 + (data[0] >> 3);
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  const Outcome whole = Parse(text, columns, text.size() + 1);
  const Outcome chunked = Parse(text, columns, chunk);
  Check(whole.ok == chunked.ok);
  if (!whole.ok) return 0;
  Check(whole.rows == chunked.rows);

  std::string written;
  for (const Tuple& row : whole.rows) {
    Check(row.size() == columns);
    Check(sluice::codec::AppendCopyTextRow(row, written));
  }
  const Outcome again = Parse(written, columns, written.size() + 1);
  Check(again.ok && again.rows == whole.rows);
  return 0;
}
