#include "control/pipeline_status.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <functional>

#include "capture/replication_connection.h"
#include "config/dsn.h"
#include "config/runnable.h"
#include "core/number_text.h"
#include "core/pg_time.h"
#include "core/wall_clock.h"
#include "pg/connection.h"
#include "pg/quote.h"
#include "state/checkpoint_store.h"

namespace sluice::control {
namespace {

constexpr size_t kTableErrorWidth = 100;  // longer errors are cut in the table (JSON has all)

nlohmann::json LsnJson(core::Lsn lsn) { return lsn.ToString(); }

template <typename T>
nlohmann::json OptionalJson(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

// Parses FormatPgTimestamp's "YYYY-MM-DDTHH:MM:SS.ffffffZ"; 0 when it does not match.
core::PgTimestamp ParseTimestamp(const std::string& text) {
  std::tm tm{};
  long long micros = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6lldZ%n", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &micros, &consumed) != 7 ||
      static_cast<size_t>(consumed) != text.size()) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const int64_t unix_seconds = timegm(&tm);
  return (unix_seconds - core::kPgEpochOffsetSeconds) * 1000000 + micros;
}

std::string Fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

std::string Scaled(double value, const char* const* units, int unit_count, double base) {
  int unit = 0;
  while (value >= base && unit + 1 < unit_count) {
    value /= base;
    ++unit;
  }
  return unit == 0 ? Fixed(value, 0) + units[0] : Fixed(value, 1) + units[unit];
}

std::string Pad(const std::string& text, size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

std::string OrDash(const std::optional<std::string>& text) { return text ? *text : "-"; }

// Retained WAL at or past kSlotWalRiskPercent of max_slot_wal_keep_size.
bool NearSlotWalLimit(uint64_t retained, uint64_t limit) {
  return static_cast<double>(retained) * 100 >=
         static_cast<double>(limit) * static_cast<double>(kSlotWalRiskPercent);
}

// Prometheus label value escaping: backslash, double quote and newline.
std::string LabelValue(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

// --- JSON ---------------------------------------------------------------------------------------

nlohmann::json ToJson(const PipelineStatus& s) {
  nlohmann::json copy = nlohmann::json::array();
  for (const auto& t : s.copy) {
    copy.push_back({{"table", t.schema_table},
                    {"rows", t.rows},
                    {"bytes", t.bytes},
                    {"estimated_rows", t.estimated_rows},
                    {"done", t.done}});
  }
  nlohmann::json sink = nlohmann::json::object();
  for (const auto& counter : s.sink_counters) sink[counter.name] = counter.value;
  return {
      {"name", s.name},
      {"phase", s.phase},
      {"slot", s.slot},
      {"source_lsn", s.source_lsn.valid() ? LsnJson(s.source_lsn) : nlohmann::json(nullptr)},
      {"durable_lsn", LsnJson(s.durable_lsn)},
      {"lag_bytes", OptionalJson(s.lag_bytes)},
      {"lag_seconds", OptionalJson(s.lag_seconds)},
      {"rows_per_second", s.rows_per_second},
      {"transactions_applied", s.transactions_applied},
      {"changes_applied", s.changes_applied},
      {"bytes_applied", s.bytes_applied},
      {"batches_committed", s.batches_committed},
      {"errors", s.errors},
      {"last_commit_time", s.last_commit_time != 0
                               ? nlohmann::json(core::FormatPgTimestamp(s.last_commit_time))
                               : nlohmann::json(nullptr)},
      {"last_progress_unix_ms", s.last_progress_unix_ms},
      {"retained_wal_bytes", OptionalJson(s.retained_wal_bytes)},
      {"retained_wal_warning", s.retained_wal_warning},
      {"slot_wal_status",
       s.slot_wal_status.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.slot_wal_status)},
      {"slot_safe_wal_bytes", OptionalJson(s.slot_safe_wal_bytes)},
      {"max_slot_wal_keep_bytes", OptionalJson(s.max_slot_wal_keep_bytes)},
      {"slot_wal_at_risk", s.slot_wal_at_risk},
      {"last_error", s.last_error},
      {"last_error_unix_ms", s.last_error_unix_ms},
      {"snapshot_done", s.snapshot_done},
      {"copy_rows", s.copy_rows},
      {"copy", std::move(copy)},
      {"sink", std::move(sink)},
  };
}

nlohmann::json ToJson(const std::vector<PipelineStatus>& statuses) {
  nlohmann::json pipelines = nlohmann::json::array();
  bool running = false;
  for (const auto& s : statuses) {
    pipelines.push_back(ToJson(s));
    running = running || s.daemon_running;
  }
  return {{"pipelines", std::move(pipelines)}, {"daemon", running ? "running" : "down"}};
}

core::Result<std::vector<PipelineStatus>> StatusesFromJson(const nlohmann::json& json) {
  if (!json.is_object() || !json.contains("pipelines") || !json["pipelines"].is_array()) {
    return core::InvalidArgument("status document has no \"pipelines\" array");
  }
  const bool running = json.value("daemon", std::string("down")) == "running";
  std::vector<PipelineStatus> statuses;
  try {
    for (const auto& p : json["pipelines"]) {
      PipelineStatus s;
      s.name = p.at("name").get<std::string>();
      s.phase = p.value("phase", std::string());
      s.slot = p.value("slot", std::string());
      for (auto [field, target] :
           {std::pair{"source_lsn", &s.source_lsn}, std::pair{"durable_lsn", &s.durable_lsn}}) {
        if (p.contains(field) && p[field].is_string()) {
          auto lsn = core::Lsn::Parse(p[field].get<std::string>());
          if (!lsn.ok()) return lsn.status().WithContext(std::string("status field ") + field);
          *target = *lsn;
        }
      }
      if (p.contains("lag_bytes") && !p["lag_bytes"].is_null()) {
        s.lag_bytes = p["lag_bytes"].get<uint64_t>();
      }
      if (p.contains("lag_seconds") && !p["lag_seconds"].is_null()) {
        s.lag_seconds = p["lag_seconds"].get<double>();
      }
      s.retained_wal_warning = p.value("retained_wal_warning", false);
      if (p.contains("retained_wal_bytes") && !p["retained_wal_bytes"].is_null()) {
        s.retained_wal_bytes = p["retained_wal_bytes"].get<uint64_t>();
      }
      if (p.contains("slot_wal_status") && p["slot_wal_status"].is_string()) {
        s.slot_wal_status = p["slot_wal_status"].get<std::string>();
      }
      if (p.contains("slot_safe_wal_bytes") && !p["slot_safe_wal_bytes"].is_null()) {
        s.slot_safe_wal_bytes = p["slot_safe_wal_bytes"].get<int64_t>();
      }
      if (p.contains("max_slot_wal_keep_bytes") && !p["max_slot_wal_keep_bytes"].is_null()) {
        s.max_slot_wal_keep_bytes = p["max_slot_wal_keep_bytes"].get<uint64_t>();
      }
      s.slot_wal_at_risk = p.value("slot_wal_at_risk", false);
      s.rows_per_second = p.value("rows_per_second", 0.0);
      s.transactions_applied = p.value("transactions_applied", uint64_t{0});
      s.changes_applied = p.value("changes_applied", uint64_t{0});
      s.bytes_applied = p.value("bytes_applied", uint64_t{0});
      s.batches_committed = p.value("batches_committed", uint64_t{0});
      s.errors = p.value("errors", uint64_t{0});
      if (p.contains("last_commit_time") && p["last_commit_time"].is_string()) {
        s.last_commit_time = ParseTimestamp(p["last_commit_time"].get<std::string>());
      }
      s.last_progress_unix_ms = p.value("last_progress_unix_ms", int64_t{0});
      s.last_error = p.value("last_error", std::string());
      s.last_error_unix_ms = p.value("last_error_unix_ms", int64_t{0});
      s.snapshot_done = p.value("snapshot_done", false);
      s.copy_rows = p.value("copy_rows", uint64_t{0});
      if (p.contains("sink") && p["sink"].is_object()) {
        for (const auto& [name, value] : p["sink"].items()) {
          s.sink_counters.push_back({name, "", value.get<uint64_t>()});
        }
      }
      if (p.contains("copy") && p["copy"].is_array()) {
        for (const auto& t : p["copy"]) {
          s.copy.push_back(
              TableCopyStatus{t.at("table").get<std::string>(), t.value("rows", uint64_t{0}),
                              t.value("bytes", uint64_t{0}), t.value("estimated_rows", uint64_t{0}),
                              t.value("done", false)});
        }
      }
      s.daemon_running = running;
      statuses.push_back(std::move(s));
    }
  } catch (const nlohmann::json::exception& e) {
    return core::InvalidArgument(std::string("malformed status document: ") + e.what());
  }
  return statuses;
}

// --- Human formatting ---------------------------------------------------------------------------

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {" B", " kB", " MB", " GB", " TB", " PB"};
  return Scaled(static_cast<double>(bytes), kUnits, 6, 1024.0);
}

std::string HumanCount(uint64_t count) {
  static const char* const kUnits[] = {"", "k", "M", "G", "T"};
  return Scaled(static_cast<double>(count), kUnits, 5, 1000.0);
}

std::string HumanSeconds(double seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 10) return seconds == 0 ? "0s" : Fixed(seconds, 1) + "s";
  const auto whole = static_cast<uint64_t>(seconds);
  char buf[64];
  if (whole < 60) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "s", whole);
  } else if (whole < 3600) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "m%02" PRIu64 "s", whole / 60, whole % 60);
  } else if (whole < 86400) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "h%02" PRIu64 "m", whole / 3600, whole % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRIu64 "d%02" PRIu64 "h", whole / 86400,
                  whole % 86400 / 3600);
  }
  return buf;
}

