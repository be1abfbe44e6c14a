#include "codec/copy_text.h"

#include <gtest/gtest.h>

#include <random>

namespace sluice::codec {
namespace {

using core::Tuple;
using core::Value;

Tuple Row(std::initializer_list<std::optional<std::string>> cells) {
  Tuple row;
  for (const auto& cell : cells) row.push_back(cell ? Value::Text(*cell) : Value::Null());
  return row;
}

// Parses `text` fed in the given pieces; the status of the first failure, else of Finish().
core::Status ParseIn(const std::vector<std::string_view>& pieces, size_t columns,
                     std::vector<Tuple>& rows) {
  CopyTextParser parser("s.t", columns);
  for (std::string_view piece : pieces) SLUICE_RETURN_IF_ERROR(parser.Feed(piece, rows));
  return parser.Finish();
}

std::vector<Tuple> Parse(std::string_view text, size_t columns) {
  std::vector<Tuple> rows;
  core::Status status = ParseIn({text}, columns, rows);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return rows;
}

std::string Write(const std::vector<Tuple>& rows) {
  std::string out;
  for (const Tuple& row : rows) EXPECT_TRUE(AppendCopyTextRow(row, out));
  return out;
}

TEST(CopyTextTest, EscapesWhatCopyToEscapes) {
  std::string out;
  AppendCopyTextEscaped("a\bb\fc\nd\re\tf\vg\\h", out);
  EXPECT_EQ(out, "a\\bb\\fc\\nd\\re\\tf\\vg\\\\h");
  out.clear();
  // Other control characters, quotes and UTF-8 go as they are, as PostgreSQL writes them.
  AppendCopyTextEscaped("\x01\x1f\"'\xc3\xbc.N", out);
  EXPECT_EQ(out, "\x01\x1f\"'\xc3\xbc.N");
}

TEST(CopyTextTest, WritesRowsWithTabsAndNullMarker) {
  EXPECT_EQ(Write({Row({"1", std::nullopt, "", "\\N"}), Row({"x\ty"})}),
            "1\t\\N\t\t\\\\N\nx\\ty\n");
  std::string out = "kept";
  EXPECT_FALSE(AppendCopyTextRow({Value::Text("a"), Value::Binary("b")}, out));
  EXPECT_FALSE(AppendCopyTextRow({Value::UnchangedToast()}, out));
  EXPECT_EQ(out, "kept");
}

TEST(CopyTextTest, ParsesWhatPostgresSends) {
  // COPY TO output of (1, NULL, 'tab\there', E'two\nlines', '\x00ff'::bytea, 'ü', '') .
  EXPECT_EQ(Parse("1\t\\N\ttab\\there\ttwo\\nlines\t\\\\x00ff\t\xc3\xbc\t\n", 7),
            (std::vector<Tuple>{
                Row({"1", std::nullopt, "tab\there", "two\nlines", "\\x00ff", "\xc3\xbc", ""})}));
}

TEST(CopyTextTest, ParsesEveryEscape) {
  EXPECT_EQ(Parse("\\b\\f\\n\\r\\t\\v\\\\\n", 1), (std::vector<Tuple>{Row({"\b\f\n\r\t\v\\"})}));
  // Octal: one to three digits, wrapping above \377 as PostgreSQL does.
  EXPECT_EQ(Parse("\\1|\\12|\\101|\\1012|\\777|\\8\n", 1),
            (std::vector<Tuple>{Row({"\x01|\n|A|A2|\xff|8"})}));
  // Hex: one or two digits; \x without a hex digit is x.
  EXPECT_EQ(Parse("\\x4|\\x41|\\x4g|\\x4F1|\\xg|\\x\n", 1),
            (std::vector<Tuple>{Row({"\x04|A|\x04g|O1|xg|x"})}));
  // Any other escaped character stands for itself, a tab included; \N is NULL only alone.
  EXPECT_EQ(Parse("\\q\\\"\\\t\\N\ta\\N\t\\N\\N\t\\N\n", 4),
            (std::vector<Tuple>{Row({"q\"\tN", "aN", "NN", std::nullopt})}));
}

TEST(CopyTextTest, EmptyLinesAndTablesWithoutColumns) {
  EXPECT_EQ(Parse("\n\n", 1), (std::vector<Tuple>{Row({""}), Row({""})}));
  EXPECT_EQ(Parse("\t\n", 2), (std::vector<Tuple>{Row({"", ""})}));
  EXPECT_EQ(Parse("\n\n\n", 0), (std::vector<Tuple>(3)));
  EXPECT_TRUE(Parse("", 3).empty());
}

TEST(CopyTextTest, EndOfDataMarkerEndsTheData) {
  EXPECT_EQ(Parse("1\n\\.\n", 1), (std::vector<Tuple>{Row({"1"})}));
  std::vector<Tuple> rows;
  core::Status status = ParseIn({"1\n\\.\n2\n"}, 1, rows);
  EXPECT_EQ(status.code(), core::StatusCode::kCorruption);
  EXPECT_NE(status.message().find("after the end-of-data marker"), std::string::npos)
      << status.ToString();
}

std::string ParseError(std::string_view text, size_t columns) {
  std::vector<Tuple> rows;
  core::Status status = ParseIn({text}, columns, rows);
  EXPECT_EQ(status.code(), core::StatusCode::kCorruption) << text;
  return status.message();
}

TEST(CopyTextTest, RefusesMalformedInputNamingTableRowAndByte) {
  EXPECT_EQ(ParseError("1\ta\n2\n", 2),
            "COPY text of s.t, row 2, byte 2: 1 columns where the table has 2");
  EXPECT_EQ(ParseError("1\ta\tb\n", 2),
            "COPY text of s.t, row 1, byte 4: more than the table's 2 columns");
  EXPECT_EQ(ParseError("a\rb\n", 1),
            "COPY text of s.t, row 1, byte 2: a raw carriage return (COPY writes it as \\r)");
  EXPECT_EQ(ParseError(std::string_view("ab\0\n", 4), 1),
            "COPY text of s.t, row 1, byte 3: a NUL byte");
  EXPECT_EQ(ParseError("ok\nab\\\n", 1),
            "COPY text of s.t, row 2, byte 3: a backslash at the end of the line");
  EXPECT_EQ(ParseError("a\\000\n", 1),
            "COPY text of s.t, row 1, byte 2: an escape that makes a NUL byte");
  EXPECT_EQ(ParseError("a\\x00\n", 1),
            "COPY text of s.t, row 1, byte 2: an escape that makes a NUL byte");
  EXPECT_EQ(ParseError("a\\400\n", 1),  // wraps to 0
            "COPY text of s.t, row 1, byte 2: an escape that makes a NUL byte");
  EXPECT_EQ(ParseError("a\\.\n", 1),
            "COPY text of s.t, row 1, byte 2: the end-of-data marker \\. inside a row");
  EXPECT_EQ(ParseError("x\n", 0),
            "COPY text of s.t, row 1, byte 1: data in a row of a table without columns");
  EXPECT_EQ(ParseError("1\n2", 1), "COPY text of s.t, row 2, byte 2: the data ends inside the row");
}

TEST(CopyTextTest, ErrorsAreSticky) {
  CopyTextParser parser("s.t", 1);
  std::vector<Tuple> rows;
  EXPECT_FALSE(parser.Feed("a\rb\n", rows).ok());
  EXPECT_FALSE(parser.Feed("fine\n", rows).ok());
  EXPECT_FALSE(parser.Finish().ok());
  EXPECT_TRUE(rows.empty());
}

// Rows of awkward values: every byte but NUL, escapes' letters after backslashes, \N as text.
std::vector<Tuple> AwkwardRows(size_t columns, size_t count, uint32_t seed) {
  std::mt19937 random(seed);
  const std::vector<std::string> fragments = {
      "\\", "\\N", "N", "\t", "\n", "\r", "\\.", ".", "x41", "101", "\xc3\xbc", "\xf0\x9f\x90\x98",
      " "};
  std::vector<Tuple> rows;
  for (size_t r = 0; r < count; ++r) {
    Tuple row;
    for (size_t c = 0; c < columns; ++c) {
      if (random() % 5 == 0) {
        row.push_back(Value::Null());
        continue;
      }
      std::string value;
      const size_t parts = random() % 6;
      for (size_t p = 0; p < parts; ++p) {
        if (random() % 2 == 0) {
          value += fragments[random() % fragments.size()];
        } else {
          value += static_cast<char>(1 + random() % 255);
        }
      }
      row.push_back(Value::Text(std::move(value)));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

TEST(CopyTextTest, RoundTripsThroughTheWriterSplitAtEveryByte) {
  const std::vector<Tuple> rows = AwkwardRows(3, 12, 7);
  const std::string text = Write(rows);
  for (size_t split = 0; split <= text.size(); ++split) {
    std::vector<Tuple> parsed;
    const std::string_view all = text;
    core::Status status = ParseIn({all.substr(0, split), all.substr(split)}, 3, parsed);
    ASSERT_TRUE(status.ok()) << "split at " << split << ": " << status.ToString();
    ASSERT_EQ(parsed, rows) << "split at " << split;
  }
  // And one byte at a time, every escape cut between its backslash and the rest.
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < text.size(); ++i) bytes.push_back(std::string_view(text).substr(i, 1));
  std::vector<Tuple> parsed;
  ASSERT_TRUE(ParseIn(bytes, 3, parsed).ok());
  EXPECT_EQ(parsed, rows);
}

TEST(CopyTextTest, RoundTripsManySeeds) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    const std::vector<Tuple> rows = AwkwardRows(1 + seed % 4, 20, seed);
    std::vector<Tuple> parsed;
    const std::string text = Write(rows);
    ASSERT_TRUE(ParseIn({text}, 1 + seed % 4, parsed).ok()) << "seed " << seed;
    ASSERT_EQ(parsed, rows) << "seed " << seed;
  }
}

}  // namespace
}  // namespace sluice::codec
