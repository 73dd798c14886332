// What the bootstrap's lenient window relies on (schemas/bootstrap.md "The lenient window"): with
// the secondary server's global slave_exec_mode = IDEMPOTENT, the BINLOG statements a client
// session runs — as the applier runs them: BinlogStatementWriter's statements on a MysqlSession
// with sql_log_bin=0 — skip an update and a delete of a missing row and the insert of a child row
// whose parent row is missing, while a parent's delete still cascades to the child rows the
// secondary holds; with STRICT the same statements fail with 1032 and 1452. The row events come
// from a real primary's binlog, read by the project's capture (CaptureService over the binlog
// files), not from hand-made bytes.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apply/applier.h"
#include "apply/binlog_statement.h"
#include "apply/ddl_replay.h"
#include "capture/capture_service.h"
#include "replsync.pb.h"
#include "sync/journal/journal.h"
#include "sync/mysql/mysql_session.h"
#include "tests/harness/mariadb_server.h"

namespace replsync::apply {
namespace {

using replsync::testing::MariadbServer;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Rows = std::vector<std::vector<std::string>>;

constexpr int kErrKeyNotFound = 1032;      // ER_KEY_NOT_FOUND: Can't find record in 't'
constexpr int kErrNoReferencedRow = 1452;  // ER_NO_REFERENCED_ROW_2

// The schema, on both servers.
constexpr char kSchema[] =
    "CREATE DATABASE rs_idem; "
    "CREATE TABLE rs_idem.t (id INT PRIMARY KEY, v VARCHAR(8)) ENGINE=InnoDB; "
    "CREATE TABLE rs_idem.parent (id INT PRIMARY KEY) ENGINE=InnoDB; "
    "CREATE TABLE rs_idem.child (id INT PRIMARY KEY, parent_id INT NOT NULL, "
    "FOREIGN KEY (parent_id) REFERENCES rs_idem.parent (id) ON DELETE CASCADE) ENGINE=InnoDB";

// The primary's transactions, one each, in this order (the index is the journal's order).
enum Txn {
  kInsertT,         // t: 1, 2, 3
  kInsertParents,   // parent: 1, 2
  kInsertChildren,  // child: 10 -> 1, 11 -> 1, 20 -> 2
  kUpdateMissing,   // t 1 (the secondary lacks it)
  kDeleteMissing,   // t 2 (the secondary lacks it)
  kUpdatePresent,   // t 3 (the secondary has it)
  kInsertParent3,   // parent 3 (not applied on the secondary)
  kInsertOrphan,    // child 30 -> 3: its parent is missing on the secondary
  kDeleteParent1,   // parent 1: cascades to the children of 1
  kTxnCount,
};
constexpr const char* kPrimarySql[kTxnCount] = {
    "INSERT INTO rs_idem.t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    "INSERT INTO rs_idem.parent VALUES (1), (2)",
    "INSERT INTO rs_idem.child VALUES (10, 1), (11, 1), (20, 2)",
    "UPDATE rs_idem.t SET v = 'x' WHERE id = 1",
    "DELETE FROM rs_idem.t WHERE id = 2",
    "UPDATE rs_idem.t SET v = 'y' WHERE id = 3",
    "INSERT INTO rs_idem.parent VALUES (3)",
    "INSERT INTO rs_idem.child VALUES (30, 3)",
    "DELETE FROM rs_idem.parent WHERE id = 1",
};

// The secondary's state before the replay: a subset of the primary's after kInsertChildren (t 3;
// parents 1, 2; child 10 of parent 1 but not 11; child 20).
constexpr char kSecondaryRows[] =
    "SET sql_log_bin = 0; "
    "DELETE FROM rs_idem.child; DELETE FROM rs_idem.parent; DELETE FROM rs_idem.t; "
    "INSERT INTO rs_idem.t VALUES (3, 'c'); "
    "INSERT INTO rs_idem.parent VALUES (1), (2); "
    "INSERT INTO rs_idem.child VALUES (10, 1), (20, 2); "
    "SET sql_log_bin = 1";

class IdempotentApplyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::MariadbServerOptions options;
    options.server_id = 1;
    auto a = MariadbServer::Start(options);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    primary_ = std::move(*a).release();
    options.server_id = 2;
    auto b = MariadbServer::Start(options);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    secondary_ = std::move(*b).release();
  }
  static void TearDownTestSuite() {
    delete primary_;
    delete secondary_;
    primary_ = secondary_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(primary_, nullptr);
    ASSERT_NE(secondary_, nullptr);
    std::string tmpl = ::testing::TempDir() + "idempotent_apply_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (secondary_ != nullptr) (void)secondary_->Execute("SET GLOBAL slave_exec_mode = 'STRICT'");
    std::filesystem::remove_all(dir_);
  }

