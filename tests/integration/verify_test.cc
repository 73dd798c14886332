// `replsync verify` end to end: two real MariaDB servers, replsyncd on each, the command run as a
// user would (a real process, its exit code and JSON). Differences planted on the secondary
// behind replication's back must be reported exactly; verify under load on the primary must find
// no difference (the barrier makes both snapshots show the same point).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "sync/file_lock.h"
#include "sync/verify/barrier.h"
#include "tests/harness/node_pair_test.h"
#include "tests/harness/repo_tree.h"

namespace replsync {

namespace {

class VerifyTest : public testing::NodePairTest {
 protected:
  VerifyTest() : NodePairTest({"app", "sbtest"}, "verify") {}

  // Stdout and stderr of `replsync verify --config secondary.toml FLAGS` one after the other.
  CommandRun Verify(const std::string& flags = "--json") { return Replsync("verify", flags); }

  CommandRun Replsync(const std::string& command, const std::string& flags) {
    CommandRun run = RunReplsync(command, flags);
    run.out += run.err;
    return run;
  }

  // Writes `content` to `rel` below `node`'s repository (folders created as needed).
  void Write(const std::string& node, const std::string& rel, const std::string& content) {
    const std::string path = RepositoryPath(node) + "/" + rel;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  }

  std::string Read(const std::string& node, const std::string& rel) {
    std::ifstream in(RepositoryPath(node) + "/" + rel, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  // The "files" of a verify's JSON as "path problem" strings.
  static std::set<std::string> FileProblems(const rapidjson::Document& doc) {
    std::set<std::string> out;
    for (const auto& f : doc["files"].GetArray()) {
      out.insert(std::string(f["path"].GetString()) + " " + f["problem"].GetString());
    }
    return out;
  }

  // A small tree on the primary, replicated.
  void MakeFiles() {
    Write("primary", "top.txt", "top level\n");
    Write("primary", "docs/a.txt", std::string(600, 'a'));
    Write("primary", "docs/b.txt", "bravo\n");
    Write("primary", "docs/c.txt", "charlie\n");
    Write("primary", "docs/sub/d.txt", "delta delta\n");
    ASSERT_EQ(symlink("a.txt", (RepositoryPath("primary") + "/docs/link").c_str()), 0);
    ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(std::chrono::seconds(30)));
  }

};

TEST_F(VerifyTest, ReportsExactlyThePlantedDifferences) {
  // The primary's replies carry 2 nodes at most: listings come in pages.
  setenv("REPLSYNC_TEST_TREE_REPLY_NODES", "2", 1);
  StartBoth();
  unsetenv("REPLSYNC_TEST_TREE_REPLY_NODES");
  Sql(*primary_, R"sql(
CREATE DATABASE app;
USE app;
CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(40), price DECIMAL(10,2), seen DATETIME(6));
INSERT INTO app.items SELECT seq, CONCAT('item ', seq), seq / 4, '2024-01-01 00:00:00.000001' FROM seq_1_to_3000;
CREATE TABLE app.notes (txt VARCHAR(40), n INT);
INSERT INTO app.notes VALUES ('a', 1), ('a', 1), ('b', 2), ('c', NULL);
CREATE TABLE app.same (k1 INT, k2 VARCHAR(10), v BLOB, PRIMARY KEY (k1, k2));
INSERT INTO app.same VALUES (1, 'x', x'00ff'), (1, 'y', NULL), (2, 'x', '');
)sql");
  WaitSame("SELECT COUNT(*) FROM app.same");

  ASSERT_NO_FATAL_FAILURE(MakeFiles());

  CommandRun clean = Verify();
  ASSERT_EQ(clean.exit_code, 0) << clean.out << Tail("secondary");
  EXPECT_NE(clean.out.find("\"consistent\":true"), std::string::npos) << clean.out;
  EXPECT_NE(clean.out.find("\"files_verified\":true"), std::string::npos) << clean.out;
  EXPECT_NE(clean.out.find("\"files\":[]"), std::string::npos) << clean.out;

  // Files behind replication's back: changed, deleted, extra, a mode change.
  Write("secondary", "docs/a.txt", "changed\n");
  ASSERT_EQ(unlink((RepositoryPath("secondary") + "/docs/b.txt").c_str()), 0);
  Write("secondary", "docs/extra.txt", "not on the primary\n");
  ASSERT_EQ(chmod((RepositoryPath("secondary") + "/docs/c.txt").c_str(), 0600), 0);

