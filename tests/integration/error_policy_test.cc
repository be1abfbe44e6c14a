// One policy for PostgreSQL errors (pg/sql_state.h), tested the way the world breaks it:
// a target that refuses a row stops the pipeline with exit 65 (data), names the SQLSTATE and
// loses nothing once the target is fixed; a slot still held by another walsender is waited
// for (transient), not a permanent stop that needs a person.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "tests/support/run_fixture.h"

namespace sluice::testing {
namespace {

constexpr auto kCatchUp = std::chrono::seconds(180);
const std::vector<std::string> kTables = {"public.items", "public.sluice_marker"};

class ErrorPolicyTest : public SluiceRunTest {
 protected:
  void SetUp() override {
    SluiceRunTest::SetUp();
    Both(
        "CREATE TABLE public.sluice_marker (id int PRIMARY KEY);"
        "CREATE TABLE public.items (id int PRIMARY KEY, v int)");
    Source("INSERT INTO public.items SELECT g, g FROM generate_series(1, 50) g");
    config_ = WritePipelineConfig(f_.dir(), f_.source(), f_.target(), kTables);
  }
};

TEST_F(ErrorPolicyTest, ARowTheTargetRefusesStopsWithADataErrorAndLosesNothing) {
  Target("ALTER TABLE public.items ADD CONSTRAINT v_small CHECK (v < 1000)");
  RunUntilCaughtUp();
  StartRun();
  Source("INSERT INTO public.items VALUES (51, 51)");
  Source("INSERT INTO public.items VALUES (52, 5000)");  // the target's own CHECK refuses it
  Source("INSERT INTO public.items VALUES (53, 53)");
  auto exit_code = run_.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(exit_code.ok()) << "sluice kept running past a refused row\n" << ReadFile(Log());
  EXPECT_EQ(*exit_code, 65) << ReadFile(Log());
  const std::string log = ReadFile(Log());
  EXPECT_NE(log.find("SQLSTATE 23514"), std::string::npos) << log;
  EXPECT_NE(log.find("public.items"), std::string::npos) << log;
  EXPECT_NE(log.find("for key"), std::string::npos) << log;

  // Nothing of the refused transaction, nor after it, reached the target (51 may or may not
  // have: it can share a target transaction with the refused one).
  EXPECT_EQ(TargetValue("SELECT count(*) FROM public.items WHERE id <= 50"), "50");
  EXPECT_EQ(TargetValue("SELECT count(*) FROM public.items WHERE id >= 52"), "0");

  // `status` (daemon down) shows the pipeline failed, with the server's code.
  SluiceRun status = RunSluice({"status", "--config", config_.path, "--json"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  auto json = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << status.out;
  EXPECT_EQ(json["pipelines"][0]["phase"], "failed") << status.out;
  EXPECT_NE(json["pipelines"][0]["last_error"].get<std::string>().find("23514"), std::string::npos)
      << status.out;

  // The same refusal on every start, until the target is fixed; then everything arrives.
  SluiceRun again = RunSluice({"run", "--config", config_.path}, std::chrono::seconds(120));
  EXPECT_EQ(again.exit_code, 65) << again.err;
  Target("ALTER TABLE public.items DROP CONSTRAINT v_small");
  StartRun();
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff(kTables), "");
}

TEST_F(ErrorPolicyTest, ASlotHeldByAnotherWalsenderIsWaitedForNotAStop) {
  RunUntilCaughtUp();
  // Another client streams from the pipeline's slot, as a walsender of the previous daemon
  // that has not gone yet would: sluice must wait for it, not stop for good.
  auto bin = PostgresBinDir();
  ASSERT_TRUE(bin.ok()) << bin.status().ToString();
  SluiceProcess holder;
  ASSERT_TRUE(holder
                  .StartProgram(*bin + "/pg_recvlogical",
                                {"--dbname", f_.source().Dsn(), "--slot", "sluice_pipe", "--start",
                                 "--no-loop", "-o", "proto_version=1", "-o",
                                 "publication_names=sluice_pipe", "--file", "/dev/null"},
                                f_.dir().File("holder.out"), f_.dir().File("holder.err"))
                  .ok());
  bool held = false;
  for (int i = 0; i < 600 && !held; ++i) {
    held = SourceValue(
               "SELECT count(*) FROM pg_replication_slots WHERE slot_name = "
               "'sluice_pipe' AND active") == "1";
    if (!held) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(held) << ReadFile(f_.dir().File("holder.err"));
  // Nothing is written while the holder holds the slot: what it receives it may confirm, and
  // a slot confirmed past sluice's position is (rightly) refused, not waited for.
  StartRun();
  // sluice keeps trying while the slot is held...
  bool waited = false;
  for (int i = 0; i < 1200 && !waited; ++i) {
    waited = ReadFile(Log()).find("retrying") != std::string::npos;
    if (!waited) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(waited) << ReadFile(Log());
  ASSERT_TRUE(run_.running());
  auto early = run_.Wait(std::chrono::milliseconds(0));
  EXPECT_FALSE(early.ok()) << "sluice exited while the slot was held:\n" << ReadFile(Log());
  // ...and streams once the other client is gone.
  holder.Kill(SIGTERM);
  ASSERT_TRUE(holder.Wait(std::chrono::seconds(30)).ok());
  Source("INSERT INTO public.items SELECT g, g FROM generate_series(51, 100) g");
  ASSERT_TRUE(f_.WaitForCatchUp(kCatchUp)) << ReadFile(Log());
  StopRun();
  EXPECT_EQ(f_.Diff(kTables), "");
}

}  // namespace
}  // namespace sluice::testing
