#include "config/config_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace sluice::config {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kMinimal[] = R"(pipelines:
  - name: orders
    source:
      dsn: "host=127.0.0.1 port=5432 dbname=app user=sluice"
      tables: [public.orders]
)";

Config ParseOrDie(const std::string& yaml) {
  auto config = ParseConfig(yaml, "sluice.yaml");
  EXPECT_TRUE(config.ok()) << config.status().message();
  return config.ok() ? std::move(config).value() : Config{};
}

TEST(ParseConfigTest, MinimalConfigGetsDefaults) {
  Config c = ParseOrDie(kMinimal);
  EXPECT_EQ(c.source_file, "sluice.yaml");
  EXPECT_EQ(c.state_dir, "/var/lib/sluice");
  EXPECT_EQ(c.nice, 10);
  EXPECT_EQ(c.admin.listen, "127.0.0.1:7878");
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.format, "text");
  ASSERT_EQ(c.pipelines.size(), 1u);
  EXPECT_TRUE(c.migrations.empty());
  const PipelineConfig& p = c.pipelines[0];
  EXPECT_EQ(p.name, "orders");
  EXPECT_EQ(p.source.dsn, "host=127.0.0.1 port=5432 dbname=app user=sluice");
  EXPECT_EQ(p.source.slot, "sluice_orders");
  EXPECT_EQ(p.source.publication, "sluice_orders");
  EXPECT_EQ(p.source.tables, std::vector<std::string>{"public.orders"});
  EXPECT_TRUE(p.source.create_publication);
  EXPECT_EQ(p.source.protocol_version, 0);
  EXPECT_TRUE(p.source.streaming);
  EXPECT_FALSE(p.source.binary);
  EXPECT_TRUE(p.source.skip_origins.empty());
  EXPECT_EQ(p.source.status_interval, std::chrono::seconds(10));
  EXPECT_EQ(p.source.connect_timeout, std::chrono::seconds(10));
  EXPECT_EQ(p.source.receive_timeout, std::chrono::seconds(60));
  EXPECT_EQ(p.snapshot, "initial");
  EXPECT_EQ(p.target.type, TargetType::kNone);  // no target: capture only
  EXPECT_EQ(p.target.dsn, "");
  EXPECT_EQ(p.capture.memory_limit_bytes, 64 * kMiB);
  EXPECT_EQ(p.capture.spill_dir, "/var/lib/sluice/spill/orders");
  EXPECT_EQ(p.capture.max_fragment_changes, 2000u);
  EXPECT_EQ(p.capture.max_fragment_bytes, 4 * kMiB);
  EXPECT_EQ(p.capture.queue_capacity, 16u);
  EXPECT_EQ(p.capture.queue_bytes(), 64 * kMiB);  // queue_capacity full fragments
  EXPECT_EQ(p.target.apply.batch_max_transactions, 1000u);
  EXPECT_EQ(p.target.apply.batch_max_bytes, 16 * kMiB);
  EXPECT_EQ(p.target.apply.batch_max_delay, std::chrono::milliseconds(100));
  EXPECT_EQ(p.target.apply.copy_jobs, 2);
  EXPECT_FALSE(p.target.postgres.create_tables);
  EXPECT_EQ(p.target.postgres.session_replication_role, "replica");
  EXPECT_TRUE(p.target.postgres.compact);
  EXPECT_EQ(p.target.postgres.flush_on_pause_bytes, 256 * kKiB);
  EXPECT_EQ(p.target.postgres.schema_changes, SchemaChanges::kStop);
}

