// Applier against two real MariaDB servers: a workload runs on server A, CaptureService turns A's
// binlog files into journal entries, the Applier applies them to server B, and every table must
// then be equal on both (CHECKSUM TABLE). Also: crashes at every point of a transaction (a hook
// that drops the connection, and kill -9 of a child process running the applier), a table
// missing on the secondary (loud stop, resume after the fix), lock waits and a restart of the
// secondary's server (retried), triggers on the secondary that must not fire a second time, and
// the secondary's own binlog that must not see applied changes.
#include "apply/applier.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "capture/capture_service.h"
#include "replsync.pb.h"
#include "sync/journal/journal.h"
#include "tests/harness/child_process.h"
#include "tests/harness/mariadb_server.h"

namespace replsync::apply {

namespace {

using replsync::testing::ChildProcess;
using replsync::testing::MariadbServer;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr char kChildEnv[] = "REPLSYNC_APPLIER_CHILD";

std::string TempDir(const std::string& name) {
  std::string tmpl = ::testing::TempDir() + name + ".XXXXXX";
  EXPECT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
  return tmpl;
}

MysqlOptions MysqlFor(const MariadbServer& server) {
  MysqlOptions o;
  o.host = server.host();
  o.port = server.port();
  o.user = server.user();
  o.password = server.password();
  o.connect_timeout = seconds(5);
  return o;
}

ApplierOptions OptionsFor(const MariadbServer& server, const std::string& channel) {
  ApplierOptions o;
  o.mysql = MysqlFor(server);
  o.channel = channel;
  o.retry_min = milliseconds(50);
  o.retry_max = milliseconds(1000);
  o.idle_wait = milliseconds(100);
  return o;
}

// A workload of one database, for tests that need it twice.
struct Workload {
  std::string db;
  std::vector<std::string> statements;  // each run with Execute (may hold several)
};

class ApplierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::MariadbServerOptions options;
    options.server_id = 1;
    auto a = MariadbServer::Start(options);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    a_ = std::move(*a).release();
    options.server_id = 2;
    auto b = MariadbServer::Start(options);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    b_ = std::move(*b).release();
  }
  static void TearDownTestSuite() {
    delete a_;
    delete b_;
    a_ = b_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
    dir_ = TempDir("applier_test");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static void Exec(MariadbServer* server, const std::string& sql) {
    Status st = server->Execute(sql);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\nSQL: " << sql.substr(0, 500);
  }
  static std::vector<std::vector<std::string>> Rows(MariadbServer* server, const std::string& sql) {
    auto rows = server->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString() << "\nSQL: " << sql;
    return rows.ok() ? *rows : std::vector<std::vector<std::string>>{};
  }
  static std::string Value(MariadbServer* server, const std::string& sql) {
    auto rows = Rows(server, sql);
    if (rows.empty() || rows[0].empty()) return "<no row>";
    return rows[0][0];
  }

  // Opens (creating) a journal in the test's folder.
  std::unique_ptr<Journal> OpenJournal(const std::string& name = "journal") {
    Journal::Options o;
    o.path = dir_ + "/" + name;
    o.sync = false;
    auto j = Journal::Open(o);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? std::move(*j) : nullptr;
  }

  // Journals the transactions of `db` found in server A's binlog files, as the primary's
  // capture does.
  std::unique_ptr<Journal> Capture(const std::string& db, size_t part_bytes = 256 << 10) {
    auto journal = OpenJournal();
    if (journal == nullptr) return nullptr;
    auto files = a_->BinlogFiles();
    EXPECT_TRUE(files.ok()) << files.status().ToString();
    capture::FileSourceFactory factory(*files);
    capture::CaptureOptions options;
    options.databases = {db};
    options.part_bytes = part_bytes;
    options.checkpoint_delay = milliseconds(0);
    capture::CaptureService service(journal.get(), &factory, options);
    Status st = service.Start();
    EXPECT_TRUE(st.ok()) << st.ToString();
    st = service.Wait();
    EXPECT_TRUE(st.ok()) << st.ToString();
    service.Stop();
    EXPECT_GT(journal->last_seq(), 0u) << "nothing captured for " << db;
    return journal;
  }

  // Applies the whole journal to B on `channel`; returns the applier's final status.
  ApplierStatus ApplyAll(Journal* journal, const std::string& channel) {
    Applier applier(OptionsFor(*b_, channel), journal);
    EXPECT_TRUE(applier.Start().ok());
    const bool done = applier.WaitForApplied(journal->last_seq(), milliseconds(300000));
    ApplierStatus status = applier.status();
    EXPECT_TRUE(done) << "applied " << status.applied_seq << " of " << journal->last_seq()
                      << ", state " << ApplierStateName(status.state) << ": " << status.last_error;
    applier.Stop();
    return applier.status();
  }

  // Every base table of `db` has the same rows on A and B (CHECKSUM TABLE and COUNT(*)).
  static void ExpectSameTables(const std::string& db) {
    const std::string list = fmt::format(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = '{}' AND "
        "table_type = 'BASE TABLE' ORDER BY table_name",
        db);
    auto tables_a = Rows(a_, list);
    auto tables_b = Rows(b_, list);
    ASSERT_EQ(tables_a, tables_b) << "the tables of " << db << " differ";
    ASSERT_FALSE(tables_a.empty());
    for (const auto& row : tables_a) {
      const std::string table = fmt::format("`{}`.`{}`", db, row[0]);
      SCOPED_TRACE(table);
      EXPECT_EQ(Value(a_, "SELECT COUNT(*) FROM " + table),
                Value(b_, "SELECT COUNT(*) FROM " + table));
      auto ca = Rows(a_, "CHECKSUM TABLE " + table + " EXTENDED");
      auto cb = Rows(b_, "CHECKSUM TABLE " + table + " EXTENDED");
      ASSERT_EQ(ca.size(), 1u);
      ASSERT_EQ(cb.size(), 1u);
      EXPECT_NE(ca[0][1], "\\N");
      EXPECT_EQ(ca[0][1], cb[0][1]) << "CHECKSUM TABLE differs";
    }
  }

  static std::string AppliedSeq(const std::string& channel) {
    return Value(b_, "SELECT seq FROM replsync.applied WHERE channel = '" + channel + "'");
  }

  static MariadbServer* a_;
  static MariadbServer* b_;
  std::string dir_;
};

MariadbServer* ApplierTest::a_ = nullptr;
MariadbServer* ApplierTest::b_ = nullptr;

// Every column type with edge values, tables without a primary key, composite keys whose values
// change, triggers, savepoints and rollbacks, foreign keys with cascades, a non-transactional
// table, DDL between rows (with session settings that change its meaning), and a 50,000-row
// transaction.
Workload TypesWorkload() {
  Workload w;
  w.db = "rs_types";
  w.statements = {
      "SET sql_mode = ''; CREATE DATABASE rs_types; USE rs_types",
      // Integers and bits.
      "CREATE TABLE ints (id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, "
      "siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, "
      "bi BIGINT, biu BIGINT UNSIGNED, b1 BIT(1), b64 BIT(64), bo BOOLEAN)",
      "INSERT INTO ints VALUES "
      "(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, b'0', "
      "b'0', 0), "
      "(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, "
      "9223372036854775807, 18446744073709551615, b'1', "
      "b'1111111111111111111111111111111111111111111111111111111111111111', 1), "
      "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
      "UPDATE ints SET biu = biu - 1, b64 = b'1010' WHERE id = 2",
      // Exact and approximate numbers.
      "CREATE TABLE nums (id INT PRIMARY KEY, d1 DECIMAL(65,30), d2 DECIMAL(10,2), "
      "d3 DECIMAL(5,0) UNSIGNED, f FLOAT, dbl DOUBLE)",
      "INSERT INTO nums VALUES "
      "(1, '99999999999999999999999999999999999.999999999999999999999999999999', -12345678.90, "
      "99999, 3.40282e38, 1.7976931348623157e308), "
      "(2, '-0.000000000000000000000000000001', 0.01, 0, -1.17549e-38, "
      "-2.2250738585072014e-308), (3, 0, -0.5, 1, 0.1, 0.1), (4, NULL, NULL, NULL, NULL, NULL)",
      // Temporal types, TIMESTAMPs written under another time zone.
      "CREATE TABLE times (id INT PRIMARY KEY, d DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL "
      "DEFAULT NULL, tm TIME(6), yr YEAR, dt0 DATETIME, ts0 TIMESTAMP NULL DEFAULT NULL, "
      "tm3 TIME(3))",
      "SET time_zone = '+05:30'; INSERT INTO times VALUES "
      "(1, '1000-01-01', '1000-01-01 00:00:00.000000', '1970-01-01 05:30:01.000001', "
      "'-838:59:59.000000', 1901, '1000-01-01 00:00:00', '2038-01-19 08:44:07', '-00:00:00.001'), "
      "(2, '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 08:44:07.999999', "
      "'838:59:59.000000', 2155, '9999-12-31 23:59:59', '1970-01-01 05:30:01', '12:34:56.789'), "
      "(3, '0000-00-00', '0000-00-00 00:00:00', NULL, '00:00:00.5', 0, '2024-02-29 12:34:56', "
      "NULL, NULL); SET time_zone = '-08:00'; "
      "UPDATE times SET ts = '2001-02-03 04:05:06.5' WHERE id = 3; SET time_zone = SYSTEM",
      // Character sets, binary data, enums, sets, JSON.
      "CREATE TABLE strs (id INT PRIMARY KEY, c CHAR(10) CHARACTER SET utf8mb4, "
      "vc VARCHAR(300) CHARACTER SET latin1, vu VARCHAR(100) CHARACTER SET utf16, "
      "cu CHAR(5) CHARACTER SET ucs2, bn BINARY(8), vb VARBINARY(20), tb TINYBLOB, bl BLOB, "
      "mb MEDIUMBLOB, lb LONGBLOB, tx TEXT CHARACTER SET utf8mb4, en ENUM('a','b','c'), "
      "st SET('x','y','z'), js JSON)",
      "INSERT INTO strs VALUES (1, 'h€llo😀', 'café crème', 'ünïcødé 😀', 'ab', x'00010200', "
      "x'ff00ff', '', x'00', REPEAT('m', 70000), REPEAT(UNHEX('00FF10'), 400000), "
      "'tëxt ✓', 'b', 'x,z', '{\"a\": [1, 2.5, \"x\", null, true], \"b\": {\"c\": \"é\"}}'), "
      "(2, '', '', '', '', x'', x'', NULL, NULL, NULL, NULL, NULL, 'c', '', '[]'), "
      "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
      "UPDATE strs SET bn = x'ff', st = 'x,y,z', js = JSON_SET(js, '$.b.c', 'ü') WHERE id = 1",
      // Spatial.
      "CREATE TABLE geo (id INT PRIMARY KEY, p POINT, g GEOMETRY, poly POLYGON NOT NULL, "
      "SPATIAL INDEX (poly))",
      "INSERT INTO geo VALUES (1, ST_GeomFromText('POINT(1.5 -2.25)'), "
      "ST_GeomFromText('LINESTRING(0 0,1 1,2 3)'), "
      "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0))')), "
      "(2, NULL, ST_GeomFromText('MULTIPOINT(1 1,2 2)'), "
      "ST_GeomFromText('POLYGON((1 1,2 1,2 2,1 1))'))",
      // Generated and invisible columns.
      "CREATE TABLE gen (id INT PRIMARY KEY, a INT, b INT AS (a * 2) VIRTUAL, "
      "c VARCHAR(20) AS (CONCAT('v', a)) STORED, secret INT INVISIBLE DEFAULT 7, KEY kb (b))",
      "INSERT INTO gen (id, a, secret) VALUES (1, 10, 1), (2, NULL, 2); "
      "INSERT INTO gen (id, a) VALUES (3, -5); UPDATE gen SET a = a + 1",
      // No primary key: duplicate rows, NULLs.
      "CREATE TABLE nopk (a INT, b VARCHAR(10))",
      "INSERT INTO nopk VALUES (1, 'x'), (1, 'x'), (2, 'y'), (NULL, NULL); "
      "UPDATE nopk SET b = 'z' WHERE a = 1 LIMIT 1; DELETE FROM nopk WHERE a = 2; "
      "INSERT INTO nopk VALUES (1, 'x'); DELETE FROM nopk WHERE a = 1 AND b = 'x' LIMIT 1",
      // Composite keys whose values change.
      "CREATE TABLE comp (a INT, b VARCHAR(10), v INT, PRIMARY KEY (a, b))",
      "INSERT INTO comp VALUES (1, 'a', 1), (2, 'a', 2), (3, 'b', 3); "
      "UPDATE comp SET a = a + 10 ORDER BY a DESC; "
      "UPDATE comp SET b = CONCAT(b, 'x'), v = v * 10 WHERE a > 11; "
      "UPDATE comp SET a = 1 WHERE a = 11 AND b = 'a'",
      // Triggers: their rows arrive as row events; the secondary's copies must not fire.
      "CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, amount DECIMAL(10,2), "
      "status VARCHAR(20))",
      "CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, order_id INT, what VARCHAR(20), "
      "at_amount DECIMAL(10,2))",
      "CREATE TRIGGER orders_ai AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit "
      "(order_id, what, at_amount) VALUES (NEW.id, 'insert', NEW.amount)",
      "CREATE TRIGGER orders_bu BEFORE UPDATE ON orders FOR EACH ROW "
      "SET NEW.status = CONCAT(NEW.status, '!')",
      "CREATE TRIGGER orders_ad AFTER DELETE ON orders FOR EACH ROW INSERT INTO audit "
      "(order_id, what) VALUES (OLD.id, 'delete')",
      "INSERT INTO orders (amount, status) VALUES (10.5, 'new'), (20, 'new'), (30, 'new'); "
      "UPDATE orders SET status = 'paid' WHERE id = 2; DELETE FROM orders WHERE id = 3",
      // Savepoints and rollbacks.
      "CREATE TABLE sp (id INT PRIMARY KEY, v VARCHAR(10))",
      "BEGIN; INSERT INTO sp VALUES (1, 'keep'); SAVEPOINT s1; INSERT INTO sp VALUES (2, 'drop'); "
      "ROLLBACK TO SAVEPOINT s1; INSERT INTO sp VALUES (3, 'keep'); COMMIT",
      "BEGIN; INSERT INTO sp VALUES (4, 'gone'); ROLLBACK",
      // A non-transactional table, also inside a transaction that rolls back.
      "CREATE TABLE myi (id INT PRIMARY KEY, v INT) ENGINE=MyISAM",
      "INSERT INTO myi VALUES (1, 1), (2, 2); UPDATE myi SET v = v + 10",
      "BEGIN; INSERT INTO sp VALUES (5, 'rolled'); INSERT INTO myi VALUES (3, 3); ROLLBACK",
      // Foreign keys with a cascade (InnoDB cascades again on the secondary).
      "CREATE TABLE parent (id INT PRIMARY KEY)",
      "CREATE TABLE child (id INT PRIMARY KEY, pid INT, "
      "FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE)",
      "INSERT INTO parent VALUES (1), (2); INSERT INTO child VALUES (10, 1), (11, 1), (20, 2); "
      "DELETE FROM parent WHERE id = 1",
      // DDL between rows; an added column whose default is the DDL's own time.
      "CREATE TABLE ddl (id INT PRIMARY KEY, v INT)",
      "INSERT INTO ddl VALUES (1, 1), (2, 2)",
      "ALTER TABLE ddl ADD COLUMN created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)",
      "INSERT INTO ddl (id, v) VALUES (3, 3)",
      "CREATE INDEX kv ON ddl (v)",
      "ALTER TABLE ddl CHANGE v value BIGINT",
      "RENAME TABLE ddl TO ddl2",
      "INSERT INTO ddl2 (id, value) VALUES (4, 4)",
      "CREATE TABLE tmp_drop (id INT); INSERT INTO tmp_drop VALUES (1); DROP TABLE tmp_drop",
      "CREATE TABLE trunc (id INT); INSERT INTO trunc VALUES (1), (2); TRUNCATE TABLE trunc; "
      "INSERT INTO trunc VALUES (3)",
      // A DDL whose meaning depends on the client character set: the default 'é' sent as
      // UTF-8 bytes but read as latin1 is 'Ã©'.
      "SET NAMES latin1; CREATE TABLE cs (id INT PRIMARY KEY, v VARCHAR(10) CHARACTER SET "
      "utf8mb4 DEFAULT 'é'); SET NAMES utf8mb4; INSERT INTO cs (id) VALUES (1)",
      // A DDL run from another default database.
      "USE mysql; CREATE TABLE rs_types.other_db (id INT PRIMARY KEY); "
      "INSERT INTO rs_types.other_db VALUES (1); USE rs_types",
      // A 50,000-row transaction.
      "CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(100), n BIGINT)",
      "BEGIN; INSERT INTO big SELECT seq, CONCAT('row-', seq, '-', REPEAT('p', seq % 50)), "
      "seq * 7 FROM rs_types.seq_1_to_50000; UPDATE big SET n = n + 1 WHERE id % 1000 = 0; COMMIT",
      "SET sql_mode = DEFAULT",
  };
  return w;
}

TEST_F(ApplierTest, EveryTypeAndShapeArrivesExactly) {
  const Workload w = TypesWorkload();
  for (const std::string& sql : w.statements) ASSERT_NO_FATAL_FAILURE(Exec(a_, sql));
  auto journal = Capture(w.db);
  ASSERT_NE(journal, nullptr);
  const auto b_pos_before = Rows(b_, "SHOW MASTER STATUS");

  ApplierStatus status = ApplyAll(journal.get(), "types");
  EXPECT_EQ(status.state, ApplierState::kStopped);
  EXPECT_EQ(status.applied_seq, journal->last_seq());
  EXPECT_EQ(status.last_error, "");
  EXPECT_GE(status.rows_applied, 50000u);
  EXPECT_GT(status.ddl_applied, 20u);
  EXPECT_EQ(AppliedSeq("types"), std::to_string(journal->last_seq()));
  EXPECT_EQ(Value(b_,
                  "SELECT IFNULL(ddl_pending_seq, 'none') FROM replsync.applied WHERE "
                  "channel = 'types'"),
            "none");

  ExpectSameTables(w.db);
  // The secondary has the triggers (they came as DDL) and they did not fire again: the audit
  // rows and the BEFORE UPDATE suffix are the primary's, once.
  EXPECT_EQ(Value(b_,
                  "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE "
                  "TRIGGER_SCHEMA = 'rs_types'"),
            "3");
  EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM rs_types.audit"), "4");
  EXPECT_EQ(Value(b_, "SELECT status FROM rs_types.orders WHERE id = 2"), "paid!");
  // Values read back exactly.
  EXPECT_EQ(Value(b_, "SELECT biu FROM rs_types.ints WHERE id = 2"), "18446744073709551614");
  EXPECT_EQ(Value(b_, "SELECT v FROM rs_types.cs"), Value(a_, "SELECT v FROM rs_types.cs"));
  EXPECT_EQ(Value(b_, "SELECT HEX(v) FROM rs_types.cs"), "C383C2A9");
  EXPECT_EQ(Value(b_, "SELECT GROUP_CONCAT(created) FROM rs_types.ddl2"),
            Value(a_, "SELECT GROUP_CONCAT(created) FROM rs_types.ddl2"));
  EXPECT_EQ(Value(b_, "SELECT GROUP_CONCAT(UNIX_TIMESTAMP(ts) ORDER BY id) FROM rs_types.times"),
            Value(a_, "SELECT GROUP_CONCAT(UNIX_TIMESTAMP(ts) ORDER BY id) FROM rs_types.times"));
  EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM rs_types.big"), "50000");
  // Nothing applied reached the secondary's own binlog.
  EXPECT_EQ(Rows(b_, "SHOW MASTER STATUS"), b_pos_before);

  // Applying again finds everything applied: nothing doubles.
  ApplierStatus again = ApplyAll(journal.get(), "types");
  EXPECT_EQ(again.transactions_applied, 0u);
  ExpectSameTables(w.db);
}

// The workload of the crash tests: small transactions whose effects would show if one were
// lost or applied twice (a counter and a log), a large multi-part transaction, and DDL.
Workload CounterWorkload(const std::string& db, int small_transactions) {
  Workload w;
  w.db = db;
  w.statements.push_back(fmt::format(
      "CREATE DATABASE {0}; CREATE TABLE {0}.counter (id INT PRIMARY KEY, n BIGINT); "
      "CREATE TABLE {0}.log (id INT PRIMARY KEY AUTO_INCREMENT, k INT, note VARCHAR(40)); "
      "CREATE TABLE {0}.nopk (k INT, v VARCHAR(20)); INSERT INTO {0}.counter VALUES (1, 0)",
      db));
  for (int i = 0; i < small_transactions; ++i) {
    w.statements.push_back(fmt::format(
        "BEGIN; UPDATE {0}.counter SET n = n + 1 WHERE id = 1; INSERT INTO {0}.log (k, note) "
        "VALUES ({1}, 'step {1}'); INSERT INTO {0}.nopk VALUES ({1}, 'v{1}'); COMMIT",
        db, i));
    if (i == small_transactions / 2) {
      w.statements.push_back(fmt::format(
          "CREATE TABLE {0}.big (id INT PRIMARY KEY, payload VARCHAR(100)); BEGIN; "
          "INSERT INTO {0}.big SELECT seq, CONCAT('payload-', seq) FROM {0}.seq_1_to_50000; "
          "UPDATE {0}.counter SET n = n + 1000 WHERE id = 1; COMMIT",
          db));
      w.statements.push_back(fmt::format("ALTER TABLE {0}.log ADD COLUMN extra INT DEFAULT 5", db));
    }
  }
  return w;
}

// The sequences of the entries: the large transaction's first and last, the ALTER's.
struct Landmarks {
  uint64_t big_first = 0;
  uint64_t big_last = 0;
  uint64_t alter = 0;
};

Landmarks FindLandmarks(Journal& journal) {
  Landmarks l;
  for (uint64_t s = journal.first_seq(); s <= journal.last_seq(); ++s) {
    auto bytes = journal.Get(s);
    EXPECT_TRUE(bytes.ok() && bytes->has_value());
    pb::JournalEntry entry;
    EXPECT_TRUE(entry.ParseFromString(**bytes));
    const pb::DbTransaction& db = entry.db();
    if (!db.last_part() && db.part() == 0) l.big_first = s;
    if (db.last_part() && db.part() > 0) l.big_last = s;
    for (const auto& st : db.statements()) {
      if (st.kind() == pb::Statement::DDL &&
          st.sql().find("ADD COLUMN extra") != std::string::npos) {
        l.alter = s;
      }
    }
  }
  return l;
}

TEST_F(ApplierTest, CrashBeforeCommitLeavesNothingAndTheRestartAppliesEachOnce) {
  const Workload w = CounterWorkload("rs_crash", 60);
  for (const std::string& sql : w.statements) ASSERT_NO_FATAL_FAILURE(Exec(a_, sql));
  auto journal = Capture(w.db);
  ASSERT_NE(journal, nullptr);
  const Landmarks l = FindLandmarks(*journal);
  ASSERT_GT(l.big_first, 0u);
  ASSERT_GT(l.big_last, l.big_first + 1) << "the large transaction should have several parts";
  ASSERT_GT(l.alter, l.big_last);

  // 1. Crash after all parts of the large transaction were sent, before COMMIT: nothing of it
  // may be visible, the position is the transaction before it.
  {
    ApplierOptions o = OptionsFor(*b_, "crash");
    o.crash_point = [&](std::string_view point, uint64_t seq) {
      return point == "before_commit" && seq == l.big_last;
    };
    Applier applier(o, journal.get());
    ASSERT_TRUE(applier.Start().ok());
    applier.WaitForApplied(journal->last_seq(), milliseconds(120000));
    applier.Stop();
    EXPECT_EQ(applier.status().applied_seq, l.big_first - 1);
    EXPECT_EQ(AppliedSeq("crash"), std::to_string(l.big_first - 1));
    EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM rs_crash.big"), "0");
  }
  // 2. Crash in the middle of the parts (rows of part 1 sent, more to come).
  {
    ApplierOptions o = OptionsFor(*b_, "crash");
    o.crash_point = [&](std::string_view point, uint64_t seq) {
      return point == "after_rows" && seq == l.big_first + 1;
    };
    Applier applier(o, journal.get());
    ASSERT_TRUE(applier.Start().ok());
    applier.WaitForApplied(journal->last_seq(), milliseconds(120000));
    applier.Stop();
    EXPECT_EQ(AppliedSeq("crash"), std::to_string(l.big_first - 1));
    EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM rs_crash.big"), "0");
  }
  // 3. Crash right after the DDL ran, before its position was written: the restart runs it
  // again, gets "duplicate column" and counts it as applied.
  {
    ApplierOptions o = OptionsFor(*b_, "crash");
    o.crash_point = [&](std::string_view point, uint64_t seq) {
      return point == "after_ddl" && seq == l.alter;
    };
    Applier applier(o, journal.get());
    ASSERT_TRUE(applier.Start().ok());
    applier.WaitForApplied(journal->last_seq(), milliseconds(120000));
    applier.Stop();
    EXPECT_EQ(AppliedSeq("crash"), std::to_string(l.alter - 1));
    EXPECT_EQ(Value(b_, "SELECT ddl_pending_seq FROM replsync.applied WHERE channel = 'crash'"),
              std::to_string(l.alter));
    EXPECT_EQ(Value(b_,
                    "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE "
                    "TABLE_SCHEMA = 'rs_crash' AND TABLE_NAME = 'log' AND "
                    "COLUMN_NAME = 'extra'"),
              "1");
    EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM rs_crash.big"), "50000");
  }
  // 4. Crash after the DDL marker, before the DDL ran: the restart runs it for real.
  Exec(b_,
       "SET sql_log_bin = 0; ALTER TABLE rs_crash.log DROP COLUMN extra; "
       "UPDATE replsync.applied SET ddl_pending_seq = NULL WHERE channel = 'crash'; "
       "SET sql_log_bin = 1");
  {
    ApplierOptions o = OptionsFor(*b_, "crash");
    o.crash_point = [&](std::string_view point, uint64_t seq) {
      return point == "after_ddl_marker" && seq == l.alter;
    };
    Applier applier(o, journal.get());
    ASSERT_TRUE(applier.Start().ok());
    applier.WaitForApplied(journal->last_seq(), milliseconds(120000));
    applier.Stop();
    EXPECT_EQ(Value(b_, "SELECT ddl_pending_seq FROM replsync.applied WHERE channel = 'crash'"),
              std::to_string(l.alter));
    EXPECT_EQ(Value(b_,
                    "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE "
                    "TABLE_SCHEMA = 'rs_crash' AND TABLE_NAME = 'log' AND "
                    "COLUMN_NAME = 'extra'"),
              "0");
  }
  // 5. The restart finishes: every transaction exactly once.
  ApplierStatus status = ApplyAll(journal.get(), "crash");
  EXPECT_EQ(status.last_error, "");
  EXPECT_EQ(AppliedSeq("crash"), std::to_string(journal->last_seq()));
  EXPECT_EQ(Value(b_, "SELECT n FROM rs_crash.counter"), "1060");
  ExpectSameTables(w.db);
}

// Runs in a child process started by KilledApplierProcessResumesWithoutLossOrDuplicates, which
// kills it with SIGKILL at random moments. Skipped in an ordinary run.
// Not a test of its own: the body of the child process the kill -9 test starts (disabled, so a
// normal run does not list it; the parent runs it with --gtest_also_run_disabled_tests).
TEST(ApplierChildProcess, DISABLED_Run) {
  const char* spec = std::getenv(kChildEnv);
  ASSERT_NE(spec, nullptr) << "only runs as the child of the kill -9 test";
  // "journal-path|host|port|channel"
  std::vector<std::string> parts;
  std::string s = spec;
  size_t start = 0;
  for (size_t bar = s.find('|'); bar != std::string::npos; bar = s.find('|', start)) {
    parts.push_back(s.substr(start, bar - start));
    start = bar + 1;
  }
  parts.push_back(s.substr(start));
  ASSERT_EQ(parts.size(), 4u);
  Journal::Options jo;
  jo.path = parts[0];
  auto journal = Journal::Open(jo);
  ASSERT_TRUE(journal.ok()) << journal.status().ToString();
  ApplierOptions o;
  o.mysql.host = parts[1];
  o.mysql.port = static_cast<uint16_t>(std::stoi(parts[2]));
  o.mysql.user = "root";
  o.channel = parts[3];
  o.retry_min = milliseconds(50);
  o.retry_max = milliseconds(500);
  Applier applier(o, journal->get());
  ASSERT_TRUE(applier.Start().ok());
  EXPECT_TRUE(applier.WaitForApplied((*journal)->last_seq(), milliseconds(600000)));
  applier.Stop();
}

TEST_F(ApplierTest, KilledApplierProcessResumesWithoutLossOrDuplicates) {
  const Workload w = CounterWorkload("rs_kill", 1500);
  for (const std::string& sql : w.statements) ASSERT_NO_FATAL_FAILURE(Exec(a_, sql));
  uint64_t last_seq = 0;
  Landmarks l;
  {
    auto journal = Capture(w.db, 128 << 10);
    ASSERT_NE(journal, nullptr);
    last_seq = journal->last_seq();
    l = FindLandmarks(*journal);
  }  // closed: the child opens it
  ASSERT_GT(l.big_first, 3u);
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  const std::string spec = fmt::format("{}/journal|{}|{}|kill", dir_, b_->host(), b_->port());
  // Kill the child as soon as it has applied up to each target: among the DDL at the start, in
  // the large transaction (it starts right after big_first - 1), after the ALTER, and at random.
  std::mt19937 rng(12345);
  std::vector<uint64_t> targets = {2, l.big_first - 1, l.alter};
  for (int i = 0; i < 4; ++i) {
    targets.push_back(std::uniform_int_distribution<uint64_t>(l.alter + 1, last_seq - 1)(rng));
  }
  std::sort(targets.begin(), targets.end());
  uint64_t previous = 0;
  int kills_mid_way = 0;
  bool killed_in_big = false;
  for (uint64_t target : targets) {
    if (target <= previous) continue;
    SCOPED_TRACE(fmt::format("kill after seq {}", target));
    ASSERT_EQ(setenv(kChildEnv, spec.c_str(), 1), 0);
    auto child = ChildProcess::Start({self, "--gtest_filter=ApplierChildProcess.DISABLED_Run",
                                      "--gtest_also_run_disabled_tests"},
                                     dir_ + "/child.log");
    unsetenv(kChildEnv);
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    const auto deadline = Clock::now() + seconds(60);
    while (Clock::now() < deadline && (*child)->running()) {
      // (replsync.applied may not exist yet: errors are expected here.)
      auto seq = b_->Query("SELECT seq FROM replsync.applied WHERE channel = 'kill'");
      if (seq.ok() && !seq->empty() && std::stoull((*seq)[0][0]) >= target) break;
      std::this_thread::sleep_for(milliseconds(1));
    }
    auto exited = (*child)->Signal(SIGKILL, milliseconds(5000));
    ASSERT_TRUE(exited.has_value());
    const uint64_t now = std::stoull(AppliedSeq("kill"));
    EXPECT_GE(now, previous) << "the applied position went back";
    if (now < last_seq) ++kills_mid_way;
    previous = now;
    // At every kill what is applied is whole: the counter matches the log, the large
    // transaction is all there or not at all.
    if (Value(b_,
              "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
              "'rs_kill' AND table_name IN ('counter', 'log')") != "2") {
      continue;
    }
    const uint64_t counter =
        std::stoull(Value(b_, "SELECT IFNULL(MAX(n), 0) FROM rs_kill.counter"));
    const uint64_t logged = std::stoull(Value(b_, "SELECT COUNT(*) FROM rs_kill.log"));
    std::string big_rows = "0";
    if (Value(b_,
              "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
              "'rs_kill' AND table_name = 'big'") == "1") {
      big_rows = Value(b_, "SELECT COUNT(*) FROM rs_kill.big");
    }
    EXPECT_TRUE(big_rows == "0" || big_rows == "50000") << "partial large transaction";
    EXPECT_EQ(counter, logged + (big_rows == "50000" ? 1000 : 0));
    if (now == l.big_first - 1) killed_in_big = true;
  }
  EXPECT_GE(kills_mid_way, 4) << "the kills came after the end; the test proved little";
  EXPECT_TRUE(killed_in_big) << "no kill landed inside the large transaction";
  auto journal = OpenJournal();
  ASSERT_NE(journal, nullptr);
  ApplierStatus status = ApplyAll(journal.get(), "kill");
  EXPECT_EQ(status.last_error, "");
  EXPECT_EQ(AppliedSeq("kill"), std::to_string(last_seq));
  EXPECT_EQ(Value(b_, "SELECT n FROM rs_kill.counter"), "2500");
  ExpectSameTables(w.db);
}

TEST_F(ApplierTest, MissingTableStopsLoudlyAndResumesAfterTheFix) {
  // The table exists on the primary only (created outside the binlog).
  Exec(a_,
       "CREATE DATABASE rs_missing; SET sql_log_bin = 0; "
       "CREATE TABLE rs_missing.t (id INT PRIMARY KEY, v INT); SET sql_log_bin = 1; "
       "INSERT INTO rs_missing.t VALUES (1, 1); INSERT INTO rs_missing.t VALUES (2, 2)");
  auto journal = Capture("rs_missing");
  ASSERT_NE(journal, nullptr);
  ASSERT_EQ(journal->last_seq(), 3u);  // CREATE DATABASE and the two inserts
  Applier applier(OptionsFor(*b_, "missing"), journal.get());
  ASSERT_TRUE(applier.Start().ok());
  EXPECT_FALSE(applier.WaitForApplied(3, milliseconds(60000)));
  ApplierStatus status = applier.status();
  EXPECT_EQ(status.state, ApplierState::kError);
  EXPECT_EQ(status.applied_seq, 1u);
  EXPECT_NE(status.last_error.find("1146"), std::string::npos) << status.last_error;
  EXPECT_NE(status.last_error.find("seq 2"), std::string::npos) << status.last_error;
  EXPECT_NE(status.last_error.find("restart"), std::string::npos) << status.last_error;
  applier.Stop();
  EXPECT_EQ(journal->first_seq(), 1u);  // the relay keeps everything
  EXPECT_EQ(AppliedSeq("missing"), "1");

  Exec(b_,
       "SET sql_log_bin = 0; CREATE TABLE rs_missing.t (id INT PRIMARY KEY, v INT); "
       "SET sql_log_bin = 1");
  ApplierStatus after = ApplyAll(journal.get(), "missing");
  EXPECT_EQ(after.last_error, "");
  ExpectSameTables("rs_missing");
}

// Events never run twice (schemas/bootstrap.md "Schema objects"): an event replicated to a
// secondary whose event scheduler runs is there SLAVESIDE_DISABLED (created so: were it created
// enabled and disabled after, an EVERY 1 SECOND event would run once in between), with its
// definer; one disabled on the primary stays DISABLED; an ALTER ... ENABLE arrives as DISABLE ON
// SLAVE. The rows the secondary holds are exactly the primary's: none made by the secondary's
// scheduler.
TEST_F(ApplierTest, ReplicatedEventsAreDisabledOnSlaveAndNeverRunOnTheSecondary) {
  Exec(a_,
       "CREATE DATABASE rs_events; "
       "CREATE TABLE rs_events.ticks (id INT AUTO_INCREMENT PRIMARY KEY, src VARCHAR(16)); "
       "INSERT INTO rs_events.ticks (src) VALUES ('primary'), ('primary'); "
       "CREATE DEFINER='root'@'localhost' EVENT rs_events.tick ON SCHEDULE EVERY 1 SECOND DO "
       "INSERT INTO rs_events.ticks (src) VALUES ('tick'); "
       "CREATE EVENT rs_events.off ON SCHEDULE EVERY 1 SECOND DISABLE DO "
       "INSERT INTO rs_events.ticks (src) VALUES ('off'); "
       "CREATE EVENT rs_events.later ON SCHEDULE EVERY 1 SECOND DISABLE DO "
       "INSERT INTO rs_events.ticks (src) VALUES ('later'); "
       // (With its definer: an ALTER EVENT without one makes the user running it the definer,
       // and the binlog does not say who ran it on the primary.)
       "ALTER DEFINER='root'@'localhost' EVENT rs_events.later ENABLE; "
       "INSERT INTO rs_events.ticks (src) VALUES ('primary')");
  // The primary's scheduler is off: it runs none of them, so its table holds 3 rows.
  ASSERT_EQ(Value(a_, "SELECT @@event_scheduler"), "OFF");
  auto journal = Capture("rs_events");
  ASSERT_NE(journal, nullptr);

  // The secondary's scheduler runs (a local event of its own shows it does).
  Exec(b_, "SET GLOBAL event_scheduler = ON");
  Exec(b_,
       "SET sql_log_bin = 0; CREATE DATABASE rs_events_probe; "
       "CREATE TABLE rs_events_probe.runs (id INT AUTO_INCREMENT PRIMARY KEY); "
       "CREATE EVENT rs_events_probe.probe ON SCHEDULE EVERY 1 SECOND DO "
       "INSERT INTO rs_events_probe.runs VALUES (); SET sql_log_bin = 1");
  ApplierStatus status = ApplyAll(journal.get(), "events");
  EXPECT_EQ(status.last_error, "");
  // Three seconds of an EVERY 1 SECOND schedule.
  std::this_thread::sleep_for(seconds(3));
  const std::string probe_runs = Value(b_, "SELECT COUNT(*) FROM rs_events_probe.runs");
  Exec(b_, "SET GLOBAL event_scheduler = OFF");
  Exec(b_, "SET sql_log_bin = 0; DROP DATABASE rs_events_probe; SET sql_log_bin = 1");
  ASSERT_NE(probe_runs, "0") << "the secondary's event scheduler ran nothing: the test proves "
                                "nothing";

  auto events = [](MariadbServer* server, const char* column) {
    return Rows(server, fmt::format("SELECT EVENT_NAME, {} FROM information_schema.EVENTS WHERE "
                                    "EVENT_SCHEMA = 'rs_events' ORDER BY EVENT_NAME",
                                    column));
  };
  EXPECT_EQ(events(b_, "STATUS"), (std::vector<std::vector<std::string>>{
                                      {"later", "SLAVESIDE_DISABLED"},
                                      {"off", "DISABLED"},
                                      {"tick", "SLAVESIDE_DISABLED"},
                                  }));
  EXPECT_EQ(events(a_, "STATUS"), (std::vector<std::vector<std::string>>{
                                      {"later", "ENABLED"},
                                      {"off", "DISABLED"},
                                      {"tick", "ENABLED"},
                                  }));
  EXPECT_EQ(events(b_, "DEFINER"), events(a_, "DEFINER"));
  EXPECT_EQ(events(b_, "DEFINER")[2], (std::vector<std::string>{"tick", "root@localhost"}));
  EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM rs_events.ticks"), "3");
  EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM rs_events.ticks WHERE src <> 'primary'"), "0");
  ExpectSameTables("rs_events");
}

// A DDL relay entry, as a primary (honest or not) would send it.
std::string DdlEntry(const std::string& db, const std::string& sql, uint64_t offset) {
  pb::JournalEntry entry;
  pb::DbTransaction* txn = entry.mutable_db();
  txn->set_gtid(fmt::format("0-1-{}", offset));
  txn->set_begin_file("binlog.000001");
  txn->set_begin_offset(offset);
  txn->set_end_file("binlog.000001");
  txn->set_end_offset(offset + 100);
  txn->set_last_part(true);
  txn->set_is_ddl(true);
  pb::Statement* statement = txn->add_statements();
  statement->set_kind(pb::Statement::DDL);
  statement->set_db(db);
  statement->set_sql(sql);
  return entry.SerializeAsString();
}

// Issue 13: a DDL entry's `sql` ran on a session with multi-statements on, so a primary could
// make the secondary run any SQL after a harmless DDL. It now runs on a session without them:
// the server refuses the second statement as a syntax error and runs neither.
TEST_F(ApplierTest, DdlEntryHoldingTwoStatementsRunsNeitherAndStops) {
  auto relay = OpenJournal("relay");
  ASSERT_NE(relay, nullptr);
  ASSERT_TRUE(relay->Put({{1, DdlEntry("", "CREATE DATABASE rs_multi", 1000)},
                          {2, DdlEntry("rs_multi", "CREATE TABLE t (a INT)", 2000)},
                          {3, DdlEntry("rs_multi", "CREATE TABLE t2 (a INT); DROP TABLE t", 3000)}},
                         {})
                  .ok());
  ApplierOptions o = OptionsFor(*b_, "multi");
  o.databases = {"rs_multi"};
  Applier applier(o, relay.get());
  ASSERT_TRUE(applier.Start().ok());
  EXPECT_FALSE(applier.WaitForApplied(3, milliseconds(60000)));
  ApplierStatus status = applier.status();
  applier.Stop();
  EXPECT_EQ(status.state, ApplierState::kError) << status.last_error;
  EXPECT_EQ(status.applied_seq, 2u) << status.last_error;
  EXPECT_NE(status.last_error.find("1064"), std::string::npos) << status.last_error;
  EXPECT_EQ(AppliedSeq("multi"), "2");
  // Neither statement ran: t is still there, t2 never came.
  EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                      "'rs_multi' AND table_name = 't'"),
            "1");
  EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                      "'rs_multi' AND table_name = 't2'"),
            "0");
}

