#include "capture/slot_manager.h"

#include <cstdlib>
#include <utility>

#include "pg/quote.h"

namespace sluice::capture {
namespace {

constexpr const char* kPlugin = "pgoutput";

const std::string& Cell(const pg::QueryResult& result, size_t row, size_t col) {
  static const std::string kEmpty;
  if (row >= result.rows.size() || col >= result.rows[row].size() || !result.rows[row][col]) {
    return kEmpty;
  }
  return *result.rows[row][col];
}

}  // namespace

core::Result<pg::QueryResult> SlotManager::Sql(const std::string& sql, const std::string& what) {
  if (connection_.closed()) {
    return core::FailedPrecondition(what + " on " + connection_.endpoint() +
                                    ": the replication connection is closed");
  }
  if (connection_.streaming()) {
    return core::FailedPrecondition(what + " on " + connection_.endpoint() +
                                    ": the replication connection is streaming");
  }
  return connection_.connection().Query(sql, what);
}

core::Status SlotManager::Preflight() {
  const std::string& endpoint = connection_.endpoint();
  SLUICE_ASSIGN_OR_RETURN(pg::QueryResult wal_level, Sql("SHOW wal_level", "reading wal_level"));
  const std::string level = Cell(wal_level, 0, 0);
  if (level != "logical") {
    return core::FailedPrecondition("source " + endpoint + " has wal_level=" + level +
                                    "; set wal_level=logical and restart PostgreSQL");
  }
  SLUICE_ASSIGN_OR_RETURN(
      pg::QueryResult role,
      Sql("SELECT rolsuper, rolreplication FROM pg_catalog.pg_roles WHERE rolname = current_user",
          "reading the privileges of the connected role"));
  if (Cell(role, 0, 0) != "t" && Cell(role, 0, 1) != "t") {
    const std::string& user = connection_.connection().user();
    return core::FailedPrecondition("role \"" + user + "\" on " + endpoint +
                                    " lacks the REPLICATION attribute; run ALTER ROLE " +
                                    pg::QuoteIdentifier(user) + " REPLICATION");
  }
  return core::Status::Ok();
}

core::Result<std::optional<SlotState>> SlotManager::InspectSlot(const std::string& name) {
  SLUICE_RETURN_IF_ERROR(ValidateSlotName(name));
  // wal_status exists from PostgreSQL 13 on.
  const bool has_wal_status = connection_.connection().server_version() >= 130000;
  SLUICE_ASSIGN_OR_RETURN(
      pg::QueryResult rows,
      Sql(std::string("SELECT coalesce(plugin, ''), slot_type, coalesce(database, ''), "
                      "temporary, active, coalesce(active_pid, 0), restart_lsn, "
                      "confirmed_flush_lsn, ") +
              (has_wal_status ? "wal_status" : "''") +
              " FROM pg_catalog.pg_replication_slots WHERE slot_name = " + pg::QuoteLiteral(name),
          "looking up replication slot " + name));
  if (rows.rows.empty()) return std::optional<SlotState>();
  SlotState state;
  state.name = name;
  state.endpoint = connection_.endpoint();
  state.plugin = Cell(rows, 0, 0);
  state.slot_type = Cell(rows, 0, 1);
  state.database = Cell(rows, 0, 2);
  state.temporary = Cell(rows, 0, 3) == "t";
  state.active = Cell(rows, 0, 4) == "t";
  state.active_pid = std::atoi(Cell(rows, 0, 5).c_str());
  for (auto [column, lsn] :
       {std::pair{6, &state.restart_lsn}, std::pair{7, &state.confirmed_flush_lsn}}) {
    if (Cell(rows, 0, column).empty()) continue;
    auto parsed = core::Lsn::Parse(Cell(rows, 0, column));
    if (!parsed.ok()) {
      return core::Corruption("slot " + name + " on " + connection_.endpoint() + ": " +
                              parsed.status().message());
    }
    *lsn = *parsed;
  }
  state.wal_status = Cell(rows, 0, 8);
  return std::optional<SlotState>(std::move(state));
}

core::Result<SlotInfo> SlotManager::EnsureSlot(const std::string& name, bool export_snapshot,
                                               bool may_create) {
  SLUICE_RETURN_IF_ERROR(ValidateSlotName(name));
  SLUICE_RETURN_IF_ERROR(Preflight());
  const std::string& endpoint = connection_.endpoint();
  const std::string& dbname = connection_.connection().dbname();

  // Two attempts: if someone else creates the slot between our lookup and our create, the
  // second lookup finds it.
  for (int attempt = 0; attempt < 2; ++attempt) {
    SLUICE_ASSIGN_OR_RETURN(std::optional<SlotState> existing, InspectSlot(name));
    if (existing) {
      if (existing->slot_type != "logical") {
        return core::FailedPrecondition("slot " + name + " on " + endpoint + " exists as a " +
                                        existing->slot_type +
                                        " slot; drop it or choose another slot name");
      }
      if (existing->plugin != kPlugin) {
        return core::FailedPrecondition("slot " + name + " on " + endpoint +
                                        " exists with plugin " + existing->plugin +
                                        "; drop it or choose another slot name");
      }
      if (existing->database != dbname) {
        return core::FailedPrecondition("slot " + name + " on " + endpoint +
                                        " exists for database " + existing->database + ", not " +
                                        dbname + "; drop it or choose another slot name");
      }
      SlotInfo info;
      info.name = name;
      info.created = false;
      info.active = existing->active;
      info.consistent_point = existing->confirmed_flush_lsn;
      return info;
    }
    if (!may_create) {
      return core::NotFound("replication slot " + name + " does not exist on " + endpoint);
    }
    auto created = Create(name, export_snapshot, /*temporary=*/false);
    if (!created.ok() && created.status().server_code() == "42710" && attempt == 0) {
      continue;  // created concurrently: look again
    }
    return created;
  }
  return core::Internal("EnsureSlot " + name + ": slot neither found nor created");
}

core::Result<SlotInfo> SlotManager::CreateTemporarySlot(const std::string& name) {
  SLUICE_RETURN_IF_ERROR(ValidateSlotName(name));
  SLUICE_RETURN_IF_ERROR(Preflight());
  return Create(name, /*export_snapshot=*/true, /*temporary=*/true);
}

core::Result<SlotInfo> SlotManager::Create(const std::string& name, bool export_snapshot,
                                           bool temporary) {
  const std::string& endpoint = connection_.endpoint();
  // PostgreSQL 15 introduced the parenthesised option list; the keyword form works on 10+.
  const bool new_syntax = connection_.connection().server_version() >= 150000;
  std::string command = "CREATE_REPLICATION_SLOT " + pg::QuoteIdentifier(name) +
                        (temporary ? " TEMPORARY" : "") + " LOGICAL " + kPlugin;
  if (new_syntax) {
    command += export_snapshot ? " (SNAPSHOT 'export')" : " (SNAPSHOT 'nothing')";
  } else {
    command += export_snapshot ? " EXPORT_SNAPSHOT" : " NOEXPORT_SNAPSHOT";
  }
  auto created = Sql(command, "creating replication slot " + name);
  if (!created.ok()) {
    const std::string& sqlstate = created.status().server_code();
    if (sqlstate == "53400") {
      std::string max_slots = "?";
      auto show = Sql("SHOW max_replication_slots", "reading max_replication_slots");
      if (show.ok()) max_slots = Cell(*show, 0, 0);
      return core::ResourceExhausted(
          "cannot create replication slot " + name + " on " + endpoint +
          ": all replication slots are in use (max_replication_slots=" + max_slots +
          "); drop an unused slot with pg_drop_replication_slot() or raise "
          "max_replication_slots and restart PostgreSQL");
    }
    if (sqlstate == "55000") {  // e.g. wal_level changed under us
      return core::FailedPrecondition(created.status().message());
    }
    return created.status();
  }
  if (created->rows.size() != 1 || created->columns.size() < 3) {
    return core::Corruption("CREATE_REPLICATION_SLOT " + name + " on " + endpoint + " returned " +
                            std::to_string(created->rows.size()) + " row(s); expected 1");
  }
  SlotInfo info;
  info.name = name;
  info.created = true;
  auto point = core::Lsn::Parse(Cell(*created, 0, 1));
  if (!point.ok()) {
    return core::Corruption("CREATE_REPLICATION_SLOT " + name + " on " + endpoint +
                            " returned consistent_point: " + point.status().message());
  }
  info.consistent_point = *point;
  info.snapshot_name = Cell(*created, 0, 2);
  if (export_snapshot && info.snapshot_name.empty()) {
    return core::Corruption("CREATE_REPLICATION_SLOT " + name + " on " + endpoint +
                            " exported no snapshot");
  }
  return info;
}

core::Status SlotManager::DropSlot(const std::string& name) {
  SLUICE_RETURN_IF_ERROR(ValidateSlotName(name));
  auto dropped = Sql("DROP_REPLICATION_SLOT " + pg::QuoteIdentifier(name),
                     "dropping replication slot " + name);
  if (!dropped.ok()) {
    const std::string& sqlstate = dropped.status().server_code();
    if (sqlstate == "42704") {
      return core::NotFound("replication slot " + name + " does not exist on " +
                            connection_.endpoint());
    }
    if (sqlstate == "55006") {  // retryable: often a walsender of ours that is going away
      return core::Status(
          core::StatusCode::kUnavailable,
          dropped.status().message() + "; if another client streams from it, stop that client",
          sqlstate, true);
    }
    return dropped.status();
  }
  return core::Status::Ok();
}

}  // namespace sluice::capture
