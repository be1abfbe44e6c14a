#include "control/bulk_load_feed.h"

namespace sluice::control {

BulkLoadFeed::BulkLoadFeed(apply::BulkLoader& loader, const core::Relation& relation)
    : loader_(loader),
      copy_text_(loader.TakesCopyText()),
      parser_(relation.QualifiedName(), relation.columns.size()) {}

core::Status BulkLoadFeed::Write(std::string_view copy_text_chunk) {
  if (copy_text_) return loader_.WriteCopyText(copy_text_chunk);
  SLUICE_RETURN_IF_ERROR(parser_.Feed(copy_text_chunk, rows_));
  held_bytes_ += copy_text_chunk.size();
  if (rows_.size() >= kRowsPerWrite || held_bytes_ >= kBytesPerWrite) return WriteHeldRows();
  return core::Status::Ok();
}

core::Status BulkLoadFeed::WriteHeldRows() {
  if (!rows_.empty()) SLUICE_RETURN_IF_ERROR(loader_.WriteRows(rows_));
  rows_.clear();
  held_bytes_ = 0;
  return core::Status::Ok();
}

core::Status BulkLoadFeed::Finish() {
  if (!copy_text_) {
    SLUICE_RETURN_IF_ERROR(parser_.Finish());
    SLUICE_RETURN_IF_ERROR(WriteHeldRows());
  }
  return loader_.Finish();
}

}  // namespace sluice::control
