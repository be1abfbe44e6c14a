#include "capture/replication_frame.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::capture {
namespace {

std::string U64(uint64_t v) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  return out;
}

std::string XLogFrame(uint64_t start, uint64_t end, int64_t time, std::string_view payload) {
  return "w" + U64(start) + U64(end) + U64(static_cast<uint64_t>(time)) + std::string(payload);
}

std::string KeepaliveFrame(uint64_t end, int64_t time, char reply) {
  return "k" + U64(end) + U64(static_cast<uint64_t>(time)) + std::string(1, reply);
}

TEST(ReplicationFrameTest, ParsesXLogDataAndBorrowsPayload) {
  const std::string frame =
      XLogFrame(0x16B374D848ULL, 0x16B374D900ULL, 712345678901234, std::string("B\x00\x01", 3));
  auto parsed = ParseServerFrame(frame);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(std::holds_alternative<XLogData>(*parsed));
  const auto& data = std::get<XLogData>(*parsed);
  EXPECT_EQ(data.start_lsn, core::Lsn(0x16B374D848ULL));
  EXPECT_EQ(data.start_lsn.ToString(), "16/B374D848");
  EXPECT_EQ(data.end_lsn, core::Lsn(0x16B374D900ULL));
  EXPECT_EQ(data.send_time, 712345678901234);
  EXPECT_EQ(data.payload, std::string_view("B\x00\x01", 3));
  // The payload is a view into the frame, not a copy.
  EXPECT_EQ(data.payload.data(), frame.data() + kXLogDataHeaderSize);
}

TEST(ReplicationFrameTest, XLogDataWithEmptyPayload) {
  auto parsed = ParseServerFrame(XLogFrame(1, 2, 3, ""));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(std::get<XLogData>(*parsed).payload.empty());
}

TEST(ReplicationFrameTest, NegativeSendTimeRoundTrips) {
  auto parsed = ParseServerFrame(XLogFrame(1, 2, -5, "x"));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(std::get<XLogData>(*parsed).send_time, -5);
}

TEST(ReplicationFrameTest, TruncatedXLogDataNamesFrameAndOffset) {
  const std::string full = XLogFrame(1, 2, 3, "");
  for (size_t len = 1; len < kXLogDataHeaderSize; ++len) {
    auto parsed = ParseServerFrame(std::string_view(full).substr(0, len));
    ASSERT_FALSE(parsed.ok()) << "length " << len;
    EXPECT_EQ(parsed.status().code(), core::StatusCode::kCorruption);
    EXPECT_NE(parsed.status().message().find("XLogData ('w')"), std::string::npos)
        << parsed.status().message();
  }
  auto parsed = ParseServerFrame(full.substr(0, 12));
  EXPECT_NE(parsed.status().message().find("offset 9"), std::string::npos)
      << parsed.status().message();
  EXPECT_NE(parsed.status().message().find("end LSN"), std::string::npos)
      << parsed.status().message();
}

TEST(ReplicationFrameTest, ParsesKeepalive) {
  auto parsed = ParseServerFrame(KeepaliveFrame(0xABCDEF, 99, 1));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(std::holds_alternative<PrimaryKeepalive>(*parsed));
  const auto& keepalive = std::get<PrimaryKeepalive>(*parsed);
  EXPECT_EQ(keepalive.wal_end, core::Lsn(0xABCDEF));
  EXPECT_EQ(keepalive.send_time, 99);
  EXPECT_TRUE(keepalive.reply_requested);

  auto no_reply = ParseServerFrame(KeepaliveFrame(1, 2, 0));
  ASSERT_TRUE(no_reply.ok());
  EXPECT_FALSE(std::get<PrimaryKeepalive>(*no_reply).reply_requested);
}

