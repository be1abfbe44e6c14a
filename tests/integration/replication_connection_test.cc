// The libpq side of capture against real PostgreSQL servers: replication connection, CopyBoth
// streaming, standby feedback, slot and publication management.

#include "capture/replication_connection.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "capture/publication_manager.h"
#include "capture/slot_manager.h"
#include "pg/quote.h"
#include "tests/support/pg_cluster.h"

namespace sluice::capture {
namespace {

using std::chrono::milliseconds;
using testing::PgCluster;

// Generous bound for waiting on the server to act on something we sent; a failure guard, not a
// performance expectation.
constexpr auto kPatience = std::chrono::seconds(60);
constexpr milliseconds kConnectTimeout{10000};

std::unique_ptr<PgCluster> MustStart(PgCluster::Options options = {}) {
  auto cluster = PgCluster::Start(std::move(options));
  if (!cluster.ok()) {
    ADD_FAILURE() << "cannot start test cluster: " << cluster.status().ToString();
    return nullptr;
  }
  return std::move(cluster).value();
}

std::string DsnFor(const PgCluster& cluster, const std::string& user) {
  return "host=127.0.0.1 port=" + std::to_string(cluster.port()) + " user=" + user +
         " dbname=" + cluster.database();
}

core::Lsn LsnOf(const core::Result<std::string>& text) {
  if (!text.ok()) {
    ADD_FAILURE() << text.status().ToString();
    return core::Lsn();
  }
  auto lsn = core::Lsn::Parse(*text);
  if (!lsn.ok()) {
    ADD_FAILURE() << lsn.status().ToString();
    return core::Lsn();
  }
  return *lsn;
}

core::Lsn ConfirmedFlush(const PgCluster& cluster, const std::string& slot) {
  return LsnOf(cluster.QueryValue(
      "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" + slot + "'"));
}

// pg_stat_replication.write_lsn of the walsender streaming `slot`, or 0/0.
core::Lsn ReportedWrite(const PgCluster& cluster, const std::string& slot) {
  auto text = cluster.QueryValue(
      "SELECT coalesce(r.write_lsn, '0/0') FROM pg_stat_replication r "
      "JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = '" +
      slot + "'");
  if (!text.ok()) return core::Lsn();  // walsender not registered yet
  auto lsn = core::Lsn::Parse(*text);
  return lsn.ok() ? *lsn : core::Lsn();
}

// Services the stream (so keepalives are answered) until `done` holds. Data frames that arrive
// meanwhile are unexpected: the tests control all traffic.
::testing::AssertionResult PumpUntil(ReplicationConnection& conn, const std::function<bool()>& done,
                                     const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return ::testing::AssertionFailure() << "gave up waiting for " << what;
    }
    auto next = conn.Next(milliseconds(100));
    if (!next.ok()) {
      return ::testing::AssertionFailure()
             << "while waiting for " << what << ": " << next.status().ToString();
    }
    if (next->has_value()) {
      return ::testing::AssertionFailure()
             << "unexpected XLogData at " << (*next)->start_lsn.ToString() << " while waiting for "
             << what;
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult WaitUntil(const std::function<bool()>& done, const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return ::testing::AssertionFailure() << "gave up waiting for " << what;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return ::testing::AssertionSuccess();
}

struct Frame {
  char type = 0;
  core::Lsn start_lsn;
  std::string payload;
};

// Reads `count` XLogData frames (copying their payloads, which Next() only lends).
::testing::AssertionResult ReadFrames(ReplicationConnection& conn, size_t count,
                                      std::vector<Frame>* frames) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (frames->size() < count) {
    if (std::chrono::steady_clock::now() > deadline) {
      return ::testing::AssertionFailure()
             << "got " << frames->size() << " of " << count << " frames";
    }
    auto next = conn.Next(milliseconds(200));
    if (!next.ok()) return ::testing::AssertionFailure() << next.status().ToString();
    if (!next->has_value()) continue;
    const XLogData& data = **next;
    if (data.payload.empty()) return ::testing::AssertionFailure() << "empty XLogData payload";
    frames->push_back(Frame{data.payload[0], data.start_lsn, std::string(data.payload)});
  }
  return ::testing::AssertionSuccess();
}

std::string Types(const std::vector<Frame>& frames) {
  std::string types;
  for (const auto& frame : frames) types.push_back(frame.type);
  return types;
}

uint64_t BigEndianU64(std::string_view bytes, size_t offset) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return v;
}

// A cluster with a published table and a pgoutput slot, streaming from the slot.
struct Stream {
  std::unique_ptr<ReplicationConnection> conn;
  SlotInfo slot;
};

::testing::AssertionResult StartStream(const PgCluster& cluster, const std::string& table,
                                       const std::string& slot_name, Stream* stream) {
  if (auto st = cluster.Exec("CREATE TABLE " + table + " (id int PRIMARY KEY, v text)"); !st.ok()) {
    return ::testing::AssertionFailure() << st.ToString();
  }
  auto sql = pg::Connection::Connect(cluster.Dsn(), {.timeout = kConnectTimeout});
  if (!sql.ok()) return ::testing::AssertionFailure() << sql.status().ToString();
  PublicationManager publications(**sql);
  if (auto st = publications.EnsurePublication(table + "_pub", {"public." + table}); !st.ok()) {
    return ::testing::AssertionFailure() << st.ToString();
  }
  auto conn = ReplicationConnection::Connect(cluster.Dsn(), kConnectTimeout);
  if (!conn.ok()) return ::testing::AssertionFailure() << conn.status().ToString();
  SlotManager slots(**conn);
  auto slot = slots.EnsureSlot(slot_name, /*export_snapshot=*/false);
  if (!slot.ok()) return ::testing::AssertionFailure() << slot.status().ToString();
  StartOptions options;
  options.slot = slot_name;
  options.start_lsn = slot->consistent_point;
  options.publications = {table + "_pub"};
  if (auto st = (*conn)->StartReplication(options); !st.ok()) {
    return ::testing::AssertionFailure() << st.ToString();
  }
  stream->conn = std::move(conn).value();
  stream->slot = *slot;
  return ::testing::AssertionSuccess();
}

// --- Pure helpers (no server) ------------------------------------------------------------------

TEST(ReplicationHelpersTest, SlotNames) {
  EXPECT_TRUE(ValidateSlotName("sluice_slot_1").ok());
  EXPECT_EQ(ValidateSlotName("Bad-Slot").code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSlotName("").code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateSlotName(std::string(64, 'a')).code(), core::StatusCode::kInvalidArgument);
}

TEST(ReplicationHelpersTest, StartReplicationCommand) {
  EXPECT_EQ(AutoProtocolVersion(130010), 1);
  EXPECT_EQ(AutoProtocolVersion(140000), 2);
  EXPECT_EQ(AutoProtocolVersion(150004), 2);
  EXPECT_EQ(AutoProtocolVersion(160001), 2);

  StartOptions options;
  options.slot = "s1";
  options.start_lsn = core::Lsn(0x16B374D848ULL);
  options.publications = {"pub", "it's \"odd\""};
  options.streaming = true;
  options.binary = true;
  options.origin_filter = "none";
  auto pg15 = BuildStartReplicationCommand(options, 2, 150004);
  ASSERT_TRUE(pg15.ok()) << pg15.status().ToString();
  EXPECT_EQ(*pg15,
            "START_REPLICATION SLOT \"s1\" LOGICAL 16/B374D848 (proto_version '2', "
            "publication_names '\"pub\",\"it''s \"\"odd\"\"\"', streaming 'on', binary 'true', "
            "messages 'true')");
  auto pg16 = BuildStartReplicationCommand(options, 2, 160001);
  ASSERT_TRUE(pg16.ok());
  EXPECT_NE(pg16->find(", origin 'none')"), std::string::npos) << *pg16;

  options.streaming = false;
  options.binary = false;
  auto pg13 = BuildStartReplicationCommand(options, 1, 130010);
  ASSERT_TRUE(pg13.ok()) << pg13.status().ToString();
  EXPECT_EQ(pg13->find("messages"), std::string::npos) << *pg13;

  options.streaming = true;
  EXPECT_EQ(BuildStartReplicationCommand(options, 1, 150004).status().code(),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildStartReplicationCommand(options, 4, 150004).status().code(),
            core::StatusCode::kInvalidArgument);
  options.publications.clear();
  EXPECT_EQ(BuildStartReplicationCommand(options, 2, 150004).status().code(),
            core::StatusCode::kInvalidArgument);
}

// --- Against a shared cluster ------------------------------------------------------------------

class ReplicationConnectionTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { shared_.reset(); }

