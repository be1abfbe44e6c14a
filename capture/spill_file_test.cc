#include "capture/spill_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace sluice::capture {
namespace {

namespace fs = std::filesystem;

class SpillFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "spill_file_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = (fs::path(root_) / "nested" / "spill").string();

    auto relation = std::make_shared<core::Relation>();
    relation->oid = 16384;
    relation->schema = "public";
    relation->name = "items";
    relation->columns = {{"id", 23, -1, true}, {"payload", 25, -1, false}};
    relation_ = relation;
  }
  void TearDown() override { fs::remove_all(root_); }

  core::Change MakeChange(int i, size_t payload_bytes = 10) const {
    core::Change change;
    change.op = core::Operation::kInsert;
    change.lsn = core::Lsn(1000 + i);
    change.relation = relation_;
    change.new_tuple = {core::Value::Text(std::to_string(i)),
                        core::Value::Text(std::string(payload_bytes, 'a' + i % 26))};
    return change;
  }

  std::unique_ptr<SpillFile> CreateFile(uint32_t xid = 740) {
    auto file = SpillFile::Create(dir_, xid);
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    return file.ok() ? std::move(file).value() : nullptr;
  }

  // Every change in the file, read in chunks of at most `chunk` changes.
  std::vector<core::Change> ReadAll(SpillFile& file, size_t chunk = 7, uint64_t max_bytes = ~0ull) {
    std::vector<core::Change> all;
    auto reader = file.OpenReader();
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return all;
    while (true) {
      std::vector<core::Change> part;
      auto more = (*reader)->NextChunk(&part, chunk, max_bytes);
      EXPECT_TRUE(more.ok()) << more.status().ToString();
      if (!more.ok() || !*more) break;
      EXPECT_FALSE(part.empty());
      EXPECT_LE(part.size(), chunk);
      all.insert(all.end(), std::make_move_iterator(part.begin()),
                 std::make_move_iterator(part.end()));
    }
    return all;
  }

  std::string root_;
  std::string dir_;
  core::RelationPtr relation_;
};

