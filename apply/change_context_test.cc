#include "apply/change_context.h"

#include <gtest/gtest.h>

#include "core/test_builders.h"

namespace sluice::apply {
namespace {

using core::Lsn;
using core::Operation;

ChangeContext OneInsert() {
  ChangeContext context;
  context.relation = core::testing::MakeRelation(16384, "orders", {core::testing::KeyColumn("id")});
  context.op = Operation::kInsert;
  context.lsn = Lsn(0x16B374D848);
  context.key = "(id)=(7)";
  context.xid = 725;
  context.commit_lsn = Lsn(0x16B374D900);
  return context;
}

TEST(ChangeContextTest, OneRowNamesTableLsnKeyAndTransaction) {
  const ChangeContext context = OneInsert();
  EXPECT_EQ(context.Message(ChangeContext::Step::kExecute, "duplicate key value"),
            "apply to public.orders failed at source LSN 16/B374D848 for key (id)=(7): "
            "duplicate key value; in source transaction 725, committed at 16/B374D900");
  EXPECT_EQ(context.Failure(ChangeContext::Step::kPrepare),
            "apply to public.orders failed at source LSN 16/B374D848 for key (id)=(7) "
            "(preparing the insert statement)");
}

TEST(ChangeContextTest, SeveralRowsNameTheFirstAndTheLast) {
  ChangeContext context = OneInsert();
  context.op = Operation::kUpdate;
  context.row_count = 3;
  context.last_lsn = Lsn(0x16B374D8A0);
  context.last_key = "(id)=(9)";
  EXPECT_EQ(context.Failure(ChangeContext::Step::kExecute),
            "apply to public.orders failed in a statement of 3 updates at source LSNs "
            "16/B374D848..16/B374D8A0 for keys (id)=(7)..(id)=(9)");
  EXPECT_EQ(context.Failure(ChangeContext::Step::kPrepare).find("failed in preparing a statement"),
            std::string("apply to public.orders ").size());
}

TEST(ChangeContextTest, NettedChangesNameNoTransaction) {
  ChangeContext context = OneInsert();
  context.compacted = true;
  context.xid = 0;
  context.commit_lsn = Lsn();
  EXPECT_EQ(context.InTransaction(), "");
  EXPECT_EQ(context.Message(ChangeContext::Step::kExecute, "boom"),
            "apply to public.orders failed at source LSN 16/B374D848 for key (id)=(7): boom");
}

TEST(ChangeContextTest, CopyAndTruncateAreNamedTheirOwnWay) {
  ChangeContext copy = OneInsert();
  copy.row_count = 2000;
  copy.last_lsn = Lsn(0x17000000);
  EXPECT_EQ(copy.Failure(ChangeContext::Step::kCopy),
            "COPY of 2000 inserts into public.orders at source LSNs 16/B374D848..0/17000000");

  ChangeContext truncate;
  truncate.op = Operation::kTruncate;
  truncate.tables = "public.a, public.b";
  truncate.lsn = Lsn(0x100);
  EXPECT_EQ(truncate.Failure(ChangeContext::Step::kExecute),
            "apply of truncate of public.a, public.b failed at source LSN 0/100");
}

}  // namespace
}  // namespace sluice::apply
