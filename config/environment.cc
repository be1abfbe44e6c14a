#include "config/environment.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace sluice::config {
namespace {

bool IsValidVariableName(const std::string& name) {
  return !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
         });
}

}  // namespace

core::Result<std::vector<TemplatePiece>> SplitTemplate(const std::string& text) {
  std::vector<TemplatePiece> pieces;
  auto literal = [&](size_t at) -> TemplatePiece& {
    if (pieces.empty() || pieces.back().is_variable) pieces.push_back({false, "", at, at});
    return pieces.back();
  };
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      TemplatePiece& piece = literal(i);
      piece.text += "${";
      piece.end = i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      TemplatePiece& piece = literal(i);
      piece.text.push_back(text[i]);
      piece.end = ++i;
      continue;
    }
    const size_t close = text.find('}', i + 2);
    if (close == std::string::npos) {
      return core::InvalidArgument("unterminated '${' at offset " + std::to_string(i) +
                                   " (write $${ for a literal ${)");
    }
    std::string name = text.substr(i + 2, close - i - 2);
    if (!IsValidVariableName(name)) {
      return core::InvalidArgument("invalid environment variable name '" + name +
                                   "' in ${...} (letters, digits and _)");
    }
    pieces.push_back({true, std::move(name), i, close + 1});
    i = close + 1;
  }
  return pieces;
}

core::Result<std::string> EnvironmentValue(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) {
    return core::InvalidArgument("environment variable '" + name + "' is not set");
  }
  return std::string(value);
}

core::Result<std::string> ExpandEnvironment(const std::string& text) {
  SLUICE_ASSIGN_OR_RETURN(std::vector<TemplatePiece> pieces, SplitTemplate(text));
  std::string out;
  for (const TemplatePiece& piece : pieces) {
    if (!piece.is_variable) {
      out += piece.text;
      continue;
    }
    SLUICE_ASSIGN_OR_RETURN(std::string value, EnvironmentValue(piece.text));
    out += value;
  }
  return out;
}

}  // namespace sluice::config
