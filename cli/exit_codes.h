#pragma once

#include "core/status.h"

namespace sluice::cli {

// sysexits(3), as promised by the command-line contract.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitDataError = 65;
inline constexpr int kExitUnavailable = 69;
inline constexpr int kExitSoftware = 70;
inline constexpr int kExitConfig = 78;

// Maps a failure to the exit code a script or systemd can act on: whatever is transient is 69
// (the units restart on it), a target refusing the data is 65, a setting or the world's state
// that a person must change is 78 (the units do not restart on 65 or 78).
inline int ExitCodeFor(const core::Status& status) {
  if (!status.ok() && status.code() != core::StatusCode::kAborted && status.retryable()) {
    return kExitUnavailable;
  }
  switch (status.code()) {
    case core::StatusCode::kOk:
      return kExitOk;
    case core::StatusCode::kInvalidArgument:
      return kExitConfig;
    case core::StatusCode::kCorruption:
    case core::StatusCode::kUnsupported:
    case core::StatusCode::kDataRejected:
      return kExitDataError;
    case core::StatusCode::kUnavailable:
      return kExitUnavailable;
    case core::StatusCode::kNotFound:
    case core::StatusCode::kFailedPrecondition:
    case core::StatusCode::kAlreadyExists:
    case core::StatusCode::kResourceExhausted:
      return kExitConfig;
    case core::StatusCode::kAborted:
      return kExitOk;
    case core::StatusCode::kInternal:
      return kExitSoftware;
  }
  return kExitSoftware;
}

}  // namespace sluice::cli
