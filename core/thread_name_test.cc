#include "core/thread_name.h"

#include <gtest/gtest.h>

#include <thread>

namespace sluice::core {
namespace {

TEST(ThreadNameTest, JoinsRoleAndSubject) {
  EXPECT_EQ(ThreadName("cap", "orders"), "cap:orders");
  EXPECT_EQ(ThreadName("admin-http", ""), "admin-http");
}

TEST(ThreadNameTest, CutsToWhatLinuxKeeps) {
  EXPECT_EQ(ThreadName("apply", "a_very_long_pipeline_name"), "apply:a_very_lo");
  EXPECT_EQ(ThreadName("apply", "a_very_long_pipeline_name").size(), kMaxThreadNameBytes);
}

TEST(ThreadNameTest, NeverSplitsAUtf8Character) {
  // "cap:" is 4 bytes and "é" two, so byte 15 is the second half of the sixth "é".
  const std::string name = ThreadName("cap", "ééééééé");
  EXPECT_EQ(name, "cap:ééééé");
  EXPECT_LE(name.size(), kMaxThreadNameBytes);
}

TEST(ThreadNameTest, NamesTheCallingThreadOnly) {
  const std::string before = CurrentThreadName();
  std::string inside;
  std::thread([&] {
    NameCurrentThread("cap", "a_very_long_pipeline_name");
    inside = CurrentThreadName();
  }).join();
  EXPECT_EQ(inside, "cap:a_very_long");
  EXPECT_EQ(CurrentThreadName(), before);
}

}  // namespace
}  // namespace sluice::core