  void SetUp() override {
    if (shared_ == nullptr) shared_ = MustStart();
    ASSERT_NE(shared_, nullptr);
  }

  PgCluster& cluster() { return *shared_; }

  std::unique_ptr<ReplicationConnection> Connect() {
    auto conn = ReplicationConnection::Connect(cluster().Dsn(), kConnectTimeout);
    if (!conn.ok()) {
      ADD_FAILURE() << conn.status().ToString();
      return nullptr;
    }
    return std::move(conn).value();
  }

  std::unique_ptr<pg::Connection> ConnectSql(const std::string& dsn) {
    auto conn = pg::Connection::Connect(dsn, {.timeout = kConnectTimeout});
    if (!conn.ok()) {
      ADD_FAILURE() << conn.status().ToString();
      return nullptr;
    }
    return std::move(conn).value();
  }

  static std::unique_ptr<PgCluster> shared_;
};

std::unique_ptr<PgCluster> ReplicationConnectionTest::shared_;

TEST_F(ReplicationConnectionTest, ConnectsAndIdentifiesSystem) {
  // replication=false in the DSN is overridden: this is always a replication connection.
  auto conn =
      ReplicationConnection::Connect(cluster().Dsn() + " replication=false", kConnectTimeout);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  auto identity = (*conn)->IdentifySystem();
  ASSERT_TRUE(identity.ok()) << identity.status().ToString();
  EXPECT_EQ(identity->system_id,
            *cluster().QueryValue("SELECT system_identifier::text FROM pg_control_system()"));
  EXPECT_EQ(identity->timeline, 1);
  EXPECT_TRUE(identity->xlogpos.valid());
  EXPECT_EQ(identity->dbname, "sluice_test");

  auto version = (*conn)->ServerVersionNum();
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(std::to_string(*version), *cluster().QueryValue("SHOW server_version_num"));
  EXPECT_EQ((*conn)->endpoint(), "127.0.0.1:" + std::to_string(cluster().port()));
  EXPECT_TRUE((*conn)->Close().ok());
}