// Issue 13: rows and DDL aimed at a database outside the secondary's [mysql] databases are
// refused (the applier stops for the operator) and never applied; the same rows apply once the
// database is listed, so the refusal is what kept them out.
TEST_F(ApplierTest, RowsAndDdlOutsideTheConfiguredDatabasesAreRefused) {
  Exec(a_,
       "CREATE DATABASE rs_outside; CREATE TABLE rs_outside.t (id INT PRIMARY KEY, v INT); "
       "INSERT INTO rs_outside.t VALUES (1, 1)");
  auto captured = Capture("rs_outside");
  ASSERT_NE(captured, nullptr);
  ASSERT_EQ(captured->last_seq(), 3u);  // CREATE DATABASE, CREATE TABLE, the insert
  Exec(b_,
       "SET sql_log_bin = 0; CREATE DATABASE rs_outside; "
       "CREATE TABLE rs_outside.t (id INT PRIMARY KEY, v INT); SET sql_log_bin = 1");
  const std::string insert = captured->Get(3)->value();
  {
    auto relay = OpenJournal("relay_rows");
    ASSERT_NE(relay, nullptr);
    ASSERT_TRUE(relay->Put({{1, insert}}, {}).ok());
    ApplierOptions o = OptionsFor(*b_, "outside_rows");
    o.databases = {"rs_allowed"};
    Applier applier(o, relay.get());
    ASSERT_TRUE(applier.Start().ok());
    EXPECT_FALSE(applier.WaitForApplied(1, milliseconds(60000)));
    ApplierStatus status = applier.status();
    applier.Stop();
    EXPECT_EQ(status.state, ApplierState::kError);
    EXPECT_NE(status.last_error.find("relay entry 1"), std::string::npos) << status.last_error;
    EXPECT_NE(status.last_error.find("'rs_outside.t'"), std::string::npos) << status.last_error;
    EXPECT_NE(status.last_error.find("[mysql] databases: rs_allowed"), std::string::npos)
        << status.last_error;
    EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM rs_outside.t"), "0");
  }
  {
    auto relay = OpenJournal("relay_ddl");
    ASSERT_NE(relay, nullptr);
    ASSERT_TRUE(relay->Put({{1, DdlEntry("rs_outside", "DROP TABLE t", 5000)}}, {}).ok());
    ApplierOptions o = OptionsFor(*b_, "outside_ddl");
    o.databases = {"rs_allowed"};
    Applier applier(o, relay.get());
    ASSERT_TRUE(applier.Start().ok());
    EXPECT_FALSE(applier.WaitForApplied(1, milliseconds(60000)));
    ApplierStatus status = applier.status();
    applier.Stop();
    EXPECT_EQ(status.state, ApplierState::kError);
    EXPECT_NE(status.last_error.find("default database 'rs_outside'"), std::string::npos)
        << status.last_error;
    EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                        "'rs_outside' AND table_name = 't'"),
              "1");
  }
  // Listed, the same insert applies.
  auto relay = OpenJournal("relay_listed");
  ASSERT_NE(relay, nullptr);
  ASSERT_TRUE(relay->Put({{1, insert}}, {}).ok());
  ApplierOptions o = OptionsFor(*b_, "outside_listed");
  o.databases = {"rs_outside"};
  Applier applier(o, relay.get());
  ASSERT_TRUE(applier.Start().ok());
  EXPECT_TRUE(applier.WaitForApplied(1, milliseconds(60000))) << applier.status().last_error;
  applier.Stop();
  EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM rs_outside.t"), "1");
}

