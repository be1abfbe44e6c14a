// libFuzzer target for capture::PgOutputDecoder: arbitrary bytes must decode or fail with a
// Status, never crash, and a failed decode must not change the stream-block state.
//
// Input layout (seeds: capture/pgoutput_decoder_test.cc, PgOutputCorpusTest):
//   byte 0: bits 0-1 = protocol version - 1, bit 2 = pre-enter a stream block (versions >= 2),
//           bit 3 = framed
//   rest:   unframed: one message; framed: repeated [uint16 big-endian length][message], the
//           last message taking whatever is left when the length overshoots.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "capture/pgoutput_decoder.h"

namespace {

using sluice::capture::PgOutputDecoder;

void Check(bool condition) {
  if (!condition) std::abort();
}

void DecodeOne(PgOutputDecoder& decoder, std::string_view message) {
  // A heap copy of exactly the message, so any read past its end trips AddressSanitizer.
  const std::string copy(message);
  const bool was_in_stream = decoder.in_stream();
  auto result = decoder.Decode(copy);
  if (!result.ok()) {
    Check(decoder.in_stream() == was_in_stream);
    Check(!result.status().message().empty());
    return;
  }
  const char type = copy[0];
  if (type == 'S') {
    Check(!was_in_stream && decoder.in_stream());
  } else if (type == 'E') {
    Check(was_in_stream && !decoder.in_stream());
  } else {
    Check(decoder.in_stream() == was_in_stream);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t header = data[0];
  const int version = 1 + (header & 3);
  const bool pre_stream = (header & 4) != 0 && version >= 2;
  const bool framed = (header & 8) != 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  PgOutputDecoder decoder(version);
  if (pre_stream) {
    static constexpr char kStreamStart[] = {'S', 0, 0, 0x03, static_cast<char>(0x84), 1};
    auto started = decoder.Decode(std::string_view(kStreamStart, sizeof(kStreamStart)));
    Check(started.ok() && decoder.in_stream());
  }

  if (!framed) {
    DecodeOne(decoder, rest);
    return 0;
  }
  while (!rest.empty()) {
    size_t length = rest.size();
    if (rest.size() >= 2) {
      length =
          (static_cast<size_t>(static_cast<uint8_t>(rest[0])) << 8) | static_cast<uint8_t>(rest[1]);
      rest.remove_prefix(2);
      if (length > rest.size()) length = rest.size();
    }
    DecodeOne(decoder, rest.substr(0, length));
    rest.remove_prefix(length);
  }
  return 0;
}
