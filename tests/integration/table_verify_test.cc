// VerifyTable against two real MariaDB servers: the same tables with the same data are created on
// both, then differences are planted on the secondary only, and each must be reported exactly
// (counts and sample keys); identical tables must be equal with the right row count.
#include "sync/verify/table_verify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "tests/harness/mariadb_server.h"
#include "sync/verify/table_repair.h"

namespace replsync::cli {

using verify::RepairTable;
using verify::TableRepairCounts;
using verify::TableRepairOptions;
using verify::TableVerifyOptions;
using verify::TableVerifyResult;
using verify::VerifyTable;
using verify::WhyNotRepairable;
namespace {

using replsync::testing::MariadbServer;

// Chunks of exactly `rows` primary rows (no sizing by time), bisected down to `bisect_rows`.
TableVerifyOptions FixedChunks(uint64_t rows,
                               size_t bisect_rows = TableVerifyOptions{}.bisect_rows) {
  TableVerifyOptions options;
  options.chunk_rows = rows;
  options.chunk_target = std::chrono::milliseconds(0);
  options.bisect_rows = bisect_rows;
  return options;
}

class TableVerifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    replsync::testing::MariadbServerOptions options;
    options.server_id = 1;
    auto a = MariadbServer::Start(options);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    primary_server_ = std::move(*a).release();
    options.server_id = 2;
    auto b = MariadbServer::Start(options);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    secondary_server_ = std::move(*b).release();
  }
  static void TearDownTestSuite() {
    delete primary_server_;
    delete secondary_server_;
    primary_server_ = secondary_server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(primary_server_, nullptr);
    ASSERT_NE(secondary_server_, nullptr);
    primary_ = Connect(primary_server_);
    secondary_ = Connect(secondary_server_);
    ASSERT_NE(primary_, nullptr);
    ASSERT_NE(secondary_, nullptr);
    db_ =
        std::string("verify_") +
        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()).substr(0, 50);
    for (MariadbServer* server : {primary_server_, secondary_server_}) {
      Exec(server, "DROP DATABASE IF EXISTS " + db_ + "; CREATE DATABASE " + db_);
    }
  }

  static std::unique_ptr<MysqlSession> Connect(MariadbServer* server) {
    MysqlOptions o;
    o.host = "127.0.0.1";
    o.port = server->port();
    o.user = "root";
    o.password = "";
    auto session = MysqlSession::Open(o);
    EXPECT_TRUE(session.ok()) << session.status().ToString();
    return session.ok() ? std::move(*session) : nullptr;
  }

  static void Exec(MariadbServer* server, const std::string& sql) {
    Status st = server->Execute(sql);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\nSQL: " << sql.substr(0, 500);
  }
  // Runs `sql` in the test's database on both servers.
  void Both(const std::string& sql) {
    std::string in_db = "USE " + db_ + "; " + sql;
    Exec(primary_server_, in_db);
    Exec(secondary_server_, in_db);
  }
  // Runs `sql` in the test's database on the secondary only: the planted difference.
  void OnSecondary(const std::string& sql) { Exec(secondary_server_, "USE " + db_ + "; " + sql); }

  // Opens the snapshots as `replsync verify` does, verifies, and ends the snapshots.
  TableVerifyResult Verify(const std::string& table, TableVerifyOptions options = {}) {
    for (MysqlSession* s : {primary_.get(), secondary_.get()}) {
      Status st = s->Execute("SET SESSION time_zone = '+00:00'");
      EXPECT_TRUE(st.ok()) << st.ToString();
      st = s->Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT");
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    auto result = VerifyTable(primary_.get(), secondary_.get(), db_, table, options);
    for (MysqlSession* s : {primary_.get(), secondary_.get()}) {
      Status st = s->Execute("COMMIT");
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    if (!result.ok()) return {};
    EXPECT_EQ(result->db, db_);
    EXPECT_EQ(result->table, table);
    return *result;
  }

  static std::vector<std::string> Sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  }

  static void ExpectCounts(const TableVerifyResult& r, const std::string& status, uint64_t rows,
                           uint64_t missing, uint64_t extra, uint64_t changed) {
    EXPECT_EQ(r.status, status) << r.error;
    EXPECT_EQ(r.rows, rows);
    EXPECT_EQ(r.missing_rows, missing);
    EXPECT_EQ(r.extra_rows, extra);
    EXPECT_EQ(r.changed_rows, changed);
  }

  static MariadbServer* primary_server_;
  static MariadbServer* secondary_server_;
  std::unique_ptr<MysqlSession> primary_;
  std::unique_ptr<MysqlSession> secondary_;
  std::string db_;
};