std::string ProgressBar(const TableCopyStatus& table, int width) {
  std::optional<int> percent;
  if (table.done) {
    percent = 100;
  } else if (table.estimated_rows > 0) {
    const uint64_t whole = table.rows / table.estimated_rows * 100 +
                           table.rows % table.estimated_rows * 100 / table.estimated_rows;
    percent = static_cast<int>(std::min<uint64_t>(99, whole));
  }
  const int filled = percent ? *percent * width / 100 : 0;
  std::string out = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
  if (percent) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%3d%%", *percent);
    out += buf;
  } else {
    out += "   ?";
  }
  out += "  " + HumanCount(table.rows);
  if (!table.done && table.estimated_rows > 0) out += "/" + HumanCount(table.estimated_rows);
  out += " rows";
  return out;
}

// --- The table ----------------------------------------------------------------------------------

std::string RenderStatusTable(const std::vector<PipelineStatus>& statuses, bool daemon_running,
                              uint64_t retained_wal_warning_bytes, const std::string& daemon_line) {
  std::string out = !daemon_line.empty() ? daemon_line
                    : daemon_running
                        ? "daemon: running\n"
                        : "daemon: DOWN (nothing is being applied; durable LSNs are the last "
                          "checkpoints in the state directory)\n";
  if (statuses.empty()) return out + "no pipelines\n";

  const std::vector<std::string> header = {"PIPELINE",    "PHASE",        "SOURCE LSN",
                                           "DURABLE LSN", "LAG",          "LAG TIME",
                                           "ROWS/S",      "RETAINED WAL", "LAST ERROR"};
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : statuses) {
    std::string error = s.last_error;
    for (char& c : error) {
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    }
    if (error.size() > kTableErrorWidth) error = error.substr(0, kTableErrorWidth - 3) + "...";
    rows.push_back({
        s.name,
        s.phase,
        s.source_lsn.valid() ? s.source_lsn.ToString() : "-",
        s.durable_lsn.ToString(),
        OrDash(s.lag_bytes ? std::optional(HumanBytes(*s.lag_bytes)) : std::nullopt),
        OrDash(s.lag_seconds ? std::optional(HumanSeconds(*s.lag_seconds)) : std::nullopt),
        daemon_running ? Fixed(s.rows_per_second, s.rows_per_second < 10 ? 1 : 0) : "-",
        OrDash(s.retained_wal_bytes ? std::optional(HumanBytes(*s.retained_wal_bytes))
                                    : std::nullopt),
        error.empty() ? "-" : error,
    });
  }
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    widths[c] = header[c].size();
    for (const auto& row : rows) widths[c] = std::max(widths[c], row[c].size());
  }
  auto append_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < cells.size(); ++c) {
      line += c + 1 == cells.size() ? cells[c] : Pad(cells[c], widths[c] + 2);
    }
    out += line + "\n";
  };
  append_row(header);
  for (const auto& row : rows) append_row(row);

  for (const auto& s : statuses) {
    if (s.snapshot_done || s.copy.empty()) continue;
    const auto done = std::count_if(s.copy.begin(), s.copy.end(),
                                    [](const TableCopyStatus& t) { return t.done; });
    out += "\n" + s.name + ": initial copy, " + std::to_string(done) + "/" +
           std::to_string(s.copy.size()) + " tables done\n";
    size_t name_width = 0;
    for (const auto& t : s.copy) name_width = std::max(name_width, t.schema_table.size());
    for (const auto& t : s.copy) {
      out += "  " + Pad(t.schema_table, name_width + 2) + ProgressBar(t) + "\n";
    }
  }

  bool first_warning = true;
  for (const auto& s : statuses) {
    const std::string warning = SlotWalWarning(s, retained_wal_warning_bytes);
    if (warning.empty()) continue;
    if (first_warning) out += "\n";
    first_warning = false;
    out += (s.slot_wal_status == "lost" ? "ERROR: " : "WARNING: ") + warning + "\n";
  }
  return out;
}

