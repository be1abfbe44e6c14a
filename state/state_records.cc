#include "state/state_records.h"

#include "state/legacy_records.h"
#include "state/record_codec.h"

namespace sluice::state {
namespace {

constexpr uint8_t kVersion1 = 1;

// Reads a version-1 record with `read`, which takes its fields from the reader and checks
// their values; `*record` changes only when all is well.
template <typename Record, typename Read>
core::Status DecodeVersion1(std::string_view bytes, Record* record, Read read) {
  RecordReader reader(bytes, Record::kRecordName);
  if (reader.version() != kVersion1 && !bytes.empty()) return reader.UnknownVersion("1");
  Record decoded;
  const core::Status values = read(reader, decoded);
  SLUICE_RETURN_IF_ERROR(reader.Finish());
  SLUICE_RETURN_IF_ERROR(values);
  *record = std::move(decoded);
  return core::Status::Ok();
}

// An enum's byte, kCorruption unless within [first, last].
template <typename Enum>
core::Status CheckEnum(uint8_t value, Enum first, Enum last, const char* record,
                       const char* field) {
  if (value >= static_cast<uint8_t>(first) && value <= static_cast<uint8_t>(last)) {
    return core::Status::Ok();
  }
  return core::Corruption(std::string(record) + " has " + field + " " + std::to_string(value));
}

}  // namespace

const char* SlotStateName(SlotState state) {
  switch (state) {
    case SlotState::kCreating:
      return "creating";
    case SlotState::kCreated:
      return "created";
    case SlotState::kAdopted:
      return "adopted";
  }
  return "unknown";
}

const char* MigrationPhaseName(MigrationPhase phase) {
  switch (phase) {
    case MigrationPhase::kCopy:
      return "copy";
    case MigrationPhase::kFollow:
      return "follow";
    case MigrationPhase::kCutover:
      return "cutover";
    case MigrationPhase::kReversed:
      return "reversed";
    case MigrationPhase::kRollback:
      return "rollback";
    case MigrationPhase::kFinalized:
      return "finalized";
    case MigrationPhase::kAbandoned:
      return "abandoned";
  }
  return "unknown";
}

std::string EncodeRecord(const Checkpoint& record) {
  return RecordWriter(kVersion1)
      .Lsn(record.durable_lsn)
      .I64(record.commit_time)
      .I64(record.updated_at_unix_ms)
      .Finish();
}

core::Status DecodeRecord(std::string_view bytes, Checkpoint* record) {
  return DecodeVersion1(bytes, record, [](RecordReader& in, Checkpoint& out) {
    out.durable_lsn = in.Lsn();
    out.commit_time = in.I64();
    out.updated_at_unix_ms = in.I64();
    return core::Status::Ok();
  });
}

std::string EncodeRecord(const SlotRecord& record) {
  return RecordWriter(kVersion1)
      .String(record.name)
      .U8(static_cast<uint8_t>(record.state))
      .Lsn(record.consistent_point)
      .Finish();
}

core::Status DecodeRecord(std::string_view bytes, SlotRecord* record) {
  if (IsLegacyJson(bytes)) return DecodeLegacyRecord(bytes, record);
  return DecodeVersion1(bytes, record, [](RecordReader& in, SlotRecord& out) {
    out.name = in.String();
    const uint8_t state = in.U8();
    out.state = static_cast<SlotState>(state);
    out.consistent_point = in.Lsn();
    return CheckEnum(state, SlotState::kCreating, SlotState::kAdopted, SlotRecord::kRecordName,
                     "slot state");
  });
}

std::string EncodeRecord(const SnapshotRecord& record) {
  return RecordWriter(kVersion1).Bool(record.done).Finish();
}

core::Status DecodeRecord(std::string_view bytes, SnapshotRecord* record) {
  if (bytes == kLegacySnapshotDone) {
    record->done = true;
    return core::Status::Ok();
  }
  return DecodeVersion1(bytes, record, [](RecordReader& in, SnapshotRecord& out) {
    out.done = in.Bool();
    return core::Status::Ok();
  });
}

std::string EncodeRecord(const TableCopyRecord& record) {
  return RecordWriter(kVersion1)
      .U64(record.rows)
      .U64(record.bytes)
      .U64(record.estimated_rows)
      .U64(record.estimated_bytes)
      .I64(record.ranges)
      .I64(record.ranges_done)
      .Bool(record.done)
      .I64(record.updated_at_unix_ms)
      .Lsn(record.snapshot_lsn)
      .Finish();
}

core::Status DecodeRecord(std::string_view bytes, TableCopyRecord* record) {
  if (IsLegacyJson(bytes)) return DecodeLegacyRecord(bytes, record);
  return DecodeVersion1(bytes, record, [](RecordReader& in, TableCopyRecord& out) {
    out.rows = in.U64();
    out.bytes = in.U64();
    out.estimated_rows = in.U64();
    out.estimated_bytes = in.U64();
    out.ranges = in.I64();
    out.ranges_done = in.I64();
    out.done = in.Bool();
    out.updated_at_unix_ms = in.I64();
    out.snapshot_lsn = in.Lsn();
    return core::Status::Ok();
  });
}

std::string EncodeRecord(const SnapshotRequest& record) {
  return RecordWriter(kVersion1).StringList(record.tables).Finish();
}

core::Status DecodeRecord(std::string_view bytes, SnapshotRequest* record) {
  if (IsLegacyJson(bytes)) return DecodeLegacyRecord(bytes, record);
  return DecodeVersion1(bytes, record, [](RecordReader& in, SnapshotRequest& out) {
    out.tables = in.StringList();
    return core::Status::Ok();
  });
}

std::string EncodeRecord(const PipelineErrorRecord& record) {
  return RecordWriter(kVersion1)
      .String(record.message)
      .I64(record.at_unix_ms)
      .Bool(record.permanent)
      .Finish();
}

core::Status DecodeRecord(std::string_view bytes, PipelineErrorRecord* record) {
  if (IsLegacyJson(bytes)) return DecodeLegacyRecord(bytes, record);
  return DecodeVersion1(bytes, record, [](RecordReader& in, PipelineErrorRecord& out) {
    out.message = in.String();
    out.at_unix_ms = in.I64();
    out.permanent = in.Bool();
    return core::Status::Ok();
  });
}

std::string EncodeRecord(const MigrationRecord& record) {
  return RecordWriter(kVersion1)
      .U8(static_cast<uint8_t>(record.phase))
      .Lsn(record.fence_lsn)
      .Lsn(record.reverse_start_lsn)
      .I64(record.updated_at_unix_ms)
      .Finish();
}

core::Status DecodeRecord(std::string_view bytes, MigrationRecord* record) {
  return DecodeVersion1(bytes, record, [](RecordReader& in, MigrationRecord& out) {
    const uint8_t phase = in.U8();
    out.phase = static_cast<MigrationPhase>(phase);
    out.fence_lsn = in.Lsn();
    out.reverse_start_lsn = in.Lsn();
    out.updated_at_unix_ms = in.I64();
    return CheckEnum(phase, MigrationPhase::kCopy, MigrationPhase::kAbandoned,
                     MigrationRecord::kRecordName, "phase");
  });
}

}  // namespace sluice::state