  // Behind replication's back, on the secondary only.
  Sql(*secondary_, R"sql(
SET SESSION sql_log_bin = 0;
UPDATE app.items SET price = price + 1 WHERE id = 100;
DELETE FROM app.items WHERE id = 2000;
INSERT INTO app.items VALUES (5000, 'extra', 1, NULL);
DELETE FROM app.notes WHERE txt = 'a' LIMIT 1;
)sql");
  CommandRun run = Verify();
  ASSERT_EQ(run.exit_code, 1) << run.out;
  rapidjson::Document doc;
  doc.Parse(run.out.c_str());
  ASSERT_FALSE(doc.HasParseError()) << run.out;
  EXPECT_FALSE(doc["consistent"].GetBool());
  std::map<std::string, const rapidjson::Value*> tables;
  for (const auto& t : doc["tables"].GetArray()) tables[t["table"].GetString()] = &t;
  ASSERT_EQ(tables.count("app.items"), 1u) << run.out;
  const auto& items = *tables["app.items"];
  EXPECT_STREQ(items["status"].GetString(), "differs");
  EXPECT_EQ(items["rows"].GetUint64(), 3000u);
  EXPECT_EQ(items["missing_rows"].GetUint64(), 1u);
  EXPECT_EQ(items["extra_rows"].GetUint64(), 1u);
  EXPECT_EQ(items["changed_rows"].GetUint64(), 1u);
  std::string keys;
  for (const auto& k : items["sample_keys"].GetArray()) keys += std::string(k.GetString()) + " ";
  EXPECT_NE(keys.find("id=100"), std::string::npos) << keys;
  EXPECT_NE(keys.find("id=2000"), std::string::npos) << keys;
  EXPECT_NE(keys.find("id=5000"), std::string::npos) << keys;
  const auto& notes = *tables["app.notes"];
  EXPECT_STREQ(notes["status"].GetString(), "differs");
  EXPECT_EQ(notes["missing_rows"].GetUint64(), 1u);
  EXPECT_EQ(notes["extra_rows"].GetUint64(), 0u);
  EXPECT_STREQ((*tables["app.same"])["status"].GetString(), "equal");

  EXPECT_TRUE(doc["files_verified"].GetBool()) << run.out;
  // Open, the root (2 entries: one page), then "docs" (5 entries on the primary) in pages of 2;
  // "docs/sub" is equal: not listed.
  EXPECT_EQ(doc["files_summary"]["requests"].GetUint64(), 5u) << run.out;
  EXPECT_EQ(doc["files_summary"]["listed_nodes"].GetUint64(), 7u) << run.out;
  EXPECT_EQ(FileProblems(doc), (std::set<std::string>{
                                   "docs/a.txt content",
                                   "docs/b.txt missing",
                                   "docs/c.txt mode",
                                   "docs/extra.txt extra",
                               }))
      << run.out;

