#include "pg/redact.h"

#include <algorithm>
#include <cctype>

namespace sluice::pg {

std::string RedactPassword(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    // key=value form: "password" followed by optional spaces and '=' at a word boundary.
    constexpr std::string_view kKey = "password";
    const bool at_word_start =
        i == 0 || !(std::isalnum(static_cast<unsigned char>(text[i - 1])) || text[i - 1] == '_');
    if (at_word_start && text.size() - i >= kKey.size()) {
      std::string lowered(text.substr(i, kKey.size()));
      std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      size_t j = i + kKey.size();
      while (j < text.size() && text[j] == ' ') ++j;
      if (lowered == kKey && j < text.size() && text[j] == '=') {
        out.append(text.substr(i, kKey.size()));
        out.append("=");
        out.append(kRedacted);
        ++j;
        while (j < text.size() && text[j] == ' ') ++j;
        if (j < text.size() && text[j] == '\'') {  // quoted value with \' and \\ escapes
          ++j;
          while (j < text.size() && text[j] != '\'') {
            if (text[j] == '\\' && j + 1 < text.size()) ++j;
            ++j;
          }
          if (j < text.size()) ++j;
        } else {  // up to whitespace, or '&' / '#' inside a URI query
          while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j])) &&
                 text[j] != '&' && text[j] != '#') {
            ++j;
          }
        }
        i = j;
        continue;
      }
    }
    // URI form: scheme://user:secret@host
    if (text.substr(i).starts_with("://")) {
      out.append("://");
      i += 3;
      const size_t authority_end = std::min(text.find_first_of("/?#", i), text.size());
      const size_t at = text.rfind('@', authority_end == 0 ? 0 : authority_end - 1);
      if (at != std::string_view::npos && at >= i && at < authority_end) {
        const size_t colon = text.find(':', i);
        if (colon != std::string_view::npos && colon < at) {
          out.append(text.substr(i, colon - i));
          out.append(":");
          out.append(kRedacted);
          i = at;  // continue with "@host..."
        }
      }
      continue;
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

}  // namespace sluice::pg