std::string SlotWalWarning(const PipelineStatus& s, uint64_t retained_wal_warning_bytes) {
  const std::string slot = s.name + ": slot " + s.slot;
  const std::string retained =
      s.retained_wal_bytes ? HumanBytes(*s.retained_wal_bytes) + " of WAL" : "WAL";
  const std::string limit =
      s.max_slot_wal_keep_bytes ? " " + HumanBytes(*s.max_slot_wal_keep_bytes) : "";
  if (s.slot_wal_status == "lost") {
    return slot +
           " has lost WAL it needed (wal_status lost: the source removed it beyond "
           "max_slot_wal_keep_size" +
           limit +
           "); the stream cannot resume from this slot: copy the tables again from a new slot with "
           "sluice snapshot --pipeline " +
           s.name;
  }
  if (s.slot_wal_status == "unreserved") {
    return slot + " retains " + retained + ", beyond the source's max_slot_wal_keep_size" + limit +
           " (wal_status unreserved): the source removes it at its next checkpoint and the slot "
           "is lost, unless the pipeline catches up first";
  }
  if (s.retained_wal_bytes && s.max_slot_wal_keep_bytes &&
      NearSlotWalLimit(*s.retained_wal_bytes, *s.max_slot_wal_keep_bytes)) {
    const auto percent = static_cast<int>(static_cast<double>(*s.retained_wal_bytes) * 100 /
                                          static_cast<double>(*s.max_slot_wal_keep_bytes));
    std::string left;
    if (s.slot_safe_wal_bytes && *s.slot_safe_wal_bytes > 0) {
      left = "; " + HumanBytes(static_cast<uint64_t>(*s.slot_safe_wal_bytes)) +
             " more and the source may remove WAL the slot needs";
    }
    return slot + " retains " + retained + ", " + std::to_string(percent) +
           "% of the source's max_slot_wal_keep_size" + limit + left +
           "; the pipeline must catch up (or the limit be raised) before the slot is lost";
  }
  if (s.retained_wal_bytes && *s.retained_wal_bytes > retained_wal_warning_bytes) {
    return slot + " retains " + retained + " on the source (threshold " +
           HumanBytes(retained_wal_warning_bytes) +
           "); the source cannot remove it until sluice confirms it, so its disk fills while "
           "the pipeline is stopped or behind";
  }
  return "";
}