  static void Exec(MariadbServer* server, const std::string& sql) {
    Status st = server->Execute(sql);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\nSQL: " << sql;
  }
  static Rows Query(MariadbServer* server, const std::string& sql) {
    auto rows = server->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString() << "\nSQL: " << sql;
    return rows.ok() ? *rows : Rows{};
  }

  // Runs the workload on the primary and journals its row transactions with the project's
  // capture: the returned transactions are kPrimarySql's, in order.
  std::vector<pb::DbTransaction> CapturePrimary() {
    Status st = primary_->Execute(kSchema);
    EXPECT_TRUE(st.ok()) << st.ToString();
    for (const char* sql : kPrimarySql) {
      st = primary_->Execute(sql);
      EXPECT_TRUE(st.ok()) << st.ToString() << "\nSQL: " << sql;
    }
    auto journal = Journal::Open({.path = dir_ + "/journal", .max_bytes = 0, .sync = false});
    EXPECT_TRUE(journal.ok()) << journal.status().ToString();
    if (!journal.ok()) return {};
    auto files = primary_->BinlogFiles();
    EXPECT_TRUE(files.ok()) << files.status().ToString();
    if (!files.ok()) return {};
    capture::FileSourceFactory factory(*files);
    capture::CaptureOptions options;
    options.databases = {"rs_idem"};
    options.checkpoint_delay = milliseconds(0);
    capture::CaptureService service(journal->get(), &factory, options);
    st = service.Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
    st = service.Wait();
    EXPECT_TRUE(st.ok()) << st.ToString();
    service.Stop();
    std::vector<pb::DbTransaction> txns;
    auto entries = (*journal)->Read(1, 1000, 64 << 20);
    EXPECT_TRUE(entries.ok()) << entries.status().ToString();
    if (!entries.ok()) return {};
    for (const auto& [seq, bytes] : *entries) {
      pb::JournalEntry entry;
      EXPECT_TRUE(entry.ParseFromString(bytes)) << "entry " << seq;
      if (!entry.has_db() || entry.db().is_ddl()) continue;
      EXPECT_TRUE(entry.db().last_part());
      EXPECT_FALSE(entry.db().format_description().empty());
      txns.push_back(entry.db());
    }
    return txns;
  }

  // A session to the secondary as the applier has one: sql_log_bin=0 and its base settings.
  static std::unique_ptr<MysqlSession> ApplierSession() {
    MysqlOptions o;
    o.host = secondary_->host();
    o.port = secondary_->port();
    o.user = secondary_->user();
    o.password = secondary_->password();
    o.connect_timeout = seconds(5);
    auto session = MysqlSession::Open(o);
    EXPECT_TRUE(session.ok()) << session.status().ToString();
    if (!session.ok()) return nullptr;
    EXPECT_TRUE((*session)->Execute("SET SESSION sql_log_bin=0").ok());
    EXPECT_TRUE((*session)->Execute(BaseSessionSql()).ok());
    return std::move(session).value();
  }

  // Applies `txn` as the applier does: its FORMAT_DESCRIPTION, START TRANSACTION, its row
  // events as BINLOG statements, COMMIT. On an error: ROLLBACK, and the server's error code
  // (0 when it succeeded).
  static int Apply(MysqlSession* session, const pb::DbTransaction& txn) {
    std::vector<std::string> sql = {BinlogStatementWriter::ForEvent(txn.format_description()),
                                    "START TRANSACTION"};
    BinlogStatementWriter writer(4 << 20, [&](const std::string& statement) {
      sql.push_back(statement);
      return Status::Ok();
    });
    for (const pb::Statement& statement : txn.statements()) {
      EXPECT_EQ(statement.kind(), pb::Statement::ROWS);
      for (const std::string& event : statement.events()) EXPECT_TRUE(writer.Add(event).ok());
    }
    EXPECT_TRUE(writer.Flush().ok());
    EXPECT_GE(sql.size(), 3u) << "no BINLOG statement for the transaction";
    sql.push_back("COMMIT");
    for (const std::string& statement : sql) {
      Status st = session->Execute(statement, "SQL");
      if (!st.ok()) {
        const int code = session->last_error_code();
        EXPECT_TRUE(session->Execute("ROLLBACK").ok());
        return code != 0 ? code : -1;
      }
    }
    return 0;
  }