// Issue 13: the databases a DDL's SQL text names are checked on the secondary too. A qualified
// target outside the list and a statement whose unqualified names would land in replsync's own
// schema (its default database missing here) are refused before they run; a statement naming
// only listed databases runs, also when its default database is missing here.
TEST_F(ApplierTest, DdlWhoseSqlNamesADatabaseOutsideIsRefusedBeforeItRuns) {
  Exec(b_,
       "SET sql_log_bin = 0; CREATE DATABASE rs_text_ok; CREATE DATABASE rs_text_other; "
       "CREATE TABLE rs_text_other.t (a INT); SET sql_log_bin = 1");
  auto stops_at = [&](const std::string& name, const std::string& entry) {
    auto relay = OpenJournal("relay_" + name);
    EXPECT_NE(relay, nullptr);
    if (relay == nullptr) return std::string();
    const std::string first = DdlEntry("rs_text_ok", "CREATE TABLE IF NOT EXISTS t1 (a INT)", 1000);
    EXPECT_TRUE(relay->Put({{1, first}, {2, entry}}, {}).ok());
    ApplierOptions o = OptionsFor(*b_, name);
    o.databases = {"rs_text_ok", "rs_text_gone"};
    Applier applier(o, relay.get());
    EXPECT_TRUE(applier.Start().ok());
    EXPECT_FALSE(applier.WaitForApplied(2, milliseconds(60000)));
    ApplierStatus status = applier.status();
    applier.Stop();
    EXPECT_EQ(status.applied_seq, 1u) << status.last_error;
    EXPECT_EQ(status.state, ApplierState::kError) << status.last_error;
    return status.last_error;
  };
  const std::string drop = stops_at("text_drop", DdlEntry("", "DROP TABLE rs_text_other.t", 2000));
  EXPECT_NE(drop.find("relay entry 2"), std::string::npos) << drop;
  EXPECT_NE(drop.find("touches 'rs_text_other',"), std::string::npos) << drop;
  EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                      "'rs_text_other' AND table_name = 't'"),
            "1");
  // rs_text_gone is listed but missing here: the applier would run the statement in replsync.
  const std::string fallback =
      stops_at("text_gone", DdlEntry("rs_text_gone", "CREATE TABLE rs_text_t2 (a INT)", 2000));
  EXPECT_NE(fallback.find("'rs_text_gone' does not exist on this secondary"), std::string::npos)
      << fallback;
  EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                      "'replsync' AND table_name = 'rs_text_t2'"),
            "0");

  auto relay = OpenJournal("relay_text_pass");
  ASSERT_NE(relay, nullptr);
  ASSERT_TRUE(
      relay->Put({{1, DdlEntry("", "CREATE TABLE rs_text_ok.t3 (a INT)", 1000)},
                  {2, DdlEntry("rs_text_gone", "CREATE TABLE rs_text_ok.t4 (a INT)", 2000)}},
                 {})
          .ok());
  ApplierOptions o = OptionsFor(*b_, "text_pass");
  o.databases = {"rs_text_ok", "rs_text_gone"};
  Applier applier(o, relay.get());
  ASSERT_TRUE(applier.Start().ok());
  EXPECT_TRUE(applier.WaitForApplied(2, milliseconds(60000))) << applier.status().last_error;
  applier.Stop();
  EXPECT_EQ(Value(b_, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                      "'rs_text_ok' AND table_name IN ('t1', 't3', 't4')"),
            "3");
}

