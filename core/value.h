#pragma once

#include <cstdint>
#include <string>

namespace sluice::core {

// One column of a row as the source sent it. Values stay in PostgreSQL's own text (or binary)
// form; sluice never converts them, so nothing is lost between source and target.
struct Value {
  enum class Kind : uint8_t {
    kNull,            // SQL NULL
    kUnchangedToast,  // a TOASTed column the update did not touch: the target keeps its value
    kText,            // PostgreSQL text output of the type
    kBinary,          // PostgreSQL binary send format of the type
  };

  Kind kind = Kind::kNull;
  std::string data;  // empty unless kText / kBinary

  static Value Null() { return {}; }
  static Value UnchangedToast() { return {Kind::kUnchangedToast, {}}; }
  static Value Text(std::string text) { return {Kind::kText, std::move(text)}; }
  static Value Binary(std::string bytes) { return {Kind::kBinary, std::move(bytes)}; }

  bool is_null() const { return kind == Kind::kNull; }
  bool is_unchanged_toast() const { return kind == Kind::kUnchangedToast; }

  bool operator==(const Value&) const = default;
};

}  // namespace sluice::core
