#include "state/state_records.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::state {
namespace {

// Every record type with values that exercise its fields (empty, large, negative, odd bytes).
const SlotRecord kSlot{"sluice_orders", SlotState::kAdopted, core::Lsn(0x16B374D848)};
const SnapshotRecord kSnapshot{true};
const TableCopyRecord kTableCopy{
    1500, 300000, 2000, 400000, 4, 3, false, 1700000000123, core::Lsn(0xABCDEF)};
const SnapshotRequest kRequest{{"public.items", "\"Odd ü\".t/1", ""}};
const PipelineErrorRecord kError{"pipeline p: table \"t\" says \"no\"\nsecond line", 1700000000123,
                                 true};
const MigrationRecord kMigration{MigrationPhase::kCutover, core::Lsn(0x10), core::Lsn(0x20), -7};

template <typename Record>
Record RoundTrip(const Record& record) {
  Record decoded{};
  const core::Status st = DecodeRecord(EncodeRecord(record), &decoded);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return decoded;
}

template <typename Record>
core::StatusCode DecodeCode(const std::string& bytes) {
  Record decoded{};
  return DecodeRecord(bytes, &decoded).code();
}

TEST(StateRecordsTest, EveryRecordRoundTrips) {
  EXPECT_EQ(RoundTrip(kSlot), kSlot);
  EXPECT_EQ(RoundTrip(SlotRecord{"s", SlotState::kCreating, core::Lsn()}),
            (SlotRecord{"s", SlotState::kCreating, core::Lsn()}));
  EXPECT_EQ(RoundTrip(kSnapshot), kSnapshot);
  EXPECT_EQ(RoundTrip(SnapshotRecord{false}), SnapshotRecord{false});
  EXPECT_EQ(RoundTrip(kTableCopy), kTableCopy);
  EXPECT_EQ(RoundTrip(kRequest), kRequest);
  EXPECT_EQ(RoundTrip(SnapshotRequest{}), SnapshotRequest{});
  EXPECT_EQ(RoundTrip(kError), kError);
  EXPECT_EQ(RoundTrip(PipelineErrorRecord{std::string(100000, 'e'), 0, false}).message.size(),
            100000u);
  EXPECT_EQ(RoundTrip(kMigration), kMigration);
  for (uint8_t phase = 1; phase <= 7; ++phase) {
    const MigrationRecord record{static_cast<MigrationPhase>(phase), core::Lsn(1), core::Lsn(2), 3};
    EXPECT_EQ(RoundTrip(record), record) << MigrationPhaseName(record.phase);
  }
}

// The layout is the on-disk format: a change here breaks every store already written.
TEST(StateRecordsTest, EncodingIsTheDocumentedLayout) {
  EXPECT_EQ(EncodeRecord(SnapshotRecord{true}), std::string("\x01\x01", 2));
  EXPECT_EQ(EncodeRecord(SnapshotRequest{{"ab", "c"}}), std::string("\x01"
                                                                    "\x02\x00\x00\x00"
                                                                    "\x02\x00\x00\x00"
                                                                    "ab"
                                                                    "\x01\x00\x00\x00"
                                                                    "c",
                                                                    16));
  EXPECT_EQ(EncodeRecord(SlotRecord{"s", SlotState::kCreated, core::Lsn(0x0102)}),
            std::string("\x01"
                        "\x01\x00\x00\x00"
                        "s"
                        "\x02"
                        "\x02\x01\x00\x00\x00\x00\x00\x00",
                        15));
  EXPECT_EQ(EncodeRecord(PipelineErrorRecord{"m", -1, true}),
            std::string("\x01"
                        "\x01\x00\x00\x00"
                        "m"
                        "\xff\xff\xff\xff\xff\xff\xff\xff"
                        "\x01",
                        15));
  EXPECT_EQ(EncodeRecord(kTableCopy).size(), 1u + 8 * 8 + 1);
  EXPECT_EQ(EncodeRecord(kMigration).size(), 1u + 1 + 8 * 3);
}

// Truncated at every length, with a byte too many, or empty: kCorruption, never a guess.
template <typename Record>
void ExpectDamageRefused(const Record& record) {
  const std::string bytes = EncodeRecord(record);
  for (size_t size = 0; size < bytes.size(); ++size) {
    Record decoded = record;
    const core::Status st = DecodeRecord(bytes.substr(0, size), &decoded);
    EXPECT_EQ(st.code(), core::StatusCode::kCorruption)
        << Record::kRecordName << " cut to " << size << " bytes";
    EXPECT_EQ(decoded, record) << "a failed decode leaves the record alone";
  }
  EXPECT_EQ(DecodeCode<Record>(bytes + "x"), core::StatusCode::kCorruption) << Record::kRecordName;
}

TEST(StateRecordsTest, DamagedRecordsAreCorruption) {
  ExpectDamageRefused(Checkpoint{core::Lsn(5), 6, 7});
  ExpectDamageRefused(kSlot);
  ExpectDamageRefused(kSnapshot);
  ExpectDamageRefused(kTableCopy);
  ExpectDamageRefused(kRequest);
  ExpectDamageRefused(kError);
  ExpectDamageRefused(kMigration);
}

TEST(StateRecordsTest, FieldValuesOutOfRangeAreCorruption) {
  std::string slot = EncodeRecord(SlotRecord{"s", SlotState::kCreated, core::Lsn(1)});
  slot[6] = 9;  // the state byte after version, length and name
  SlotRecord decoded_slot;
  const core::Status st = DecodeRecord(slot, &decoded_slot);
  EXPECT_EQ(st.code(), core::StatusCode::kCorruption);
  EXPECT_NE(st.message().find("slot state 9"), std::string::npos) << st.message();
  slot[6] = 0;
  EXPECT_EQ(DecodeCode<SlotRecord>(slot), core::StatusCode::kCorruption);

  std::string migration = EncodeRecord(kMigration);
  migration[1] = 8;
  EXPECT_EQ(DecodeCode<MigrationRecord>(migration), core::StatusCode::kCorruption);

  std::string snapshot = EncodeRecord(SnapshotRecord{true});
  snapshot[1] = 2;  // a boolean is 0 or 1
  EXPECT_EQ(DecodeCode<SnapshotRecord>(snapshot), core::StatusCode::kCorruption);

  // A list count the bytes cannot hold is refused before anything is allocated for it.
  const std::string huge_list("\x01\xff\xff\xff\xff", 5);
  EXPECT_EQ(DecodeCode<SnapshotRequest>(huge_list), core::StatusCode::kCorruption);
  // A string length past the end.
  const std::string long_string("\x01\x00\x00\x00\x10m", 6);
  EXPECT_EQ(DecodeCode<PipelineErrorRecord>(long_string), core::StatusCode::kCorruption);
}

TEST(StateRecordsTest, UnknownVersionsAreRefused) {
  auto expect_refused = [](std::string bytes, auto record, const char* name) {
    bytes[0] = 2;
    const core::Status st = DecodeRecord(bytes, &record);
    EXPECT_EQ(st.code(), core::StatusCode::kCorruption) << name;
    EXPECT_NE(st.message().find("has version 2; this sluice reads version 1"), std::string::npos)
        << st.message();
  };
  expect_refused(EncodeRecord(Checkpoint{}), Checkpoint{}, "checkpoint");
  expect_refused(EncodeRecord(kSlot), SlotRecord{}, "slot");
  expect_refused(EncodeRecord(kSnapshot), SnapshotRecord{}, "snapshot");
  expect_refused(EncodeRecord(kTableCopy), TableCopyRecord{}, "table copy");
  expect_refused(EncodeRecord(kRequest), SnapshotRequest{}, "request");
  expect_refused(EncodeRecord(kError), PipelineErrorRecord{}, "error");
  expect_refused(EncodeRecord(kMigration), MigrationRecord{}, "migration");
}

// The bytes sluice wrote before format version 2 (nlohmann::json::dump of the old writers,
// keys in its sorted order) read as they did.
TEST(StateRecordsTest, RecordsOfFormatOneReadTheSame) {
  SlotRecord slot;
  ASSERT_TRUE(DecodeRecord(R"({"consistent_point":"16/B374D848","name":"sluice_orders",)"
                           R"("state":"adopted"})",
                           &slot)
                  .ok());
  EXPECT_EQ(slot, kSlot);
  ASSERT_TRUE(DecodeRecord(R"({"name":"s","state":"creating"})", &slot).ok());
  EXPECT_EQ(slot, (SlotRecord{"s", SlotState::kCreating, core::Lsn()}));

  SnapshotRecord snapshot;
  ASSERT_TRUE(DecodeRecord("done", &snapshot).ok());
  EXPECT_TRUE(snapshot.done);

  TableCopyRecord copy;
  ASSERT_TRUE(DecodeRecord(R"({"bytes":300000,"done":false,"estimated_bytes":400000,)"
                           R"("estimated_rows":2000,"ranges":4,"ranges_done":3,"rows":1500,)"
                           R"("snapshot_lsn":"0/ABCDEF","updated_at_unix_ms":1700000000123})",
                           &copy)
                  .ok());
  EXPECT_EQ(copy, kTableCopy);
  ASSERT_TRUE(DecodeRecord(R"({"done":false})", &copy).ok());  // MarkTableForCopy's
  EXPECT_EQ(copy, TableCopyRecord{});
  ASSERT_TRUE(DecodeRecord(R"({"done":true,"snapshot_lsn":"0/10"})", &copy).ok());
  EXPECT_TRUE(copy.done);
  EXPECT_EQ(copy.snapshot_lsn, core::Lsn(0x10));

  SnapshotRequest request;
  ASSERT_TRUE(DecodeRecord(R"({"tables":["public.items","\"Odd ü\".t/1",""]})", &request).ok());
  EXPECT_EQ(request, kRequest);
  ASSERT_TRUE(DecodeRecord(R"({"tables":[]})", &request).ok());
  EXPECT_TRUE(request.all());