MariadbServer* TableVerifyTest::primary_server_ = nullptr;
MariadbServer* TableVerifyTest::secondary_server_ = nullptr;

// A table with one column of most types, identical on both sides.
constexpr char kManyTypes[] =
    "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), c CHAR(5), tx TEXT, lt LONGTEXT, "
    "b VARBINARY(16), bl BLOB, d DOUBLE, f FLOAT, dc DECIMAL(12,4), dt DATETIME(6), "
    "ts TIMESTAMP(3) NULL, tm TIME(2), da DATE, y YEAR, bt BIT(12), e ENUM('x','y','z'), "
    "st SET('p','q'), j JSON, g POINT, u BIGINT UNSIGNED, "
    "virt INT AS (id * 2) VIRTUAL, stored INT AS (id * 3) PERSISTENT)";
constexpr char kManyTypesRows[] =
    "INSERT INTO t (id, v, c, tx, lt, b, bl, d, f, dc, dt, ts, tm, da, y, bt, e, st, j, g, u) "
    "SELECT seq, CONCAT('v', seq), IF(seq % 7 = 0, NULL, 'ab'), REPEAT('t', seq), "
    "REPEAT('long', seq), UNHEX(LPAD(HEX(seq), 8, '0')), UNHEX(SHA2(seq, 256)), seq / 3e0, "
    "seq / 7e0, seq / 8, '2024-02-29 12:34:56.123456' + INTERVAL seq SECOND, "
    "'2024-03-01 00:00:00.5' + INTERVAL seq MINUTE, '12:00:00.25', '2024-01-01', 2000 + seq % 50, "
    "seq % 4096, ELT(1 + seq % 3, 'x', 'y', 'z'), 'p,q', JSON_OBJECT('k', seq), "
    "POINT(seq, seq / 2), 18446744073709551615 - seq FROM seq_1_to_300";

TEST_F(TableVerifyTest, IdenticalTablesAreEqual) {
  Both(kManyTypes);
  Both(kManyTypesRows);
  Both(
      "CREATE TABLE k (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (a, b)); "
      "INSERT INTO k SELECT seq % 10, CONCAT('b', seq), seq FROM seq_1_to_250");
  Both(
      "CREATE TABLE nokey (a INT, b VARCHAR(10)); "
      "INSERT INTO nokey SELECT seq % 5, 'same' FROM seq_1_to_40");
  Both("CREATE TABLE empty_t (id INT PRIMARY KEY)");

  TableVerifyOptions options = FixedChunks(50);
  std::vector<uint64_t> progress;
  options.progress = [&](uint64_t rows) { progress.push_back(rows); };
  TableVerifyResult r = Verify("t", options);
  ExpectCounts(r, "equal", 300, 0, 0, 0);
  EXPECT_TRUE(r.sample_keys.empty());
  EXPECT_TRUE(r.error.empty()) << r.error;
  ASSERT_FALSE(progress.empty());
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_EQ(progress.back(), 300u);

  ExpectCounts(Verify("k", options), "equal", 250, 0, 0, 0);
  ExpectCounts(Verify("nokey"), "equal", 40, 0, 0, 0);
  ExpectCounts(Verify("empty_t"), "equal", 0, 0, 0, 0);
}

