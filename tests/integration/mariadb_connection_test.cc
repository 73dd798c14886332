// MariadbConnection against a real MariaDB server: the SqlSession calls, a streamed read of 100k
// rows (whole and stopped early), LOAD DATA LOCAL from a buffer (and never from a file the
// server names), warnings, and the error classification (a killed connection, a duplicate key,
// LOAD DATA LOCAL refused).
#include "sync/mysql/mariadb_connection.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/harness/mariadb_server.h"

namespace replsync {
namespace {

using testing::MariadbServer;

class MariadbConnectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::MariadbServerOptions options;
    options.server_id = 51;
    auto server = MariadbServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_TRUE(server_->Execute("DROP DATABASE IF EXISTS mc; CREATE DATABASE mc").ok());
  }

  static MysqlOptions Options() {
    MysqlOptions o;
    o.host = server_->host();
    o.port = server_->port();
    o.user = server_->user();
    o.password = server_->password();
    return o;
  }
  static std::unique_ptr<MariadbConnection> Connect(bool local_infile = false) {
    auto c = MariadbConnection::Open(Options(), {.local_infile = local_infile});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  // One value of a one-row, one-column query run as root through the harness.
  static std::string Scalar(const std::string& sql) {
    auto rows = server_->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    if (!rows.ok() || rows->empty() || (*rows)[0].empty()) return "<none>";
    return (*rows)[0][0];
  }

  static MariadbServer* server_;
};
MariadbServer* MariadbConnectionTest::server_ = nullptr;

TEST_F(MariadbConnectionTest, ExecuteQueryAndStreamOf100kRows) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->Describe(), "root@127.0.0.1:" + std::to_string(server_->port()));
  ASSERT_TRUE(c->Execute("CREATE TABLE mc.t (id INT PRIMARY KEY, v VARBINARY(20))").ok());
  auto inserted = c->ExecuteUpdate(
      "INSERT INTO mc.t SELECT seq, IF(seq % 7 = 0, NULL, CONCAT('v', seq)) FROM "
      "mc.seq_1_to_100000");
  ASSERT_TRUE(inserted.ok()) << inserted.status().ToString();
  EXPECT_EQ(*inserted, 100000u);

  auto rows = c->Query("SELECT id, v FROM mc.t ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 100000u);
  EXPECT_EQ((*rows)[6][1], std::nullopt);  // id 7
  EXPECT_EQ((*rows)[7][1], std::optional<std::string>("v8"));

  uint64_t count = 0, nulls = 0;
  int64_t last = 0;
  bool ordered = true;
  Status st = c->Stream(
      "SELECT id, v FROM mc.t ORDER BY id",
      [&](const MariadbConnection::RowView& row) {
        EXPECT_EQ(row.count, 2u);
        const int64_t id = std::stoll(std::string(row.values[0], row.lengths[0]));
        if (id != last + 1) ordered = false;
        last = id;
        if (row.values[1] == nullptr) {
          ++nulls;
        } else if (std::string(row.values[1], row.lengths[1]) != "v" + std::to_string(id)) {
          ordered = false;
        }
        ++count;
        return Status::Ok();
      },
      "stream mc.t");
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(count, 100000u);
  EXPECT_EQ(nulls, 100000u / 7);
  EXPECT_TRUE(ordered);
  // A statement without rows through Stream: no row, no error.
  count = 0;
  st = c->Stream("DO 1", [&](const MariadbConnection::RowView&) {
    ++count;
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(count, 0u);

  // A batch runs every statement, in order.
  st = c->ExecuteBatch({"DELETE FROM mc.t WHERE id > 10", "UPDATE mc.t SET v = 'x' WHERE id = 1"});
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM mc.t"), "10");
  EXPECT_EQ(Scalar("SELECT v FROM mc.t WHERE id = 1"), "x");
  // A batch that fails in its second statement reports that statement's error and runs no more.
  st = c->ExecuteBatch(
      {"DELETE FROM mc.t WHERE id = 2", "SELECT * FROM mc.nope", "DELETE FROM mc.t WHERE id = 3"});
  EXPECT_EQ(st.code(), Status::Code::kServer) << st.ToString();
  EXPECT_NE(st.message().find("doesn't exist"), std::string::npos) << st.ToString();
  EXPECT_EQ(c->last_error_code(), 1146);
  EXPECT_FALSE(c->broken());
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM mc.t WHERE id IN (2, 3)"), "1");
  // The connection is usable after the failed batch.
  auto one = c->Query("SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(c->last_error_code(), 0);
}

TEST_F(MariadbConnectionTest, StreamStoppedEarlyReturnsTheCallersStatusAndStaysUsable) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Execute("CREATE TABLE mc.t (id INT PRIMARY KEY, pad CHAR(200) NOT NULL DEFAULT "
                         "'') SELECT seq AS id, REPEAT('p', 200) AS pad FROM mc.seq_1_to_100000")
                  .ok());
  uint64_t seen = 0;
  Status st =
      c->Stream("SELECT id, pad FROM mc.t ORDER BY id", [&](const MariadbConnection::RowView&) {
        if (++seen == 10) return Status::Aborted("enough rows");
        return Status::Ok();
      });
  EXPECT_EQ(st.code(), Status::Code::kAborted) << st.ToString();
  EXPECT_EQ(st.message(), "enough rows");
  EXPECT_EQ(seen, 10u);
  EXPECT_FALSE(c->broken());
  // The rest of the result was read: the next command gets its own answer.
  auto rows = c->Query("SELECT COUNT(*) FROM mc.t");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ((*rows)[0][0], std::optional<std::string>("100000"));
}

TEST_F(MariadbConnectionTest, LoadLocalLoadsTheBufferExactly) {
  auto c = Connect(/*local_infile=*/true);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Execute("SET NAMES binary").ok());
  ASSERT_TRUE(
      c->Execute(
           "CREATE TABLE mc.t (id INT PRIMARY KEY, b BLOB, s VARCHAR(20) CHARACTER SET utf8mb4)")
          .ok());
  // Row 3's blob holds NUL, TAB, LF, backslash and 0xff, escaped as LOAD DATA reads them.
  std::string data;
  data += "1\t\\N\tplain\n";
  data += "2\t\t\xf0\x9f\x98\x80\n";
  data += std::string("3\ta\\0b\\tc\\nd\\\\e\xff") + "\tx\n";
  auto loaded = c->LoadLocal(
      "LOAD DATA LOCAL INFILE 'chunk' INTO TABLE mc.t CHARACTER SET binary FIELDS TERMINATED BY "
      "'\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (id, b, s)",
      data, "load mc.t");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->rows, 3u);
  EXPECT_EQ(loaded->warnings, 0u) << loaded->warning_text;
  auto rows = c->Query("SELECT id, b, s FROM mc.t ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0][1], std::nullopt);
  EXPECT_EQ((*rows)[0][2], std::optional<std::string>("plain"));
  EXPECT_EQ((*rows)[1][1], std::optional<std::string>(""));
  EXPECT_EQ((*rows)[1][2], std::optional<std::string>("\xf0\x9f\x98\x80"));
  EXPECT_EQ((*rows)[2][1], std::optional<std::string>(std::string("a\0b\tc\nd\\e\xff", 10)));
  EXPECT_EQ(Scalar("SELECT HEX(b) FROM mc.t WHERE id = 3"), "61006209630A645C65FF");

  // A buffer larger than the client library's packets arrives whole (many read callbacks).
  std::string big;
  for (int i = 100; i < 20100; ++i)
    big += std::to_string(i) + "\t" + std::string(200, 'z') + "\t\\N\n";
  loaded = c->LoadLocal(
      "LOAD DATA LOCAL INFILE 'chunk' INTO TABLE mc.t CHARACTER SET binary FIELDS TERMINATED BY "
      "'\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (id, b, s)",
      big);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->rows, 20000u);
  EXPECT_EQ(Scalar("SELECT CONCAT(COUNT(*), ',', SUM(LENGTH(b)), ',', SUM(id)) FROM mc.t WHERE "
                   "id >= 100"),
            "20000,4000000," + std::to_string((100 + 20099) * 20000 / 2));
}

