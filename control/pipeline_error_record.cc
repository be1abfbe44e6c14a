#include "control/pipeline_error_record.h"

#include <nlohmann/json.hpp>

namespace sluice::control {

std::string EncodePipelineError(const PipelineErrorRecord& record) {
  return nlohmann::json{{"message", record.message},
                        {"at_unix_ms", record.at_unix_ms},
                        {"permanent", record.permanent}}
      .dump();
}

core::Result<PipelineErrorRecord> DecodePipelineError(const std::string& text) {
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("message") || !json["message"].is_string() ||
      !json.contains("at_unix_ms") || !json["at_unix_ms"].is_number_integer() ||
      !json.contains("permanent") || !json["permanent"].is_boolean()) {
    return core::Corruption("stored last error is not {message, at_unix_ms, permanent}: " +
                            text.substr(0, 200));
  }
  return PipelineErrorRecord{json["message"].get<std::string>(), json["at_unix_ms"].get<int64_t>(),
                             json["permanent"].get<bool>()};
}

}  // namespace sluice::control