TEST_F(TableVerifyTest, ChangeInEveryColumnTypeIsFound) {
  Both(kManyTypes);
  Both(kManyTypesRows);
  OnSecondary(
      "UPDATE t SET c = 'ab ' WHERE id = 1; UPDATE t SET tx = CONCAT(tx, 'x') WHERE id = 2; "
      "UPDATE t SET lt = CONCAT(lt, 'x') WHERE id = 3; UPDATE t SET b = UNHEX('00') WHERE id = 4; "
      "UPDATE t SET bl = NULL WHERE id = 5; UPDATE t SET dc = dc + 0.0001 WHERE id = 6; "
      "UPDATE t SET ts = ts + INTERVAL 1 MICROSECOND WHERE id = 8; "
      "UPDATE t SET ts = ts + INTERVAL 1000 MICROSECOND WHERE id = 9; "
      "UPDATE t SET tm = '12:00:00.26' WHERE id = 10; UPDATE t SET da = '2024-01-02' WHERE id = 11;"
      "UPDATE t SET y = 1999 WHERE id = 12; UPDATE t SET bt = bt ^ 2048 WHERE id = 13; "
      "UPDATE t SET e = IF(e = 'x', 'y', 'x') WHERE id = 15; UPDATE t SET st = 'p' WHERE id = 16; "
      "UPDATE t SET j = JSON_OBJECT('k', 0) WHERE id = 17; "
      "UPDATE t SET g = POINT(0, 0) WHERE id = 18; UPDATE t SET u = 0 WHERE id = 19");
  // id 1: CHAR drops trailing spaces when storing, so 'ab ' is stored as 'ab': no change. id 8:
  // TIMESTAMP(3) keeps milliseconds, so one microsecond more is rounded away: no change.
  TableVerifyResult r = Verify("t");
  ExpectCounts(r, "differs", 300, 0, 0, 15);
  EXPECT_EQ(r.sample_keys, (std::vector<std::string>{"id=2", "id=3", "id=4", "id=5", "id=6", "id=9",
                                                     "id=10", "id=11", "id=12", "id=13"}));
}

TEST_F(TableVerifyTest, EnumAndTemporalKeysAreRangedAndReported) {
  Both(
      "CREATE TABLE k (e ENUM('z','a','m') NOT NULL, dt DATETIME(6) NOT NULL, n INT NOT NULL, "
      "v INT, PRIMARY KEY (e, dt, n)); "
      "INSERT INTO k SELECT ELT(1 + seq % 3, 'z', 'a', 'm'), "
      "'2024-01-01' + INTERVAL (seq % 17) * 1000001 MICROSECOND, seq, seq FROM seq_1_to_600");
  OnSecondary(
      "UPDATE k SET v = 0 WHERE n = 301; DELETE FROM k WHERE n = 7; "
      "INSERT INTO k VALUES ('a', '2023-12-31 23:59:59.999999', 1, 0)");
  TableVerifyOptions options = FixedChunks(25, 3);
  TableVerifyResult r = Verify("k", options);
  ExpectCounts(r, "differs", 600, 1, 1, 1);
  EXPECT_EQ(Sorted(r.sample_keys), Sorted({"e='a',dt='2024-01-01 00:00:07.000007',n=7",
                                           "e='a',dt='2023-12-31 23:59:59.999999',n=1",
                                           "e='a',dt='2024-01-01 00:00:12.000012',n=301"}));
}

TEST_F(TableVerifyTest, ChangedMissingAndExtraRowsAreFoundInsideAndBeyondTheKeyRange) {
  Both(
      "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); "
      "INSERT INTO t SELECT seq * 2, CONCAT('v', seq) FROM seq_1_to_100");  // ids 2..200
  OnSecondary(
      "UPDATE t SET v = 'changed' WHERE id = 10; DELETE FROM t WHERE id = 14; "
      "INSERT INTO t VALUES (51, 'inside'), (1, 'below'), (-5, 'far below'), "
      "(201, 'above'), (1000, 'far above')");
  for (uint64_t chunk : {7, 1000}) {
    SCOPED_TRACE("chunk_rows " + std::to_string(chunk));
    TableVerifyOptions options = FixedChunks(chunk, 2);
    TableVerifyResult r = Verify("t", options);
    ExpectCounts(r, "differs", 100, 1, 5, 1);
    EXPECT_EQ(Sorted(r.sample_keys),
              Sorted({"id=10", "id=14", "id=51", "id=1", "id=-5", "id=201", "id=1000"}));
    EXPECT_TRUE(r.error.empty()) << r.error;
  }
  TableVerifyOptions few;
  few.max_sample_keys = 3;
  EXPECT_EQ(Verify("t", few).sample_keys.size(), 3u);
}