TEST_F(MariadbConnectionTest, LoadLocalReportsWarnings) {
  auto c = Connect(/*local_infile=*/true);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Execute("CREATE TABLE mc.t (id INT PRIMARY KEY, s VARCHAR(3))").ok());
  auto loaded =
      c->LoadLocal("LOAD DATA LOCAL INFILE 'x' INTO TABLE mc.t FIELDS TERMINATED BY '\\t' (id, s)",
                   "1\tabc\n2\ttoo long\n");
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->rows, 2u);
  EXPECT_EQ(loaded->warnings, 1u);
  EXPECT_NE(loaded->warning_text.find("1265"), std::string::npos) << loaded->warning_text;
  EXPECT_NE(loaded->warning_text.find("Data truncated for column 's'"), std::string::npos)
      << loaded->warning_text;
}

TEST_F(MariadbConnectionTest, AKilledConnectionIsNetworkAndBroken) {
  auto c = Connect();
  auto killer = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_NE(killer, nullptr);
  ASSERT_NE(c->thread_id(), 0u);
  ASSERT_TRUE(killer->Execute("KILL " + std::to_string(c->thread_id())).ok());
  Status st = c->Execute("SELECT 1", "probe");
  EXPECT_EQ(st.code(), Status::Code::kNetwork) << st.ToString();
  EXPECT_TRUE(st.retryable());
  EXPECT_TRUE(c->broken());
  EXPECT_NE(st.message().find("probe on root@127.0.0.1:"), std::string::npos) << st.ToString();
  // Once broken, nothing is sent any more.
  st = c->Execute("SELECT 1");
  EXPECT_EQ(st.code(), Status::Code::kNetwork);
  EXPECT_NE(st.message().find("is broken"), std::string::npos) << st.ToString();
}