TEST(ParseConfigTest, EveryKeySet) {
  Config c = ParseOrDie(R"(state_dir: /srv/sluice/
nice: -5
admin: { listen: "0.0.0.0:9000" }
log: { level: debug, format: json }
pipelines:
  - name: my-pipe_2
    source:
      dsn: postgresql://sluice@10.0.0.1:5432/app
      slot: custom_slot
      publication: Custom Pub
      tables: [public.orders, "sales.*", '"My Schema"."Odd Table"']
      create_publication: no
      protocol_version: 4
      streaming: off
      binary: yes
      skip_origins: [sluice_apply_1, other]
      status_interval: 500ms
      connect_timeout: 1m
      receive_timeout: 0
    target:
      type: postgres
      dsn: host=10.0.0.2 dbname=app
      apply:
        batch_max_transactions: 50
        batch_max_bytes: 1GiB
        batch_max_delay: 0
        copy_jobs: 8
      postgres:
        create_tables: true
        session_replication_role: origin
        compact: false
        flush_on_pause: 0
        schema_changes: add_columns
    snapshot: never
    capture:
      memory_limit: 1GB
      spill_dir: /fast/spill
      max_fragment_changes: 5
      max_fragment_bytes: 64kB
      queue_capacity: 3
migrations:
  - name: move-app
    old: { dsn: "host=old" }
    new: { dsn: "host=new" }
    tables: ["public.*"]
)");
  EXPECT_EQ(c.state_dir, "/srv/sluice/");
  EXPECT_EQ(c.nice, -5);
  EXPECT_EQ(c.admin.listen, "0.0.0.0:9000");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.format, "json");
  ASSERT_EQ(c.pipelines.size(), 1u);
  const PipelineConfig& p = c.pipelines[0];
  EXPECT_EQ(p.name, "my-pipe_2");
  EXPECT_EQ(p.source.dsn, "postgresql://sluice@10.0.0.1:5432/app");
  EXPECT_EQ(p.source.slot, "custom_slot");
  EXPECT_EQ(p.source.publication, "Custom Pub");
  EXPECT_EQ(p.source.tables,
            (std::vector<std::string>{"public.orders", "sales.*", "\"My Schema\".\"Odd Table\""}));
  EXPECT_FALSE(p.source.create_publication);
  EXPECT_EQ(p.source.protocol_version, 4);
  EXPECT_FALSE(p.source.streaming);
  EXPECT_TRUE(p.source.binary);
  EXPECT_EQ(p.source.skip_origins, (std::vector<std::string>{"sluice_apply_1", "other"}));
  EXPECT_EQ(p.source.status_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(p.source.connect_timeout, std::chrono::minutes(1));
  EXPECT_EQ(p.source.receive_timeout, std::chrono::milliseconds(0));  // off
  EXPECT_EQ(p.target.type, TargetType::kPostgres);
  EXPECT_EQ(p.target.dsn, "host=10.0.0.2 dbname=app");
  EXPECT_EQ(p.target.apply.batch_max_transactions, 50u);
  EXPECT_EQ(p.target.apply.batch_max_bytes, kGiB);
  EXPECT_EQ(p.target.apply.batch_max_delay, std::chrono::milliseconds(0));
  EXPECT_EQ(p.target.apply.copy_jobs, 8);
  EXPECT_TRUE(p.target.postgres.create_tables);
  EXPECT_EQ(p.target.postgres.session_replication_role, "origin");
  EXPECT_FALSE(p.target.postgres.compact);
  EXPECT_EQ(p.target.postgres.flush_on_pause_bytes, 0u);
  EXPECT_EQ(p.target.postgres.schema_changes, SchemaChanges::kAddColumns);
  EXPECT_EQ(p.snapshot, "never");
  EXPECT_EQ(p.capture.memory_limit_bytes, kGiB);
  EXPECT_EQ(p.capture.spill_dir, "/fast/spill");
  EXPECT_EQ(p.capture.max_fragment_changes, 5u);
  EXPECT_EQ(p.capture.max_fragment_bytes, 64 * kKiB);
  EXPECT_EQ(p.capture.queue_capacity, 3u);
  EXPECT_EQ(p.capture.queue_bytes(), 3 * 64 * kKiB);
  ASSERT_EQ(c.migrations.size(), 1u);
  EXPECT_EQ(c.migrations[0].name, "move-app");
  EXPECT_EQ(c.migrations[0].old_dsn, "host=old");
  EXPECT_EQ(c.migrations[0].new_dsn, "host=new");
  EXPECT_EQ(c.migrations[0].tables, std::vector<std::string>{"public.*"});
}

TEST(ParseConfigTest, DefaultsDeriveFromNameAndStateDir) {
  Config c = ParseOrDie(R"(state_dir: /data/s//
pipelines:
  - name: a-b-c
    source: { dsn: "host=x", tables: [public.t] }
  - name: second
    source: { dsn: "host=x", tables: [public.t], slot: other }
    target: { dsn: "host=y" }
)");
  ASSERT_EQ(c.pipelines.size(), 2u);
  EXPECT_EQ(c.pipelines[0].source.slot, "sluice_a_b_c");
  EXPECT_EQ(c.pipelines[0].source.publication, "sluice_a_b_c");
  EXPECT_EQ(c.pipelines[0].capture.spill_dir, "/data/s/spill/a-b-c");
  EXPECT_EQ(c.pipelines[1].target.type, TargetType::kPostgres);  // no type: postgres
  EXPECT_EQ(c.pipelines[1].target.dsn, "host=y");
  EXPECT_EQ(c.pipelines[1].source.publication, "sluice_second");
}

// Configs written before each target type had its own block give a postgres target's options
// under target.apply; they mean the same there.
TEST(ParseConfigTest, PostgresOptionsUnderApplyMeanTheSame) {
  const std::string head = kMinimal + std::string("    target:\n      dsn: host=y\n");
  const Config old_spelling = ParseOrDie(head + R"(      apply:
        batch_max_transactions: 7
        create_tables: true
        session_replication_role: local
        compact: false
        flush_on_pause: 1MB
        schema_changes: add_columns
)");
  const Config new_spelling = ParseOrDie(head + R"(      apply: { batch_max_transactions: 7 }
      postgres:
        create_tables: true
        session_replication_role: local
        compact: false
        flush_on_pause: 1MB
        schema_changes: add_columns
)");
  for (const Config* c : {&old_spelling, &new_spelling}) {
    ASSERT_EQ(c->pipelines.size(), 1u);
    const TargetConfig& t = c->pipelines[0].target;
    EXPECT_EQ(t.type, TargetType::kPostgres);
    EXPECT_EQ(t.apply.batch_max_transactions, 7u);
    EXPECT_TRUE(t.postgres.create_tables);
    EXPECT_EQ(t.postgres.session_replication_role, "local");
    EXPECT_FALSE(t.postgres.compact);
    EXPECT_EQ(t.postgres.flush_on_pause_bytes, kMiB);
    EXPECT_EQ(t.postgres.schema_changes, SchemaChanges::kAddColumns);
  }
}