// --- Prometheus ---------------------------------------------------------------------------------

namespace {
// The HELP and TYPE lines that open a metric family.
void AppendFamilyHeader(std::string& out, const std::string& name, const std::string& type,
                        const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

// One sample labelled with its pipeline.
void AppendSample(std::string& out, const std::string& name, const PipelineStatus& s,
                  const std::string& value) {
  out += name + "{pipeline=\"" + LabelValue(s.name) + "\"} " + value + "\n";
}
}  // namespace

std::string RenderPrometheus(const std::vector<PipelineStatus>& statuses) {
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
    std::function<std::optional<std::string>(const PipelineStatus&)> value;
  };
  auto count = [](uint64_t PipelineStatus::*field) {
    return [field](const PipelineStatus& s) -> std::optional<std::string> {
      return std::to_string(s.*field);
    };
  };
  const Metric metrics[] = {
      {"sluice_pipeline_up", "gauge",
       "1 when the pipeline is starting, copying, streaming or retrying, else 0.",
       [](const PipelineStatus& s) -> std::optional<std::string> {
         return IsHealthyPhase(s.phase) ? "1" : "0";
       }},
      {"sluice_lag_bytes", "gauge", "Source WAL position minus the durable LSN, in bytes.",
       [](const PipelineStatus& s) -> std::optional<std::string> {
         if (!s.lag_bytes) return std::nullopt;
         return std::to_string(*s.lag_bytes);
       }},
      {"sluice_lag_seconds", "gauge",
       "Age of the oldest source transaction not yet durable on the target; 0 when caught up.",
       [](const PipelineStatus& s) -> std::optional<std::string> {
         if (!s.lag_seconds) return std::nullopt;
         return Fixed(*s.lag_seconds, 3);
       }},
      {"sluice_transactions_applied_total", "counter", "Source transactions applied.",
       count(&PipelineStatus::transactions_applied)},
      {"sluice_changes_applied_total", "counter", "Row changes applied.",
       count(&PipelineStatus::changes_applied)},
      {"sluice_bytes_applied_total", "counter", "Bytes of changes applied.",
       count(&PipelineStatus::bytes_applied)},
      {"sluice_batches_committed_total", "counter", "Batches committed on the target.",
       count(&PipelineStatus::batches_committed)},
      {"sluice_errors_total", "counter", "Errors the pipeline met (each retry counts).",
       count(&PipelineStatus::errors)},
      {"sluice_slot_retained_wal_bytes", "gauge",
       "WAL the replication slot keeps on the source (current WAL position - restart_lsn).",
       [](const PipelineStatus& s) -> std::optional<std::string> {
         if (!s.retained_wal_bytes) return std::nullopt;
         return std::to_string(*s.retained_wal_bytes);
       }},
      {"sluice_slot_retained_wal_warning", "gauge",
       "1 when the slot keeps more WAL than admin.retained_wal_warning, else 0.",
       [](const PipelineStatus& s) -> std::optional<std::string> {
         if (!s.retained_wal_bytes) return std::nullopt;
         return s.retained_wal_warning ? "1" : "0";
       }},
      {"sluice_slot_safe_wal_bytes", "gauge",
       "WAL the source may still write before the slot loses WAL it needs "
       "(pg_replication_slots.safe_wal_size; negative once it has); absent without a "
       "max_slot_wal_keep_size.",
       [](const PipelineStatus& s) -> std::optional<std::string> {
         if (!s.slot_safe_wal_bytes) return std::nullopt;
         return std::to_string(*s.slot_safe_wal_bytes);
       }},
      {"sluice_slot_wal_at_risk", "gauge",
       "1 when the slot retains 80% or more of the source's max_slot_wal_keep_size or its "
       "wal_status is unreserved or lost, else 0.",
       [](const PipelineStatus& s) -> std::optional<std::string> {
         if (s.slot_wal_status.empty()) return std::nullopt;
         return s.slot_wal_at_risk ? "1" : "0";
       }},
      {"sluice_slot_wal_lost", "gauge",
       "1 when the slot's wal_status is lost: the source removed WAL the pipeline needs.",
       [](const PipelineStatus& s) -> std::optional<std::string> {
         if (s.slot_wal_status.empty()) return std::nullopt;
         return s.slot_wal_status == "lost" ? "1" : "0";
       }},
      {"sluice_copy_rows_total", "counter", "Rows copied by the initial copy.",
       count(&PipelineStatus::copy_rows)},
  };
  std::string out;
  for (const Metric& metric : metrics) {
    if (std::string(metric.name) == "sluice_copy_rows_total") {
      // The batch latency histogram sits before the copy counter.
      AppendFamilyHeader(out, "sluice_batch_latency_seconds", "histogram",
                         "Time from a batch's first statement to its durable commit on the "
                         "target.");
      for (const auto& s : statuses) {
        if (s.batch_latency_counts.size() !=
            PipelineMetrics::kBatchLatencyBucketsSeconds.size() + 1) {
          continue;
        }
        const std::string label = "pipeline=\"" + LabelValue(s.name) + "\"";
        uint64_t cumulative = 0;
        for (size_t i = 0; i < s.batch_latency_counts.size(); ++i) {
          cumulative += s.batch_latency_counts[i];
          const std::string le = i < PipelineMetrics::kBatchLatencyBucketsSeconds.size()
                                     ? Fixed(PipelineMetrics::kBatchLatencyBucketsSeconds[i], 3)
                                     : std::string("+Inf");
          out += "sluice_batch_latency_seconds_bucket{" + label + ",le=\"" + le + "\"} " +
                 std::to_string(cumulative) + "\n";
        }
        out += "sluice_batch_latency_seconds_sum{" + label + "} " +
               Fixed(s.batch_latency_sum_seconds, 6) + "\n";
        out += "sluice_batch_latency_seconds_count{" + label + "} " + std::to_string(cumulative) +
               "\n";
      }
    }
    AppendFamilyHeader(out, metric.name, metric.type, metric.help);
    for (const auto& s : statuses) {
      if (auto value = metric.value(s)) AppendSample(out, metric.name, s, *value);
    }
  }
  // Sink counters: one family per name, in order of first appearance (pipelines of different
  // target types have different counters).
  std::vector<const apply::SinkCounter*> families;
  for (const auto& s : statuses) {
    for (const auto& counter : s.sink_counters) {
      const bool known = std::any_of(families.begin(), families.end(),
                                     [&](const auto* f) { return f->name == counter.name; });
      if (!known) families.push_back(&counter);
    }
  }
  for (const apply::SinkCounter* family : families) {
    const std::string name = "sluice_sink_" + family->name + "_total";
    AppendFamilyHeader(out, name, "counter", family->help.empty() ? family->name : family->help);
    for (const auto& s : statuses) {
      for (const auto& counter : s.sink_counters) {
        if (counter.name == family->name) AppendSample(out, name, s, std::to_string(counter.value));
      }
    }
  }
  return out;
}

