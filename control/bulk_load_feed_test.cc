#include "control/bulk_load_feed.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/test_builders.h"

namespace sluice::control {
namespace {

using core::Tuple;
using core::Value;
using core::testing::KeyColumn;
using core::testing::MakeRelation;
using core::testing::PlainColumn;

// Records what it is given, through the path it declares.
class RecordingLoader : public apply::BulkLoader {
 public:
  explicit RecordingLoader(bool takes_copy_text) : takes_copy_text_(takes_copy_text) {}

  core::Status WriteRows(std::span<const Tuple> rows) override {
    if (takes_copy_text_) return core::Internal("rows given to a COPY text loader");
    batches.push_back(rows.size());
    rows_.insert(rows_.end(), rows.begin(), rows.end());
    return write_error;
  }
  bool TakesCopyText() const override { return takes_copy_text_; }
  core::Status WriteCopyText(std::string_view chunk) override {
    if (!takes_copy_text_) return core::Internal("COPY text given to a row loader");
    text += chunk;
    return write_error;
  }
  core::Status Finish() override {
    finished = true;
    return core::Status::Ok();
  }

  const std::vector<Tuple>& rows() const { return rows_; }

  std::string text;
  std::vector<size_t> batches;
  bool finished = false;
  core::Status write_error;

 private:
  const bool takes_copy_text_;
  std::vector<Tuple> rows_;
};

const core::Relation& Table() {
  static const core::RelationPtr relation =
      MakeRelation(16384, "t", {KeyColumn("id"), PlainColumn("v", core::testing::kTextOid)});
  return *relation;
}

TEST(BulkLoadFeedTest, CopyTextLoaderGetsTheTextAsIs) {
  RecordingLoader loader(/*takes_copy_text=*/true);
  BulkLoadFeed feed(loader, Table());
  ASSERT_TRUE(feed.Write("1\ta\\tb\n2\t").ok());
  ASSERT_TRUE(feed.Write("\\N\n").ok());
  ASSERT_TRUE(feed.Finish().ok());
  EXPECT_EQ(loader.text, "1\ta\\tb\n2\t\\N\n");
  EXPECT_TRUE(loader.finished);
}

TEST(BulkLoadFeedTest, RowLoaderGetsParsedRowsInBatches) {
  RecordingLoader loader(/*takes_copy_text=*/false);
  BulkLoadFeed feed(loader, Table());
  const size_t total = BulkLoadFeed::kRowsPerWrite * 2 + 5;
  std::vector<Tuple> expected;
  for (size_t i = 0; i < total; ++i) {
    // Every row split in two chunks, mid-escape.
    ASSERT_TRUE(feed.Write(std::to_string(i) + "\tx\\").ok());
    ASSERT_TRUE(feed.Write("ny\n").ok());
    expected.push_back({Value::Text(std::to_string(i)), Value::Text("x\ny")});
  }
  EXPECT_EQ(loader.batches,
            (std::vector<size_t>{BulkLoadFeed::kRowsPerWrite, BulkLoadFeed::kRowsPerWrite}));
  EXPECT_FALSE(loader.finished);
  ASSERT_TRUE(feed.Finish().ok());
  EXPECT_EQ(loader.batches.back(), 5u);
  EXPECT_EQ(loader.rows(), expected);
  EXPECT_TRUE(loader.finished);
}

TEST(BulkLoadFeedTest, LargeRowsAreWrittenBeforeTheRowCountFillsABatch) {
  RecordingLoader loader(/*takes_copy_text=*/false);
  BulkLoadFeed feed(loader, Table());
  const std::string big(BulkLoadFeed::kBytesPerWrite / 2, 'v');
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(feed.Write("1\t" + big + "\n").ok());
  EXPECT_EQ(loader.batches, (std::vector<size_t>{2, 2}));
}

TEST(BulkLoadFeedTest, MalformedTextStopsTheLoadUnfinished) {
  RecordingLoader loader(/*takes_copy_text=*/false);
  BulkLoadFeed feed(loader, Table());
  ASSERT_TRUE(feed.Write("1\ta\n").ok());
  core::Status status = feed.Write("2\n");
  EXPECT_EQ(status.code(), core::StatusCode::kCorruption);
  EXPECT_NE(status.message().find("public.t, row 2"), std::string::npos) << status.ToString();
  EXPECT_FALSE(feed.Finish().ok());
  EXPECT_FALSE(loader.finished);

  RecordingLoader cut(/*takes_copy_text=*/false);
  BulkLoadFeed cut_feed(cut, Table());
  ASSERT_TRUE(cut_feed.Write("1\ta\n2\tb").ok());
  EXPECT_EQ(cut_feed.Finish().code(), core::StatusCode::kCorruption);
  EXPECT_FALSE(cut.finished);
  EXPECT_TRUE(cut.rows().empty());
}

TEST(BulkLoadFeedTest, LoaderErrorsComeBackAsTheyAre) {
  RecordingLoader loader(/*takes_copy_text=*/false);
  loader.write_error = core::Unavailable("target gone");
  BulkLoadFeed feed(loader, Table());
  ASSERT_TRUE(feed.Write("1\ta\n").ok());
  core::Status status = feed.Finish();
  EXPECT_EQ(status.code(), core::StatusCode::kUnavailable);
  EXPECT_FALSE(loader.finished);
}

}  // namespace
}  // namespace sluice::control
