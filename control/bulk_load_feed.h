#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "apply/sink.h"
#include "codec/copy_text.h"
#include "core/relation.h"
#include "core/status.h"

namespace sluice::control {

// Feeds the initial copy's COPY text (as capture::SnapshotCopier streams it, split anywhere) to
// a target's BulkLoader: as is when the loader TakesCopyText() (PostgreSQL's fast path, nothing
// parsed), else parsed into rows (codec::CopyTextParser) and written in batches of up to
// kRowsPerWrite rows or about kBytesPerWrite bytes of COPY text, so a target can pipeline them.
// Memory: one batch, or one row when a row is larger.
//
// Does not own the loader. One thread.
class BulkLoadFeed {
 public:
  static constexpr size_t kRowsPerWrite = 1024;
  static constexpr size_t kBytesPerWrite = size_t{1} << 20;

  BulkLoadFeed(apply::BulkLoader& loader, const core::Relation& relation);

  // The next piece of COPY text. Malformed text is kCorruption naming the table and the row.
  [[nodiscard]] core::Status Write(std::string_view copy_text_chunk);

  // Writes the rows still held and finishes the loader (whose commit makes the rows durable).
  [[nodiscard]] core::Status Finish();

 private:
  core::Status WriteHeldRows();

  apply::BulkLoader& loader_;
  const bool copy_text_;
  codec::CopyTextParser parser_;
  std::vector<core::Tuple> rows_;  // parsed, not yet written
  size_t held_bytes_ = 0;          // COPY text parsed since the last write
};

}  // namespace sluice::control
