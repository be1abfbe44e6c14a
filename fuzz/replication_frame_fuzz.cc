// libFuzzer target for the streaming-replication CopyData frames (capture/replication_frame.h):
// arbitrary bytes must parse or fail with kCorruption, never crash or read out of bounds, and
// what parses must be consistent with the bytes.
//
// Input: one CopyData frame as the server would send it. The same bytes are also tried as a
// standby status update, which must round-trip through BuildStandbyStatusUpdate.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "capture/replication_frame.h"

namespace {

using sluice::capture::BuildStandbyStatusUpdate;
using sluice::capture::ParseServerFrame;
using sluice::capture::ParseStandbyStatusUpdate;
using sluice::capture::PrimaryKeepalive;
using sluice::capture::XLogData;

void Check(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A heap copy of exactly the input, so any read past its end trips AddressSanitizer.
  const std::string frame(reinterpret_cast<const char*>(data), size);

  auto parsed = ParseServerFrame(frame);
  if (parsed.ok()) {
    if (const auto* xlog = std::get_if<XLogData>(&*parsed)) {
      Check(frame[0] == sluice::capture::kXLogDataTag);
      Check(frame.size() >= sluice::capture::kXLogDataHeaderSize);
      // The payload is exactly the bytes after the header, inside the frame.
      Check(xlog->payload.data() == frame.data() + sluice::capture::kXLogDataHeaderSize);
      Check(xlog->payload.size() == frame.size() - sluice::capture::kXLogDataHeaderSize);
      volatile unsigned sum = 0;
      for (char c : xlog->payload) sum = sum + static_cast<unsigned char>(c);
    } else {
      Check(std::holds_alternative<PrimaryKeepalive>(*parsed));
      Check(frame[0] == sluice::capture::kPrimaryKeepaliveTag);
      Check(frame.size() == sluice::capture::kPrimaryKeepaliveSize);
    }
  } else {
    Check(parsed.status().code() == sluice::core::StatusCode::kCorruption);
    Check(!parsed.status().message().empty());
  }

  auto update = ParseStandbyStatusUpdate(frame);
  if (update.ok()) {
    Check(frame.size() == sluice::capture::kStandbyStatusUpdateSize);
    const std::string rebuilt = BuildStandbyStatusUpdate(*update);
    // Identical except that any non-zero reply-requested byte reads as 1.
    Check(rebuilt.size() == frame.size());
    Check(std::string_view(rebuilt).substr(0, rebuilt.size() - 1) ==
          std::string_view(frame).substr(0, frame.size() - 1));
    Check((rebuilt.back() != 0) == (frame.back() != 0));
  } else {
    Check(update.status().code() == sluice::core::StatusCode::kCorruption);
  }
  return 0;
}
