#pragma once

#include <string>
#include <string_view>

namespace sluice::codec {

// Appends `text` as a JSON string literal (with quotes) to `out`. Valid UTF-8 passes through;
// control characters are escaped; bytes that are not valid UTF-8 become \u00XX escapes of the
// byte value so the output is always valid JSON and no byte is silently dropped.
void AppendJsonString(std::string& out, std::string_view text);

// Appends lowercase hex of `bytes`.
void AppendHex(std::string& out, std::string_view bytes);

}  // namespace sluice::codec
