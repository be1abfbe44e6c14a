#include "pg/sql_state.h"

#include <algorithm>
#include <iterator>

namespace sluice::pg {
namespace {

bool OneOf(std::string_view sqlstate, std::initializer_list<std::string_view> codes) {
  return std::find(codes.begin(), codes.end(), sqlstate) != codes.end();
}

}  // namespace

SqlStateMeaning ClassifySqlState(std::string_view sqlstate) {
  using core::StatusCode;
  if (sqlstate.empty() || sqlstate.starts_with("08") ||
      OneOf(sqlstate,
            {"40001", "40P01", "55006", "55P03", "57014", "57P01", "57P02", "57P03", "57P05"})) {
    return {StatusCode::kUnavailable, true};
  }
  if (sqlstate.starts_with("53")) return {StatusCode::kResourceExhausted, sqlstate != "53400"};
  if (sqlstate.starts_with("22") || sqlstate.starts_with("23") || sqlstate == "42804") {
    return {StatusCode::kDataRejected, false};
  }
  if (OneOf(sqlstate, {"42704", "42P01", "42883", "3F000", "3D000"})) {
    return {StatusCode::kNotFound, false};
  }
  if (OneOf(sqlstate, {"42710", "42P06", "42P07"})) return {StatusCode::kAlreadyExists, false};
  if (sqlstate == "42601") return {StatusCode::kInternal, false};
  return {StatusCode::kFailedPrecondition, false};
}

core::Status StatusForSqlState(std::string_view sqlstate, std::string message) {
  const SqlStateMeaning meaning = ClassifySqlState(sqlstate);
  return core::Status(meaning.code, std::move(message), std::string(sqlstate), meaning.retryable);
}

}  // namespace sluice::pg
