#include "control/pipeline_state.h"

#include <nlohmann/json.hpp>

namespace sluice::control {
namespace {

constexpr char kSlotKey[] = "slot";
constexpr char kSnapshotKey[] = "snapshot";
constexpr char kSnapshotDone[] = "done";
constexpr char kTablePrefix[] = "copy/";
constexpr char kRequestKey[] = "resnapshot";

core::Result<nlohmann::json> ParseRecord(const std::string& text, const std::string& what) {
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return core::Corruption("state record " + what + " is not a JSON object: " + text);
  }
  return json;
}

core::Lsn LsnField(const nlohmann::json& json, const char* key) {
  auto it = json.find(key);
  if (it == json.end() || !it->is_string()) return core::Lsn();
  auto lsn = core::Lsn::Parse(it->get<std::string>());
  return lsn.ok() ? *lsn : core::Lsn();
}

}  // namespace

core::Result<std::optional<SlotRecord>> PipelineState::LoadSlot() {
  SLUICE_ASSIGN_OR_RETURN(auto text, store_.Get(pipeline_, kSlotKey));
  if (!text) return std::optional<SlotRecord>();
  SLUICE_ASSIGN_OR_RETURN(nlohmann::json json, ParseRecord(*text, kSlotKey));
  SlotRecord record;
  record.name = json.value("name", "");
  record.state = json.value("state", "");
  record.consistent_point = LsnField(json, "consistent_point");
  return std::optional<SlotRecord>(std::move(record));
}

core::Status PipelineState::SaveSlot(const SlotRecord& record) {
  nlohmann::json json = {{"name", record.name}, {"state", record.state}};
  if (record.consistent_point.valid()) {
    json["consistent_point"] = record.consistent_point.ToString();
  }
  return store_.Put(pipeline_, kSlotKey, json.dump());
}

core::Status PipelineState::ForgetSlot() { return store_.Delete(pipeline_, kSlotKey); }

core::Result<bool> PipelineState::SnapshotDone() {
  SLUICE_ASSIGN_OR_RETURN(auto value, store_.Get(pipeline_, kSnapshotKey));
  return value && *value == kSnapshotDone;
}

core::Status PipelineState::MarkSnapshotDone() {
  return store_.Put(pipeline_, kSnapshotKey, kSnapshotDone);
}

core::Result<std::map<std::string, TableRecord>> PipelineState::LoadTables() {
  SLUICE_ASSIGN_OR_RETURN(auto rows, store_.List(pipeline_, kTablePrefix));
  std::map<std::string, TableRecord> tables;
  for (const auto& [key, text] : rows) {
    SLUICE_ASSIGN_OR_RETURN(nlohmann::json json, ParseRecord(text, key));
    TableRecord record;
    record.table = key.substr(sizeof(kTablePrefix) - 1);
    record.done = json.value("done", false);
    record.snapshot_lsn = LsnField(json, "snapshot_lsn");
    tables[record.table] = std::move(record);
  }
  return tables;
}

core::Status PipelineState::MarkTableCopied(const std::string& table, core::Lsn snapshot_lsn) {
  const std::string key = TableKey(table);
  SLUICE_ASSIGN_OR_RETURN(auto text, store_.Get(pipeline_, key));
  nlohmann::json json = nlohmann::json::object();
  if (text) {
    SLUICE_ASSIGN_OR_RETURN(json, ParseRecord(*text, key));
  }
  json["done"] = true;
  if (snapshot_lsn.valid()) json["snapshot_lsn"] = snapshot_lsn.ToString();
  return store_.Put(pipeline_, key, json.dump());
}

core::Status PipelineState::MarkTableForCopy(const std::string& table) {
  // A record that is not done is what the copy reads as "the target's rows are sluice's".
  return store_.Put(pipeline_, TableKey(table), nlohmann::json{{"done", false}}.dump());
}

core::Status PipelineState::ForgetTables() {
  SLUICE_ASSIGN_OR_RETURN(auto rows, store_.List(pipeline_, kTablePrefix));
  for (const auto& [key, text] : rows) {
    (void)text;
    SLUICE_RETURN_IF_ERROR(store_.Delete(pipeline_, key));
  }
  return core::Status::Ok();
}

core::Result<std::optional<SnapshotRequest>> PipelineState::LoadRequest() {
  SLUICE_ASSIGN_OR_RETURN(auto text, store_.Get(pipeline_, kRequestKey));
  if (!text) return std::optional<SnapshotRequest>();
  SLUICE_ASSIGN_OR_RETURN(nlohmann::json json, ParseRecord(*text, kRequestKey));
  SnapshotRequest request;
  auto tables = json.find("tables");
  if (tables != json.end() && tables->is_array()) {
    for (const auto& table : *tables) {
      if (table.is_string()) request.tables.push_back(table.get<std::string>());
    }
  }
  return std::optional<SnapshotRequest>(std::move(request));
}

core::Status PipelineState::SaveRequest(const SnapshotRequest& request) {
  return store_.Put(pipeline_, kRequestKey, nlohmann::json{{"tables", request.tables}}.dump());
}

core::Status PipelineState::ClearRequest() { return store_.Delete(pipeline_, kRequestKey); }

core::Result<bool> PipelineState::HasPosition() {
  SLUICE_ASSIGN_OR_RETURN(auto checkpoint, store_.LoadCheckpoint(pipeline_));
  if (checkpoint) return true;
  SLUICE_ASSIGN_OR_RETURN(bool done, SnapshotDone());
  if (done) return true;
  SLUICE_ASSIGN_OR_RETURN(auto tables, store_.List(pipeline_, kTablePrefix));
  return !tables.empty();
}

}  // namespace sluice::control
