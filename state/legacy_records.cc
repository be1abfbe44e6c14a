#include "state/legacy_records.h"

#include <nlohmann/json.hpp>
#include <string>

namespace sluice::state {
namespace {

core::Result<nlohmann::json> ParseObject(std::string_view text, const char* what) {
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return core::Corruption(std::string(what) +
                            " is not a JSON object: " + std::string(text.substr(0, 200)));
  }
  return json;
}

std::string StringField(const nlohmann::json& json, const char* key) {
  auto it = json.find(key);
  return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
}

uint64_t UnsignedField(const nlohmann::json& json, const char* key) {
  auto it = json.find(key);
  return it != json.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

int64_t IntegerField(const nlohmann::json& json, const char* key) {
  auto it = json.find(key);
  return it != json.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

bool BoolField(const nlohmann::json& json, const char* key) {
  auto it = json.find(key);
  return it != json.end() && it->is_boolean() && it->get<bool>();
}

// The old writer left out an LSN it did not know; unparsable text was read as unknown too.
core::Lsn LsnField(const nlohmann::json& json, const char* key) {
  auto lsn = core::Lsn::Parse(StringField(json, key));
  return lsn.ok() ? *lsn : core::Lsn();
}

}  // namespace

core::Status DecodeLegacyRecord(std::string_view text, SlotRecord* record) {
  SLUICE_ASSIGN_OR_RETURN(nlohmann::json json, ParseObject(text, SlotRecord::kRecordName));
  const std::string state = StringField(json, "state");
  if (state == "creating") {
    record->state = SlotState::kCreating;
  } else if (state == "created") {
    record->state = SlotState::kCreated;
  } else if (state == "adopted") {
    record->state = SlotState::kAdopted;
  } else {
    return core::Corruption(std::string(SlotRecord::kRecordName) + " has state '" + state +
                            "' (expected creating, created or adopted)");
  }
  record->name = StringField(json, "name");
  record->consistent_point = LsnField(json, "consistent_point");
  return core::Status::Ok();
}

core::Status DecodeLegacyRecord(std::string_view text, TableCopyRecord* record) {
  SLUICE_ASSIGN_OR_RETURN(nlohmann::json json, ParseObject(text, TableCopyRecord::kRecordName));
  record->rows = UnsignedField(json, "rows");
  record->bytes = UnsignedField(json, "bytes");
  record->estimated_rows = UnsignedField(json, "estimated_rows");
  record->estimated_bytes = UnsignedField(json, "estimated_bytes");
  record->ranges = IntegerField(json, "ranges");
  record->ranges_done = IntegerField(json, "ranges_done");
  record->done = BoolField(json, "done");
  record->updated_at_unix_ms = IntegerField(json, "updated_at_unix_ms");
  record->snapshot_lsn = LsnField(json, "snapshot_lsn");
  return core::Status::Ok();
}

core::Status DecodeLegacyRecord(std::string_view text, SnapshotRequest* record) {
  SLUICE_ASSIGN_OR_RETURN(nlohmann::json json, ParseObject(text, SnapshotRequest::kRecordName));
  record->tables.clear();
  auto tables = json.find("tables");
  if (tables != json.end() && tables->is_array()) {
    for (const auto& table : *tables) {
      if (table.is_string()) record->tables.push_back(table.get<std::string>());
    }
  }
  return core::Status::Ok();
}

core::Status DecodeLegacyRecord(std::string_view text, PipelineErrorRecord* record) {
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("message") || !json["message"].is_string() ||
      !json.contains("at_unix_ms") || !json["at_unix_ms"].is_number_integer() ||
      !json.contains("permanent") || !json["permanent"].is_boolean()) {
    return core::Corruption(
        std::string(PipelineErrorRecord::kRecordName) +
        " is not {message, at_unix_ms, permanent}: " + std::string(text.substr(0, 200)));
  }
  record->message = json["message"].get<std::string>();
  record->at_unix_ms = json["at_unix_ms"].get<int64_t>();
  record->permanent = json["permanent"].get<bool>();
  return core::Status::Ok();
}

}  // namespace sluice::state