bool IsHealthyPhase(const std::string& phase) {
  return phase == "starting" || phase == "copying" || phase == "streaming" || phase == "retrying";
}

// --- StatusCollector ----------------------------------------------------------------------------

StatusCollector::StatusCollector(const config::Config& config)
    : StatusCollector(config, Options{}) {}

StatusCollector::StatusCollector(const config::Config& config, Options options)
    : config_(config), daemon_running_(false), store_(nullptr), options_(options) {
  for (const auto& pipeline : config.pipelines) {
    if (!config::RunStartsPipeline(pipeline)) continue;  // `sluice tail` only; run never starts it
    auto p = std::make_unique<PerPipeline>();
    p->config = &pipeline;
    pipelines_.push_back(std::move(p));
  }
}

StatusCollector::StatusCollector(const config::Config& config,
                                 const std::vector<PipelineEntry>& live,
                                 state::CheckpointStore* store, Options options)
    : config_(config), daemon_running_(true), store_(store), options_(options) {
  for (const auto& [pipeline, metrics] : live) {
    auto p = std::make_unique<PerPipeline>();
    p->config = pipeline;
    p->metrics = metrics;
    pipelines_.push_back(std::move(p));
  }
}

StatusCollector::~StatusCollector() = default;

StatusCollector::SourceInfo StatusCollector::QuerySource(PerPipeline& p) {
  const config::SourceConfig& source = p.config->source;
  SourceInfo info;
  info.fetched_at = std::chrono::steady_clock::now();
  // A cached connection may have died (server restart): one fresh attempt then, but not after
  // a timeout, which a fresh connection to a server that stopped answering would only repeat.
  for (int attempt = 0; attempt < 2 && !info.ok; ++attempt) {
    const bool fresh = !p.connection;
    if (fresh) {
      auto connection = pg::Connection::Connect(source.dsn, {.timeout = options_.source_timeout});
      if (!connection.ok()) {
        info.error = connection.status().message();
        break;  // a fresh connection failed; a second one would too
      }
      p.connection = std::move(*connection);
      // Also bounds the work on a server that answers, but slowly.
      auto set_timeout = p.connection->QueryWithin(
          "SET statement_timeout = " + std::to_string(options_.source_timeout.count()),
          options_.source_timeout, "setting statement_timeout");
      if (!set_timeout.ok()) {
        info.error = set_timeout.status().message();
        p.connection.reset();
        break;
      }
    }
    // On a standby (logical slots there need PostgreSQL 16) the current position is what it
    // received. wal_status, safe_wal_size and max_slot_wal_keep_size exist from 13 on.
    const bool has_wal_status = p.connection->server_version() >= 130000;
    const std::string slot = p.connection->QuoteLiteralForSql(source.slot);
    const std::string query =
        "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() "
        "ELSE pg_current_wal_lsn() END, s.restart_lsn, " +
        std::string(has_wal_status ? "s.wal_status, s.safe_wal_size, "
                                     "pg_size_bytes(current_setting('max_slot_wal_keep_size')) "
                                   : "NULL, NULL, NULL ") +
        "FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = " + slot;
    auto result = p.connection->QueryWithin(query, options_.source_timeout,
                                            "reading the WAL position and slot " + source.slot);
    if (!result.ok()) {
      info.error = result.status().message();
      // Retry only a connection that broke (not one that timed out, nor a fresh one).
      const bool broken = PQstatus(p.connection->raw()) == CONNECTION_BAD;
      p.connection.reset();
      if (fresh || !broken) break;
      continue;
    }
    const auto& rows = result->rows;
    if (rows.size() != 1 || rows[0].size() != 5 || !rows[0][0]) {
      info.error = "the source reported no WAL position";
      break;
    }
    auto current = core::Lsn::Parse(*rows[0][0]);
    if (!current.ok()) {
      info.error = current.status().message();
      break;
    }
    info.current_lsn = *current;
    if (rows[0][1]) {
      auto restart = core::Lsn::Parse(*rows[0][1]);
      if (restart.ok()) info.restart_lsn = *restart;
    }
    if (rows[0][2]) info.wal_status = *rows[0][2];
    // Not numbers: leave them unknown rather than guess.
    if (rows[0][3]) {
      if (auto safe = core::ParseInt64(*rows[0][3], "safe_wal_size"); safe.ok()) {
        info.safe_wal_size = *safe;
      }
    }
    if (rows[0][4]) {
      auto keep = core::ParseInt64(*rows[0][4], "max_slot_wal_keep_size");
      if (keep.ok() && *keep >= 0) info.max_slot_wal_keep_bytes = static_cast<uint64_t>(*keep);
    }
    info.ok = true;
    info.error.clear();
  }
  if (!info.ok) {
    info.error = config::RedactSecrets(info.error, {source.dsn, p.config->target.dsn});
  }
  return info;
}