TEST_F(SpillFileTest, CreatesPrivateDirectoryAndRemovesFileOnDestruction) {
  std::string path;
  {
    auto file = CreateFile();
    ASSERT_NE(file, nullptr);
    path = file->path();
    EXPECT_TRUE(fs::exists(path));
    struct stat st;
    ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    ASSERT_TRUE(file->Append(MakeChange(0)).ok());
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(SpillFileTest, AppendReturnsIndexesAndReadsBackInOrder) {
  auto file = CreateFile();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 5000; ++i) {  // more than one write buffer and several index strides
    auto index = file->Append(MakeChange(i, 100));
    ASSERT_TRUE(index.ok());
    EXPECT_EQ(*index, static_cast<uint64_t>(i));
  }
  EXPECT_EQ(file->record_count(), 5000u);
  auto all = ReadAll(*file, 333);
  ASSERT_EQ(all.size(), 5000u);
  for (int i = 0; i < 5000; ++i) {
    EXPECT_EQ(all[i].lsn, core::Lsn(1000 + i));
    EXPECT_EQ(all[i].relation, relation_);
    EXPECT_EQ(all[i].new_tuple[0].data, std::to_string(i));
  }
  EXPECT_EQ(file->size_bytes(), fs::file_size(file->path()));
}

TEST_F(SpillFileTest, ChunksAreBoundedByBytes) {
  auto file = CreateFile();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(file->Append(MakeChange(i, 1000)).ok());
  const uint64_t one = MakeChange(0, 1000).ApproximateBytes();
  auto reader = file->OpenReader();
  ASSERT_TRUE(reader.ok());
  size_t total = 0;
  while (true) {
    std::vector<core::Change> part;
    auto more = (*reader)->NextChunk(&part, 100, 3 * one);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    EXPECT_LE(part.size(), 3u);
    total += part.size();
  }
  EXPECT_EQ(total, 20u);
}

TEST_F(SpillFileTest, TruncateToRecordDropsTheTail) {
  auto file = CreateFile();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(file->Append(MakeChange(i)).ok());
  ASSERT_TRUE(file->TruncateToRecord(2500).ok());  // tail still partly in the write buffer
  ASSERT_TRUE(file->TruncateToRecord(1500).ok());  // inside an index stride
  EXPECT_EQ(file->record_count(), 1500u);
  EXPECT_EQ(fs::file_size(file->path()), file->size_bytes());
  // Appending after a truncation continues at the cut.
  auto index = file->Append(MakeChange(9999));
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(*index, 1500u);
  auto all = ReadAll(*file);
  ASSERT_EQ(all.size(), 1501u);
  for (int i = 0; i < 1500; ++i) EXPECT_EQ(all[i].lsn, core::Lsn(1000 + i));
  EXPECT_EQ(all[1500].lsn, core::Lsn(1000 + 9999));

  ASSERT_TRUE(file->TruncateToRecord(1024).ok());  // exactly on an index stride
  ASSERT_TRUE(file->Append(MakeChange(7)).ok());
  EXPECT_EQ(ReadAll(*file).size(), 1025u);
  ASSERT_TRUE(file->TruncateToRecord(0).ok());
  EXPECT_EQ(file->record_count(), 0u);
  EXPECT_EQ(file->size_bytes(), 0u);
  EXPECT_TRUE(ReadAll(*file).empty());

  auto bad = file->TruncateToRecord(1);
  EXPECT_EQ(bad.code(), core::StatusCode::kInvalidArgument);
}

TEST_F(SpillFileTest, LargeRecordsAmongSmallOnesReadBackAndTruncate) {
  // Records larger than the write and read buffers (256 KB) are written directly and read
  // whole, between small ones still in the write buffer.
  auto file = CreateFile();
  ASSERT_NE(file, nullptr);
  std::vector<size_t> sizes;
  for (int i = 0; i < 12; ++i) sizes.push_back(i % 3 == 1 ? (3u << 20) + i : 100);
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto index = file->Append(MakeChange(static_cast<int>(i), sizes[i]));
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    EXPECT_EQ(*index, i);
  }
  auto check = [&](size_t records) {
    std::vector<core::Change> all = ReadAll(*file, /*chunk=*/2, /*max_bytes=*/1 << 20);
    ASSERT_EQ(all.size(), records);
    for (size_t i = 0; i < records; ++i) {
      EXPECT_EQ(all[i].new_tuple[0].data, std::to_string(i));
      EXPECT_EQ(all[i].new_tuple[1].data, std::string(sizes[i], 'a' + i % 26)) << i;
    }
  };
  check(sizes.size());
  ASSERT_TRUE(file->TruncateToRecord(8).ok());  // right after a large record
  check(8);
  ASSERT_TRUE(file->TruncateToRecord(4).ok());  // right before one
  check(4);
  auto index = file->Append(MakeChange(4, sizes[4]));
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  check(5);
}

TEST_F(SpillFileTest, EncodingNeverExceedsApproximateBytes) {
  // Append reserves ApproximateBytes() for the encoding, so that a huge value is copied once.
  std::vector<core::Change> changes = {MakeChange(1, 0), MakeChange(2, 5 << 20)};
  core::Change update = MakeChange(3, 100);
  update.op = core::Operation::kUpdate;
  update.old_kind = core::OldTupleKind::kFull;
  update.old_tuple = {core::Value::Text("3"), core::Value::UnchangedToast()};
  changes.push_back(update);
  core::Change message;
  message.op = core::Operation::kMessage;
  message.message_prefix = std::string(300, 'p');
  message.message_content = std::string(1 << 20, 'c');
  changes.push_back(message);
  core::Change truncate;
  truncate.op = core::Operation::kTruncate;
  truncate.truncated = {relation_, relation_, relation_};
  changes.push_back(truncate);
  for (const core::Change& change : changes) {
    codec::RelationTable relations;
    std::string encoded;
    codec::EncodeChange(change, relations, &encoded);
    EXPECT_LE(encoded.size(), change.ApproximateBytes()) << core::OperationName(change.op);
  }
}