// Race 1 of issue 11 against a real server, serially and with workers: the receiver stores a
// file change at the very sequence the applier has just found empty. On 75a7482 the applier
// read that sequence a second time on its database path and stopped for good ("relay entry N
// is a file change where a database transaction (or its next part) was expected"); now the
// entry is read once, found missing, waited for, read again and applied as a file change.
TEST_F(ApplierTest, FileChangeStoredRightAfterTheApplierFoundNothingIsApplied) {
  for (int workers : {1, 4}) {
    SCOPED_TRACE(fmt::format("workers {}", workers));
    const std::string db = fmt::format("rs_race_w{}", workers);
    Exec(a_, fmt::format("CREATE DATABASE {0}; CREATE TABLE {0}.t (id INT PRIMARY KEY, v INT); "
                         "INSERT INTO {0}.t VALUES (1, 1); INSERT INTO {0}.t VALUES (2, 2); "
                         "INSERT INTO {0}.t VALUES (3, 3)",
                         db));
    std::filesystem::remove_all(dir_ + "/journal");
    auto captured = Capture(db);
    ASSERT_NE(captured, nullptr);
    const uint64_t n = captured->last_seq();  // CREATE DATABASE, CREATE TABLE, three inserts
    ASSERT_EQ(n, 5u);
    std::vector<std::string> db_entries;
    for (uint64_t s = 1; s <= n; ++s) db_entries.push_back(captured->Get(s)->value());

    // The relay: the first three, then (stored by the "receiver" right after the applier's first
    // look at seq 4 found nothing) a file change at 4, then the last two inserts at 5 and 6.
    auto relay = OpenJournal(fmt::format("relay_w{}", workers));
    ASSERT_NE(relay, nullptr);
    for (uint64_t s = 1; s <= 3; ++s) ASSERT_TRUE(relay->Put({{s, db_entries[s - 1]}}, {}).ok());
    pb::JournalEntry folder;
    folder.mutable_file()->set_kind(pb::FileChange::DIRECTORY);
    folder.mutable_file()->set_path("reports");
    folder.mutable_file()->set_last_part(true);
    folder.mutable_file()->mutable_meta()->set_mode(0755);
    folder.mutable_file()->mutable_meta()->set_mtime_ns(1700000000000000000);
    folder.mutable_file()->set_parent_mtime_ns(1700000000000000000);
    std::atomic<int> injected{0};
    Journal* r = relay.get();
    relay->SetAfterGetForTest([&, r](uint64_t seq, bool found) {
      if (seq == 4 && !found && injected.exchange(1) == 0) {
        EXPECT_TRUE(r->Put({{4, folder.SerializeAsString()}}, {}).ok());
      }
    });
    const std::string repo = dir_ + fmt::format("/repo_w{}", workers);
    std::filesystem::create_directories(repo);
    ApplierOptions o = OptionsFor(*b_, db);
    o.workers = workers;
    o.repository = repo;
    Applier applier(o, relay.get());
    ASSERT_TRUE(applier.Start().ok());
    const bool four = applier.WaitForApplied(4, milliseconds(60000));
    EXPECT_TRUE(four) << ApplierStateName(applier.status().state) << ": "
                      << applier.status().last_error;
    EXPECT_EQ(injected.load(), 1) << "the interleaving was not injected: the test proved nothing";
    ASSERT_TRUE(relay->Put({{5, db_entries[3]}, {6, db_entries[4]}}, {}).ok());
    applier.Notify();
    EXPECT_TRUE(applier.WaitForApplied(6, milliseconds(60000))) << applier.status().last_error;
    EXPECT_NE(applier.status().state, ApplierState::kError) << applier.status().last_error;
    applier.Stop();
    EXPECT_TRUE(std::filesystem::is_directory(repo + "/reports"));
    ExpectSameTables(db);
  }
}

