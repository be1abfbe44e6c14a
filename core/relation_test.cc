#include "core/relation.h"

#include <gtest/gtest.h>

#include <unordered_set>

#include "core/test_builders.h"

namespace sluice::core {
namespace {

using testing::KeyColumn;
using testing::MakeRelation;

TEST(RelationTest, RelationsMadeApartNeverShareAnIdentity) {
  RelationPtr a = MakeRelation(16384, "t", {KeyColumn("id")});
  RelationPtr b = MakeRelation(16384, "t", {KeyColumn("id")});
  EXPECT_TRUE(a->SameDescription(*b));
  EXPECT_NE(a->id(), b->id());
  std::unordered_set<RelationId, RelationIdHash> ids = {a->id(), b->id()};
  EXPECT_EQ(ids.size(), 2u);
}

TEST(RelationTest, ACopyKeepsItsIdentityUntilGivenANewVersion) {
  RelationPtr original = MakeRelation(16384, "t", {KeyColumn("id")});
  Relation copy = *original;
  EXPECT_EQ(copy.id(), original->id());
  copy.columns.push_back(testing::PlainColumn("added"));
  EXPECT_FALSE(copy.SameDescription(*original));
  copy.version = NextRelationVersion();
  EXPECT_NE(copy.id(), original->id());
  EXPECT_EQ(copy.id().oid, original->id().oid);
}

}  // namespace
}  // namespace sluice::core