// A key given in both places is accepted when both say the same; each place may hold some.
TEST(ParseConfigTest, PostgresOptionsMayBeSplitOrRepeatedAlike) {
  const Config c = ParseOrDie(kMinimal + std::string(R"(    target:
      dsn: host=y
      apply: { create_tables: yes, compact: false }
      postgres: { create_tables: true, schema_changes: add_columns }
)"));
  const PostgresTargetConfig& pg = c.pipelines[0].target.postgres;
  EXPECT_TRUE(pg.create_tables);
  EXPECT_FALSE(pg.compact);
  EXPECT_EQ(pg.schema_changes, SchemaChanges::kAddColumns);
  EXPECT_EQ(pg.session_replication_role, "replica");  // given nowhere: the default
}

TEST(ParseConfigTest, EmptyPostgresBlockKeepsTheDefaults) {
  const Config c =
      ParseOrDie(kMinimal + std::string("    target:\n      dsn: host=y\n      postgres:\n"));
  EXPECT_FALSE(c.pipelines[0].target.postgres.create_tables);
  EXPECT_EQ(c.pipelines[0].target.postgres.schema_changes, SchemaChanges::kStop);
}

TEST(ParseConfigTest, MigrationsAloneAreEnough) {
  Config c = ParseOrDie(R"(migrations:
  - name: m
    old: { dsn: "host=a" }
    new: { dsn: "host=b" }
    tables: [public.x]
)");
  EXPECT_TRUE(c.pipelines.empty());
  EXPECT_EQ(c.migrations.size(), 1u);
}

TEST(ParseConfigTest, CaptureOnlyPipelineWithoutPublicationTables) {
  Config c = ParseOrDie(R"(pipelines:
  - name: tail
    source: { dsn: "host=x", create_publication: false, publication: existing }
    target: { type: none }
)");
  EXPECT_TRUE(c.pipelines[0].source.tables.empty());
  EXPECT_EQ(c.pipelines[0].target.type, TargetType::kNone);
}

TEST(ParseConfigTest, ExpandsEnvironmentVariables) {
  setenv("SLUICE_TEST_PASSWORD", "s3 cret", 1);
  setenv("SLUICE_TEST_MEM", "32MB", 1);
  setenv("SLUICE_TEST_HOST", "db.example", 1);
  Config c = ParseOrDie(R"(pipelines:
  - name: orders
    source:
      dsn: "host=${SLUICE_TEST_HOST} password='${SLUICE_TEST_PASSWORD}'"
      slot: "sluice_orders"
      tables: [public.orders]
      publication: "cost$${NOT_EXPANDED}$1"
    capture:
      memory_limit: ${SLUICE_TEST_MEM}
)");
  ASSERT_EQ(c.pipelines.size(), 1u);
  // A reference inside a connection string value is quoted for libpq.
  EXPECT_EQ(c.pipelines[0].source.dsn, "host='db.example' password='s3 cret'");
  EXPECT_EQ(c.pipelines[0].source.publication, "cost${NOT_EXPANDED}$1");
  EXPECT_EQ(c.pipelines[0].capture.memory_limit_bytes, 32 * kMiB);
}

TEST(ParseConfigTest, SourceNameIsReportedForAllErrorsAndAllErrorsAreListed) {
  auto c = ParseConfig(R"(pipelines:
  - name: Bad
    source: { dsn: "host=x", tables: [public.t], streaming: maybe }
    snapshot: sometimes
)",
                       "/etc/sluice/prod.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(),
            "/etc/sluice/prod.yaml:2:11: pipelines[0].name: expected a name of lower-case "
            "letters, digits, '_' and '-' (at most 63 characters), got 'Bad'\n"
            "/etc/sluice/prod.yaml:3:61: pipelines[0].source.streaming: expected true or false, "
            "got 'maybe'\n"
            "/etc/sluice/prod.yaml:4:15: pipelines[0].snapshot: expected one of initial, never; "
            "got 'sometimes'");
}

struct BadConfig {
  const char* what;
  std::string yaml;
  std::string message;  // the whole message, after "sluice.yaml:"
};

