// BootstrapFixture: the end-to-end bootstrap tests' fixture (tests/integration/bootstrap_test.cc,
// bootstrap_fault_test.cc, bootstrap_resync_test.cc): a NodePairTest replicating the database
// `app`, with what a primary that already holds data has before either daemon runs (every column
// type, a table without a key, a large table, a self-referencing folder tree, a parent and child
// with a cascading foreign key, views, routines, a trigger, an event, a user with grants; a
// repository of small files and a 48 MiB one), a writer that keeps changing the primary, and the
// checks every bootstrap ends with. Header-only, like node_pair_test.h.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/node/node_status.h"
#include "tests/harness/node_pair_test.h"
#include "tests/harness/random_bytes.h"

namespace replsync::testing {

class BootstrapFixture : public NodePairTest {
 protected:
  // `name`: the temporary folder's prefix; `secondaries`: 1 or 2 (NodePairTest).
  explicit BootstrapFixture(std::string name, int secondaries = 1)
      : NodePairTest({"app"}, std::move(name), secondaries) {}

  // The [bootstrap] section of the node's configuration, appended to what the harness writes.
  void SetBootstrapSettings(const std::string& node, const std::string& settings) {
    const std::string path = dir_ + "/" + node + ".toml";
    std::ofstream(path, std::ios::app) << "\n[bootstrap]\n" << settings << "\n";
  }

  // What the primary holds before either daemon runs.
  void MakePrimaryData(int big_rows) {
    MariadbServer& p = *primary_;
    ASSERT_NO_FATAL_FAILURE(Sql(p, "CREATE DATABASE app"));
    ASSERT_NO_FATAL_FAILURE(
        Sql(p,
            "CREATE TABLE app.types (id INT PRIMARY KEY, ti TINYINT, si SMALLINT UNSIGNED, mi "
            "MEDIUMINT, bi BIGINT UNSIGNED, d DECIMAL(30,10), f FLOAT, dbl DOUBLE, bt BIT(17), dt "
            "DATETIME(6), ts TIMESTAMP(3) NULL, dd DATE, tm TIME(2), yr YEAR, c CHAR(10), vc "
            "VARCHAR(200) CHARACTER SET latin1, tx TEXT, bl BLOB, vb VARBINARY(50), e "
            "ENUM('a','b','c'), st SET('x','y','z'), j JSON, g POINT, u UUID, ip INET6, gen INT AS "
            "(id * 2) VIRTUAL, inv INT INVISIBLE DEFAULT 7)"));
    ASSERT_NO_FATAL_FAILURE(Sql(
        p,
        "INSERT INTO app.types (id, ti, si, mi, bi, d, f, dbl, bt, dt, ts, dd, tm, yr, c, vc, tx, "
        "bl, vb, e, st, j, g, u, ip, inv) VALUES "
        "(1, -128, 65535, -8388608, 18446744073709551615, -12345678901234567890.0123456789, "
        "3.40282e38, -2.2250738585072014e-308, b'10101010101010101', '2024-02-29 "
        "23:59:59.999999', '2038-01-19 03:14:07.999', '1000-01-01', '-838:59:59.99', 2155, "
        "'ab  ', 'caf\\xe9', 'tab\\there\\nnew line \\\\ back', X'00FF0A090D5C', X'', 'c', "
        "'x,z', '{\"k\": [1, \"\\\\u00e9\"]}', ST_GeomFromText('POINT(1.5 -2.25)'), "
        "'123e4567-e89b-12d3-a456-426614174000', '2001:db8::1', 9),"
        "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),"
        "(3, 0, 0, 0, 0, 0, -0.0, 0.1, b'0', '0000-00-00 00:00:00', NULL, '0000-00-00', "
        "'00:00:00', 0, '', '', '', '', '', 'a', '', '[]', ST_GeomFromText('POINT(0 0)', 4326), "
        "NULL, '::', DEFAULT)"));
    // 50,000 rows (sysbench-like) in a few statements.
    ASSERT_NO_FATAL_FAILURE(
        Sql(p,
            "CREATE TABLE app.big (id INT AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL, c "
            "CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, KEY k (k))"));
    for (int done = 0; done < big_rows; done += 10000) {
      ASSERT_NO_FATAL_FAILURE(
          Sql(p, fmt::format("INSERT INTO app.big (k, c, pad) SELECT seq % 1000, "
                             "CONCAT('c-', seq, '-', REPEAT('x', 100)), CONCAT('pad-', seq) FROM "
                             "seq.seq_1_to_{}",
                             std::min(10000, big_rows - done))));
    }
    ASSERT_NO_FATAL_FAILURE(Sql(p,
                                "CREATE TABLE app.nokey (a INT, b VARCHAR(20));"
                                "INSERT INTO app.nokey VALUES (1, 'one'), (1, 'one'), (2, NULL)"));
    ASSERT_NO_FATAL_FAILURE(
        Sql(p,
            "CREATE TABLE app.folders (id INT PRIMARY KEY, parent INT NULL, name VARCHAR(50), "
            "FOREIGN KEY (parent) REFERENCES app.folders (id) ON DELETE CASCADE);"
            "INSERT INTO app.folders VALUES (1, NULL, 'root'), (2, 1, 'reports'), (3, 2, 'q1'), "
            "(4, 1, 'dashboards')"));
    ASSERT_NO_FATAL_FAILURE(Sql(
        p,
        "CREATE TABLE app.owners (id INT PRIMARY KEY, name VARCHAR(50));"
        "CREATE TABLE app.items (id INT PRIMARY KEY, owner INT NOT NULL, v INT, FOREIGN KEY "
        "(owner) REFERENCES app.owners (id) ON DELETE CASCADE);"
        "CREATE TABLE app.audit (id INT AUTO_INCREMENT PRIMARY KEY, item INT, note VARCHAR(50));"
        "INSERT INTO app.owners VALUES (1, 'ann'), (2, 'bob'), (3, 'cyd');"
        "INSERT INTO app.items VALUES (1, 1, 10), (2, 1, 20), (3, 2, 30)"));
    ASSERT_NO_FATAL_FAILURE(
        Sql(p,
            "CREATE TRIGGER app.items_ai AFTER INSERT ON app.items FOR EACH ROW "
            "INSERT INTO app.audit (item, note) VALUES (NEW.id, 'inserted')"));
    ASSERT_NO_FATAL_FAILURE(
        Sql(p,
            "CREATE VIEW app.item_view AS SELECT i.id, o.name FROM app.items i JOIN app.owners o "
            "ON o.id = i.owner"));
    ASSERT_NO_FATAL_FAILURE(
        Sql(p, "CREATE VIEW app.view_on_view AS SELECT COUNT(*) AS n FROM app.item_view"));
    ASSERT_NO_FATAL_FAILURE(Sql(p,
                                "CREATE PROCEDURE app.add_owner(IN n VARCHAR(50)) INSERT INTO "
                                "app.owners (id, name) SELECT MAX(id) + 1, n FROM app.owners"));
    ASSERT_NO_FATAL_FAILURE(
        Sql(p, "CREATE FUNCTION app.twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2"));
    ASSERT_NO_FATAL_FAILURE(Sql(
        p, "CREATE EVENT app.tick ON SCHEDULE EVERY 1 HOUR DO UPDATE app.owners SET name = name"));
    ASSERT_NO_FATAL_FAILURE(Sql(p,
                                "CREATE USER 'report'@'%' IDENTIFIED BY 'report-pw';"
                                "GRANT SELECT ON app.* TO 'report'@'%'"));
  }