void StatusCollector::ApplySource(const SourceInfo& source, uint64_t retained_wal_warning_bytes,
                                  PipelineStatus& status) {
  status.source_lsn = source.current_lsn;
  if (source.restart_lsn) {
    status.retained_wal_bytes = source.current_lsn > *source.restart_lsn
                                    ? source.current_lsn.value() - source.restart_lsn->value()
                                    : uint64_t{0};
    status.retained_wal_warning = *status.retained_wal_bytes > retained_wal_warning_bytes;
  }
  status.slot_wal_status = source.wal_status;
  status.slot_safe_wal_bytes = source.safe_wal_size;
  status.max_slot_wal_keep_bytes = source.max_slot_wal_keep_bytes;
  status.slot_wal_at_risk =
      source.wal_status == "lost" || source.wal_status == "unreserved" ||
      (status.retained_wal_bytes && source.max_slot_wal_keep_bytes &&
       NearSlotWalLimit(*status.retained_wal_bytes, *source.max_slot_wal_keep_bytes));
}

void StatusCollector::RefreshSources() {
  std::lock_guard lock(refresh_mu_);
  RefreshLocked(/*log_warnings=*/daemon_running_);
}

void StatusCollector::RefreshLocked(bool log_warnings) {
  const auto now = std::chrono::steady_clock::now();
  for (auto& p : pipelines_) {
    {
      std::lock_guard lock(sources_mu_);
      if (p->source && now - p->source->fetched_at < options_.source_cache_ttl) continue;
    }
    SourceInfo info = QuerySource(*p);  // no lock held but refresh_mu_: may take a while
    if (log_warnings) LogSlotWarning(*p, info);
    std::lock_guard lock(sources_mu_);
    p->source = std::move(info);
  }
}

