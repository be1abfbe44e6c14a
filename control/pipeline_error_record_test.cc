#include "control/pipeline_error_record.h"

#include <gtest/gtest.h>

namespace sluice::control {
namespace {

TEST(PipelineErrorRecordTest, RoundTrips) {
  const PipelineErrorRecord record{"pipeline p: table \"t\" says \"no\"\nsecond line",
                                   1700000000123, true};
  auto decoded = DecodePipelineError(EncodePipelineError(record));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, record);
}

TEST(PipelineErrorRecordTest, AnythingElseIsCorruption) {
  for (const char* text : {"", "not json", "[]", R"({"message":"x"})",
                           R"({"message":1,"at_unix_ms":1,"permanent":true})",
                           R"({"message":"x","at_unix_ms":"1","permanent":true})",
                           R"({"message":"x","at_unix_ms":1,"permanent":"yes"})"}) {
    EXPECT_EQ(DecodePipelineError(text).status().code(), core::StatusCode::kCorruption) << text;
  }
}

}  // namespace
}  // namespace sluice::control
