// pgoutput sends values in the walsender's text output format, which follows the source's
// DateStyle, IntervalStyle and extra_float_digits. A source configured for people ('SQL, DMY',
// sql_standard intervals, rounded floats) must still stream values a target with default
// settings reads back as the same values: dates not swapped, intervals not re-signed, floats
// not rounded.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <thread>

#include "tests/support/pg_cluster.h"
#include "tests/support/sluice_fixture.h"
#include "tests/support/sluice_process.h"

namespace sluice::testing {
namespace {

constexpr auto kPatience = std::chrono::seconds(120);

// The table's rows as text under the same session settings on both sides, so that the
// comparison sees values, not each server's output style.
std::map<std::string, std::string> RowsByKey(const PgCluster& cluster) {
  auto rows = cluster.Query(
      "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; "
      "SET TimeZone = 'UTC'; SELECT id::text, t::text FROM public.vals t");
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  std::map<std::string, std::string> by_key;
  if (!rows.ok()) return by_key;
  for (const auto& row : *rows) by_key[row[0].value_or("")] = row[1].value_or("<null>");
  return by_key;
}

TEST(SourceOutputSettingsTest, StreamedValuesMeanTheSameUnderATargetsDefaultSettings) {
  PgCluster::Options source_options;
  source_options.settings["DateStyle"] = "SQL, DMY";
  source_options.settings["IntervalStyle"] = "sql_standard";
  source_options.settings["extra_float_digits"] = "0";
  auto source = PgCluster::Start(source_options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  auto target = PgCluster::Start();
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  ASSERT_TRUE((*source)
                  ->Exec("CREATE TABLE public.vals (id int PRIMARY KEY, d date, ts timestamp, "
                         "tstz timestamptz, iv interval, f8 float8, f4 float4)")
                  .ok());
  auto style = (*source)->QueryValue("SHOW DateStyle");
  ASSERT_TRUE(style.ok());
  ASSERT_EQ(*style, "SQL, DMY");  // the setting took: the test means something

  TempDir dir;
  TailConfig config = WriteTailConfig(
      dir, **source, {"public.vals"},
      "    target:\n      type: postgres\n      dsn: " + nlohmann::json((*target)->Dsn()).dump() +
          "\n      apply: { create_tables: true }\n",
      "styles");
  const std::string log = dir.File("run.err");
  SluiceProcess run;
  ASSERT_TRUE(run.Start({"run", "--config", config.path}, dir.File("run.out"), log).ok());

  // Row 0 on the target means the initial copy is done: everything after it is streamed.
  ASSERT_TRUE((*source)->Exec("INSERT INTO public.vals (id) VALUES (0)").ok());
  auto target_has = [&](int id) {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (std::chrono::steady_clock::now() < deadline) {
      auto n = (*target)->QueryValue("SELECT count(*) FROM public.vals WHERE id = " +
                                     std::to_string(id));
      if (n.ok() && *n == "1") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  ASSERT_TRUE(target_has(0)) << ReadFile(log);

  // Streamed, not copied: each value below reads differently if taken in the source's style.
  ASSERT_TRUE((*source)
                  ->Exec("INSERT INTO public.vals VALUES "
                         "(1, '2024-03-04', '2024-03-04 05:06:07.089', "
                         "'2024-03-04 05:06:07.089+02', '-1 day -02:03:04', 0.1 + 0.2, 0.1), "
                         "(2, '2024-12-31', '1999-01-02 23:59:59.999999', "
                         "'2000-02-29 00:00:00+00', '1 year 2 mons -3 days 04:05:06.789', "
                         "1e-310, 3.14159274), "
                         "(3, '0044-03-15 BC', 'infinity', '-infinity', "
                         "'-1 year -2 mons +3 days -00:00:01', 'NaN', '-Infinity')")
                  .ok());
  ASSERT_TRUE(
      (*source)
          ->Exec("UPDATE public.vals SET d = '2001-02-03', iv = iv * 2, f8 = f8 / 3 WHERE id = 1")
          .ok());
  ASSERT_TRUE((*source)
                  ->Exec("INSERT INTO public.vals VALUES (4, NULL, NULL, NULL, NULL, "
                         "2.0000000000000004, NULL)")
                  .ok());

  const auto expected = RowsByKey(**source);
  ASSERT_EQ(expected.size(), 5u);
  ASSERT_TRUE(target_has(4)) << ReadFile(log);
  auto got = RowsByKey(**target);
  for (const auto& [id, row] : expected) {
    EXPECT_EQ(got[id], row) << "row " << id << " differs\n" << ReadFile(log);
  }
  EXPECT_EQ(got.size(), expected.size());
  run.Kill(SIGTERM);
  auto exit_code = run.Wait(std::chrono::seconds(60));
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0) << ReadFile(log);
}

}  // namespace
}  // namespace sluice::testing