TEST_F(TableVerifyTest, ValueDifferencesThatComparisonsHideAreChanges) {
  Both(
      "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), n VARCHAR(20), d DOUBLE, "
      "dt DATETIME(6), f FLOAT, ci VARCHAR(10) COLLATE utf8mb4_general_ci); "
      "INSERT INTO t SELECT seq, 'abc', IF(seq = 3, 'NULL', ''), 0.1e0, "
      "'2024-01-01 00:00:00.000001', 0.1e0, 'Case' FROM seq_1_to_10");
  OnSecondary("UPDATE t SET v = 'abc ' WHERE id = 1");                         // trailing space
  OnSecondary("UPDATE t SET n = NULL WHERE id = 2");                           // NULL vs ''
  OnSecondary("UPDATE t SET n = NULL WHERE id = 3");                           // NULL vs 'NULL'
  OnSecondary("UPDATE t SET d = 0.10000000000000002e0 WHERE id = 4");          // last bit
  OnSecondary("UPDATE t SET dt = '2024-01-01 00:00:00.000002' WHERE id = 5");  // 1 microsecond
  OnSecondary("UPDATE t SET f = f + 0.00000001e0 WHERE id = 6");               // float last bits
  OnSecondary("UPDATE t SET ci = 'case' WHERE id = 7");                        // letter case
  // The planted values really differ from the primary's only as intended.
  auto bits = secondary_server_->Query("SELECT d = 0.1e0, d > 0.1e0, f = (SELECT f FROM " + db_ +
                                       ".t WHERE id = 1) FROM " + db_ +
                                       ".t WHERE id IN (4, 6) "
                                       "ORDER BY id");
  ASSERT_TRUE(bits.ok()) << bits.status().ToString();
  ASSERT_EQ(bits->size(), 2u);
  EXPECT_EQ((*bits)[0][0], "0");
  EXPECT_EQ((*bits)[0][1], "1");
  EXPECT_EQ((*bits)[1][2], "0");

  TableVerifyResult r = Verify("t");
  ExpectCounts(r, "differs", 10, 0, 0, 7);
  EXPECT_EQ(Sorted(r.sample_keys),
            Sorted({"id=1", "id=2", "id=3", "id=4", "id=5", "id=6", "id=7"}));
}

TEST_F(TableVerifyTest, CompositeKeyReportsEveryKeyColumn) {
  Both(
      "CREATE TABLE k (a INT NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (a, b)); "
      "INSERT INTO k SELECT seq % 10, CONCAT('b', seq), seq FROM seq_1_to_500");
  OnSecondary(
      "UPDATE k SET v = -1 WHERE a = 3 AND b = 'b13'; "
      "DELETE FROM k WHERE a = 7 AND b = 'b107'; "
      "INSERT INTO k VALUES (3, 'b13x', 0), (11, 'it''s', 0)");
  TableVerifyOptions options = FixedChunks(20, 4);
  TableVerifyResult r = Verify("k", options);
  ExpectCounts(r, "differs", 500, 1, 2, 1);
  EXPECT_EQ(Sorted(r.sample_keys),
            Sorted({"a=3,b='b13'", "a=7,b='b107'", "a=3,b='b13x'", "a=11,b='it\\'s'"}));
}

