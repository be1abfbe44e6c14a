#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "config/config.h"
#include "config/environment.h"
#include "core/status.h"
#include "pg/table_pattern.h"

// Reading sluice's YAML configuration (see the configuration contract in the design doc).
//
// Errors are kInvalidArgument (the CLI maps them to exit code 78). Every problem found is
// reported, one per line of the message (at most 20), each as
//   <source>:<line>:<column>: <key path>: <what was expected, and what was found>
// e.g. "sluice.yaml:7:21: pipelines[0].capture.memory_limit: expected a size like 64MB, got
// 'lots'". Unknown keys are errors, with a suggestion for near misses. Messages never contain
// DSN passwords, nor any value that may hold one (config::MayHoldSecret).
//
// Value syntax:
//   strings   `${VAR}` is replaced by the environment variable VAR (an unset variable is an
//             error); `$${` stands for a literal `${`. Applies to every value, so numbers and
//             sizes may come from the environment too. In the libpq connection strings
//             (source.dsn, a postgres target.dsn, migrations' dsn) a reference inside a
//             parameter value is quoted (key/value) or percent-encoded (URI) so that any value
//             works, e.g. a password with spaces or quotes: see ExpandDsnEnvironment in dsn.h.
//   sizes     123 (bytes), 64kB / 64KB / 64KiB, 8MB / 8MiB, 1GB / 1GiB, 1TB / 1TiB; units are
//             case-insensitive and all binary (1kB = 1024 bytes, as in postgresql.conf).
//   durations 500ms, 10s, 5m (or 5min), 1h; 0 alone means zero.
//   booleans  true/false, yes/no, on/off.
//
// Thread-safe (reads the environment).

namespace sluice::config {

// Parses and validates `yaml_text`; `source_name` is used in messages and as
// Config::source_file.
core::Result<Config> ParseConfig(const std::string& yaml_text, const std::string& source_name);

// Reads `path` and parses it as ParseConfig does.
core::Result<Config> LoadConfigFile(const std::string& path);

// A parsed entry of SourceConfig::tables / MigrationConfig::tables (pg/table_pattern.h).
using pg::ParseTablePattern;
using pg::TablePattern;

// Value parsers used by the loader, exposed for the CLI and tests. Errors are kInvalidArgument
// without position ("expected a size like 64MB, got 'lots'").
core::Result<uint64_t> ParseSize(const std::string& text);
core::Result<std::chrono::milliseconds> ParseDuration(const std::string& text);

}  // namespace sluice::config
