#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/pg_cluster.h"

namespace sluice::testing {

// A gtest fixture whose tests share one real PostgreSQL cluster, started once for the suite
// (StartSharedCluster with the suite's settings) and stopped after its last test, plus SQL
// helpers that fail the test on error. Tests that need a pristine server start their own.
class SharedClusterTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() { StartSharedCluster({}); }
  static void TearDownTestSuite() { cluster_.reset(); }

  static void StartSharedCluster(const PgCluster::Options& options) {
    auto cluster = PgCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
    cluster_ = std::move(cluster).value();
  }
  static void Exec(const std::string& sql) {
    auto st = cluster_->Exec(sql);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\nin: " << sql;
  }
  static std::string Value1(const std::string& sql) {
    auto value = cluster_->QueryValue(sql);
    EXPECT_TRUE(value.ok()) << value.status().ToString() << "\nin: " << sql;
    return value.ok() ? *value : "<error>";
  }
  static std::vector<PgCluster::Row> Rows(const std::string& sql) {
    auto rows = cluster_->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString() << "\nin: " << sql;
    return rows.ok() ? *rows : std::vector<PgCluster::Row>{};
  }

 protected:
  static inline std::unique_ptr<PgCluster> cluster_;
};

}  // namespace sluice::testing