TEST_F(TableVerifyTest, StringAndBinaryKeysAreRangedAndReported) {
  Both(
      "CREATE TABLE s (name VARCHAR(20) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT); "
      "INSERT INTO s SELECT CONCAT('n', seq, '\\'\"\\\\'), seq FROM seq_1_to_200; "
      "CREATE TABLE bin (k VARBINARY(8) PRIMARY KEY, v INT); "
      "INSERT INTO bin SELECT UNHEX(LPAD(HEX(seq * 997), 8, '0')), seq FROM seq_1_to_200");
  OnSecondary(
      "UPDATE s SET v = 0 WHERE name = 'n150''\"\\\\'; "
      "UPDATE bin SET v = 0 WHERE k = UNHEX(LPAD(HEX(5 * 997), 8, '0'))");
  TableVerifyOptions options = FixedChunks(16, 3);
  TableVerifyResult r = Verify("s", options);
  ExpectCounts(r, "differs", 200, 0, 0, 1);
  EXPECT_EQ(r.sample_keys, std::vector<std::string>{"name='n150\\'\"\\\\'"});
  r = Verify("bin", options);
  ExpectCounts(r, "differs", 200, 0, 0, 1);
  EXPECT_EQ(r.sample_keys, std::vector<std::string>{"k=X'00001379'"});
}

TEST_F(TableVerifyTest, TableWithoutKeyIsComparedAsMultiset) {
  Both(
      "CREATE TABLE nokey (a INT, b VARCHAR(10)); "
      "INSERT INTO nokey SELECT seq % 5, 'row' FROM seq_1_to_40; "  // every row 8 times
      "INSERT INTO nokey VALUES (100, 'dup'), (100, 'dup'), (NULL, NULL), (200, 'x')");
  OnSecondary("DELETE FROM nokey WHERE a = 100 LIMIT 1");
  TableVerifyResult r = Verify("nokey");
  ExpectCounts(r, "differs", 44, 1, 0, 0);
  ASSERT_EQ(r.sample_keys.size(), 1u);
  EXPECT_EQ(r.sample_keys[0].size(), 12u);
  EXPECT_EQ(r.sample_keys[0].find_first_not_of("0123456789abcdef"), std::string::npos)
      << r.sample_keys[0];

  // A changed row without a key: one missing and one extra.
  OnSecondary("UPDATE nokey SET b = 'y' WHERE a = 200; INSERT INTO nokey VALUES (NULL, NULL)");
  r = Verify("nokey");
  ExpectCounts(r, "differs", 44, 2, 2, 0);
  EXPECT_EQ(r.sample_keys.size(), 4u);
}

TEST_F(TableVerifyTest, MultisetIgnoresRowOrderButNotDuplicates) {
  Both("CREATE TABLE bag (a INT, b VARCHAR(40))");
  // The same 6,000 rows (every one twice) written in opposite orders on the two servers.
  Exec(primary_server_, "USE " + db_ +
                            "; INSERT INTO bag SELECT seq % 3000, MD5(seq % 3000) FROM "
                            "seq_1_to_6000 ORDER BY seq");
  OnSecondary(
      "INSERT INTO bag SELECT seq % 3000, MD5(seq % 3000) FROM seq_1_to_6000 ORDER BY seq DESC");
  TableVerifyResult r = Verify("bag");
  ExpectCounts(r, "equal", 6000, 0, 0, 0);
  // One copy of a row replaced by a third copy of another: the counts tell, not just the set.
  OnSecondary("DELETE FROM bag WHERE a = 7 LIMIT 1; INSERT INTO bag VALUES (8, MD5(8))");
  r = Verify("bag");
  ExpectCounts(r, "differs", 6000, 1, 1, 0);
}

TEST_F(TableVerifyTest, UniqueNotNullKeyIsUsedAndNullableUniqueIsNot) {
  Both(
      "CREATE TABLE u (code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY uk (code)); "
      "INSERT INTO u SELECT CONCAT('c', seq), seq FROM seq_1_to_30; "
      "CREATE TABLE un (code VARCHAR(10) NULL, v INT, UNIQUE KEY uk (code)); "
      "INSERT INTO un SELECT CONCAT('c', seq), seq FROM seq_1_to_30");
  OnSecondary("UPDATE u SET v = 0 WHERE code = 'c3'; UPDATE un SET v = 0 WHERE code = 'c3'");
  TableVerifyResult r = Verify("u");
  ExpectCounts(r, "differs", 30, 0, 0, 1);
  EXPECT_EQ(r.sample_keys, std::vector<std::string>{"code='c3'"});
  r = Verify("un");
  ExpectCounts(r, "differs", 30, 1, 1, 0);
  EXPECT_EQ(r.sample_keys.size(), 2u);
}