TEST_F(ApplierTest, LockWaitIsRetriedUntilTheLockIsReleased) {
  Exec(a_,
       "CREATE DATABASE rs_lock; CREATE TABLE rs_lock.t (id INT PRIMARY KEY, v INT); "
       "INSERT INTO rs_lock.t VALUES (1, 1); UPDATE rs_lock.t SET v = 2 WHERE id = 1");
  auto journal = Capture("rs_lock");
  ASSERT_NE(journal, nullptr);
  // Apply the schema and the insert, then hold the row while the update comes.
  Journal* j = journal.get();
  const uint64_t last = j->last_seq();
  Exec(b_, "SET GLOBAL innodb_lock_wait_timeout = 1");
  {
    // Apply all but the update.
    ApplierOptions o = OptionsFor(*b_, "lock");
    o.crash_point = [&](std::string_view point, uint64_t seq) {
      return point == "after_rows" && seq == last;
    };
    Applier applier(o, j);
    ASSERT_TRUE(applier.Start().ok());
    applier.WaitForApplied(last, milliseconds(30000));
    applier.Stop();
    ASSERT_EQ(AppliedSeq("lock"), std::to_string(last - 1));
  }
  auto holder = MysqlSession::Open(MysqlFor(*b_));
  ASSERT_TRUE(holder.ok()) << holder.status().ToString();
  ASSERT_TRUE((*holder)->Execute("START TRANSACTION").ok());
  ASSERT_TRUE((*holder)->Execute("SELECT * FROM rs_lock.t WHERE id = 1 FOR UPDATE").ok());
  Applier applier(OptionsFor(*b_, "lock"), j);
  ASSERT_TRUE(applier.Start().ok());
  const auto deadline = Clock::now() + seconds(30);
  while (applier.status().retries < 2 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ApplierStatus waiting = applier.status();
  EXPECT_GE(waiting.retries, 2u);
  EXPECT_NE(waiting.last_error.find("1205"), std::string::npos) << waiting.last_error;
  EXPECT_EQ(waiting.applied_seq, last - 1);
  ASSERT_TRUE((*holder)->Execute("ROLLBACK").ok());
  EXPECT_TRUE(applier.WaitForApplied(last, milliseconds(30000)));
  applier.Stop();
  Exec(b_, "SET GLOBAL innodb_lock_wait_timeout = DEFAULT");
  ExpectSameTables("rs_lock");
}

TEST_F(ApplierTest, SecondaryServerCrashIsRetriedAndResumesExactly) {
  const Workload w = CounterWorkload("rs_restart", 300);
  for (const std::string& sql : w.statements) ASSERT_NO_FATAL_FAILURE(Exec(a_, sql));
  auto journal = Capture(w.db, 128 << 10);
  ASSERT_NE(journal, nullptr);
  Applier applier(OptionsFor(*b_, "restart"), journal.get());
  ASSERT_TRUE(applier.Start().ok());
  // Crash the secondary's server while the applier is busy.
  const auto deadline = Clock::now() + seconds(60);
  while (applier.applied_seq() < 20 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  b_->Kill();
  const uint64_t at_kill = applier.applied_seq();
  std::this_thread::sleep_for(milliseconds(500));
  ApplierStatus during = applier.status();
  EXPECT_TRUE(during.state == ApplierState::kRetrying || during.state == ApplierState::kConnecting)
      << ApplierStateName(during.state);
  EXPECT_NE(during.waiting_for, "");
  ASSERT_TRUE(b_->Restart().ok());
  EXPECT_TRUE(applier.WaitForApplied(journal->last_seq(), milliseconds(300000)))
      << applier.status().last_error;
  applier.Stop();
  EXPECT_LT(at_kill, journal->last_seq());
  EXPECT_EQ(Value(b_, "SELECT n FROM rs_restart.counter"), "1300");
  ExpectSameTables(w.db);
}

// Throughput of the two row-apply mechanisms on one simple table, for the design decision.
// It takes a while and prints rows/s.
// A measurement, not a check: run it with
//   build/tests/applier_test --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'
TEST_F(ApplierTest, DISABLED_BinlogVersusSqlThroughput) {
  constexpr int kSmall = 5000;    // single-row transactions
  constexpr int kBulkTxns = 100;  // transactions of kBulkRows rows
  constexpr int kBulkRows = 500;
  Exec(a_,
       "CREATE DATABASE rs_bench; CREATE TABLE rs_bench.t (id INT PRIMARY KEY, a INT, "
       "b VARCHAR(64), c DATETIME)");
  for (int i = 0; i < kSmall; ++i) {
    Exec(a_, fmt::format("INSERT INTO rs_bench.t VALUES ({0}, {0}, 'small-{0}', "
                         "'2024-01-01 00:00:00')",
                         i));
  }
  for (int t = 0; t < kBulkTxns; ++t) {
    Exec(a_, fmt::format("INSERT INTO rs_bench.t SELECT {0} + seq, seq, CONCAT('bulk-', seq), "
                         "'2024-01-01 00:00:00' FROM rs_bench.seq_1_to_{1}",
                         1000000 + t * kBulkRows, kBulkRows));
  }
  auto journal = Capture("rs_bench");
  ASSERT_NE(journal, nullptr);
  // (a) BINLOG replay: the schema first, then timed.
  const uint64_t schema_seqs = 2;  // CREATE DATABASE, CREATE TABLE
  {
    ApplierOptions o = OptionsFor(*b_, "bench");
    Applier applier(o, journal.get());
    ASSERT_TRUE(applier.Start().ok());
    ASSERT_TRUE(applier.WaitForApplied(schema_seqs, milliseconds(60000)));
    applier.Stop();
  }
  // Time the small transactions and the bulk ones separately.
  auto time_applier = [&](uint64_t upto) {
    const auto t0 = Clock::now();
    Applier applier(OptionsFor(*b_, "bench"), journal.get());
    EXPECT_TRUE(applier.Start().ok());
    EXPECT_TRUE(applier.WaitForApplied(upto, milliseconds(600000)));
    applier.Stop();
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  const double binlog_small = time_applier(schema_seqs + kSmall);
  const double binlog_bulk = time_applier(journal->last_seq());
  ExpectSameTables("rs_bench");

  // (b) Generated SQL with the same transaction shape and position row, on a copy of the table.
  Exec(b_,
       "SET sql_log_bin = 0; CREATE TABLE rs_bench.t2 LIKE rs_bench.t; "
       "CREATE TABLE rs_bench.pos (channel VARCHAR(64) PRIMARY KEY, seq BIGINT UNSIGNED)");
  auto session = MysqlSession::Open(MysqlFor(*b_));
  ASSERT_TRUE(session.ok());
  MysqlSession& s = **session;
  ASSERT_TRUE(s.Execute("SET SESSION sql_log_bin = 0").ok());
  uint64_t seq = 0;
  // Small transactions as four statements (four round trips), or as one multi-statement.
  auto sql_small = [&](bool batched, int base) {
    const auto t0 = Clock::now();
    for (int i = 0; i < kSmall; ++i) {
      std::vector<std::string> txn = {
          "START TRANSACTION",
          fmt::format("INSERT INTO rs_bench.t2 VALUES ({0}, {0}, 'small-{0}', "
                      "'2024-01-01 00:00:00')",
                      base + i),
          fmt::format("INSERT INTO rs_bench.pos VALUES ('b', {0}) ON DUPLICATE KEY UPDATE "
                      "seq = VALUES(seq)",
                      ++seq),
          "COMMIT"};
      if (batched) {
        EXPECT_TRUE(s.ExecuteBatch(txn).ok());
      } else {
        for (const std::string& sql : txn) EXPECT_TRUE(s.Execute(sql).ok());
      }
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  // Bulk: one INSERT per row (a row-by-row applier), or one multi-row INSERT per statement.
  auto sql_bulk = [&](bool multi_row, int base) {
    const auto t0 = Clock::now();
    for (int t = 0; t < kBulkTxns; ++t) {
      EXPECT_TRUE(s.Execute("START TRANSACTION").ok());
      std::string multi = "INSERT INTO rs_bench.t2 VALUES ";
      for (int r = 1; r <= kBulkRows; ++r) {
        const std::string values = fmt::format("({0}, {1}, 'bulk-{1}', '2024-01-01 00:00:00')",
                                               base + t * kBulkRows + r, r);
        if (multi_row) {
          multi += (r > 1 ? "," : "") + values;
        } else {
          EXPECT_TRUE(s.Execute("INSERT INTO rs_bench.t2 VALUES " + values).ok());
        }
      }
      if (multi_row) {
        EXPECT_TRUE(s.Execute(multi).ok());
      }
      EXPECT_TRUE(s.Execute(fmt::format("INSERT INTO rs_bench.pos VALUES ('b', {0}) ON "
                                        "DUPLICATE KEY UPDATE seq = VALUES(seq)",
                                        ++seq))
                      .ok());
      EXPECT_TRUE(s.Execute("COMMIT").ok());
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  const double sql_small_s = sql_small(false, 0);
  const double sql_small_batched_s = sql_small(true, 500000);
  const double sql_rows_s = sql_bulk(false, 1000000);
  const double sql_multi_s = sql_bulk(true, 5000000);
  const double bulk_rows = kBulkTxns * kBulkRows;
  std::printf(
      "apply throughput, %d single-row transactions: BINLOG %.0f txn/s, SQL %.0f txn/s, SQL in "
      "one round trip %.0f txn/s\n"
      "apply throughput, %d transactions x %d rows: BINLOG %.0f rows/s, SQL row by row %.0f "
      "rows/s, SQL multi-row %.0f rows/s\n",
      kSmall, kSmall / binlog_small, kSmall / sql_small_s, kSmall / sql_small_batched_s, kBulkTxns,
      kBulkRows, bulk_rows / binlog_bulk, bulk_rows / sql_rows_s, bulk_rows / sql_multi_s);
}

// Parallel apply (workers > 1): transactions with disjoint writesets run at the same time, yet
// every commit happens in source order — a sampler on the secondary never sees a later
// transaction without an earlier one — and a conflict the writeset cannot see (a unique
// secondary key value moving from one row to another) is caught: a worker is made to overtake
// the DELETE before it, its INSERT fails with a duplicate key, everything in flight is rolled
// back and applied one at a time (which also covers the parent and child rows right behind).
TEST_F(ApplierTest, ParallelApplyCommitsInSourceOrderAndSurvivesHiddenConflicts) {
  std::vector<std::string> txns = {
      "CREATE DATABASE rs_par",
      "CREATE TABLE rs_par.seqlog (id INT PRIMARY KEY)",
      "CREATE TABLE rs_par.k (id INT PRIMARY KEY, u INT NOT NULL, UNIQUE KEY (u))",
      "CREATE TABLE rs_par.parent (id INT PRIMARY KEY)",
      "CREATE TABLE rs_par.child (id INT PRIMARY KEY, pid INT NOT NULL, "
      "FOREIGN KEY (pid) REFERENCES rs_par.parent (id))",
      "CREATE TABLE rs_par.hot (id INT PRIMARY KEY, n INT)",
      "INSERT INTO rs_par.hot VALUES (1, 0)",
      "CREATE TABLE rs_par.m (id INT PRIMARY KEY, n INT) ENGINE=MyISAM",
  };
  std::set<uint64_t> delayed;  // seqs a worker sleeps before, so that the next one overtakes
  for (int i = 1; i <= 200; ++i) {
    txns.push_back(fmt::format("INSERT INTO rs_par.seqlog VALUES ({})", i));
    txns.push_back("UPDATE rs_par.hot SET n = n + 1 WHERE id = 1");
    if (i % 10 == 0) {
      txns.push_back(fmt::format("INSERT INTO rs_par.k VALUES ({}, {})", i, i));
      txns.push_back(fmt::format("DELETE FROM rs_par.k WHERE id = {}", i));
      delayed.insert(txns.size());
      txns.push_back(fmt::format("INSERT INTO rs_par.k VALUES ({}, {})", i + 100000, i));
      txns.push_back(fmt::format("INSERT INTO rs_par.parent VALUES ({})", i));
      delayed.insert(txns.size());
      txns.push_back(fmt::format("INSERT INTO rs_par.child VALUES ({}, {})", i, i));
    }
    if (i % 25 == 0) txns.push_back(fmt::format("INSERT INTO rs_par.m VALUES ({}, {})", i, i));
  }
  std::string bulk = "INSERT INTO rs_par.seqlog VALUES (201)";  // one 100-row transaction
  for (int i = 202; i <= 300; ++i) bulk += fmt::format(", ({})", i);
  txns.push_back(bulk);
  for (const std::string& sql : txns) Exec(a_, sql);
  auto journal = Capture("rs_par");
  ASSERT_NE(journal, nullptr);
  ASSERT_EQ(journal->last_seq(), txns.size()) << "one journal entry per statement expected";

  // The sampler: seqlog ids arrive in order, so at any instant COUNT(*) = MAX(id).
  std::atomic<bool> stop_sampling{false};
  std::atomic<int> samples{0};
  std::atomic<int> out_of_order{0};
  std::string first_bad;
  std::thread sampler([&] {
    MysqlThreadScope scope;
    auto session = MysqlSession::Open(MysqlFor(*b_));
    if (!session.ok()) return;
    while (!stop_sampling) {
      auto rows = (*session)->Query("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM rs_par.seqlog");
      if (rows.ok() && !rows->empty()) {
        ++samples;
        if ((*rows)[0][0] != (*rows)[0][1] && out_of_order++ == 0) {
          first_bad = *(*rows)[0][0] + " rows, max id " + *(*rows)[0][1];
        }
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
  });

  ApplierOptions o = OptionsFor(*b_, "par");
  o.workers = 4;
  o.before_worker_apply = [&](uint64_t seq) {
    if (delayed.count(seq)) std::this_thread::sleep_for(milliseconds(150));
  };
  Applier applier(o, journal.get());
  ASSERT_TRUE(applier.Start().ok());
  const bool done = applier.WaitForApplied(journal->last_seq(), milliseconds(300000));
  ApplierStatus status = applier.status();
  applier.Stop();
  stop_sampling = true;
  sampler.join();
  ASSERT_TRUE(done) << "applied " << status.applied_seq << " of " << journal->last_seq() << ": "
                    << status.last_error;
  // Right after the last commit the applier may still be "applying" or already "waiting".
  EXPECT_NE(status.state, ApplierState::kError) << status.last_error;
  EXPECT_EQ(status.workers, 4);
  EXPECT_GT(status.parallel_applied, 200u);
  EXPECT_GE(status.serial_fallbacks, 1u) << "no worker overtook a delayed transaction";
  EXPECT_GT(samples.load(), 20);
  EXPECT_EQ(out_of_order.load(), 0) << "the sampler saw " << first_bad;
  EXPECT_EQ(AppliedSeq("par"), std::to_string(journal->last_seq()));
  EXPECT_EQ(Value(b_, "SELECT n FROM rs_par.hot"), "200");
  ExpectSameTables("rs_par");
}

}  // namespace
}  // namespace replsync::apply
