#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "config/schema_changes.h"
#include "config/target_type.h"

// sluice's configuration as plain values. config_loader.h fills these from YAML, applies the
// defaults noted here and validates them; a Config it returns is complete (no empty defaults
// left to compute). YAML key names are given beside each field where they differ.

namespace sluice::config {

inline constexpr uint64_t kKiB = uint64_t{1} << 10;
inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kGiB = uint64_t{1} << 30;

struct AdminConfig {
  std::string listen = "127.0.0.1:7878";  // host:port of the status / metrics endpoint
  // `status` and /metrics warn when a slot keeps more WAL than this on its source.
  uint64_t retained_wal_warning_bytes = kGiB;  // YAML: retained_wal_warning (a size)
};

struct LogConfig {
  std::string level = "info";   // trace | debug | info | warn | error | critical | off
  std::string format = "text";  // text | json
};

struct SourceConfig {
  std::string dsn;          // libpq conninfo (key/value or URI); required
  std::string slot;         // default "sluice_<pipeline name>" with '-' replaced by '_'
  std::string publication;  // same default as slot
  // Each "schema.table" or "schema.*"; quoted identifiers allowed ("\"My Schema\".\"Odd\"").
  // Kept as written; see ParseTablePattern in config_loader.h.
  std::vector<std::string> tables;
  bool create_publication = true;
  // Stream from a slot that already exists though this state directory did not make it (one
  // made by hand, or by another tool, at the position to start from; the publication must
  // have existed before it, as pgoutput reads it as of each change). Needs snapshot: never.
  // Without it such a slot is refused: it may be another daemon's.
  bool adopt_slot = false;
  int protocol_version = 0;  // 0 = the highest the server supports; else 1..4
  bool streaming = true;     // stream in-progress transactions (protocol >= 2)
  bool binary = false;
  std::vector<std::string> skip_origins;  // replication origins whose changes are dropped
  std::chrono::milliseconds status_interval{10000};
  std::chrono::milliseconds connect_timeout{10000};
  // A stream silent this long (no change, no keepalive, no answer to a request for one sent
  // at half of it) is dropped and reconnected, as wal_receiver_timeout does. 0 = never.
  std::chrono::milliseconds receive_timeout{60000};
};

struct CaptureConfig {
  uint64_t memory_limit_bytes = 64 * kMiB;  // YAML: memory_limit (a size)
  std::string spill_dir;                    // default <state_dir>/spill/<pipeline name>
  // Fragments between capture and apply: at most queue_capacity of them and queue_bytes() of
  // changes (Change::ApproximateBytes), counted until apply is done with each; a fragment
  // larger than that (one huge value) goes alone. See README, "Memory".
  size_t max_fragment_changes = 2000;
  uint64_t max_fragment_bytes = 4 * kMiB;  // YAML: max_fragment_bytes (a size)
  size_t queue_capacity = 16;              // fragments

  // queue_capacity full fragments (saturating).
  uint64_t queue_bytes() const {
    const uint64_t capacity = queue_capacity == 0 ? 1 : queue_capacity;
    return max_fragment_bytes > UINT64_MAX / capacity ? UINT64_MAX : capacity * max_fragment_bytes;
  }
};

// Target-neutral: how the stream is grouped into target transactions, and the initial copy's
// parallelism. YAML: target.apply.
struct ApplyConfig {
  size_t batch_max_transactions = 1000;
  uint64_t batch_max_bytes = 16 * kMiB;  // a size
  std::chrono::milliseconds batch_max_delay{100};
  int copy_jobs = 2;  // parallel copy workers, >= 1
};

// A PostgreSQL target's own options. YAML: target.postgres; for a postgres target each key is
// also read under target.apply, where it was before every target type had its own block.
struct PostgresTargetConfig {
  bool create_tables = false;
  std::string session_replication_role = "replica";  // replica | origin | local
  // Net a batch's row changes per row before sending them (tables where nothing fires on the
  // target; see apply::BatchCompactor).
  bool compact = true;
  // When the stream or the target pauses, send netted changes once they reach this size
  // instead of holding them to the end of the batch (0: hold them). YAML: flush_on_pause.
  uint64_t flush_on_pause_bytes = uint64_t{256} * 1024;
  // A column the source adds that the target table lacks: see SchemaChanges.
  SchemaChanges schema_changes = SchemaChanges::kStop;
};

struct TargetConfig {
  // kNone when the pipeline has no target (capture only, for `sluice tail`); dsn is required
  // unless type is kNone.
  TargetType type = TargetType::kPostgres;
  std::string dsn;
  ApplyConfig apply;              // YAML: target.apply
  PostgresTargetConfig postgres;  // YAML: target.postgres; a postgres target's only
  // Each further target type gets its own block beside these (target.redis, target.kafka),
  // read only for a target of that type, when that target is built.
};

struct PipelineConfig {
  std::string name;  // [a-z0-9_-]+, unique among pipelines
  SourceConfig source;
  TargetConfig target;
  std::string snapshot = "initial";  // initial | never
  CaptureConfig capture;
};

struct MigrationConfig {
  std::string name;                 // [a-z0-9_-]+, unique among migrations
  std::string old_dsn;              // YAML: old: { dsn: ... }
  std::string new_dsn;              // YAML: new: { dsn: ... }
  std::vector<std::string> tables;  // same patterns as SourceConfig::tables; at least one
};

struct Config {
  std::string source_file;  // the file (or source name) the config was read from
  std::string state_dir = "/var/lib/sluice";
  // CPU priority of `sluice run`, as a nice value (-20..19). sluice's threads wait on the
  // walsender most of the time; where they share CPUs with the PostgreSQL processes they drive,
  // yielding to those moves the stream faster. Below the current value needs CAP_SYS_NICE.
  int nice = 10;
  AdminConfig admin;
  LogConfig log;
  std::vector<PipelineConfig> pipelines;
  std::vector<MigrationConfig> migrations;
};

}  // namespace sluice::config
