#include "core/change.h"

namespace sluice::core {

const char* OperationName(Operation op) {
  switch (op) {
    case Operation::kInsert:
      return "insert";
    case Operation::kUpdate:
      return "update";
    case Operation::kDelete:
      return "delete";
    case Operation::kTruncate:
      return "truncate";
    case Operation::kMessage:
      return "message";
  }
  return "unknown";
}

size_t Change::ApproximateBytes() const {
  size_t bytes = sizeof(Change) + message_prefix.size() + message_content.size() +
                 truncated.size() * sizeof(RelationPtr);
  for (const Value& v : old_tuple) bytes += sizeof(Value) + v.data.size();
  for (const Value& v : new_tuple) bytes += sizeof(Value) + v.data.size();
  return bytes;
}

}  // namespace sluice::core