TEST_F(SpillFileTest, RelationReplacedMidFileDecodesToEachVersion) {
  auto file = CreateFile();
  ASSERT_NE(file, nullptr);
  auto v2 = std::make_shared<core::Relation>(*relation_);
  v2->columns.push_back({"added", 25, -1, false});
  v2->version = core::NextRelationVersion();  // a changed description is a new version
  ASSERT_TRUE(file->Append(MakeChange(0)).ok());
  core::Change after = MakeChange(1);
  after.relation = v2;
  after.new_tuple.push_back(core::Value::Null());
  ASSERT_TRUE(file->Append(after).ok());
  auto all = ReadAll(*file);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].relation, relation_);
  EXPECT_EQ(all[0].relation->columns.size(), 2u);
  EXPECT_EQ(all[1].relation, core::RelationPtr(v2));
  EXPECT_EQ(all[1].relation->columns.size(), 3u);
}

// Damages the file on disk, then expects reading it to fail with kCorruption naming the file.
void ExpectCorruptRead(SpillFile& file, const std::string& expected) {
  auto reader = file.OpenReader();
  ASSERT_TRUE(reader.ok());
  core::Status status;
  while (true) {
    std::vector<core::Change> part;
    auto more = (*reader)->NextChunk(&part, 10, ~0ull);
    if (!more.ok()) {
      status = more.status();
      break;
    }
    if (!*more) break;
  }
  ASSERT_FALSE(status.ok()) << "damage not detected";
  EXPECT_EQ(status.code(), core::StatusCode::kCorruption);
  EXPECT_NE(status.message().find(file.path()), std::string::npos) << status.message();
  EXPECT_NE(status.message().find(expected), std::string::npos) << status.message();
}

void OverwriteByte(const std::string& path, uint64_t offset, char byte) {
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, &byte, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

TEST_F(SpillFileTest, FlippedPayloadByteIsChecksumMismatch) {
  auto file = CreateFile();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(file->Append(MakeChange(i)).ok());
  ASSERT_TRUE(file->OpenReader().ok());  // flush
  OverwriteByte(file->path(), file->size_bytes() - 3, 'Z');
  ExpectCorruptRead(*file, "checksum mismatch");
}

TEST_F(SpillFileTest, HugeLengthIsCorruption) {
  auto file = CreateFile();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(file->Append(MakeChange(i)).ok());
  ASSERT_TRUE(file->OpenReader().ok());
  OverwriteByte(file->path(), 3, 0x40);  // first record length ~1 GiB
  ExpectCorruptRead(*file, "runs past the end");
}

TEST_F(SpillFileTest, FileShortenedBehindOurBackIsCorruption) {
  auto file = CreateFile();
  ASSERT_NE(file, nullptr);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(file->Append(MakeChange(i)).ok());
  ASSERT_TRUE(file->OpenReader().ok());
  fs::resize_file(file->path(), file->size_bytes() - 5);
  ExpectCorruptRead(*file, "ends inside a record");
}

TEST_F(SpillFileTest, RemoveStaleSpillFilesKeepsOtherFiles) {
  fs::create_directories(dir_);
  const std::string stale = dir_ + "/sluice-spill-123-740-0.spill";
  const std::string other = dir_ + "/notes.txt";
  std::ofstream(stale) << "old";
  std::ofstream(other) << "keep";
  ASSERT_TRUE(RemoveStaleSpillFiles(dir_).ok());
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_TRUE(RemoveStaleSpillFiles(root_ + "/missing").ok());
}

TEST_F(SpillFileTest, ExplicitRemoveIsIdempotentAndBlocksFurtherUse) {
  auto file = CreateFile();
  ASSERT_NE(file, nullptr);
  ASSERT_TRUE(file->Append(MakeChange(0)).ok());
  ASSERT_TRUE(file->Remove().ok());
  EXPECT_FALSE(fs::exists(file->path()));
  EXPECT_TRUE(file->Remove().ok());
  EXPECT_FALSE(file->Append(MakeChange(1)).ok());
}

TEST_F(SpillFileTest, UnusableDirectoryIsAnError) {
  fs::create_directories(root_);
  std::ofstream(root_ + "/plainfile") << "x";
  auto file = SpillFile::Create(root_ + "/plainfile/spill", 1);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("plainfile"), std::string::npos);
}

}  // namespace
}  // namespace sluice::capture