void StatusCollector::LogSlotWarning(PerPipeline& p, const SourceInfo& source) const {
  if (!source.ok) return;  // unknown is not better or worse: keep what was said
  PipelineStatus status;
  status.name = p.config->name;
  status.slot = p.config->source.slot;
  ApplySource(source, config_.admin.retained_wal_warning_bytes, status);
  const std::string warning = SlotWalWarning(status, config_.admin.retained_wal_warning_bytes);
  // The numbers move all the time: log when the kind of warning changes, and every few minutes
  // while one lasts.
  const std::string kind = warning.empty() ? ""
                                           : status.slot_wal_status +
                                                 (status.slot_wal_at_risk ? "+at_risk" : "") +
                                                 (status.retained_wal_warning ? "+retained" : "");
  constexpr auto kRepeatEvery = std::chrono::minutes(5);
  const auto now = std::chrono::steady_clock::now();
  if (kind.empty()) {
    if (!p.logged_kind.empty()) {
      spdlog::info("pipeline {}: slot {} no longer at risk for its WAL", status.name, status.slot);
    }
  } else if (kind != p.logged_kind || now - p.logged_at >= kRepeatEvery) {
    if (status.slot_wal_status == "lost") {
      spdlog::error("pipeline {}", warning);
    } else {
      spdlog::warn("pipeline {}", warning);
    }
    p.logged_at = now;
  }
  p.logged_kind = kind;
}

void StatusCollector::SampleLocked(std::chrono::steady_clock::time_point now) {
  for (auto& p : pipelines_) {
    if (p->metrics) p->rate.Add(now, p->metrics->changes_applied.load(std::memory_order_relaxed));
  }
}

void StatusCollector::SampleRates() {
  std::lock_guard lock(mu_);
  SampleLocked(std::chrono::steady_clock::now());
}

void StatusCollector::FillFromStore(state::CheckpointStore* store, const PerPipeline& p,
                                    PipelineStatus& status, std::vector<std::string>& errors) {
  if (store == nullptr) return;
  const std::string& name = p.config->name;
  if (!p.metrics) {
    auto checkpoint = store->LoadCheckpoint(name);
    if (!checkpoint.ok()) {
      errors.push_back(checkpoint.status().message());
    } else if (checkpoint->has_value()) {
      status.durable_lsn = (*checkpoint)->durable_lsn;
      status.last_commit_time = (*checkpoint)->commit_time;
      status.last_progress_unix_ms = (*checkpoint)->updated_at_unix_ms;
    }
    // How the last run ended, if it ended on an error nothing has cleared since.
    auto recorded = store->Load(state::LastErrorKey(name));
    if (!recorded.ok()) {
      errors.push_back(recorded.status().message());
    } else if (recorded->has_value()) {
      const state::PipelineErrorRecord& record = **recorded;
      errors.insert(errors.begin(), record.message);
      status.last_error_unix_ms = record.at_unix_ms;
      if (record.permanent) status.phase = PipelinePhaseName(PipelinePhase::kFailed);
    }
  }
  auto snapshot = store->Load(state::SnapshotKey(name));
  if (snapshot.ok()) {
    status.snapshot_done = snapshot->has_value() && (*snapshot)->done;
  } else {
    errors.push_back(snapshot.status().message());
  }
  auto progress = store->LoadAll(state::TableCopyPrefix(name));
  if (!progress.ok()) {
    errors.push_back(progress.status().message());
    return;
  }
  uint64_t rows = 0;
  for (const auto& [schema_table, record] : *progress) {
    TableCopyStatus table;
    table.schema_table = schema_table;
    table.rows = record.rows;
    table.bytes = record.bytes;
    table.estimated_rows = record.estimated_rows;
    table.done = record.done;
    rows += table.rows;
    status.copy.push_back(std::move(table));
  }
  if (!p.metrics) status.copy_rows = rows;
}

