#pragma once

#include <string_view>

#include "core/status.h"
#include "state/state_records.h"

namespace sluice::state {

// Readers for the records sluice wrote before the store's format version 2: JSON objects
// (slot, table copy, snapshot request, last error) and the text "done" (snapshot). They read
// what that version wrote as it read it (fields it treated as optional stay optional); anything
// else is kCorruption. DecodeRecord (state_records.h) calls them for bytes that start with '{'
// (no record of the current encoding does: its version bytes are small) or equal "done".
inline bool IsLegacyJson(std::string_view bytes) { return !bytes.empty() && bytes[0] == '{'; }
inline constexpr std::string_view kLegacySnapshotDone = "done";

core::Status DecodeLegacyRecord(std::string_view text, SlotRecord* record);
core::Status DecodeLegacyRecord(std::string_view text, TableCopyRecord* record);
core::Status DecodeLegacyRecord(std::string_view text, SnapshotRequest* record);
core::Status DecodeLegacyRecord(std::string_view text, PipelineErrorRecord* record);

}  // namespace sluice::state