TEST_F(ReplicationConnectionTest, ConnectFailureIsUnavailableWithEndpointAndNoPassword) {
  const int port = testing::FreeLoopbackPort();  // nothing listens there
  ASSERT_GT(port, 0);
  auto conn = ReplicationConnection::Connect(
      "host=127.0.0.1 port=" + std::to_string(port) + " user=postgres password=hunter2secret",
      kConnectTimeout);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), core::StatusCode::kUnavailable);
  EXPECT_NE(conn.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << conn.status().message();
  EXPECT_EQ(conn.status().message().find("hunter2secret"), std::string::npos)
      << conn.status().message();

  // A server that rejects the login: its message comes through.
  auto no_db = ReplicationConnection::Connect(cluster().Dsn("no_such_db") + " password=hunter2",
                                              kConnectTimeout);
  ASSERT_FALSE(no_db.ok());
  EXPECT_EQ(no_db.status().code(), core::StatusCode::kUnavailable);
  EXPECT_NE(no_db.status().message().find("no_such_db"), std::string::npos)
      << no_db.status().message();
  EXPECT_EQ(no_db.status().message().find("hunter2"), std::string::npos);
}

TEST_F(ReplicationConnectionTest, EnsureSlotCreatesExportsSnapshotThenReuses) {
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  SlotManager slots(*conn);
  auto created = slots.EnsureSlot("reuse_slot", /*export_snapshot=*/true);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(created->created);
  EXPECT_TRUE(created->consistent_point.valid());
  ASSERT_FALSE(created->snapshot_name.empty());

  // The exported snapshot is importable while the creating connection is idle.
  auto sql = ConnectSql(cluster().Dsn());
  ASSERT_NE(sql, nullptr);
  EXPECT_TRUE(sql->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ").ok());
  auto imported = sql->Exec("SET TRANSACTION SNAPSHOT " + pg::QuoteLiteral(created->snapshot_name));
  EXPECT_TRUE(imported.ok()) << imported.ToString();
  EXPECT_TRUE(sql->Exec("COMMIT").ok());

  EXPECT_EQ(*cluster().QueryValue(
                "SELECT plugin FROM pg_replication_slots WHERE slot_name = 'reuse_slot'"),
            "pgoutput");
  const core::Lsn confirmed = ConfirmedFlush(cluster(), "reuse_slot");
  EXPECT_EQ(created->consistent_point, confirmed);

  auto other = Connect();
  ASSERT_NE(other, nullptr);
  SlotManager other_slots(*other);
  auto reused = other_slots.EnsureSlot("reuse_slot", /*export_snapshot=*/true);
  ASSERT_TRUE(reused.ok()) << reused.status().ToString();
  EXPECT_FALSE(reused->created);
  EXPECT_TRUE(reused->snapshot_name.empty());
  EXPECT_EQ(reused->consistent_point, confirmed);
  EXPECT_FALSE(reused->active);

  EXPECT_TRUE(other_slots.DropSlot("reuse_slot").ok());
  EXPECT_EQ(other_slots.DropSlot("reuse_slot").code(), core::StatusCode::kNotFound);
  EXPECT_EQ(other_slots.EnsureSlot("Bad Name", false).status().code(),
            core::StatusCode::kInvalidArgument);
}

TEST_F(ReplicationConnectionTest, SlotWithAnotherPluginIsRejected) {
  ASSERT_TRUE(
      cluster().Exec("SELECT pg_create_logical_replication_slot('td_slot', 'test_decoding')").ok());
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  SlotManager slots(*conn);
  auto slot = slots.EnsureSlot("td_slot", /*export_snapshot=*/false);
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(slot.status().message().find(
                "slot td_slot on 127.0.0.1:" + std::to_string(cluster().port()) +
                " exists with plugin test_decoding; drop it or choose another slot name"),
            std::string::npos)
      << slot.status().message();
  ASSERT_TRUE(cluster().Exec("SELECT pg_drop_replication_slot('td_slot')").ok());
}

TEST_F(ReplicationConnectionTest, SlotOfAnotherDatabaseIsRejected) {
  ASSERT_TRUE(cluster().Exec("CREATE DATABASE other_db").ok());
  {
    auto other = ReplicationConnection::Connect(cluster().Dsn("other_db"), kConnectTimeout);
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    SlotManager slots(**other);
    ASSERT_TRUE(slots.EnsureSlot("other_db_slot", false).ok());
  }
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  SlotManager slots(*conn);
  auto slot = slots.EnsureSlot("other_db_slot", false);
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(slot.status().message().find("exists for database other_db"), std::string::npos)
      << slot.status().message();
  EXPECT_TRUE(slots.DropSlot("other_db_slot").ok());
}

TEST_F(ReplicationConnectionTest, RoleWithoutReplicationIsRejected) {
  ASSERT_TRUE(cluster().Exec("CREATE ROLE no_repl LOGIN").ok());
  auto conn = ReplicationConnection::Connect(DsnFor(cluster(), "no_repl"), kConnectTimeout);
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(conn.status().message().find("role \"no_repl\""), std::string::npos)
      << conn.status().message();
  EXPECT_NE(conn.status().message().find("lacks the REPLICATION attribute"), std::string::npos)
      << conn.status().message();
  EXPECT_NE(conn.status().message().find("ALTER ROLE \"no_repl\" REPLICATION"), std::string::npos)
      << conn.status().message();

  // With the attribute the same role connects and passes the preflight.
  ASSERT_TRUE(cluster().Exec("ALTER ROLE no_repl REPLICATION").ok());
  auto granted = ReplicationConnection::Connect(DsnFor(cluster(), "no_repl"), kConnectTimeout);
  ASSERT_TRUE(granted.ok()) << granted.status().ToString();
  SlotManager slots(**granted);
  EXPECT_TRUE(slots.Preflight().ok());
}

TEST_F(ReplicationConnectionTest, PublicationCreateReuseAndAddTables) {
  ASSERT_TRUE(cluster()
                  .Exec("CREATE TABLE pub_a (id int PRIMARY KEY);"
                        "CREATE TABLE pub_b (id int PRIMARY KEY);"
                        "CREATE TABLE \"Pub Mixed\" (id int PRIMARY KEY);"
                        "CREATE TABLE pub_full (v text);"
                        "ALTER TABLE pub_full REPLICA IDENTITY FULL;"
                        "CREATE TABLE pub_idx (k int NOT NULL, v text);"
                        "CREATE UNIQUE INDEX pub_idx_k ON pub_idx (k);"
                        "ALTER TABLE pub_idx REPLICA IDENTITY USING INDEX pub_idx_k;"
                        "CREATE SCHEMA app;"
                        "CREATE TABLE app.x (id int PRIMARY KEY);"
                        "CREATE TABLE app.y (id int PRIMARY KEY);")
                  .ok());
  auto sql = ConnectSql(cluster().Dsn());
  ASSERT_NE(sql, nullptr);
  PublicationManager publications(*sql);

  ASSERT_TRUE(publications.EnsurePublication("pub1", {"public.pub_a"}).ok());
  auto tables = publications.PublishedTables("pub1");
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  ASSERT_EQ(tables->size(), 1u);
  EXPECT_EQ((*tables)[0].QualifiedName(), "public.pub_a");
  EXPECT_TRUE((*tables)[0].has_primary_key);
  EXPECT_GT((*tables)[0].oid, 0u);

  // Reuse: nothing to do.
  ASSERT_TRUE(publications.EnsurePublication("pub1", {"public.pub_a"}).ok());
  // Add: the missing tables are added, quoted names included.
  auto added = publications.EnsurePublication(
      "pub1", {"public.pub_a", "public.pub_b", "public.\"Pub Mixed\"", "public.pub_full",
               "public.pub_idx"});
  ASSERT_TRUE(added.ok()) << added.ToString();
  tables = publications.PublishedTables("pub1");
  ASSERT_TRUE(tables.ok());
  std::vector<std::string> names;
  for (const auto& table : *tables) names.push_back(table.QualifiedName());
  EXPECT_EQ(names, (std::vector<std::string>{"public.\"Pub Mixed\"", "public.pub_a", "public.pub_b",
                                             "public.pub_full", "public.pub_idx"}));

  // Missing table / schema: kNotFound naming it, publication unchanged.
  auto missing = publications.EnsurePublication("pub1", {"public.pub_a", "public.nope"});
  EXPECT_EQ(missing.code(), core::StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("table public.nope not found"), std::string::npos)
      << missing.message();
  auto missing_schema = publications.EnsurePublication("pub1", {"ghost.*"});
  EXPECT_EQ(missing_schema.code(), core::StatusCode::kNotFound);
  EXPECT_NE(missing_schema.message().find("schema ghost"), std::string::npos)
      << missing_schema.message();

  // schema.*: FOR TABLES IN SCHEMA on 15+ as superuser.
  ASSERT_TRUE(publications.EnsurePublication("pub_schema", {"app.*"}).ok());
  EXPECT_EQ(*cluster().QueryValue("SELECT count(*) FROM pg_publication_namespace pn JOIN "
                                  "pg_publication p ON p.oid = pn.pnpubid WHERE "
                                  "p.pubname = 'pub_schema'"),
            "1");
  tables = publications.PublishedTables("pub_schema");
  ASSERT_TRUE(tables.ok());
  ASSERT_EQ(tables->size(), 2u);
  EXPECT_EQ((*tables)[0].QualifiedName(), "app.x");
  EXPECT_EQ((*tables)[1].QualifiedName(), "app.y");
  // A schema added to an existing table publication.
  ASSERT_TRUE(publications.EnsurePublication("pub1", {"app.*"}).ok());
  tables = publications.PublishedTables("pub1");
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(tables->size(), 7u);

  EXPECT_EQ(publications.PublishedTables("no_such_pub").status().code(),
            core::StatusCode::kNotFound);
}

TEST_F(ReplicationConnectionTest, SchemaPatternExpandsForNonSuperuser) {
  ASSERT_TRUE(cluster()
                  .Exec("CREATE ROLE pub_owner LOGIN;"
                        "GRANT CREATE ON DATABASE sluice_test TO pub_owner;"
                        "CREATE SCHEMA owned AUTHORIZATION pub_owner;"
                        "SET ROLE pub_owner;"
                        "CREATE TABLE owned.t1 (id int PRIMARY KEY);"
                        "CREATE TABLE owned.t2 (id int PRIMARY KEY);"
                        "RESET ROLE;")
                  .ok());
  auto sql = ConnectSql(DsnFor(cluster(), "pub_owner"));
  ASSERT_NE(sql, nullptr);
  PublicationManager publications(*sql);
  auto created = publications.EnsurePublication("owned_pub", {"owned.*"});
  ASSERT_TRUE(created.ok()) << created.ToString();
  EXPECT_EQ(*cluster().QueryValue("SELECT count(*) FROM pg_publication_rel pr JOIN "
                                  "pg_publication p ON p.oid = pr.prpubid WHERE "
                                  "p.pubname = 'owned_pub'"),
            "2");
}

TEST_F(ReplicationConnectionTest, PublicationWithoutCreatePrivilegeIsExplained) {
  ASSERT_TRUE(cluster()
                  .Exec("CREATE ROLE no_create LOGIN;"
                        "CREATE TABLE priv_t (id int PRIMARY KEY);"
                        "ALTER TABLE priv_t OWNER TO no_create;")
                  .ok());
  auto sql = ConnectSql(DsnFor(cluster(), "no_create"));
  ASSERT_NE(sql, nullptr);
  PublicationManager publications(*sql);
  auto st = publications.EnsurePublication("priv_pub", {"public.priv_t"});
  EXPECT_EQ(st.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("role \"no_create\" may not create publication priv_pub"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("GRANT CREATE ON DATABASE \"sluice_test\" TO \"no_create\""),
            std::string::npos)
      << st.message();
}

TEST_F(ReplicationConnectionTest, TableWithoutReplicaIdentityIsRejected) {
  ASSERT_TRUE(cluster()
                  .Exec("CREATE TABLE no_identity (a int, b text);"
                        "CREATE TABLE ri_nothing (id int PRIMARY KEY);"
                        "ALTER TABLE ri_nothing REPLICA IDENTITY NOTHING;")
                  .ok());
  auto sql = ConnectSql(cluster().Dsn());
  ASSERT_NE(sql, nullptr);
  PublicationManager publications(*sql);
  auto st = publications.EnsurePublication("ri_pub", {"public.no_identity", "public.ri_nothing"});
  ASSERT_EQ(st.code(), core::StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("public.no_identity (replica identity DEFAULT without a primary "
                              "key), public.ri_nothing (replica identity NOTHING)"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("ALTER TABLE public.no_identity REPLICA IDENTITY FULL or add a "
                              "primary key"),
            std::string::npos)
      << st.message();
  // Checked before publishing, so the source's UPDATEs keep working.
  EXPECT_EQ(publications.PublishedTables("ri_pub").status().code(), core::StatusCode::kNotFound);
  EXPECT_TRUE(cluster().Exec("UPDATE no_identity SET b = 'x'").ok());

  // An existing publication that gained such a table (outside sluice) is caught as well.
  ASSERT_TRUE(cluster().Exec("CREATE PUBLICATION ri_pub2 FOR TABLE no_identity").ok());
  auto check = publications.CheckReplicaIdentity("ri_pub2");
  EXPECT_EQ(check.code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(check.message().find("public.no_identity"), std::string::npos) << check.message();

  ASSERT_TRUE(cluster().Exec("ALTER TABLE no_identity REPLICA IDENTITY FULL").ok());
  EXPECT_TRUE(publications.CheckReplicaIdentity("ri_pub2").ok());
}

TEST_F(ReplicationConnectionTest, StreamsFramesAndConfirmsOnlyTheDurableLsn) {
  Stream stream;
  ASSERT_TRUE(StartStream(cluster(), "stream_t", "stream_slot", &stream));
  ReplicationConnection& conn = *stream.conn;
  conn.set_status_interval(std::chrono::hours(1));  // feedback only when the test asks
  EXPECT_TRUE(conn.streaming());
  EXPECT_EQ(conn.protocol_version(), 2);

  const core::Lsn initial = ConfirmedFlush(cluster(), "stream_slot");
  ASSERT_TRUE(initial.valid());

  // Transaction 1: Begin, Relation, Insert, Commit.
  ASSERT_TRUE(cluster().Exec("INSERT INTO stream_t VALUES (1, 'one')").ok());
  std::vector<Frame> frames;
  ASSERT_TRUE(ReadFrames(conn, 4, &frames));
  EXPECT_EQ(Types(frames), "BRIC");
  // A commit frame's start LSN is the commit's end LSN, which pgoutput also carries.
  const core::Lsn commit1 = frames[3].start_lsn;
  ASSERT_GE(frames[3].payload.size(), 18u);
  EXPECT_EQ(core::Lsn(BigEndianU64(frames[3].payload, 10)), commit1);
  EXPECT_GT(commit1, initial);
  EXPECT_EQ(conn.last_received_lsn(), commit1);
  EXPECT_GE(conn.server_wal_end(), commit1);

  // Durable LSN unset: feedback reports what we received but confirms nothing.
  ASSERT_TRUE(conn.SendFeedback(true).ok());
  ASSERT_TRUE(PumpUntil(
      conn, [&] { return ReportedWrite(cluster(), "stream_slot") >= commit1; },
      "the server to see our write position"));
  EXPECT_EQ(ConfirmedFlush(cluster(), "stream_slot"), initial);
  EXPECT_EQ(*cluster().QueryValue("SELECT application_name FROM pg_stat_replication"), "sluice");

  // Durable up to commit 1: confirmed_flush_lsn becomes exactly that.
  conn.SetDurableLsn(commit1);
  ASSERT_TRUE(conn.SendFeedback(true).ok());
  ASSERT_TRUE(PumpUntil(
      conn, [&] { return ConfirmedFlush(cluster(), "stream_slot") == commit1; },
      "confirmed_flush_lsn = " + commit1.ToString()));

  // Transaction 2 received but not durable: confirmed stays at commit 1.
  ASSERT_TRUE(cluster().Exec("INSERT INTO stream_t VALUES (2, 'two')").ok());
  frames.clear();
  ASSERT_TRUE(ReadFrames(conn, 3, &frames));  // no Relation again
  EXPECT_EQ(Types(frames), "BIC");
  const core::Lsn commit2 = frames[2].start_lsn;
  ASSERT_GT(commit2, commit1);
  ASSERT_TRUE(conn.SendFeedback(true).ok());
  ASSERT_TRUE(PumpUntil(
      conn, [&] { return ReportedWrite(cluster(), "stream_slot") >= commit2; },
      "the server to see write position " + commit2.ToString()));
  EXPECT_EQ(ConfirmedFlush(cluster(), "stream_slot"), commit1);

  // The durable LSN never moves backwards.
  conn.SetDurableLsn(initial);
  EXPECT_EQ(conn.durable_lsn(), commit1);

  // Unforced feedback goes out when there is news.
  conn.SetDurableLsn(commit2);
  const uint64_t sent_before = conn.stats().status_updates;
  ASSERT_TRUE(conn.SendFeedback(false).ok());
  EXPECT_EQ(conn.stats().status_updates, sent_before + 1);
  ASSERT_TRUE(PumpUntil(
      conn, [&] { return ConfirmedFlush(cluster(), "stream_slot") == commit2; },
      "confirmed_flush_lsn = " + commit2.ToString()));
  ASSERT_TRUE(conn.SendFeedback(false).ok());  // nothing new
  EXPECT_EQ(conn.stats().status_updates, sent_before + 1);

  EXPECT_EQ(conn.stats().xlog_messages, 7u);
  EXPECT_GT(conn.stats().bytes_received, 7u * kXLogDataHeaderSize);

  // A zero timeout returns at once with nothing to read.
  auto none = conn.Next(milliseconds(0));
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());

  EXPECT_TRUE(conn.Close().ok());
  EXPECT_FALSE(conn.streaming());
  EXPECT_EQ(conn.Next(milliseconds(0)).status().code(), core::StatusCode::kFailedPrecondition);
  // The slot is released and keeps the confirmed position.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto active = cluster().QueryValue(
            "SELECT active FROM pg_replication_slots WHERE slot_name = 'stream_slot'");
        return active.ok() && *active == "f";
      },
      "the slot to become inactive"));
  EXPECT_EQ(ConfirmedFlush(cluster(), "stream_slot"), commit2);
}

