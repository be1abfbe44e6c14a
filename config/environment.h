#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/status.h"

// `${VAR}` references in configuration values: `${VAR}` stands for the environment variable VAR
// (letters, digits and _, not starting with a digit; an unset variable is an error) and `$${`
// for a literal `${`. Thread-safe (reads the environment).

namespace sluice::config {

// A run of a value's text: literal text, or one ${VAR} reference.
struct TemplatePiece {
  bool is_variable = false;
  std::string text;  // the literal text (with $${ read as ${), or the variable's name
  size_t begin = 0;  // [begin, end) is the piece's spelling in the value
  size_t end = 0;
};

// Splits `text` into pieces, in order, covering all of it. kInvalidArgument for an unterminated
// `${` or an invalid name (the message names the offset or the name, never a value).
core::Result<std::vector<TemplatePiece>> SplitTemplate(const std::string& text);

// The value of environment variable `name`; kInvalidArgument naming it when unset.
core::Result<std::string> EnvironmentValue(const std::string& name);

// `text` with every ${VAR} replaced by VAR's value as is and $${ by ${.
core::Result<std::string> ExpandEnvironment(const std::string& text);

}  // namespace sluice::config