TEST_F(TableVerifyTest, SingleChangedRowAmong25000IsFoundByBisection) {
  Both(
      "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(40), d DOUBLE); "
      "INSERT INTO big SELECT seq, MD5(seq), seq / 11e0 FROM seq_1_to_25000");
  OnSecondary("UPDATE big SET v = 'changed' WHERE id = 12345");
  for (auto target : {std::chrono::milliseconds(0), std::chrono::milliseconds(250)}) {
    SCOPED_TRACE("chunk_target " + std::to_string(target.count()));
    TableVerifyOptions options;
    options.chunk_rows = 1000;
    options.chunk_target = target;
    uint64_t calls = 0, last = 0;
    options.progress = [&](uint64_t rows) {
      ++calls;
      EXPECT_GE(rows, last);
      last = rows;
    };
    TableVerifyResult r = Verify("big", options);
    ExpectCounts(r, "differs", 25000, 0, 0, 1);
    EXPECT_EQ(r.sample_keys, std::vector<std::string>{"id=12345"});
    EXPECT_EQ(last, 25000u);
    if (target.count() == 0) {
      EXPECT_EQ(calls, 26u);  // 25 full chunks and the open-ended one
    }
  }
}

TEST_F(TableVerifyTest, DefinitionMismatchAndMissingTableDiffer) {
  Both("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))");
  Both("INSERT INTO t VALUES (1, 'a'), (2, 'b')");
  OnSecondary("ALTER TABLE t MODIFY v VARCHAR(20)");
  TableVerifyResult r = Verify("t");
  EXPECT_EQ(r.status, "differs");
  EXPECT_NE(r.error.find("definitions differ"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("varchar(20)"), std::string::npos) << r.error;

  Exec(primary_server_, "CREATE TABLE " + db_ + ".only_primary (id INT PRIMARY KEY); INSERT INTO " +
                            db_ + ".only_primary VALUES (1), (2), (3)");
  r = Verify("only_primary");
  EXPECT_EQ(r.status, "differs");
  EXPECT_EQ(r.missing_rows, 3u);
  EXPECT_NE(r.error.find("missing on the secondary"), std::string::npos) << r.error;

  r = Verify("nowhere");
  EXPECT_EQ(r.status, "unverified");
  EXPECT_FALSE(r.error.empty());
}

TEST_F(TableVerifyTest, ChunkTheServerCutsShortIsBisectedNotTrusted) {
  // With max_allowed_packet at 1 MB, one chunk of 300 rows of 6,000 bytes (1.8 MB of encodings)
  // is more than the server lets GROUP_CONCAT hold, so its summary is cut short on both sides;
  // the one difference sits in the last row, past the cut.
  Both(
      "CREATE TABLE wide (id INT PRIMARY KEY, b BLOB); "
      "INSERT INTO wide SELECT seq, REPEAT(CHAR(65 + seq % 26), 6000) FROM seq_1_to_300");
  OnSecondary("UPDATE wide SET b = CONCAT(LEFT(b, 5999), '!') WHERE id = 300");
  std::vector<std::string> packets;
  for (MariadbServer* server : {primary_server_, secondary_server_}) {
    auto packet = server->Query("SELECT @@global.max_allowed_packet");
    ASSERT_TRUE(packet.ok()) << packet.status().ToString();
    packets.push_back((*packet)[0][0]);
    Exec(server, "SET GLOBAL max_allowed_packet = 1048576");
  }
  primary_ = Connect(primary_server_);  // sessions take the global value when they connect
  secondary_ = Connect(secondary_server_);
  TableVerifyOptions options = FixedChunks(1000);
  options.max_chunk_bytes = 0;  // no estimate: the server's cut must be noticed
  TableVerifyResult cut = Verify("wide", options);

  // With the estimate from the average row length, chunks stay small enough not to be cut.
  OnSecondary("UPDATE wide SET b = CONCAT(LEFT(b, 5999), CHAR(65 + id % 26)) WHERE id = 300");
  TableVerifyResult estimated = Verify("wide");
  Exec(primary_server_, "SET GLOBAL max_allowed_packet = " + packets[0]);
  Exec(secondary_server_, "SET GLOBAL max_allowed_packet = " + packets[1]);

  ExpectCounts(cut, "differs", 300, 0, 0, 1);
  EXPECT_EQ(cut.sample_keys, std::vector<std::string>{"id=300"});
  EXPECT_EQ(cut.bisected_chunks, 1u);
  ExpectCounts(estimated, "equal", 300, 0, 0, 0);
  EXPECT_GT(estimated.chunks, 1u);
  EXPECT_EQ(estimated.bisected_chunks, 0u);
}

TEST_F(TableVerifyTest, RowsReadInAnotherPhysicalOrderAreStillComparedInKeyOrder) {
  // The same rows, inserted in opposite orders on the two servers, in tables whose scan order is
  // not the key's: a unique key that is not the primary key, MyISAM, a hash-partitioned table.
  for (const char* create :
       {"CREATE TABLE uk (code INT NOT NULL, v VARCHAR(40), UNIQUE KEY uk (code)) ENGINE=InnoDB",
        "CREATE TABLE my (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=MyISAM",
        "CREATE TABLE part (id INT PRIMARY KEY, v VARCHAR(40)) ENGINE=InnoDB "
        "PARTITION BY HASH (id) PARTITIONS 4"}) {
    Both(create);
  }
  for (const char* table : {"uk", "my", "part"}) {
    Exec(primary_server_, "INSERT INTO " + db_ + "." + table +
                              " SELECT seq, MD5(seq) FROM seq_1_to_2000 ORDER BY seq");
    Exec(secondary_server_, "INSERT INTO " + db_ + "." + table +
                                " SELECT seq, MD5(seq) FROM seq_1_to_2000 ORDER BY seq DESC");
  }
  TableVerifyOptions options = FixedChunks(300);
  for (const char* table : {"uk", "my", "part"}) {
    SCOPED_TRACE(table);
    TableVerifyResult r = Verify(table, options);
    ExpectCounts(r, "equal", 2000, 0, 0, 0);
    EXPECT_EQ(r.chunks, 7u);
    EXPECT_EQ(r.bisected_chunks, 0u);
  }
  OnSecondary("UPDATE part SET v = 'x' WHERE id = 777; UPDATE uk SET v = 'x' WHERE code = 3");
  ExpectCounts(Verify("part", options), "differs", 2000, 0, 0, 1);
  ExpectCounts(Verify("uk", options), "differs", 2000, 0, 0, 1);
}

// Repairs `table` as `replsync repair` does: verify collecting every differing row, then the
// statements of RepairTable run on a third session (sql_log_bin=0, one transaction) while the
// snapshots are still open. Returns the counts; the statements in `statements`.
TableRepairCounts RepairWith(MysqlSession* primary, MysqlSession* secondary, MysqlSession* writer,
                             const std::string& db, const std::string& table,
                             std::vector<std::string>* statements) {
  for (MysqlSession* s : {primary, secondary}) {
    EXPECT_TRUE(s->Execute("SET SESSION time_zone = '+00:00'").ok());
    EXPECT_TRUE(s->Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT").ok());
  }
  TableVerifyOptions options = FixedChunks(32, 4);
  options.collect_keys = true;
  auto verified = VerifyTable(primary, secondary, db, table, options);
  EXPECT_TRUE(verified.ok()) << verified.status().ToString();
  if (!verified.ok()) return {};
  EXPECT_EQ(WhyNotRepairable(*verified), "");
  EXPECT_TRUE(writer->Execute("START TRANSACTION").ok());
  auto counts =
      RepairTable(primary, secondary, *verified, TableRepairOptions{}, [&](const std::string& sql) {
        statements->push_back(sql);
        return writer->Execute(sql);
      });
  EXPECT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_TRUE(writer->Execute("COMMIT").ok());
  for (MysqlSession* s : {primary, secondary}) EXPECT_TRUE(s->Execute("COMMIT").ok());
  return counts.ok() ? *counts : TableRepairCounts{};
}

TEST_F(TableVerifyTest, RepairWritesEveryColumnTypeExactly) {
  Both(kManyTypes);
  Both(kManyTypesRows);
  Both("INSERT INTO t (id) VALUES (1000)");
  OnSecondary(
      "UPDATE t SET tx = CONCAT(tx, 'x'), lt = NULL WHERE id = 2; "
      "UPDATE t SET b = UNHEX('00'), bl = NULL WHERE id = 4; UPDATE t SET dc = 0 WHERE id = 6; "
      "UPDATE t SET d = d + 1e-12, f = f * 2 WHERE id = 7; "
      "UPDATE t SET ts = ts + INTERVAL 1000 MICROSECOND, tm = '-838:59:59' WHERE id = 9; "
      "UPDATE t SET y = 1999, da = '2000-01-01', dt = NULL WHERE id = 12; "
      "UPDATE t SET bt = bt ^ 2048, e = NULL, st = '' WHERE id = 13; "
      "UPDATE t SET j = JSON_OBJECT('k', 'é'), g = POINT(0, 0), u = 0 WHERE id = 17; "
      "UPDATE t SET v = 'set' WHERE id = 1000; "
      "DELETE FROM t WHERE id IN (1, 150, 300); INSERT INTO t (id, v) VALUES (0, 'x'), (5000, "
      "'y')");
  auto writer = Connect(secondary_server_);
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->Execute("SET SESSION sql_log_bin = 0, time_zone = '+00:00'").ok());
  std::vector<std::string> statements;
  TableRepairCounts counts =
      RepairWith(primary_.get(), secondary_.get(), writer.get(), db_, "t", &statements);
  EXPECT_EQ(counts.inserted, 3u);
  EXPECT_EQ(counts.updated, 9u);
  EXPECT_EQ(counts.deleted, 2u);
  ExpectCounts(Verify("t"), "equal", 301, 0, 0, 0);

  // Without a key: surplus rows deleted by value and hash (not a row the collation calls equal),
  // missing duplicates inserted as many times as they are missing.
  Both(
      "CREATE TABLE nokey (a INT, b VARCHAR(10), c BLOB); "
      "INSERT INTO nokey VALUES (1, 'a', x'00'), (1, 'a', x'00'), (1, 'a', x'00'), "
      "(NULL, NULL, NULL), (2, 'B', '')");
  OnSecondary(
      "DELETE FROM nokey WHERE a = 1 LIMIT 2; INSERT INTO nokey VALUES (1, 'A', x'00'), "
      "(2, 'b', ''), (NULL, NULL, NULL)");
  statements.clear();
  counts = RepairWith(primary_.get(), secondary_.get(), writer.get(), db_, "nokey", &statements);
  EXPECT_EQ(counts.inserted, 2u);
  EXPECT_EQ(counts.updated, 0u);
  EXPECT_EQ(counts.deleted, 3u);
  ExpectCounts(Verify("nokey"), "equal", 5, 0, 0, 0);

  // Past the cap the lists are partial and the table is not repaired.
  OnSecondary("DELETE FROM t WHERE id < 10");
  TableVerifyOptions capped;
  capped.collect_keys = true;
  capped.max_collected_keys = 3;
  TableVerifyResult r = Verify("t", capped);
  EXPECT_EQ(r.missing_rows, 9u);
  EXPECT_EQ(r.differences.missing.size(), 3u);
  EXPECT_FALSE(r.differences.complete);
  EXPECT_NE(WhyNotRepairable(r), "");
  EXPECT_EQ(r.differences.missing[0], "`id` = 1");
}

}  // namespace
}  // namespace replsync::cli