// One source: the head of a valid pipeline, to which each case appends lines.
const std::string kHead = R"(pipelines:
  - name: orders
    source:
      dsn: "host=x"
      tables: [public.orders]
)";

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, ReportsPositionPathAndExpectation) {
  setenv("SLUICE_TEST_SET", "1", 1);
  unsetenv("SLUICE_TEST_UNSET_VAR");
  const BadConfig& bad = GetParam();
  auto c = ParseConfig(bad.yaml, "sluice.yaml");
  ASSERT_FALSE(c.ok()) << bad.what;
  EXPECT_EQ(c.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(), "sluice.yaml:" + bad.message) << bad.what;
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadConfigTest,
    ::testing::Values(
        BadConfig{"empty", "",
                  "1:1: the configuration is empty; expected at least one "
                  "pipeline or migration"},
        BadConfig{"comments only", "# nothing\n",
                  "1:1: the configuration is empty; expected at least one pipeline or migration"},
        BadConfig{"top level list", "- a\n- b\n",
                  "1:1: expected a mapping of settings (state_dir, pipelines, ...) at the top, "
                  "got a list"},
        BadConfig{"two documents", std::string(kMinimal) + "---\nstate_dir: /x\n",
                  "7:1: expected a single YAML document, found 2"},
        BadConfig{"no pipelines", "state_dir: /x\n",
                  "1:1: expected at least one pipeline or migration"},
        BadConfig{"empty pipeline list", "pipelines: []\n",
                  "1:12: pipelines: expected at least one pipeline or migration"},
        BadConfig{"pipelines not a list", "pipelines: orders\n",
                  "1:12: pipelines: expected a list, got 'orders'"},
        BadConfig{"unknown top-level key near a known one", kHead + "state_dri: /x\n",
                  "6:1: unknown key 'state_dri' (did you mean 'state_dir'?)"},
        BadConfig{"unknown top-level key", kHead + "frobnicate: 1\n",
                  "6:1: unknown key 'frobnicate' (expected one of: admin, log, migrations, "
                  "nice, pipelines, state_dir)"},
        BadConfig{"nice out of range", kHead + "nice: 20\n",
                  "6:7: nice: expected an integer from -20 to 19, got '20'"},
        BadConfig{"misspelt source key", R"(pipelines:
  - name: orders
    source:
      dsn: "host=x"
      slott: s
      tables: [public.orders]
)",
                  "5:7: pipelines[0].source: unknown key 'slott' (did you mean 'slot'?)"},
        BadConfig{"case of a key", kHead + "    Snapshot: never\n",
                  "6:5: pipelines[0]: unknown key 'Snapshot' (did you mean 'snapshot'?)"},
        BadConfig{"duplicate key", kHead + "    snapshot: never\n    snapshot: initial\n",
                  "7:5: pipelines[0].snapshot: duplicate key (first given on line 6)"},
        BadConfig{"bad size", kHead + "    capture:\n      memory_limit: lots\n",
                  "7:21: pipelines[0].capture.memory_limit: expected a size like 64MB, got "
                  "'lots'"},
        BadConfig{"size with bad unit", kHead + "    capture:\n      max_fragment_bytes: 8 MBs\n",
                  "7:27: pipelines[0].capture.max_fragment_bytes: expected a size like 64MB, "
                  "got '8 MBs'"},
        BadConfig{"size too small", kHead + "    capture:\n      memory_limit: 1kB\n",
                  "7:21: pipelines[0].capture.memory_limit: expected a size of at least "
                  "65536 bytes, got '1kB'"},
        BadConfig{"negative size", kHead + "    capture:\n      memory_limit: -5MB\n",
                  "7:21: pipelines[0].capture.memory_limit: expected a size like 64MB, got "
                  "'-5MB'"},
        BadConfig{"bad duration", kHead + "      status_interval: 10\n",
                  "6:24: pipelines[0].source.status_interval: expected a duration like 10s or "
                  "500ms, got '10'"},
        BadConfig{"zero timeout", kHead + "      connect_timeout: 0s\n",
                  "6:24: pipelines[0].source.connect_timeout: expected a duration of at least "
                  "1ms, got '0s'"},
        BadConfig{"receive timeout too short", kHead + "      receive_timeout: 200ms\n",
                  "6:24: pipelines[0].source.receive_timeout: expected 0 (never time out) or a "
                  "duration of at least 1s, got 200ms"},
        BadConfig{"empty value points at its key", kHead + "      slot:\n    snapshot: never\n",
                  "6:7: pipelines[0].source.slot: expected a string, got nothing"},
        BadConfig{"bad bool", kHead + "      binary: sure\n",
                  "6:15: pipelines[0].source.binary: expected true or false, got 'sure'"},
        BadConfig{"protocol out of range", kHead + "      protocol_version: 9\n",
                  "6:25: pipelines[0].source.protocol_version: expected an integer from 0 to 4, "
                  "got '9'"},
        BadConfig{"integer with junk", kHead + "    capture:\n      queue_capacity: 12x\n",
                  "7:23: pipelines[0].capture.queue_capacity: expected an integer from 1 to "
                  "1048576, got '12x'"},
        BadConfig{"copy_jobs zero",
                  kHead + "    target:\n      dsn: host=y\n      apply:\n"
                          "        copy_jobs: 0\n",
                  "9:20: pipelines[0].target.apply.copy_jobs: expected an integer from 1 to "
                  "64, got '0'"},
        BadConfig{"bad replication role",
                  kHead + "    target:\n      dsn: host=y\n      apply:\n"
                          "        session_replication_role: master\n",
                  "9:35: pipelines[0].target.apply.session_replication_role: expected one of "
                  "replica, origin, local; got 'master'"},
        BadConfig{"bad schema_changes",
                  kHead + "    target:\n      dsn: host=y\n      apply:\n"
                          "        schema_changes: alter\n",
                  "9:25: pipelines[0].target.apply.schema_changes: expected one of stop, "
                  "add_columns; got 'alter'"},
        BadConfig{"bad schema_changes in the postgres block",
                  kHead + "    target:\n      dsn: host=y\n      postgres:\n"
                          "        schema_changes: alter\n",
                  "9:25: pipelines[0].target.postgres.schema_changes: expected one of stop, "
                  "add_columns; got 'alter'"},
        BadConfig{"unknown postgres key",
                  kHead + "    target:\n      dsn: host=y\n      postgres:\n"
                          "        create_table: true\n",
                  "9:9: pipelines[0].target.postgres: unknown key 'create_table' (did you "
                  "mean 'create_tables'?)"},
        BadConfig{"apply key in the postgres block",
                  kHead + "    target:\n      dsn: host=y\n      postgres:\n"
                          "        copy_jobs: 4\n",
                  "9:9: pipelines[0].target.postgres: unknown key 'copy_jobs' (expected one "
                  "of: compact, create_tables, flush_on_pause, schema_changes, "
                  "session_replication_role)"},
        BadConfig{"postgres key in both places, differently",
                  kHead + "    target:\n      dsn: host=y\n"
                          "      apply: { schema_changes: add_columns }\n"
                          "      postgres: { schema_changes: stop }\n",
                  "8:32: pipelines[0].target.apply.schema_changes: differs from "
                  "pipelines[0].target.postgres.schema_changes (line 9); give it once, under "
                  "target.postgres"},
        BadConfig{"flush_on_pause in both places, differently spelt sizes alike",
                  kHead + "    target:\n      dsn: host=y\n"
                          "      apply: { flush_on_pause: 1MB, compact: off }\n"
                          "      postgres: { flush_on_pause: 1024kB, compact: on }\n",
                  "8:46: pipelines[0].target.apply.compact: differs from "
                  "pipelines[0].target.postgres.compact (line 9); give it once, under "
                  "target.postgres"},
        BadConfig{"postgres key under apply for a redis target",
                  kHead + "    target:\n      type: redis\n      dsn: redis://cache\n"
                          "      apply: { batch_max_delay: 5ms, create_tables: true }\n",
                  "9:53: pipelines[0].target.apply.create_tables: an option of postgres "
                  "targets, but this target is of type redis (remove it)"},
        BadConfig{"postgres key under apply for a target of type none",
                  kHead + "    target:\n      type: none\n      apply:\n"
                          "        schema_changes: stop\n",
                  "9:25: pipelines[0].target.apply.schema_changes: an option of postgres "
                  "targets, but this target is of type none (remove it)"},
        BadConfig{"postgres block for a kafka target",
                  kHead + "    target:\n      type: kafka\n      dsn: broker:9092\n"
                          "      postgres: { compact: false }\n",
                  "9:17: pipelines[0].target.postgres: the options of a postgres target, but "
                  "this target is of type kafka (remove this block)"},
        BadConfig{"postgres block not a mapping",
                  kHead + "    target:\n      dsn: host=y\n      postgres: yes\n",
                  "8:17: pipelines[0].target.postgres: expected a mapping, got 'yes'"},
        BadConfig{"unknown apply key",
                  kHead + "    target:\n      dsn: host=y\n      apply:\n"
                          "        batch_max_transaction: 5\n",
                  "9:9: pipelines[0].target.apply: unknown key 'batch_max_transaction' (did "
                  "you mean 'batch_max_transactions'?)"},
        BadConfig{"bad snapshot", kHead + "    snapshot: sometimes\n",
                  "6:15: pipelines[0].snapshot: expected one of initial, never; got "
                  "'sometimes'"},
        BadConfig{"missing dsn", R"(pipelines:
  - name: orders
    source:
      tables: [public.orders]
)",
                  "4:7: pipelines[0].source.dsn: required key is missing"},
        BadConfig{"empty dsn", R"(pipelines:
  - name: orders
    source: { dsn: "", tables: [public.t] }
)",
                  "3:20: pipelines[0].source.dsn: expected a non-empty string"},
        BadConfig{"dsn given as a list", R"(pipelines:
  - name: orders
    source: { dsn: [a], tables: [public.t] }
)",
                  "3:20: pipelines[0].source.dsn: expected a string, got a list"},
        BadConfig{"malformed dsn", R"(pipelines:
  - name: orders
    source: { dsn: "host=x bogus", tables: [public.t] }
)",
                  "3:20: pipelines[0].source.dsn: expected a libpq connection string (key=value "
                  "pairs or a postgresql:// URI): missing \"=\" after \"bogus\" in connection "
                  "info string"},
        BadConfig{"missing source", "pipelines:\n  - name: orders\n",
                  "2:5: pipelines[0].source: required key is missing"},
        BadConfig{"source not a mapping", "pipelines:\n  - name: orders\n    source: x\n",
                  "3:13: pipelines[0].source: expected a mapping, got 'x'"},
        BadConfig{"missing name", R"(pipelines:
  - source: { dsn: "host=x", tables: [public.t] }
)",
                  "2:5: pipelines[0].name: required key is missing"},
        BadConfig{"bad name", R"(pipelines:
  - name: Orders.Main
    source: { dsn: "host=x", tables: [public.t] }
)",
                  "2:11: pipelines[0].name: expected a name of lower-case letters, digits, '_' "
                  "and '-' (at most 63 characters), got 'Orders.Main'"},
        BadConfig{"duplicate name", kHead + R"(  - name: orders
    source: { dsn: "host=y", tables: [public.t] }
)",
                  "6:11: pipelines[1].name: duplicate pipeline name 'orders' (also "
                  "pipelines[0])"},
        BadConfig{"same slot on same source", kHead + R"(  - name: other
    source: { dsn: "host=x", tables: [public.t], slot: sluice_orders }
)",
                  "7:56: pipelines[1].source.slot: slot 'sluice_orders' on the same source is "
                  "also used by pipelines[0]"},
        BadConfig{"bad slot", kHead + "      slot: Has-Dash\n",
                  "6:13: pipelines[0].source.slot: expected a replication slot name of "
                  "lower-case letters, digits and underscores, at most 63 characters; got "
                  "'Has-Dash'"},
        BadConfig{"default slot too long", R"(pipelines:
  - name: a234567890123456789012345678901234567890123456789012345678
    source: { dsn: "host=x", tables: [public.t] }
)",
                  "3:13: pipelines[0].source.slot: the default slot name "
                  "'sluice_a234567890123456789012345678901234567890123456789012345678' is "
                  "longer than 63 characters; set a shorter slot name"},
        BadConfig{"no tables", R"(pipelines:
  - name: orders
    source: { dsn: "host=x" }
)",
                  "3:13: pipelines[0].source.tables: expected at least one table "
                  "('schema.table' or 'schema.*') because create_publication is true"},
        BadConfig{"table without schema", R"(pipelines:
  - name: orders
    source: { dsn: "host=x", tables: [public.a, orders] }
)",
                  "3:49: pipelines[0].source.tables[1]: expected schema.table or schema.*, got "
                  "'orders'"},
        BadConfig{"table with junk", R"(pipelines:
  - name: orders
    source: { dsn: "host=x", tables: ["public.a b"] }
)",
                  "3:39: pipelines[0].source.tables[0]: unexpected ' b' after the table in "
                  "'public.a b' (expected schema.table or schema.*)"},
        BadConfig{"unterminated quoted table", R"(pipelines:
  - name: orders
    source: { dsn: "host=x", tables: ['public."odd'] }
)",
                  "3:39: pipelines[0].source.tables[0]: unterminated quoted table in "
                  "'public.\"odd'"},
        BadConfig{"missing env var", R"(pipelines:
  - name: orders
    source: { dsn: "host=${SLUICE_TEST_UNSET_VAR}", tables: [public.t] }
)",
                  "3:20: pipelines[0].source.dsn: environment variable 'SLUICE_TEST_UNSET_VAR' "
                  "is not set"},
        BadConfig{"unterminated env reference", kHead + "      slot: \"s_${SLUICE_TEST_SET\"\n",
                  "6:13: pipelines[0].source.slot: unterminated '${' at offset 2 (write $${ "
                  "for a literal ${)"},
        BadConfig{"bad env name", kHead + "      slot: \"${1X}\"\n",
                  "6:13: pipelines[0].source.slot: invalid environment variable name '1X' in "
                  "${...} (letters, digits and _)"},
        BadConfig{"bad target type", kHead + "    target: { type: mysql, dsn: \"host=y\" }\n",
                  "6:21: pipelines[0].target.type: expected one of postgres, redis, kafka, "
                  "none; got 'mysql'"},
        BadConfig{"target without dsn", kHead + "    target: { type: postgres }\n",
                  "6:13: pipelines[0].target.dsn: required key is missing (the target is of "
                  "type postgres)"},
        BadConfig{"none target with dsn", kHead + "    target: { type: none, dsn: host=y }\n",
                  "6:32: pipelines[0].target.dsn: a target of type none takes no dsn"},
        BadConfig{"bad log level", kHead + "log: { level: loud }\n",
                  "6:15: log.level: expected one of trace, debug, info, warn, error, critical, "
                  "off; got 'loud'"},
        BadConfig{"bad admin listen", kHead + "admin:\n  listen: 7878\n",
                  "7:11: admin.listen: expected host:port like 127.0.0.1:7878, got '7878'"},
        BadConfig{"admin port out of range", kHead + "admin: { listen: \"h:99999\" }\n",
                  "6:18: admin.listen: expected host:port like 127.0.0.1:7878, got 'h:99999'"},
        BadConfig{"null pipeline entry", "pipelines:\n  -\n",
                  "3:1: pipelines[0]: expected a mapping, got nothing"},
        BadConfig{"migration missing new", R"(migrations:
  - name: m
    old: { dsn: "host=a" }
    tables: [public.x]
)",
                  "2:5: migrations[0].new: required key is missing"},
        BadConfig{"migration side without dsn", R"(migrations:
  - name: m
    old: { dsn: "host=a" }
    new: { host: b }
    tables: [public.x]
)",
                  "4:10: migrations[0].new.dsn: required key is missing\n"
                  "sluice.yaml:4:12: migrations[0].new: unknown key 'host' (expected one of: "
                  "dsn)"},
        BadConfig{"migration without tables", R"(migrations:
  - name: m
    old: { dsn: "host=a" }
    new: { dsn: "host=b" }
    tables: []
)",
                  "5:13: migrations[0].tables: expected at least one table ('schema.table' or "
                  "'schema.*')"},
        BadConfig{"duplicate migration", R"(migrations:
  - { name: m, old: { dsn: "host=a" }, new: { dsn: "host=b" }, tables: [public.x] }
  - { name: m, old: { dsn: "host=a" }, new: { dsn: "host=b" }, tables: [public.x] }
)",
                  "3:13: migrations[1].name: duplicate migration name 'm' (also migrations[0])"},
        BadConfig{"adopted slot with an initial copy", R"(pipelines:
  - name: orders
    source: { dsn: "host=x", tables: [public.orders], adopt_slot: true }
    snapshot: initial
)",
                  "4:15: pipelines[0].snapshot: expected snapshot: never because "
                  "source.adopt_slot is true (an initial copy needs a slot sluice makes itself)"},
        BadConfig{"syntax error", "pipelines:\n  - name: [orders\n",
                  "3:1: YAML syntax error: end of sequence flow not found"},
        BadConfig{"bad indentation", "pipelines:\n  - name: a\n   source: x\n",
                  "3:4: YAML syntax error: end of sequence not found"}),
    [](const ::testing::TestParamInfo<BadConfig>& info) {
      std::string name = info.param.what;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

TEST(ParseConfigTest, ErrorsNeverContainDsnPasswords) {
  auto c = ParseConfig(R"(pipelines:
  - name: orders
    source: { dsn: "host=x password=hunter2 junk", tables: [public.t] }
  - name: orders2
    source: { dsn: "postgresql://u:hunt%zzer2@h/db", tables: [public.t] }
)",
                       "sluice.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().find("hunter2"), std::string::npos) << c.status().message();
  EXPECT_EQ(c.status().message().find("hunt%zz"), std::string::npos) << c.status().message();
  EXPECT_THAT(c.status().message(), HasSubstr("pipelines[1].source.dsn"));
}

// The README's pattern, password=${VAR}, with passwords that need quoting or encoding.
TEST(ParseConfigTest, PasswordsFromTheEnvironmentReachLibpqAsTheyAre) {
  const std::string passwords[] = {"with space", "it's",     R"(back\slash)", R"(dq"uote)",
                                   "eq=ual",     "hash#tag", "ünï©ødé 密码",  R"(a'b\c "d" =#)"};
  for (const std::string& password : passwords) {
    setenv("SLUICE_TEST_PW", password.c_str(), 1);
    Config c = ParseOrDie(R"(pipelines:
  - name: kv
    source: { dsn: "host=a dbname=app user=sluice password=${SLUICE_TEST_PW}", tables: [public.t] }
    target: { dsn: "postgresql://sluice:${SLUICE_TEST_PW}@b:5433/app" }
migrations:
  - name: m
    old: { dsn: "host=a password='${SLUICE_TEST_PW}'" }
    new: { dsn: "postgres://b/app?password=${SLUICE_TEST_PW}" }
    tables: [public.t]
)");
    ASSERT_EQ(c.pipelines.size(), 1u);
    ASSERT_EQ(c.migrations.size(), 1u);
    for (const std::string& dsn : {c.pipelines[0].source.dsn, c.pipelines[0].target.dsn,
                                   c.migrations[0].old_dsn, c.migrations[0].new_dsn}) {
      char* error = nullptr;
      PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
      ASSERT_NE(options, nullptr) << dsn << ": " << (error ? error : "");
      std::string read;
      for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
        if (std::string(o->keyword) == "password" && o->val != nullptr) read = o->val;
      }
      PQconninfoFree(options);
      EXPECT_EQ(read, password) << dsn;
    }
  }
  unsetenv("SLUICE_TEST_PW");
}