core::Result<std::vector<PipelineStatus>> StatusCollector::Collect() {
  RefreshSources();
  return Report();
}

core::Result<std::vector<PipelineStatus>> StatusCollector::CollectCached() { return Report(); }

core::Result<std::vector<PipelineStatus>> StatusCollector::Report() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  const int64_t now_unix_ms = core::UnixMillisNow();
  SampleLocked(now);

  // The daemon's own store, else a read-only view as of now (a read-only store sees the data
  // as of its Open, so it is opened afresh each time).
  std::unique_ptr<state::CheckpointStore> read_only;
  state::CheckpointStore* store = store_;
  if (store == nullptr) {
    auto opened = state::CheckpointStore::Open(config_.state_dir, /*read_only=*/true);
    if (opened.ok()) {
      read_only = std::move(*opened);
      store = read_only.get();
    } else if (!daemon_running_) {
      return opened.status().WithContext("the daemon is down and its state cannot be read");
    }
  }

  std::vector<PipelineStatus> statuses;
  for (auto& p : pipelines_) {
    const config::PipelineConfig& pipeline = *p->config;
    PipelineStatus s;
    s.name = pipeline.name;
    s.slot = pipeline.source.slot;
    s.daemon_running = daemon_running_;
    std::vector<std::string> errors;

    if (const PipelineMetrics* m = p->metrics) {
      s.phase = PipelinePhaseName(m->phase.load());
      s.durable_lsn = core::Lsn(m->durable_lsn.load());
      s.transactions_applied = m->transactions_applied.load();
      s.changes_applied = m->changes_applied.load();
      s.bytes_applied = m->bytes_applied.load();
      s.batches_committed = m->batches_committed.load();
      s.errors = m->errors.load();
      s.last_commit_time = m->last_commit_time.load();
      s.last_progress_unix_ms = m->last_progress_unix_ms.load();
      s.copy_rows = m->copy_rows.load();
      for (const auto& bucket : m->batch_latency_counts) {
        s.batch_latency_counts.push_back(bucket.load());
      }
      s.batch_latency_sum_seconds = static_cast<double>(m->batch_latency_sum_us.load()) / 1e6;
      s.sink_counters = m->sink_counters();
      const core::PgTimestamp oldest_pending = m->oldest_pending_commit_time.load();
      s.lag_seconds =
          oldest_pending == 0
              ? 0.0
              : std::max(0.0, static_cast<double>(core::PgNow() - oldest_pending) / 1e6);
      s.rows_per_second = p->rate.PerSecond();
      if (std::string error = m->last_error(); !error.empty()) {
        errors.push_back(std::move(error));
        s.last_error_unix_ms = m->last_error_unix_ms();
      }
    } else {
      s.phase = PipelinePhaseName(PipelinePhase::kStopped);
    }
    FillFromStore(store, *p, s, errors);

    std::optional<SourceInfo> source;
    {
      std::lock_guard sources_lock(sources_mu_);
      source = p->source;
    }
    if (source && source->ok) {
      ApplySource(*source, config_.admin.retained_wal_warning_bytes, s);
      if (source->wal_status == "lost") {
        errors.push_back(SlotWalWarning(s, config_.admin.retained_wal_warning_bytes));
      }
    } else {
      if (source) errors.push_back("source unreachable: " + source->error);
      // The position the source last reported over the replication connection, if any.
      if (p->metrics) s.source_lsn = core::Lsn(p->metrics->source_wal_end.load());
    }
    if (s.source_lsn.valid() && s.durable_lsn.valid()) {
      s.lag_bytes = s.source_lsn > s.durable_lsn ? s.source_lsn.value() - s.durable_lsn.value() : 0;
    }
    // The source has WAL beyond anything its stream told us of while the stream is quiet: the
    // lag is at least the time since the pipeline last moved (a silent walsender shows here
    // long before the receive timeout, and while retrying).
    if (const PipelineMetrics* m = p->metrics;
        m && source && source->ok && s.durable_lsn.valid() && s.last_progress_unix_ms > 0) {
      const core::Lsn reported(m->source_wal_end.load());
      if (source->current_lsn > std::max(s.durable_lsn, reported)) {
        const double quiet =
            static_cast<double>(std::max<int64_t>(0, now_unix_ms - s.last_progress_unix_ms)) / 1e3;
        s.lag_seconds = std::max(s.lag_seconds.value_or(0.0), quiet);
      }
    }

    std::string joined;
    for (const auto& e : errors) joined += (joined.empty() ? "" : "; ") + e;
    s.last_error = config::RedactSecrets(joined, {pipeline.source.dsn, pipeline.target.dsn});
    statuses.push_back(std::move(s));
  }
  return statuses;
}

}  // namespace sluice::control