TEST(ReplicationFrameTest, KeepaliveWrongSizeIsCorruption) {
  const std::string full = KeepaliveFrame(1, 2, 0);
  ASSERT_EQ(full.size(), kPrimaryKeepaliveSize);
  auto short_frame = ParseServerFrame(full.substr(0, kPrimaryKeepaliveSize - 1));
  ASSERT_FALSE(short_frame.ok());
  EXPECT_EQ(short_frame.status().code(), core::StatusCode::kCorruption);
  EXPECT_NE(short_frame.status().message().find("primary keepalive ('k')"), std::string::npos);
  EXPECT_NE(short_frame.status().message().find("offset 17"), std::string::npos)
      << short_frame.status().message();

  auto long_frame = ParseServerFrame(full + "z");
  ASSERT_FALSE(long_frame.ok());
  EXPECT_EQ(long_frame.status().code(), core::StatusCode::kCorruption);
  EXPECT_NE(long_frame.status().message().find("trailing"), std::string::npos);
  EXPECT_NE(long_frame.status().message().find("offset 18"), std::string::npos)
      << long_frame.status().message();
}

TEST(ReplicationFrameTest, EmptyAndUnknownFramesAreCorruption) {
  auto empty = ParseServerFrame("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), core::StatusCode::kCorruption);
  EXPECT_NE(empty.status().message().find("offset 0"), std::string::npos);

  auto unknown = ParseServerFrame("zzzz");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), core::StatusCode::kCorruption);
  EXPECT_NE(unknown.status().message().find("'z'"), std::string::npos)
      << unknown.status().message();

  auto control = ParseServerFrame(std::string("\x01", 1));
  ASSERT_FALSE(control.ok());
  EXPECT_NE(control.status().message().find("0x01"), std::string::npos)
      << control.status().message();

  // A client-side frame type is not something the server sends.
  StandbyStatusUpdate update;
  auto reply = ParseServerFrame(BuildStandbyStatusUpdate(update));
  EXPECT_FALSE(reply.ok());
}

TEST(ReplicationFrameTest, BuildsStandbyStatusUpdateByteExact) {
  StandbyStatusUpdate update;
  update.write_lsn = core::Lsn(0x0102030405060708ULL);
  update.flush_lsn = core::Lsn(0x10);
  update.apply_lsn = core::Lsn(0x20);
  update.client_time = 0x0A0B0C0D;
  update.reply_requested = true;
  const std::string frame = BuildStandbyStatusUpdate(update);
  ASSERT_EQ(frame.size(), kStandbyStatusUpdateSize);
  const std::string expected = "r" + U64(0x0102030405060708ULL) + U64(0x10) + U64(0x20) +
                               U64(0x0A0B0C0D) + std::string(1, '\x01');
  EXPECT_EQ(frame, expected);
}

TEST(ReplicationFrameTest, StandbyStatusUpdateRoundTrips) {
  StandbyStatusUpdate update;
  update.write_lsn = core::Lsn(300);
  update.flush_lsn = core::Lsn(200);
  update.apply_lsn = core::Lsn(200);
  update.client_time = -42;
  update.reply_requested = false;
  auto parsed = ParseStandbyStatusUpdate(BuildStandbyStatusUpdate(update));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->write_lsn, update.write_lsn);
  EXPECT_EQ(parsed->flush_lsn, update.flush_lsn);
  EXPECT_EQ(parsed->apply_lsn, update.apply_lsn);
  EXPECT_EQ(parsed->client_time, -42);
  EXPECT_FALSE(parsed->reply_requested);
}

TEST(ReplicationFrameTest, MalformedStandbyStatusUpdate) {
  const std::string frame = BuildStandbyStatusUpdate(StandbyStatusUpdate{});
  auto truncated = ParseStandbyStatusUpdate(frame.substr(0, 20));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), core::StatusCode::kCorruption);
  EXPECT_NE(truncated.status().message().find("offset 17"), std::string::npos)
      << truncated.status().message();
  auto wrong_tag = ParseStandbyStatusUpdate("k" + frame.substr(1));
  ASSERT_FALSE(wrong_tag.ok());
  EXPECT_NE(wrong_tag.status().message().find("'k'"), std::string::npos);
}

}  // namespace
}  // namespace sluice::capture