TEST(ParseConfigTest, ErrorsNeverEchoAValueThatMayHoldAPassword) {
  setenv("SLUICE_TEST_PW", "Hunter2 x", 1);
  auto c = ParseConfig(R"(pipelines:
  - name: a
    source: "host=x password=Hunter1"
  - name: b
    source: { dsn: "host=x password=Hunter3 third", tables: [public.t] }
  - name: c
    source: { dsn: "host=x password=${SLUICE_TEST_PW}", tables: [public.t], slot: "${SLUICE_TEST_PW}" }
  - name: d
    source: { dsn: "host=x", tables: ["public.t password=Hunter4 x"] }
  - name: e
    source: { dsn: "postgresql://u:Hunter5@h/db?Hunter6", tables: [public.t] }
  - name: f
    source: { dsn: "host=x password=${SLUICE_TEST_UNSET_VAR}", tables: [public.t] }
)",
                       "sluice.yaml");
  unsetenv("SLUICE_TEST_PW");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  for (const char* secret :
       {"Hunter1", "Hunter2", "Hunter3", "third", "Hunter4", "Hunter5", "Hunter6"}) {
    EXPECT_EQ(m.find(secret), std::string::npos) << secret << " in:\n" << m;
  }
  // Each error still names where and what; a variable's name is no secret.
  EXPECT_THAT(m, HasSubstr("environment variable 'SLUICE_TEST_UNSET_VAR' is not set"));
  EXPECT_THAT(m, HasSubstr("pipelines[0].source: expected a mapping, got a string <not shown"));
  EXPECT_THAT(m, HasSubstr("pipelines[1].source.dsn: expected a libpq connection string"));
  EXPECT_THAT(m, HasSubstr("pipelines[2].source.slot: expected a replication slot name"));
  EXPECT_THAT(m, HasSubstr("pipelines[3].source.tables[0]"));
  EXPECT_THAT(m, HasSubstr("pipelines[4].source.dsn"));
}