  PipelineErrorRecord error;
  ASSERT_TRUE(
      DecodeRecord(R"({"at_unix_ms":1700000000123,"message":"boom","permanent":true})", &error)
          .ok());
  EXPECT_EQ(error, (PipelineErrorRecord{"boom", 1700000000123, true}));
}

TEST(StateRecordsTest, DamagedRecordsOfFormatOneAreCorruption) {
  EXPECT_EQ(DecodeCode<SlotRecord>("{not json"), core::StatusCode::kCorruption);
  EXPECT_EQ(DecodeCode<SlotRecord>(R"({"name":"s","state":"borrowed"})"),
            core::StatusCode::kCorruption);
  EXPECT_EQ(DecodeCode<TableCopyRecord>("{\"done\":"), core::StatusCode::kCorruption);
  EXPECT_EQ(DecodeCode<SnapshotRequest>("{]"), core::StatusCode::kCorruption);
  for (const char* text : {"", "{}", "{\"message\":\"m\"}", "[1]", "null",
                           R"({"message":1,"at_unix_ms":1,"permanent":true})",
                           R"({"message":"m","at_unix_ms":"1","permanent":true})",
                           R"({"message":"m","at_unix_ms":1,"permanent":"yes"})"}) {
    EXPECT_EQ(DecodeCode<PipelineErrorRecord>(text), core::StatusCode::kCorruption) << text;
  }
  EXPECT_EQ(DecodeCode<SnapshotRecord>("not done"), core::StatusCode::kCorruption);
}

}  // namespace
}  // namespace sluice::state