  // Files in the primary's repository: `small` small ones in folders, and one of 48 MiB.
  void MakePrimaryFiles(int small) {
    const std::string root = RepositoryPath("primary");
    for (int i = 0; i < small; ++i) {
      const std::string folder = fmt::format("{}/d{}", root, i % 50);
      std::filesystem::create_directories(folder);
      std::ofstream(fmt::format("{}/f{}.xml", folder, i), std::ios::binary)
          << PseudoRandomBytes(i, 200 + (i * 37) % 3000);
    }
    std::ofstream(root + "/large.bin", std::ios::binary) << PseudoRandomBytes(4242, 48 << 20);
  }

  // Changes the primary all the time, about `per_second` transactions a second, through a
  // session of its own, until `stop`: updates, inserts and deletes in the large table, new
  // items (their trigger writes audit rows), owners deleted (cascading to their items), folders
  // added under folders, rows without a key.
  std::thread StartWriter(std::atomic<bool>* stop, std::atomic<uint64_t>* count, int per_second) {
    return std::thread([this, stop, count, per_second] {
      MysqlThreadScope scope;
      auto session = OpenRootSession(primary_->port());
      ASSERT_TRUE(session.ok()) << session.status().ToString();
      std::mt19937 random(7);
      for (uint64_t i = 0; !*stop; ++i) {
        const int id = 1 + static_cast<int>(random() % 50000);
        std::vector<std::string> batch = {"START TRANSACTION"};
        switch (i % 8) {
          case 0:
          case 1:
            batch.push_back(fmt::format(
                "UPDATE app.big SET k = k + 1, c = CONCAT('u{}-', c) WHERE id = {}", i, id));
            break;
          case 2:
            batch.push_back(
                fmt::format("INSERT INTO app.big (k, c, pad) VALUES ({}, 'new {}', 'p')", i, i));
            break;
          case 3:
            batch.push_back(fmt::format("DELETE FROM app.big WHERE id = {}", id));
            break;
          case 4:
            batch.push_back(
                fmt::format("INSERT INTO app.owners VALUES ({0}, 'owner {0}')", 1000 + i));
            break;
          case 5:
            batch.push_back(
                fmt::format("INSERT INTO app.items VALUES ({0}, {1}, {0})", 1000 + i, 999 + i));
            break;
          case 6:
            batch.push_back(fmt::format("DELETE FROM app.owners WHERE id = {}", 1000 + i - 10));
            break;
          default:
            batch.push_back(fmt::format("INSERT INTO app.folders VALUES ({0}, {1}, 'f{0}')",
                                        1000 + i, i % 16 == 7 ? 2 : 1000 + i - 8));
            batch.push_back(fmt::format("INSERT INTO app.nokey VALUES ({}, 'w')", i));
            break;
        }
        batch.push_back("COMMIT");
        // A statement that finds its parent gone fails and its transaction is dropped: the
        // rows are whatever the primary ends with.
        if (!(*session)->ExecuteBatch(batch).ok()) (void)(*session)->Execute("ROLLBACK");
        ++*count;
        std::this_thread::sleep_for(std::chrono::microseconds(1000000 / per_second));
      }
    });
  }