TEST(ParseConfigTest, ManyErrorsAreCapped) {
  std::string yaml = "pipelines:\n";
  for (int i = 0; i < 30; ++i) yaml += "  - name: BAD\n    source: { dsn: x=1 }\n";
  auto c = ParseConfig(yaml, "sluice.yaml");
  ASSERT_FALSE(c.ok());
  const std::string& m = c.status().message();
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 20);
  EXPECT_THAT(m, HasSubstr("more errors not shown)"));
}

TEST(LoadConfigFileTest, ReadsFileAndNamesItInErrors) {
  std::string dir = ::testing::TempDir() + "sluice_config_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/sluice.yaml";
  std::ofstream(path) << kMinimal;
  auto c = LoadConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->source_file, path);
  EXPECT_EQ(c->pipelines.size(), 1u);

  std::ofstream(path) << "pipelines:\n  - name: x\n    sorce: {}\n";
  auto bad = LoadConfigFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), StartsWith(path + ":2:5: pipelines[0].source: required"));
  EXPECT_THAT(bad.status().message(),
              HasSubstr(path + ":3:5: pipelines[0]: unknown key 'sorce' (did you mean "
                               "'source'?)"));

  auto missing = LoadConfigFile(dir + "/nope.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(),
            "cannot read configuration file " + dir + "/nope.yaml: No such file or directory");
  auto directory = LoadConfigFile(dir);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().message(),
            "cannot read configuration file " + dir + ": it is a directory");
  std::filesystem::remove_all(dir);
}