  // `replsync status` shows the last verify.
  CommandRun status = Replsync("status", "");
  EXPECT_EQ(status.exit_code, 0) << status.out;
  EXPECT_NE(status.out.find("last verify"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("(all, took"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("differences: 2 tables, 4 paths"), std::string::npos) << status.out;
  CommandRun status_json = Replsync("status", "--json");
  EXPECT_NE(status_json.out.find("\"last_verify\""), std::string::npos) << status_json.out;
  EXPECT_NE(status_json.out.find("\"exit_code\": 1"), std::string::npos) << status_json.out;

  // Each part alone.
  CommandRun db = Verify("--json --database-only");
  EXPECT_EQ(db.exit_code, 1) << db.out;
  EXPECT_NE(db.out.find("\"files_verified\":false"), std::string::npos) << db.out;
  EXPECT_NE(db.out.find("\"files\":[]"), std::string::npos) << db.out;
  CommandRun files = Verify("--files-only");
  EXPECT_EQ(files.exit_code, 1) << files.out;
  EXPECT_NE(files.out.find("FILE missing \"docs/b.txt\""), std::string::npos) << files.out;
  EXPECT_NE(files.out.find("tables: not compared (--files-only)"), std::string::npos) << files.out;
  EXPECT_NE(files.out.find("4 paths differ"), std::string::npos) << files.out;
}

TEST_F(VerifyTest, FindsNoDifferenceWhileTheLoadGoesOn) {
  StartBoth();
  Sql(*primary_, "CREATE DATABASE sbtest");
  auto sysbench = [&](const std::string& command, int seconds) {
    return testing::ChildProcess::Start(
        {"/usr/bin/sysbench", "oltp_write_only", "--db-driver=mysql", "--mysql-host=127.0.0.1",
         fmt::format("--mysql-port={}", primary_->port()), "--mysql-user=root", "--mysql-db=sbtest",
         "--tables=2", "--table-size=5000", "--threads=2", fmt::format("--time={}", seconds),
         "--rate=200", "--mysql-ignore-errors=all", command},
        dir_ + "/sysbench.log");
  };
  auto prepare = sysbench("prepare", 0);
  ASSERT_TRUE(prepare.ok());
  auto prepared = (*prepare)->Wait(std::chrono::seconds(120));
  ASSERT_TRUE(prepared && WIFEXITED(*prepared) && WEXITSTATUS(*prepared) == 0);
  WaitSame("SELECT COUNT(*) FROM sbtest.sbtest2");
  ASSERT_NO_FATAL_FAILURE(MakeFiles());
  auto load = sysbench("run", 20);
  ASSERT_TRUE(load.ok());
  // Files change on the primary too, all the time: new, rewritten, renamed, deleted.
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> file_changes{0};
  std::thread writer([&] {
    for (uint64_t i = 0; !stop; ++i) {
      const std::string name = fmt::format("load/f{}.txt", i % 40);
      const std::string path = RepositoryPath("primary") + "/" + name;
      switch (i % 4) {
        case 0:
        case 1:
          Write("primary", name, fmt::format("version {} {}\n", i, std::string(i % 3000, 'x')));
          break;
        case 2:
          std::rename(path.c_str(), (path + ".moved").c_str());
          break;
        default:
          std::remove((path + ".moved").c_str());
          break;
      }
      ++file_changes;
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(2));
  for (int i = 0; i < 3; ++i) {
    CommandRun run = Verify();
    EXPECT_EQ(run.exit_code, 0) << run.out << Tail("secondary");
    EXPECT_NE(run.out.find("\"consistent\":true"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("\"sbtest.sbtest1\""), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("\"files_verified\":true"), std::string::npos) << run.out;
    const uint64_t before = file_changes;
    CommandRun files = Verify("--json --files-only");
    EXPECT_EQ(files.exit_code, 0) << files.out << Tail("secondary");
    EXPECT_NE(files.out.find("\"files\":[]"), std::string::npos) << files.out;
    EXPECT_GT(file_changes.load(), before) << "files did not change during the verify";
  }
  stop = true;
  writer.join();
  // The load ran through the verifications.
  auto still = (*load)->Wait(std::chrono::seconds(1));
  EXPECT_FALSE(still.has_value()) << "sysbench ended before the verifications did";
  (*load)->Wait(std::chrono::seconds(60));
}

TEST_F(VerifyTest, RepairMakesTheSecondaryEqualAgain) {
  StartBoth();
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, R"sql(
CREATE DATABASE app;
USE app;
CREATE TABLE app.kinds (id INT PRIMARY KEY, d DECIMAL(20,6), f DOUBLE, fl FLOAT,
  t DATETIME(6), ts TIMESTAMP(3) NULL, s VARCHAR(40) CHARACTER SET utf8mb4, b BLOB, j JSON,
  bits BIT(10), e ENUM('x','y','z'), g INT AS (id * 2) VIRTUAL, st INT AS (id + 1) STORED);
INSERT INTO app.kinds (id, d, f, fl, t, ts, s, b, j, bits, e)
  SELECT seq, seq / 7, seq / 3e0, seq / 3e0, '2024-02-29 23:59:59.999999' - INTERVAL seq SECOND,
         '2024-03-31 01:30:00.123' + INTERVAL seq MINUTE, CONCAT('Grüße ', seq, ' 日本 '),
         CONCAT(x'00ff00', seq, x'00'), JSON_OBJECT('n', seq, 's', 'é'), seq % 1024,
         1 + seq % 3
  FROM seq_1_to_500;
INSERT INTO app.kinds (id) VALUES (1000);
CREATE TABLE app.bag (txt VARCHAR(40), n INT, v BLOB);
INSERT INTO app.bag VALUES ('a', 1, x'00'), ('a', 1, x'00'), ('b', 2, NULL), ('c', NULL, ''),
  ('A', 1, x'00');
)sql"));
  WaitSame("SELECT COUNT(*) FROM app.bag");
  WaitSame("SELECT COUNT(*) FROM app.kinds");

  // Behind replication's back, on the secondary only.
  ASSERT_NO_FATAL_FAILURE(Sql(*secondary_, R"sql(
SET SESSION sql_log_bin = 0;
UPDATE app.kinds SET s = 'changed', d = d + 1, b = x'00', j = '[]', bits = NULL WHERE id = 42;
UPDATE app.kinds SET f = f + 1e-12, fl = NULL, ts = NULL WHERE id = 43;
UPDATE app.kinds SET s = 'not null' WHERE id = 1000;
DELETE FROM app.kinds WHERE id = 250;
INSERT INTO app.kinds (id, s, b) VALUES (9999, 'extra', x'000000');
DELETE FROM app.bag WHERE txt = 'a' LIMIT 1;
INSERT INTO app.bag VALUES ('z', 26, x'0000'), ('a ', 1, x'00');
)sql"));

  ASSERT_NO_FATAL_FAILURE(MakeFiles());
  Write("primary", "docs/empty/.keep", "");
  Write("primary", "gone/deeper/z.txt", "a folder the secondary loses\n");
  ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(std::chrono::seconds(30)));
  // Files behind replication's back: changed (one keeping its size and mtime, which only --deep
  // sees), deleted, extra (a file and a folder with files), a mode change, a retargeted link,
  // a folder replaced by a file.
  Write("secondary", "docs/a.txt", "changed\n");
  {
    const std::string d = RepositoryPath("secondary") + "/docs/sub/d.txt";
    struct stat before;
    ASSERT_EQ(stat(d.c_str(), &before), 0);
    Write("secondary", "docs/sub/d.txt", "DELTA DELTA\n");
    const struct timespec times[2] = {before.st_atim, before.st_mtim};
    ASSERT_EQ(utimensat(AT_FDCWD, d.c_str(), times, 0), 0);
  }
  ASSERT_EQ(unlink((RepositoryPath("secondary") + "/docs/b.txt").c_str()), 0);
  Write("secondary", "docs/extra.txt", "not on the primary\n");
  Write("secondary", "more/x/y.txt", "a whole extra folder\n");
  ASSERT_EQ(chmod((RepositoryPath("secondary") + "/docs/c.txt").c_str(), 0600), 0);
  ASSERT_EQ(unlink((RepositoryPath("secondary") + "/docs/link").c_str()), 0);
  ASSERT_EQ(symlink("c.txt", (RepositoryPath("secondary") + "/docs/link").c_str()), 0);
  std::filesystem::remove_all(RepositoryPath("secondary") + "/docs/empty");
  std::filesystem::remove_all(RepositoryPath("secondary") + "/gone");
  Write("secondary", "docs/empty", "a file where a folder was");

  const std::set<std::string> planted = {
      "docs/a.txt content",   "docs/b.txt missing", "docs/c.txt mode", "docs/empty type",
      "docs/extra.txt extra", "docs/link link",     "gone missing",    "more extra"};
  {
    CommandRun quick = Verify("--json --files-only");
    ASSERT_EQ(quick.exit_code, 1) << quick.out;
    rapidjson::Document doc;
    doc.Parse(quick.out.c_str());
    ASSERT_FALSE(doc.HasParseError()) << quick.out;
    EXPECT_EQ(FileProblems(doc), planted) << quick.out;
    CommandRun deep = Verify("--json --files-only --deep");
    ASSERT_EQ(deep.exit_code, 1) << deep.out;
    doc.Parse(deep.out.c_str());
    ASSERT_FALSE(doc.HasParseError()) << deep.out;
    std::set<std::string> with_d = planted;
    with_d.insert("docs/sub/d.txt content");
    EXPECT_EQ(FileProblems(doc), with_d) << deep.out;
  }
  CommandRun dry_files = Replsync("repair", "--files-only --dry-run --deep");
  ASSERT_EQ(dry_files.exit_code, 1) << dry_files.out;
  for (const char* expected :
       {"WOULD replace \"docs/a.txt\" (content)", "WOULD replace \"docs/sub/d.txt\" (content)",
        "WOULD delete  \"more\" (extra)", "WOULD replace \"docs/b.txt\" (missing)"}) {
    EXPECT_NE(dry_files.out.find(expected), std::string::npos) << expected << "\n" << dry_files.out;
  }
  EXPECT_EQ(Read("secondary", "docs/a.txt"), "changed\n") << "a dry run changed a file";

  // A dry run lists the statements and changes nothing.
  CommandRun dry = Replsync("repair", "--database-only --dry-run");
  ASSERT_EQ(dry.exit_code, 1) << dry.out << Tail("secondary");
  for (const char* expected :
       {"SET SESSION sql_log_bin=0;", "DELETE FROM `app`.`kinds` WHERE `id` = 9999;",
        "REPLACE INTO `app`.`kinds` (`id`, `d`, `f`, `fl`, `t`, `ts`, `s`, `b`, `j`, `bits`, `e`)",
        "('42', ", "('43', ", "('250', ",
        "('1000', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        "NULL, NULL)",
        "INSERT INTO `app`.`bag` (`txt`, `n`, `v`) VALUES (_latin1 X'61', '1', "
        "X'00');",
        "DELETE FROM `app`.`bag` WHERE `txt` <=> _latin1 X'7A'",
        "DELETE FROM `app`.`bag` WHERE `txt` <=> _latin1 X'6120'",
        "WOULD REPAIR app.kinds: 1 inserted, 3 updated, 1 deleted",
        "WOULD REPAIR app.bag: 1 inserted, 0 updated, 2 deleted"}) {
    EXPECT_NE(dry.out.find(expected), std::string::npos) << expected << "\n" << dry.out;
  }
  CommandRun still = Verify();
  EXPECT_EQ(still.exit_code, 1) << still.out;

  CommandRun repair = Replsync("repair", "--json --deep");
  ASSERT_EQ(repair.exit_code, 0) << repair.out << Tail("secondary");
  rapidjson::Document doc;
  doc.Parse(repair.out.c_str());
  ASSERT_FALSE(doc.HasParseError()) << repair.out;
  EXPECT_TRUE(doc["repaired"].GetBool()) << repair.out;
  std::map<std::string, std::string> counts;
  for (const auto& t : doc["tables"].GetArray()) {
    counts[t["table"].GetString()] = fmt::format(
        "{}/{}/{}", t["inserted"].GetUint64(), t["updated"].GetUint64(), t["deleted"].GetUint64());
  }
  EXPECT_EQ(counts["app.kinds"], "1/3/1") << repair.out;
  EXPECT_EQ(counts["app.bag"], "1/0/2") << repair.out;
  EXPECT_EQ(doc["files_repaired"].GetUint64(), 9u) << repair.out;
  EXPECT_TRUE(doc["files_left"].GetArray().Empty()) << repair.out;

  CommandRun after = Verify("--json --deep");
  EXPECT_EQ(after.exit_code, 0) << after.out;
  EXPECT_NE(after.out.find("\"consistent\":true"), std::string::npos) << after.out;
  EXPECT_NE(after.out.find("\"files\":[]"), std::string::npos) << after.out;
  // Independently: the trees are equal by the harness' own comparison.
  ASSERT_NO_FATAL_FAILURE(ExpectTreesConverge(std::chrono::seconds(30)));
  EXPECT_EQ(Read("secondary", "docs/sub/d.txt"), "delta delta\n");
  EXPECT_EQ(Read("secondary", "gone/deeper/z.txt"), "a folder the secondary loses\n");

  // Replication goes on over the repaired rows.
  Sql(*primary_, "UPDATE app.kinds SET s = 'after the repair' WHERE id = 42");
  WaitSame("SELECT s FROM app.kinds WHERE id = 42");
  for (const char* table : {"app.kinds", "app.bag"}) {
    auto p = primary_->Query(std::string("CHECKSUM TABLE ") + table);
    auto s = secondary_->Query(std::string("CHECKSUM TABLE ") + table);
    ASSERT_TRUE(p.ok() && s.ok() && !p->empty() && !s->empty() && (*p)[0].size() > 1 &&
                (*s)[0].size() > 1);
    EXPECT_EQ((*p)[0][1], (*s)[0][1]) << table;
  }
}

TEST_F(VerifyTest, RepairSaysWhenTheSecondarysTriggersFired) {
  StartBoth();
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, R"sql(
CREATE DATABASE app;
CREATE TABLE app.orders (id INT PRIMARY KEY, total INT);
CREATE TABLE app.order_log (id INT, note VARCHAR(20));
CREATE TRIGGER app.orders_logged AFTER INSERT ON app.orders FOR EACH ROW
  INSERT INTO app.order_log VALUES (NEW.id, 'inserted');
INSERT INTO app.orders VALUES (1, 10), (2, 20), (3, 30);
)sql"));
  WaitSame("SELECT COUNT(*) FROM app.order_log");
  ASSERT_NO_FATAL_FAILURE(Sql(*secondary_,
                              "SET SESSION sql_log_bin = 0; "
                              "DELETE FROM app.orders WHERE id = 2"));
  CommandRun repair = Replsync("repair", "--database-only");
  EXPECT_EQ(repair.exit_code, 0) << repair.out;
  EXPECT_NE(repair.out.find("REPAIRED     app.orders: 1 inserted, 0 updated, 0 deleted"),
            std::string::npos)
      << repair.out;
  EXPECT_NE(repair.out.find("app.orders has 1 trigger(s) on the secondary, which fired"),
            std::string::npos)
      << repair.out;
  // The trigger wrote a fourth log row on the secondary: verify shows it, a second repair
  // removes it (deleting log rows fires nothing), and then both nodes are equal.
  CommandRun after = Verify("--json --database-only");
  EXPECT_EQ(after.exit_code, 1) << after.out;
  EXPECT_NE(after.out.find("\"table\":\"app.order_log\",\"status\":\"differs\""), std::string::npos)
      << after.out;
  CommandRun again = Replsync("repair", "--database-only");
  EXPECT_EQ(again.exit_code, 0) << again.out;
  CommandRun clean = Verify("--json --database-only");
  EXPECT_EQ(clean.exit_code, 0) << clean.out;
}

TEST_F(VerifyTest, ABarrierLeftByADeadVerifyIsLiftedAndOneVerifyRunsAtATime) {
  StartBoth();
  ASSERT_NO_FATAL_FAILURE(Sql(*primary_, R"sql(
CREATE DATABASE app;
CREATE TABLE app.t (id INT PRIMARY KEY);
INSERT INTO app.t VALUES (1);
)sql"));
  WaitSame("SELECT COUNT(*) FROM app.t");
  const std::string state = dir_ + "/secondary-state";
  auto write_barrier = [&](pid_t pid) {
    Status written = verify::WriteBarrierFile(
        verify::BarrierFilePath(state),
        {"t1", verify::StopBefore::Now(), static_cast<uint64_t>(pid)});
    ASSERT_TRUE(written.ok()) << written.ToString();
  };
  auto count_on_secondary = [&] {
    auto r = secondary_->Query("SELECT COUNT(*) FROM app.t");
    return r.ok() && !r->empty() ? (*r)[0][0] : std::string("?");
  };

  // A barrier whose verify runs (this process holds verify.lock, as verify does for its whole
  // run) holds the applier.
  Result<FileLock> verify_lock =
      FileLock::Acquire(state + "/verify.lock", FileLock::kDefaultWait,
                        fmt::format("{}\n", getpid()));
  ASSERT_TRUE(verify_lock.ok()) << verify_lock.status().ToString();
  ASSERT_NO_FATAL_FAILURE(write_barrier(getpid()));
  bool paused = false;
  for (int i = 0; i < 100 && !paused; ++i) {
    Result<verify::PausedAt> at = verify::ReadPausedFile(verify::PausedFilePath(state));
    paused = at.ok() && at->token == "t1";
    if (!paused) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(paused) << Tail("secondary");
  Sql(*primary_, "INSERT INTO app.t VALUES (2)");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(count_on_secondary(), "1") << "the applier did not hold at the barrier";

  // One verify or repair at a time per node: the lock is taken.
  CommandRun refused = Verify();
  EXPECT_EQ(refused.exit_code, 2) << refused.out;
  EXPECT_NE(refused.out.find(fmt::format(
                "another replsync verify or repair (pid {}) is running on this node", getpid())),
            std::string::npos)
      << refused.out;
  CommandRun repair_refused = Replsync("repair", "--dry-run");
  EXPECT_EQ(repair_refused.exit_code, 2) << repair_refused.out;

  // Its verify dies without removing the barrier (as one killed with kill -9: the lock goes with
  // it), while the pid in the barrier still names a live process: the applier lifts it.
  verify_lock = Status::Aborted("the verify died");
  WaitSame("SELECT COUNT(*) FROM app.t");
  EXPECT_EQ(count_on_secondary(), "2");
  EXPECT_FALSE(std::filesystem::exists(verify::BarrierFilePath(state)));
  EXPECT_NE(Tail("secondary").find("has no running verify"), std::string::npos)
      << Tail("secondary");
  CommandRun after = Verify();
  EXPECT_EQ(after.exit_code, 0) << after.out << Tail("secondary");
}

}  // namespace
}  // namespace replsync