TEST_F(ReplicationConnectionTest, ResumesAfterTheConfirmedPosition) {
  Stream stream;
  ASSERT_TRUE(StartStream(cluster(), "resume_t", "resume_slot", &stream));
  ASSERT_TRUE(cluster().Exec("INSERT INTO resume_t VALUES (1, 'a')").ok());
  ASSERT_TRUE(cluster().Exec("INSERT INTO resume_t VALUES (2, 'b')").ok());
  std::vector<Frame> frames;
  ASSERT_TRUE(ReadFrames(*stream.conn, 7, &frames));
  ASSERT_EQ(Types(frames), "BRICBIC");
  stream.conn->SetDurableLsn(frames[3].start_lsn);  // only the first transaction
  ASSERT_TRUE(stream.conn->SendFeedback(true).ok());
  ASSERT_TRUE(stream.conn->Close().ok());

  // A new connection streaming from the slot gets the second transaction again.
  auto conn = ReplicationConnection::Connect(cluster().Dsn(), kConnectTimeout);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  StartOptions options;
  options.slot = "resume_slot";
  options.publications = {"resume_t_pub"};
  options.streaming = true;
  // The previous walsender may take a moment to release the slot.
  core::Status started;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  do {
    started = (*conn)->StartReplication(options);
    if (started.ok() || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(milliseconds(100));
  } while (true);
  ASSERT_TRUE(started.ok()) << started.ToString();
  frames.clear();
  ASSERT_TRUE(ReadFrames(**conn, 4, &frames));
  EXPECT_EQ(Types(frames), "BRIC");
  EXPECT_EQ(frames[3].start_lsn, stream.conn->last_received_lsn());
}

TEST_F(ReplicationConnectionTest, SecondStreamOnActiveSlotIsRejectedAsTransient) {
  Stream stream;
  ASSERT_TRUE(StartStream(cluster(), "busy_t", "busy_slot", &stream));
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  StartOptions options;
  options.slot = "busy_slot";
  options.publications = {"busy_t_pub"};
  auto st = conn->StartReplication(options);
  // Transient: after a restart the old walsender may hold the slot for a moment longer.
  EXPECT_EQ(st.code(), core::StatusCode::kUnavailable) << st.ToString();
  EXPECT_TRUE(st.retryable());
  EXPECT_EQ(st.server_code(), "55006");
  EXPECT_NE(st.message().find("another client is streaming from this slot"), std::string::npos)
      << st.message();
}

TEST_F(ReplicationConnectionTest, MissingPublicationEndsTheStreamWithNotFound) {
  Stream stream;
  ASSERT_TRUE(StartStream(cluster(), "nopub_t", "nopub_slot", &stream));
  ASSERT_TRUE(stream.conn->Close().ok());
  auto conn = Connect();
  ASSERT_NE(conn, nullptr);
  StartOptions options;
  options.slot = "nopub_slot";
  options.publications = {"nopub_t_pub", "not_there"};
  ASSERT_TRUE(
      WaitUntil([&] { return conn->StartReplication(options).ok(); }, "the slot to be released"));
  ASSERT_TRUE(cluster().Exec("INSERT INTO nopub_t VALUES (1, 'x')").ok());
  std::vector<Frame> frames;
  auto read = ReadFrames(*conn, 1, &frames);
  ASSERT_FALSE(read);
  auto next = conn->Next(milliseconds(0));
  EXPECT_EQ(next.status().code(), core::StatusCode::kFailedPrecondition);  // stream is over
  EXPECT_NE(std::string(read.message()).find("not found: replication stream of slot nopub_slot"),
            std::string::npos)
      << read.message();
  EXPECT_NE(std::string(read.message()).find("publication \"not_there\" does not exist"),
            std::string::npos)
      << read.message();
}

// --- Clusters with special settings -------------------------------------------------------------

TEST(ReplicationPreflightTest, WalLevelReplicaIsRejected) {
  PgCluster::Options options;
  options.settings["wal_level"] = "replica";
  auto cluster = MustStart(options);
  ASSERT_NE(cluster, nullptr);
  auto conn = ReplicationConnection::Connect(cluster->Dsn(), kConnectTimeout);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  SlotManager slots(**conn);
  auto slot = slots.EnsureSlot("any_slot", true);
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(slot.status().message(),
            "source 127.0.0.1:" + std::to_string(cluster->port()) +
                " has wal_level=replica; set wal_level=logical and restart PostgreSQL");
}

TEST(ReplicationPreflightTest, NoFreeSlotIsResourceExhausted) {
  PgCluster::Options options;
  options.settings["max_replication_slots"] = "1";
  auto cluster = MustStart(options);
  ASSERT_NE(cluster, nullptr);
  ASSERT_TRUE(cluster->Exec("SELECT pg_create_logical_replication_slot('taken', 'pgoutput')").ok());
  auto conn = ReplicationConnection::Connect(cluster->Dsn(), kConnectTimeout);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  SlotManager slots(**conn);
  auto slot = slots.EnsureSlot("mine", false);
  ASSERT_FALSE(slot.ok());
  EXPECT_EQ(slot.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(slot.status().message().find("max_replication_slots=1"), std::string::npos)
      << slot.status().message();
  EXPECT_NE(slot.status().message().find("cannot create replication slot mine"), std::string::npos)
      << slot.status().message();
  // The taken slot is still reusable.
  auto reused = slots.EnsureSlot("taken", false);
  ASSERT_TRUE(reused.ok()) << reused.status().ToString();
  EXPECT_FALSE(reused->created);
}

TEST(ReplicationPreflightTest, NoFreeWalSenderIsResourceExhausted) {
  PgCluster::Options options;
  options.settings["max_wal_senders"] = "1";
  auto cluster = MustStart(options);
  ASSERT_NE(cluster, nullptr);
  auto first = ReplicationConnection::Connect(cluster->Dsn(), kConnectTimeout);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = ReplicationConnection::Connect(cluster->Dsn(), kConnectTimeout);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(second.status().message().find("raise max_wal_senders"), std::string::npos)
      << second.status().message();
}

TEST(ReplicationKeepaliveTest, RepliesKeepAnIdleStreamAlive) {
  PgCluster::Options options;
  options.settings["wal_sender_timeout"] = "2s";
  auto cluster = MustStart(options);
  ASSERT_NE(cluster, nullptr);
  Stream stream;
  ASSERT_TRUE(StartStream(*cluster, "idle_t", "idle_slot", &stream));
  ReplicationConnection& conn = *stream.conn;
  conn.set_status_interval(std::chrono::hours(1));  // only keepalive replies keep it alive
  const auto pid = cluster->QueryValue(
      "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'idle_slot'");
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();

  // Idle for 5 s, more than twice wal_sender_timeout.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < until) {
    auto next = conn.Next(milliseconds(250));
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_FALSE(next->has_value());
  }
  EXPECT_GT(conn.stats().keepalives, 0u);
  EXPECT_GT(conn.stats().keepalive_replies, 0u);
  EXPECT_EQ(conn.stats().status_updates, conn.stats().keepalive_replies);

  // Same walsender, still streaming.
  EXPECT_EQ(*cluster->QueryValue(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'idle_slot'"),
            *pid);
  ASSERT_TRUE(cluster->Exec("INSERT INTO idle_t VALUES (1, 'still here')").ok());
  std::vector<Frame> frames;
  ASSERT_TRUE(ReadFrames(conn, 4, &frames));
  EXPECT_EQ(Types(frames), "BRIC");
}

// SIGCONT in every case, so the cluster can be stopped and removed even when the test fails.
class StoppedProcess {
 public:
  explicit StoppedProcess(pid_t pid) : pid_(pid) { stopped_ = kill(pid_, SIGSTOP) == 0; }
  ~StoppedProcess() { Resume(); }
  StoppedProcess(const StoppedProcess&) = delete;
  StoppedProcess& operator=(const StoppedProcess&) = delete;
  bool stopped() const { return stopped_; }
  void Resume() {
    if (stopped_) kill(pid_, SIGCONT);
    stopped_ = false;
  }

 private:
  pid_t pid_;
  bool stopped_ = false;
};

TEST(ReplicationSilenceTest, AStoppedWalsenderIsGivenUpAfterTheReceiveTimeout) {
  auto cluster = MustStart();
  ASSERT_NE(cluster, nullptr);
  Stream stream;
  ASSERT_TRUE(StartStream(*cluster, "hang_t", "hang_slot", &stream));
  ReplicationConnection& conn = *stream.conn;
  conn.set_receive_timeout(std::chrono::seconds(2));
  ASSERT_TRUE(cluster->Exec("INSERT INTO hang_t VALUES (1, 'before')").ok());
  std::vector<Frame> frames;
  ASSERT_TRUE(ReadFrames(conn, 4, &frames));
  const auto pid = cluster->QueryValue(
      "SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'hang_slot'");
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  EXPECT_EQ(conn.backend_pid(), std::stoi(*pid));

  StoppedProcess walsender(std::stoi(*pid));
  ASSERT_TRUE(walsender.stopped());
  core::Status ended;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (ended.ok() && std::chrono::steady_clock::now() < deadline) {
    auto next = conn.Next(milliseconds(200));
    if (!next.ok()) ended = next.status();
  }
  EXPECT_EQ(ended.code(), core::StatusCode::kUnavailable) << ended.ToString();
  for (const std::string& part :
       {std::string("slot hang_slot"), "127.0.0.1:" + std::to_string(cluster->port()),
        std::string("silent for 2."), std::string("receive_timeout 2000 ms"), "pid " + *pid}) {
    EXPECT_NE(ended.message().find(part), std::string::npos) << part << " in " << ended.message();
  }
  EXPECT_GE(conn.stats().replies_requested, 1u);  // at half the timeout, unanswered
  EXPECT_FALSE(conn.streaming());
}

TEST(ReplicationSilenceTest, AnIdleWalsenderIsAskedToSpeakAndStaysConnected) {
  auto cluster = MustStart();
  ASSERT_NE(cluster, nullptr);
  Stream stream;
  ASSERT_TRUE(StartStream(*cluster, "quiet_t", "quiet_slot", &stream));
  ReplicationConnection& conn = *stream.conn;
  conn.set_status_interval(std::chrono::hours(1));  // so the walsender never needs to ask
  conn.set_receive_timeout(std::chrono::seconds(2));

  // Idle for 6 s, three receive timeouts: each silence is broken by a requested keepalive.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  while (std::chrono::steady_clock::now() < until) {
    auto next = conn.Next(milliseconds(250));
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_FALSE(next->has_value());
  }
  EXPECT_GE(conn.stats().replies_requested, 2u);
  EXPECT_GE(conn.stats().keepalives, conn.stats().replies_requested);
  ASSERT_TRUE(cluster->Exec("INSERT INTO quiet_t VALUES (1, 'still here')").ok());
  std::vector<Frame> frames;
  ASSERT_TRUE(ReadFrames(conn, 4, &frames));
  EXPECT_EQ(Types(frames), "BRIC");
}

TEST(ReplicationRestartTest, ServerRestartMidStreamIsUnavailable) {
  auto cluster = MustStart();
  ASSERT_NE(cluster, nullptr);
  Stream stream;
  ASSERT_TRUE(StartStream(*cluster, "restart_t", "restart_slot", &stream));
  ReplicationConnection& conn = *stream.conn;
  ASSERT_TRUE(cluster->Exec("INSERT INTO restart_t VALUES (1, 'before')").ok());
  std::vector<Frame> frames;
  ASSERT_TRUE(ReadFrames(conn, 4, &frames));

  // pg_ctl stop -m fast waits for the walsender, which waits for our replies: keep reading
  // while another thread stops the server.
  core::Status stopped;
  std::thread stopper([&] { stopped = cluster->Stop(/*immediate=*/false); });
  core::Status ended;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    auto next = conn.Next(milliseconds(200));
    if (!next.ok()) {
      ended = next.status();
      break;
    }
  }
  stopper.join();
  ASSERT_TRUE(stopped.ok()) << stopped.ToString();
  EXPECT_EQ(ended.code(), core::StatusCode::kUnavailable) << ended.ToString();
  EXPECT_NE(ended.message().find("127.0.0.1:" + std::to_string(cluster->port())), std::string::npos)
      << ended.message();
  EXPECT_FALSE(conn.streaming());

  // After the restart the slot streams again from where it was confirmed (nothing was).
  ASSERT_TRUE(cluster->StartAgain().ok());
  auto again = ReplicationConnection::Connect(cluster->Dsn(), kConnectTimeout);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  StartOptions options;
  options.slot = "restart_slot";
  options.publications = {"restart_t_pub"};
  ASSERT_TRUE((*again)->StartReplication(options).ok());
  frames.clear();
  ASSERT_TRUE(ReadFrames(**again, 4, &frames));
  EXPECT_EQ(Types(frames), "BRIC");
}

TEST(ReplicationRestartTest, ImmediateShutdownMidStreamIsUnavailable) {
  auto cluster = MustStart();
  ASSERT_NE(cluster, nullptr);
  Stream stream;
  ASSERT_TRUE(StartStream(*cluster, "crash_t", "crash_slot", &stream));
  ASSERT_TRUE(cluster->Stop(/*immediate=*/true).ok());
  core::Status ended;
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    auto next = stream.conn->Next(milliseconds(200));
    if (!next.ok()) {
      ended = next.status();
      break;
    }
  }
  EXPECT_EQ(ended.code(), core::StatusCode::kUnavailable) << ended.ToString();
}

}  // namespace
}  // namespace sluice::capture
