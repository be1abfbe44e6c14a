#pragma once

#include <string>

#include "core/status.h"

namespace sluice::cli {

// Logs go to stderr (journald timestamps them under systemd): `text` or `json` lines.
core::Status SetUpLogging(const std::string& level, const std::string& format);

}  // namespace sluice::cli
