#include "cli/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "codec/json_text.h"

namespace sluice::cli {
namespace {

// %* : the log message as a JSON string literal, so JSON log lines stay valid whatever the
// message contains.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string quoted;
    codec::AppendJsonString(quoted, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(quoted.data(), quoted.data() + quoted.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

core::Status SetUpLogging(const std::string& level, const std::string& format) {
  auto logger = spdlog::get("sluice");
  if (!logger) logger = spdlog::stderr_logger_mt("sluice");
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return core::InvalidArgument("log.level '" + level +
                                 "' is not one of trace, debug, info, warn, error, off");
  }
  logger->set_level(parsed);
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc,
                                                                 std::string("\n"));
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","message":%*})");
    logger->set_formatter(std::move(formatter));
  } else if (format == "text") {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  } else {
    return core::InvalidArgument("log.format '" + format + "' is not one of text, json");
  }
  spdlog::set_default_logger(logger);
  return core::Status::Ok();
}

}  // namespace sluice::cli