TEST_F(MariadbConnectionTest, AQueryKilledWhileStreamingIsAnError) {
  auto c = Connect();
  auto killer = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_NE(killer, nullptr);
  uint64_t seen = 0;
  Status st = c->Stream(
      // Rows of 100 bytes fill the server's 16 KiB network buffer long before row 5000, where
      // the server sleeps: the first row arrives, and the KILL lands in the middle.
      "SELECT seq, REPEAT('r', 100), SLEEP(IF(seq = 5000, 2, 0)) FROM mc.seq_1_to_100000",
      [&](const MariadbConnection::RowView&) {
        if (++seen == 1) {
          Status k = killer->Execute("KILL " + std::to_string(c->thread_id()));
          EXPECT_TRUE(k.ok()) << k.ToString();
        }
        return Status::Ok();
      });
  EXPECT_FALSE(st.ok());
  EXPECT_LT(seen, 5000u);
  EXPECT_EQ(st.code(), Status::Code::kNetwork) << st.ToString();
  EXPECT_TRUE(c->broken());
}

TEST_F(MariadbConnectionTest, ADuplicateKeyIsAPermanentServerError) {
  auto c = Connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Execute("CREATE TABLE mc.t (id INT PRIMARY KEY)").ok());
  ASSERT_TRUE(c->Execute("INSERT INTO mc.t VALUES (1)").ok());
  Status st = c->Execute("INSERT INTO mc.t VALUES (1)", "insert dup");
  EXPECT_EQ(st.code(), Status::Code::kServer) << st.ToString();
  EXPECT_FALSE(st.retryable());
  EXPECT_EQ(c->last_error_code(), 1062);
  EXPECT_FALSE(c->broken());
  EXPECT_NE(st.message().find("insert dup on root@"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("[statement: INSERT INTO mc.t VALUES (1)]"), std::string::npos)
      << st.ToString();
  auto update = c->ExecuteUpdate("UPDATE mc.t SET id = 2");
  ASSERT_TRUE(update.ok()) << update.status().ToString();
  EXPECT_EQ(*update, 1u);
  EXPECT_EQ(c->last_error_code(), 0);
}

TEST_F(MariadbConnectionTest, LocalInfileOffRefuses) {
  const std::string load =
      "LOAD DATA LOCAL INFILE 'x' INTO TABLE mc.t FIELDS TERMINATED BY '\\t' (id)";
  // Without Options::local_infile the connection refuses before asking the server.
  auto plain = Connect(/*local_infile=*/false);
  ASSERT_NE(plain, nullptr);
  ASSERT_TRUE(plain->Execute("CREATE TABLE mc.t (id INT PRIMARY KEY)").ok());
  auto loaded = plain->LoadLocal(load, "1\n");
  EXPECT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("Options::local_infile"), std::string::npos)
      << loaded.status().ToString();
  EXPECT_FALSE(plain->broken());
  // The server's local_infile off: a Server error, the connection stays usable.
  ASSERT_TRUE(server_->Execute("SET GLOBAL local_infile = 0").ok());
  auto c = Connect(/*local_infile=*/true);
  ASSERT_NE(c, nullptr);
  loaded = c->LoadLocal(load, "1\n");
  ASSERT_TRUE(server_->Execute("SET GLOBAL local_infile = 1").ok());
  EXPECT_EQ(loaded.status().code(), Status::Code::kServer) << loaded.status().ToString();
  EXPECT_FALSE(loaded.status().retryable());
  EXPECT_FALSE(c->broken());
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM mc.t"), "0");
  EXPECT_TRUE(c->Query("SELECT 1").ok());
}

TEST_F(MariadbConnectionTest, AFileTheServerAsksForOutsideLoadLocalIsNeverRead) {
  auto c = Connect(/*local_infile=*/true);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Execute("CREATE TABLE mc.t (line VARBINARY(1000))").ok());
  // A plain Execute of LOAD DATA LOCAL (what a hostile server could answer any query with):
  // the client sends nothing of /etc/passwd.
  Status st = c->Execute("LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE mc.t");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("LOAD DATA LOCAL refused"), std::string::npos) << st.ToString();
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM mc.t"), "0");
}

}  // namespace
}  // namespace replsync
