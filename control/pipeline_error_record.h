#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace sluice::control {

// A pipeline's last error as the runner keeps it in the state store, so it outlives the daemon:
// `sluice status` shows it with the daemon down (a permanent one as phase "failed"), and a
// restarted daemon shows it until the pipeline makes progress again, which deletes it.
struct PipelineErrorRecord {
  std::string message;     // the error as the runner reported it (no password)
  int64_t at_unix_ms = 0;  // when it happened
  bool permanent = false;  // the pipeline stopped on it (not retryable)

  friend bool operator==(const PipelineErrorRecord&, const PipelineErrorRecord&) = default;
};

// The CheckpointStore key (under the pipeline) holding the record.
inline constexpr char kLastErrorKey[] = "last_error";

// {"message": ..., "at_unix_ms": ..., "permanent": ...}
std::string EncodePipelineError(const PipelineErrorRecord& record);
// kCorruption for anything else than what EncodePipelineError writes.
core::Result<PipelineErrorRecord> DecodePipelineError(const std::string& text);

}  // namespace sluice::control