TEST(ParseSizeTest, AcceptsUnits) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"123", 123},         {"0", 0},
      {"64kB", 64 * kKiB},  {"64KB", 64 * kKiB},
      {"64KiB", 64 * kKiB}, {"64k", 64 * kKiB},
      {"8MB", 8 * kMiB},    {"8MiB", 8 * kMiB},
      {"8 MB", 8 * kMiB},   {"1GB", kGiB},
      {"1GiB", kGiB},       {"2TB", 2 * kGiB * 1024},
      {"100B", 100},        {" 7mb ", 7 * kMiB},
  };
  for (const auto& [text, want] : cases) {
    auto got = ParseSize(text);
    ASSERT_TRUE(got.ok()) << text << ": " << got.status().message();
    EXPECT_EQ(*got, want) << text;
  }
}

TEST(ParseSizeTest, RejectsJunk) {
  for (const char* bad : {"", "lots", "MB", "1.5GB", "-1", "8 MBs", "1PB", "12 34",
                          "99999999999999999999", "20000000000GB"}) {
    auto got = ParseSize(bad);
    EXPECT_FALSE(got.ok()) << bad;
    EXPECT_EQ(got.status().code(), core::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(ParseSize("lots").status().message(), "expected a size like 64MB, got 'lots'");
}

TEST(ParseDurationTest, AcceptsUnits) {
  using std::chrono::milliseconds;
  const std::pair<const char*, milliseconds> cases[] = {
      {"500ms", milliseconds(500)},   {"10s", milliseconds(10000)},  {"5m", milliseconds(300000)},
      {"5min", milliseconds(300000)}, {"1h", milliseconds(3600000)}, {"0", milliseconds(0)},
      {"0ms", milliseconds(0)},       {"2 s", milliseconds(2000)},
  };
  for (const auto& [text, want] : cases) {
    auto got = ParseDuration(text);
    ASSERT_TRUE(got.ok()) << text << ": " << got.status().message();
    EXPECT_EQ(*got, want) << text;
  }
}

TEST(ParseDurationTest, RejectsJunk) {
  for (const char* bad : {"", "10", "s", "1.5s", "-1s", "10 sec", "1d", "soon", "9999999h"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(ExpandEnvironmentTest, ExpandsAndEscapes) {
  setenv("SLUICE_TEST_A", "alpha", 1);
  setenv("SLUICE_TEST_EMPTY", "", 1);
  unsetenv("SLUICE_TEST_UNSET_VAR");
  EXPECT_EQ(*ExpandEnvironment("x${SLUICE_TEST_A}y${SLUICE_TEST_A}"), "xalphayalpha");
  EXPECT_EQ(*ExpandEnvironment("[${SLUICE_TEST_EMPTY}]"), "[]");
  EXPECT_EQ(*ExpandEnvironment("$${SLUICE_TEST_A}"), "${SLUICE_TEST_A}");
  EXPECT_EQ(*ExpandEnvironment("a $ b $$ c $SLUICE_TEST_A"), "a $ b $$ c $SLUICE_TEST_A");
  EXPECT_EQ(*ExpandEnvironment("$$$${X}"), "$$${X}");
  auto missing = ExpandEnvironment("${SLUICE_TEST_UNSET_VAR}");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "environment variable 'SLUICE_TEST_UNSET_VAR' is not set");
  EXPECT_FALSE(ExpandEnvironment("${}").ok());
  EXPECT_FALSE(ExpandEnvironment("${A-B}").ok());
  EXPECT_FALSE(ExpandEnvironment("${OPEN").ok());
}

TEST(TablePatternTest, ParsesForms) {
  struct Case {
    const char* text;
    TablePattern want;
  };
  const Case cases[] = {
      {"public.orders", {"public", "orders", false}},
      {"Public.Orders", {"public", "orders", false}},  // unquoted: folded like PostgreSQL
      {"sales.*", {"sales", "", true}},
      {"\"My Schema\".\"Odd Table\"", {"My Schema", "Odd Table", false}},
      {"\"a\"\"b\".t", {"a\"b", "t", false}},
      {"s.\"x.y\"", {"s", "x.y", false}},
      {"_s1.t$2", {"_s1", "t$2", false}},
      {"\"S\".*", {"S", "", true}},
  };
  for (const Case& c : cases) {
    auto got = ParseTablePattern(c.text);
    ASSERT_TRUE(got.ok()) << c.text << ": " << got.status().message();
    EXPECT_EQ(*got, c.want) << c.text;
  }
  EXPECT_EQ(ParseTablePattern("\"My Schema\".\"Odd \"\"T\"\"\"")->ToString(),
            "\"My Schema\".\"Odd \"\"T\"\"\"");
  EXPECT_EQ(ParseTablePattern("public.*")->ToString(), "\"public\".*");
}

TEST(TablePatternTest, RejectsMalformed) {
  for (const char* bad :
       {"", "orders", ".orders", "public.", "public.orders.x", "*.*", "*.t", "1s.t", "s.1t",
        "\"\".t", "s.\"\"", "\"open.t", "s.t ", " s.t", "s.*x", "s..t"}) {
    auto got = ParseTablePattern(bad);
    EXPECT_FALSE(got.ok()) << bad;
    EXPECT_EQ(got.status().code(), core::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ParseTablePattern("s." + std::string(64, 'x')).ok());
  EXPECT_TRUE(ParseTablePattern("s." + std::string(63, 'x')).ok());
}

}  // namespace
}  // namespace sluice::config

namespace sluice::config {
namespace {

TEST(AdminConfigTest, RetainedWalWarningIsASizeWithAGigabyteDefault) {
  auto defaults = ParseConfig(
      "pipelines:\n  - name: p\n    source: { dsn: host=x, tables: [public.t] }\n", "a.yaml");
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(defaults->admin.retained_wal_warning_bytes, kGiB);
  auto set = ParseConfig(
      "admin: { retained_wal_warning: 256MB }\n"
      "pipelines:\n  - name: p\n    source: { dsn: host=x, tables: [public.t] }\n",
      "a.yaml");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->admin.retained_wal_warning_bytes, 256 * kMiB);
  EXPECT_FALSE(
      ParseConfig("admin: { retained_wal_warning: lots }\npipelines: []\n", "a.yaml").ok());
}

}  // namespace
}  // namespace sluice::config