  static Rows SecondaryState() {
    Rows rows;
    for (const char* sql : {"SELECT CONCAT('t ', id, '=', v) FROM rs_idem.t ORDER BY id",
                            "SELECT CONCAT('parent ', id) FROM rs_idem.parent ORDER BY id",
                            "SELECT CONCAT('child ', id, '->', parent_id) FROM rs_idem.child "
                            "ORDER BY id"}) {
      for (auto& row : Query(secondary_, sql)) rows.push_back(std::move(row));
    }
    return rows;
  }

  static MariadbServer* primary_;
  static MariadbServer* secondary_;
  std::string dir_;
};

MariadbServer* IdempotentApplyTest::primary_ = nullptr;
MariadbServer* IdempotentApplyTest::secondary_ = nullptr;

TEST_F(IdempotentApplyTest, IdempotentSkipsMissingRowsAndParentsAndStrictRefusesThem) {
  const std::vector<pb::DbTransaction> txns = CapturePrimary();
  ASSERT_EQ(txns.size(), static_cast<size_t>(kTxnCount))
      << "the primary's row transactions were not journaled one each";
  Exec(secondary_, kSchema);
  const Rows initial = {{"t 3=c"}, {"parent 1"}, {"parent 2"}, {"child 10->1"}, {"child 20->2"}};

  // STRICT (the default): each of them fails and changes nothing.
  ASSERT_EQ(Query(secondary_, "SELECT @@GLOBAL.slave_exec_mode"), (Rows{{"STRICT"}}));
  Exec(secondary_, kSecondaryRows);
  ASSERT_EQ(SecondaryState(), initial);
  {
    auto session = ApplierSession();
    ASSERT_NE(session, nullptr);
    EXPECT_EQ(Apply(session.get(), txns[kUpdateMissing]), kErrKeyNotFound);
    EXPECT_EQ(Apply(session.get(), txns[kDeleteMissing]), kErrKeyNotFound);
    EXPECT_EQ(Apply(session.get(), txns[kInsertOrphan]), kErrNoReferencedRow);
    EXPECT_EQ(SecondaryState(), initial);
    // The premise: the statements do apply where their rows are.
    EXPECT_EQ(Apply(session.get(), txns[kUpdatePresent]), 0);
    EXPECT_EQ(SecondaryState(),
              (Rows{{"t 3=y"}, {"parent 1"}, {"parent 2"}, {"child 10->1"}, {"child 20->2"}}));
  }

  // IDEMPOTENT: the same statements are skipped where their rows are missing; the rest applies,
  // and the parent's delete cascades to the child the secondary holds.
  Exec(secondary_, kSecondaryRows);
  Exec(secondary_, "SET GLOBAL slave_exec_mode = 'IDEMPOTENT'");
  const Rows binlog_before = Query(secondary_, "SHOW MASTER STATUS");
  ASSERT_FALSE(binlog_before.empty());
  {
    auto session = ApplierSession();
    ASSERT_NE(session, nullptr);
    for (Txn txn :
         {kUpdateMissing, kDeleteMissing, kUpdatePresent, kInsertOrphan, kDeleteParent1}) {
      EXPECT_EQ(Apply(session.get(), txns[txn]), 0) << kPrimarySql[txn];
    }
  }
  EXPECT_EQ(SecondaryState(), (Rows{{"t 3=y"}, {"parent 2"}, {"child 20->2"}}));
  // Nothing of it reached the secondary's own binlog (sql_log_bin=0).
  EXPECT_EQ(Query(secondary_, "SHOW MASTER STATUS"), binlog_before);

  // And what the window ends with: the primary's rows, applied in full from the start on an
  // empty copy, give the primary's state under IDEMPOTENT too.
  Exec(secondary_,
       "SET sql_log_bin = 0; DELETE FROM rs_idem.child; DELETE FROM rs_idem.parent; "
       "DELETE FROM rs_idem.t; SET sql_log_bin = 1");
  {
    auto session = ApplierSession();
    ASSERT_NE(session, nullptr);
    for (int txn = 0; txn < kTxnCount; ++txn) {
      EXPECT_EQ(Apply(session.get(), txns[txn]), 0) << kPrimarySql[txn];
    }
  }
  EXPECT_EQ(
      SecondaryState(),
      (Rows{{"t 1=x"}, {"t 3=y"}, {"parent 2"}, {"parent 3"}, {"child 20->2"}, {"child 30->3"}}));
}

}  // namespace
}  // namespace replsync::apply