  // A `replsync` command run while a writer changed the primary.
  struct WrittenRun {
    CommandRun run;
    uint64_t during = 0;  // the writer's transactions while the command ran
  };
  // Runs `replsync COMMAND FLAGS` on the secondary while the writer `start` makes (given its
  // stop flag and counter) changes the primary, and stops the writer a second after the command
  // ended.
  WrittenRun RunWhileWriting(
      const std::function<std::thread(std::atomic<bool>*, std::atomic<uint64_t>*)>& start,
      const std::string& command, const std::string& flags) {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> written{0};
    std::thread writer = start(&stop, &written);
    WrittenRun result;
    result.run = RunReplsync(command, flags);
    result.during = written.load();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    stop = true;
    writer.join();
    return result;
  }
  // What explains a command's exit code: its output, the secondary's status and log tail.
  std::string Explain(const CommandRun& run) {
    return run.out + run.err + "\n" + StatusText("secondary") + "\n" + Tail("secondary", 80);
  }

  // The secondary `node`'s bootstrap in its status (nullopt while there is none).
  std::optional<NodeStatus::Bootstrap> Bootstrap(const std::string& node = "secondary") {
    std::optional<NodeStatus> status = ReadStatus(node);
    if (!status || !status->secondary) return std::nullopt;
    return status->secondary->bootstrap;
  }

  // How every bootstrap ends: the secondary's tables equal to the primary's (CHECKSUM TABLE),
  // `replsync verify` exits 0, and a later change (a table created and written) replicates.
  // Writers are to be stopped first.
  void ExpectFollowingCopy() {
    ASSERT_NO_FATAL_FAILURE(ExpectTablesConverge(std::chrono::seconds(120)));
    ASSERT_NO_FATAL_FAILURE(ExpectSameDefinitions());
    const CommandRun verify = RunReplsync("verify", "");
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
    ASSERT_NO_FATAL_FAILURE(Sql(*primary_,
                                "CREATE TABLE app.later (id INT PRIMARY KEY, v VARCHAR(20));"
                                "INSERT INTO app.later VALUES (1, 'after')"));
    ASSERT_NO_FATAL_FAILURE(WaitSame("SELECT GROUP_CONCAT(v) FROM app.later"));
    EXPECT_EQ(One(Server("secondary"), "SELECT GROUP_CONCAT(v) FROM app.later"), "after");
  }

  // Every table of app is defined on the secondary as on the primary, indexes included (those
  // whose build a bootstrap deferred until the rows were in, too), but for the AUTO_INCREMENT
  // counter, which the secondary's loaded rows set.
  void ExpectSameDefinitions() {
    auto tables = primary_->Query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND "
        "TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME");
    ASSERT_TRUE(tables.ok()) << tables.status().ToString();
    ASSERT_FALSE(tables->empty());
    const std::regex counter(" AUTO_INCREMENT=[0-9]+");
    for (const auto& row : *tables) {
      const std::string show = "SHOW CREATE TABLE app.`" + row[0] + "`";
      auto a = primary_->Query(show);
      auto b = Server("secondary").Query(show);
      ASSERT_TRUE(a.ok() && b.ok()) << row[0];
      EXPECT_EQ(std::regex_replace((*b)[0][1], counter, ""),
                std::regex_replace((*a)[0][1], counter, ""))
          << row[0];
    }
  }

  std::string One(MariadbServer& server, const std::string& query) {
    auto rows = server.Query(query);
    if (!rows.ok()) return "error: " + rows.status().ToString();
    if (rows->empty() || rows->front().empty()) return "(none)";
    return rows->front().front();
  }
};

}  // namespace replsync::testing
