// The primary's bootstrap service (capture/bootstrap_server.h) end to end: a PrimaryNode run in
// this process on a real MariaDB server (so that tests can inject a DDL at exactly the moment
// after the snapshots opened), the secondary's BootstrapClient over ZeroMQ with CURVE keys of
// the node pair's configuration, and the journal read back after the node stopped.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "capture/primary_node.h"
#include "sync/bootstrap/bootstrap_client.h"
#include "sync/bootstrap/chunk_summary.h"
#include "sync/config.h"
#include "sync/journal/journal.h"
#include "sync/mysql/mariadb_connection.h"
#include "sync/verify/usable_key.h"
#include "sync/wire/transport_security.h"
#include "tests/harness/node_pair_test.h"

namespace replsync {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

MysqlOptions MysqlFor(const testing::MariadbServer& server) {
  MysqlOptions o;
  o.host = server.host();
  o.port = server.port();
  o.user = server.user();
  o.password = server.password();
  return o;
}

// The rows of a chunk's text (no escapes in these tests' values): fields by TAB, rows by LF.
std::vector<std::vector<std::string>> Rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::vector<std::string> fields;
    size_t f = start;
    while (true) {
      size_t tab = text.find('\t', f);
      if (tab == std::string::npos || tab > end) {
        fields.push_back(text.substr(f, end - f));
        break;
      }
      fields.push_back(text.substr(f, tab - f));
      f = tab + 1;
    }
    rows.push_back(std::move(fields));
    start = end + 1;
  }
  return rows;
}

class BootstrapServerTest : public testing::NodePairTest {
 protected:
  explicit BootstrapServerTest(int secondaries = 1)
      : NodePairTest({"app"}, "bootstrap-server", secondaries) {}

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(NodePairTest::SetUp());
    Sql(*primary_, "CREATE DATABASE app; USE app");  // seq_1_to_N needs a current database
    ASSERT_NO_FATAL_FAILURE(StartPrimary());
    ASSERT_NO_FATAL_FAILURE(Connect());
  }
  void TearDown() override {
    client_.reset();
    StopPrimary();
    NodePairTest::TearDown();
  }

  void StartPrimary() {
    auto config = NodeConfig::Load(dir_ + "/primary.toml");
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto security = LoadTransportSecurity(*config);
    ASSERT_TRUE(security.ok()) << security.status().ToString();
    capture::PrimaryNodeOptions options;
    options.bootstrap_after_snapshot = [this](const BinlogPosition& point) {
      std::function<void(const BinlogPosition&)> hook;
      {
        std::lock_guard<std::mutex> lock(hook_mu_);
        hook.swap(after_snapshot_);  // once
      }
      if (hook) hook(point);
    };
    auto node = capture::PrimaryNode::Open(*config, *security, options);
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    node_ = std::move(node).value();
    ASSERT_TRUE(node_->Start().ok());
    // The capture runs (it chose its first checkpoint) before the tests write.
    for (int i = 0; i < 600; ++i) {
      NodeStatus status = node_->status();
      if (status.primary && status.primary->capture_state == "running") return;
      std::this_thread::sleep_for(milliseconds(50));
    }
    FAIL() << "the primary's capture did not start";
  }
  void StopPrimary() {
    if (node_) node_->Stop();
    node_.reset();
  }

  void Connect() {
    auto config = NodeConfig::Load(dir_ + "/secondary.toml");
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    auto security = LoadTransportSecurity(*config);
    ASSERT_TRUE(security.ok()) << security.status().ToString();
    auto client_security = security->ForClient(config->transport.primary);
    ASSERT_TRUE(client_security.ok()) << client_security.status().ToString();
    BootstrapClient::Options options;
    options.reply_timeout = seconds(120);
    options.node_name = "secondary";
    auto client = BootstrapClient::Connect(config->transport.primary, *client_security, options);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
  }

  void AfterSnapshot(std::function<void(const BinlogPosition&)> hook) {
    std::lock_guard<std::mutex> lock(hook_mu_);
    after_snapshot_ = std::move(hook);
  }

  // Every chunk of a keyed table in one round, by one reader; the rows in order.
  std::vector<std::vector<std::string>> ReadKeyed(uint64_t round, uint32_t reader,
                                                  const std::string& table, uint64_t max_bytes,
                                                  uint64_t* chunks = nullptr) {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> after;
    for (int i = 0; i < 100000; ++i) {
      auto chunk = client_->ReadChunk(round, reader, "app", table, after, max_bytes, false);
      EXPECT_TRUE(chunk.ok()) << chunk.status().ToString();
      if (!chunk.ok()) return rows;
      if (chunks != nullptr) ++*chunks;
      EXPECT_LE(chunk->raw_bytes, 3 * max_bytes) << table << " chunk " << i;
      EXPECT_LE(chunk->wire_bytes, chunk->raw_bytes + 64);
      for (auto& row : Rows(chunk->text)) rows.push_back(std::move(row));
      if (chunk->table_done) return rows;
      EXPECT_FALSE(chunk->last_key.empty());
      after = chunk->last_key;
    }
    ADD_FAILURE() << table << " never done";
    return rows;
  }

  std::unique_ptr<capture::PrimaryNode> node_;
  std::unique_ptr<BootstrapClient> client_;
  std::mutex hook_mu_;
  std::function<void(const BinlogPosition&)> after_snapshot_;  // guarded by hook_mu_
};

// With a second configured secondary that never connects, the journal keeps every entry: the
// entries before the stream's start are still there to be checked.
class BootstrapStreamStartTest : public BootstrapServerTest {
 protected:
  BootstrapStreamStartTest() : BootstrapServerTest(2) {}
};

TEST_F(BootstrapStreamStartTest, RoundZeroCarriesTheDefinitionsAndTheStreamStartThatIsPinned) {
  Sql(*primary_,
      "CREATE TABLE app.parent (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB;"
      "CREATE TABLE app.child (id INT PRIMARY KEY, parent_id INT, FOREIGN KEY (parent_id) "
      "REFERENCES app.parent (id)) ENGINE=InnoDB;"
      "CREATE TABLE app.tree (id INT PRIMARY KEY, up INT, FOREIGN KEY (up) REFERENCES "
      "app.tree (id)) ENGINE=InnoDB;"
      "CREATE TABLE app.uk (a INT NULL, u VARCHAR(10) NOT NULL, UNIQUE KEY un (a), UNIQUE KEY "
      "uu (u)) ENGINE=InnoDB;"
      "CREATE TABLE app.nokey (a INT, b TEXT) ENGINE=InnoDB;"
      "CREATE VIEW app.v AS SELECT id FROM app.parent;"
      "CREATE SEQUENCE app.s;"
      "INSERT INTO app.parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_300;"
      "ANALYZE TABLE app.parent");
  for (int i = 0; i < 5; ++i) {
    Sql(*primary_, fmt::format("INSERT INTO app.child VALUES ({}, 1)", i + 1));
  }
  // A copy of tables entering a following secondary's set (keep_stream): the definitions and
  // the point's sequence, and nothing pinned (the secondary keeps its stream and position).
  auto kept = client_->BeginRound(1, true, /*keep_stream=*/true);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_GT(kept->journal_seq, 0u);
  EXPECT_EQ(kept->tables.size(), 6u);
  const NodeStatus kept_status = node_->status();
  for (const auto& peer : kept_status.primary->peers) {
    if (peer.name == "secondary") {
      EXPECT_FALSE(peer.ever_connected) << "keep_stream pinned it";
    }
  }
  ASSERT_TRUE(client_->EndRound(kept->round).ok());
  auto round = client_->BeginRound(2, true);
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  // Transactions after the point.
  for (int i = 0; i < 3; ++i) {
    Sql(*primary_, fmt::format("INSERT INTO app.child VALUES ({}, 2)", i + 100));
  }
  EXPECT_FALSE(round->point.file.empty());
  EXPECT_GT(round->point.offset, 0u);
  EXPECT_FALSE(round->gtid.empty());
  ASSERT_EQ(round->databases.size(), 1u);
  EXPECT_NE(round->databases[0].find("CREATE DATABASE `app`"), std::string::npos);
  std::map<std::string, pb::BootstrapTable> tables;
  for (const pb::BootstrapTable& t : round->tables) {
    EXPECT_EQ(t.name().db(), "app");
    tables[t.name().table()] = t;
  }
  std::set<std::string> names;
  for (const auto& [name, t] : tables) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{"child", "nokey", "parent", "s", "tree", "uk"}))
      << "views are not tables here";
  EXPECT_EQ(tables["parent"].key_columns_size(), 1);
  EXPECT_EQ(tables["parent"].key_columns(0), "id");
  EXPECT_NE(tables["parent"].create_sql().find("CREATE TABLE `parent`"), std::string::npos);
  EXPECT_GE(tables["parent"].estimated_rows(), 100u);
  EXPECT_GT(tables["parent"].estimated_bytes(), 0u);
  EXPECT_EQ(tables["parent"].engine(), "InnoDB");
  EXPECT_EQ(tables["parent"].table_type(), "BASE TABLE");
  ASSERT_EQ(tables["uk"].key_columns_size(), 1) << "the unique key of a NULL column is not usable";
  EXPECT_EQ(tables["uk"].key_columns(0), "u");
  EXPECT_EQ(tables["nokey"].key_columns_size(), 0);
  ASSERT_EQ(tables["child"].references_size(), 1);
  EXPECT_EQ(tables["child"].references(0).table(), "parent");
  ASSERT_EQ(tables["tree"].references_size(), 1);
  EXPECT_EQ(tables["tree"].references(0).table(), "tree");
  EXPECT_EQ(tables["s"].table_type(), "SEQUENCE");
  EXPECT_NE(tables["s"].create_sql().find("CREATE SEQUENCE"), std::string::npos);

  // The pin: the primary's status shows the secondary's position at S_0 - 1.
  const uint64_t s0 = round->journal_seq;
  ASSERT_GT(s0, 1u);
  bool pinned = false;
  const NodeStatus status = node_->status();
  for (const auto& peer : status.primary->peers) {
    if (peer.name == "secondary") pinned = peer.durable_seq == s0 - 1 && peer.ever_connected;
  }
  EXPECT_TRUE(pinned) << "secondary's retention position is S_0 - 1";
  // Every transaction before is journaled, and the next one after the point made entries: wait
  // until the capture journaled the last insert, then read the journal back.
  auto position = client_->Position();
  ASSERT_TRUE(position.ok()) << position.status().ToString();
  for (int i = 0; i < 600; ++i) {
    auto status = BinlogPosition::Parse(node_->status().primary->binlog_position);
    if (status.ok() && !(*status < *position)) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  client_.reset();
  StopPrimary();
  auto journal =
      Journal::Open({.path = dir_ + "/primary-state/journal", .max_bytes = 0, .sync = false});
  ASSERT_TRUE(journal.ok()) << journal.status().ToString();
  EXPECT_LE((*journal)->first_seq(), s0) << "the pin kept the entries from S_0";
  auto meta = (*journal)->GetMeta("peer.secondary.durable");
  ASSERT_TRUE(meta.ok());
  ASSERT_TRUE(meta->has_value());
  EXPECT_EQ(**meta, std::to_string(s0 - 1));
  auto entries = (*journal)->Read((*journal)->first_seq(), 100000, size_t{1} << 30);
  ASSERT_TRUE(entries.ok());
  uint64_t before = 0, after = 0;
  for (const auto& [seq, bytes] : *entries) {
    pb::JournalEntry entry;
    ASSERT_TRUE(entry.ParseFromString(bytes));
    if (!entry.has_db()) continue;
    const BinlogPosition begin{entry.db().begin_file(), entry.db().begin_offset()};
    if (seq < s0) {
      EXPECT_TRUE(begin < round->point) << "entry " << seq << " begins at " << begin.ToString()
                                        << ", before S_0 " << round->point.ToString();
      ++before;
    } else {
      EXPECT_FALSE(begin < round->point) << "entry " << seq << " begins at " << begin.ToString()
                                         << ", at or after S_0 " << round->point.ToString();
      ++after;
    }
  }
  EXPECT_GT(before, 0u) << "the test's premise: transactions before the point were journaled";
  EXPECT_EQ(after, 3u) << "the three inserts after the point";
}

TEST_F(BootstrapServerTest, TheReadersOfARoundSeeOnePointWhileWritesGoOn) {
  Sql(*primary_,
      "CREATE TABLE app.acct (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB;"
      "INSERT INTO app.acct SELECT seq, 100 FROM seq_1_to_2000");
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> commits{0};
  std::thread writer([&] {
    MysqlThreadScope scope;
    auto session = MariadbConnection::Open(MysqlFor(*primary_));
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    for (uint64_t i = 0; !stop; ++i) {
      // Value moves between a row of the first half and one of the second.
      const uint64_t a = 1 + i % 1000;
      const uint64_t b = 2001 - a;
      Status st = (*session)->ExecuteBatch(
          {"START TRANSACTION", fmt::format("UPDATE app.acct SET v = v - 1 WHERE id = {}", a),
           fmt::format("UPDATE app.acct SET v = v + 1 WHERE id = {}", b), "COMMIT"});
      ASSERT_TRUE(st.ok()) << st.ToString();
      ++commits;
    }
  });
  // The writer stops and is joined however the test ends.
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Joiner() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  } joiner{stop, writer};
  for (int r = 0; r < 4; ++r) {
    auto round = client_->BeginRound(2, false);
    ASSERT_TRUE(round.ok()) << round.status().ToString();
    // Reader 0 reads the first half; reader 1 the rest, later.
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> after;
    bool done = false;
    while (!done) {
      const uint32_t reader = rows.size() < 1000 ? 0 : 1;
      auto chunk = client_->ReadChunk(round->round, reader, "app", "acct", after, 4096, false);
      ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
      for (auto& row : Rows(chunk->text)) rows.push_back(std::move(row));
      done = chunk->table_done;
      after = chunk->last_key;
      std::this_thread::sleep_for(milliseconds(5));
    }
    ASSERT_EQ(rows.size(), 2000u);
    int64_t sum = 0;
    for (const auto& row : rows) sum += std::stoll(row.at(1));
    EXPECT_EQ(sum, 200000) << "round " << round->round << " at " << round->point.ToString()
                           << " (lock " << round->lock_ms << " ms)";
    ASSERT_TRUE(client_->EndRound(round->round).ok());
  }
  // The test's premise: halves read at two different points do not add up.
  auto early = client_->BeginRound(1, false);
  ASSERT_TRUE(early.ok()) << early.status().ToString();
  const uint64_t seen = commits.load();
  while (commits.load() < seen + 5) std::this_thread::sleep_for(milliseconds(5));
  auto late = client_->BeginRound(1, false);
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  const auto first = ReadKeyed(early->round, 0, "acct", 1 << 20);
  const auto second = ReadKeyed(late->round, 0, "acct", 1 << 20);
  ASSERT_EQ(first.size(), 2000u);
  ASSERT_EQ(second.size(), 2000u);
  int64_t mixed = 0;
  for (size_t i = 0; i < 2000; ++i) mixed += std::stoll((i < 1000 ? first : second)[i].at(1));
  EXPECT_GT(mixed, 200000) << "two points would show in the sum";
  stop = true;
  writer.join();
  EXPECT_GT(commits.load(), 20u) << "the test's premise: writes went on during the rounds";
}

TEST_F(BootstrapServerTest, ChunksCoverAKeyedTableExactlyOnceInKeyOrder) {
  Sql(*primary_,
      "CREATE TABLE app.big (id INT PRIMARY KEY, pad VARCHAR(100)) ENGINE=InnoDB;"
      "INSERT INTO app.big SELECT seq, REPEAT('x', seq % 100) FROM seq_1_to_50000;"
      "CREATE TABLE app.pair (a VARCHAR(10) CHARACTER SET utf8mb4, b INT, c INT, PRIMARY KEY "
      "(a, b)) ENGINE=InnoDB;"
      "INSERT INTO app.pair SELECT CONCAT('k', seq % 37, 'é'), seq, seq FROM seq_1_to_3000");
  auto round = client_->BeginRound(1, false);
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  uint64_t chunks = 0;
  auto rows = ReadKeyed(round->round, 0, "big", 64 << 10, &chunks);
  ASSERT_EQ(rows.size(), 50000u);
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].at(0), std::to_string(i + 1));
    ASSERT_EQ(rows[i].at(1), std::string((i + 1) % 100, 'x'));
  }
  EXPECT_GT(chunks, 20u) << "about 64 KiB a chunk";
  // A composite key of a string and a number: every row once, in key order.
  auto pairs = ReadKeyed(round->round, 0, "pair", 4 << 10, &chunks);
  ASSERT_EQ(pairs.size(), 3000u);
  std::set<std::string> seen;
  for (size_t i = 0; i < pairs.size(); ++i) {
    EXPECT_TRUE(seen.insert(pairs[i].at(2)).second) << "row " << pairs[i].at(2) << " twice";
  }
  auto expected = primary_->Query("SELECT c FROM app.pair ORDER BY a, b");
  ASSERT_TRUE(expected.ok());
  ASSERT_EQ(expected->size(), pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) ASSERT_EQ((*expected)[i][0], pairs[i].at(2)) << i;
  // The primary's status shows what it served.
  const NodeStatus status = node_->status();
  ASSERT_EQ(status.primary->bootstrap.size(), 1u);
  const auto& served = status.primary->bootstrap[0];
  EXPECT_EQ(served.name, "secondary");
  EXPECT_EQ(served.rounds_open, 1u);
  EXPECT_EQ(served.chunks, chunks);
  EXPECT_EQ(served.rows, 53000u);
  EXPECT_GT(served.bytes, served.wire_bytes);
}

// Resync's requests: a summary names the range a chunk would be and carries the row count and
// SHA-256 the same SQL gives on any server holding the same rows (sync/bootstrap/chunk_summary.h,
// here computed on the primary's server itself, outside the round's snapshot); a bounded read
// returns exactly that range. A row changed after the round's snapshot changes the current
// summary of its range only: the round's summaries are of the snapshot.
TEST_F(BootstrapServerTest, ASummaryNamesAChunksRangeAndABoundedReadReturnsExactlyIt) {
  Sql(*primary_,
      "CREATE TABLE app.big (id INT PRIMARY KEY, pad VARCHAR(100), f FLOAT, d DATETIME(3), "
      "twice INT AS (id * 2) VIRTUAL) ENGINE=InnoDB;"
      "INSERT INTO app.big (id, pad, f, d) SELECT seq, REPEAT('x', seq % 100), seq / 7, "
      "'2024-01-01 00:00:00.5' + INTERVAL seq SECOND FROM seq_1_to_20000;"
      "CREATE TABLE app.pair (a VARCHAR(10) CHARACTER SET utf8mb4, b INT, c INT, PRIMARY KEY "
      "(a, b)) ENGINE=InnoDB;"
      "INSERT INTO app.pair SELECT CONCAT('k', seq % 37, 'é'), seq, seq FROM seq_1_to_3000;"
      "CREATE TABLE app.nokey (a INT, b VARCHAR(20)) ENGINE=InnoDB;"
      "INSERT INTO app.nokey VALUES (1, 'one'), (1, 'one'), (2, NULL)");
  auto round = client_->BeginRound(1, false);
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  // After the snapshot: one row of app.big changes.
  Sql(*primary_, "UPDATE app.big SET pad = 'changed' WHERE id = 7000");

  auto local = MariadbConnection::Open(MysqlFor(*primary_));
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  ASSERT_TRUE((*local)->Execute("SET NAMES binary").ok());
  ASSERT_TRUE((*local)->Execute("SET SESSION time_zone = '+00:00'").ok());
  for (const char* table : {"big", "pair"}) {
    SCOPED_TRACE(table);
    auto key = verify::ReadUsableKey(**local, "app", table);
    ASSERT_TRUE(key.ok());
    std::vector<std::string> after;
    uint64_t rows = 0, ranges = 0, differing = 0;
    for (int i = 0; i < 10000; ++i) {
      auto summary = client_->SummarizeChunk(round->round, 0, "app", table, after,
                                             std::string(table) == "big" ? 32 << 10 : 4 << 10);
      ASSERT_TRUE(summary.ok()) << summary.status().ToString();
      ++ranges;
      EXPECT_TRUE(summary->exact);
      const std::vector<std::string> upper =
          summary->table_done ? std::vector<std::string>{} : summary->last_key;
      auto mine = bootstrap::SummarizeChunk(**local, "app", table, summary->columns, key->columns,
                                            key->name, after, upper);
      ASSERT_TRUE(mine.ok()) << mine.status().ToString();
      const bool holds_7000 = std::string(table) == "big" &&
                              (after.empty() || std::stoi(after[0]) < 7000) &&
                              (upper.empty() || std::stoi(upper[0]) >= 7000);
      EXPECT_EQ(mine->rows, summary->rows);
      EXPECT_EQ(mine->sha256 == summary->sha256, !holds_7000) << "range " << ranges;
      differing += mine->sha256 != summary->sha256;
      // The bounded read: exactly the summary's rows, ending at its last key.
      auto range = client_->ReadRange(round->round, 0, "app", table, after, upper);
      ASSERT_TRUE(range.ok()) << range.status().ToString();
      EXPECT_EQ(range->rows, summary->rows);
      EXPECT_EQ(Rows(range->text).size(), summary->rows);
      EXPECT_EQ(range->last_key, summary->last_key);
      EXPECT_EQ(range->table_done, summary->table_done);
      rows += summary->rows;
      if (summary->table_done) break;
      after = summary->last_key;
    }
    EXPECT_EQ(rows, std::string(table) == "big" ? 20000u : 3000u);
    EXPECT_GT(ranges, 5u);
    EXPECT_EQ(differing, std::string(table) == "big" ? 1u : 0u);
  }
  // A table without a key: one summary of the whole table, a multiset.
  auto whole = client_->SummarizeChunk(round->round, 0, "app", "nokey", {}, 32 << 10);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_TRUE(whole->table_done);
  EXPECT_EQ(whole->rows, 3u);
  auto mine = bootstrap::SummarizeChunk(**local, "app", "nokey", whole->columns, {}, "", {}, {});
  ASSERT_TRUE(mine.ok()) << mine.status().ToString();
  EXPECT_TRUE(mine->Matches(bootstrap::ChunkSummary{.rows = whole->rows, .sha256 = whole->sha256}));
  // The same rows in another order are the same multiset; one row fewer is not.
  Sql(*primary_,
      "CREATE TABLE app.nokey2 (a INT, b VARCHAR(20)) ENGINE=InnoDB;"
      "INSERT INTO app.nokey2 VALUES (2, NULL), (1, 'one'), (1, 'one')");
  auto reordered =
      bootstrap::SummarizeChunk(**local, "app", "nokey2", whole->columns, {}, "", {}, {});
  ASSERT_TRUE(reordered.ok());
  EXPECT_EQ(reordered->sha256, whole->sha256);
  Sql(*primary_, "DELETE FROM app.nokey2 WHERE a = 1 LIMIT 1");
  auto fewer = bootstrap::SummarizeChunk(**local, "app", "nokey2", whole->columns, {}, "", {}, {});
  ASSERT_TRUE(fewer.ok());
  EXPECT_NE(fewer->sha256, whole->sha256);
  // Refused: a bounded read of a table without a key, an end key that is not a literal.
  EXPECT_FALSE(client_->ReadRange(round->round, 0, "app", "nokey", {}, {}).ok());
  EXPECT_FALSE(
      client_->ReadRange(round->round, 0, "app", "big", {}, {"1; DROP TABLE app.big"}).ok());
}

TEST_F(BootstrapServerTest, ATableWithoutAKeyComesInPiecesOfOneSelect) {
  Sql(*primary_,
      "CREATE TABLE app.nokey (a INT, b VARCHAR(200)) ENGINE=InnoDB;"
      "INSERT INTO app.nokey SELECT seq, REPEAT('y', 150) FROM seq_1_to_5000;"
      "INSERT INTO app.nokey SELECT seq, REPEAT('y', 150) FROM seq_1_to_10");
  auto round = client_->BeginRound(1, false);
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  std::multiset<int> values;
  uint64_t pieces = 0;
  bool more = false;
  do {
    auto piece = client_->ReadChunk(round->round, 0, "app", "nokey", {}, 64 << 10, more);
    ASSERT_TRUE(piece.ok()) << piece.status().ToString();
    ++pieces;
    for (const auto& row : Rows(piece->text)) values.insert(std::stoi(row.at(0)));
    more = piece->more_pieces;
    EXPECT_EQ(piece->table_done, !more);
    EXPECT_TRUE(piece->last_key.empty());
    ASSERT_EQ(piece->columns.size(), 2u);
    EXPECT_EQ(piece->columns[1].name, "b");
    EXPECT_EQ(piece->columns[1].data_type, "varchar");
  } while (more);
  EXPECT_GT(pieces, 5u);
  ASSERT_EQ(values.size(), 5010u);
  for (int i = 1; i <= 5000; ++i) ASSERT_EQ(values.count(i), i <= 10 ? 2u : 1u) << i;
  // A next piece when none is open is refused with retry (read the table again).
  auto none = client_->ReadChunk(round->round, 0, "app", "nokey", {}, 64 << 10, true);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Status::Code::kUnavailable);
}

TEST_F(BootstrapServerTest, ADdlBetweenTheSnapshotAndTheDefinitionsAsksForANewRound) {
  Sql(*primary_, "CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB");
  AfterSnapshot(
      [this](const BinlogPosition&) { Sql(*primary_, "ALTER TABLE app.t ADD COLUMN late INT"); });
  auto round = client_->BeginRound(2, true);
  ASSERT_FALSE(round.ok());
  EXPECT_EQ(round.status().code(), Status::Code::kUnavailable) << round.status().ToString();
  EXPECT_NE(round.status().message().find("a DDL came"), std::string::npos)
      << round.status().message();
  EXPECT_NE(round.status().message().find("ADD COLUMN late"), std::string::npos);
  // The next round sees the table as it is.
  round = client_->BeginRound(2, true);
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  ASSERT_EQ(round->tables.size(), 1u);
  EXPECT_NE(round->tables[0].create_sql().find("`late`"), std::string::npos);
}

TEST_F(BootstrapServerTest, ATableCopiedByAnAlterAfterTheSnapshotAsksForALaterRound) {
  Sql(*primary_,
      "CREATE TABLE app.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;"
      "INSERT INTO app.t SELECT seq, seq FROM seq_1_to_100");
  auto round = client_->BeginRound(1, false);
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  Sql(*primary_, "ALTER TABLE app.t ADD COLUMN w INT, ALGORITHM=COPY");
  auto chunk = client_->ReadChunk(round->round, 0, "app", "t", {}, 1 << 20, false);
  ASSERT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.status().code(), Status::Code::kUnavailable) << chunk.status().ToString();
  // A new round reads it.
  auto next = client_->BeginRound(1, false);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  chunk = client_->ReadChunk(next->round, 0, "app", "t", {}, 1 << 20, false);
  ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
  EXPECT_EQ(chunk->rows, 100u);
  EXPECT_EQ(chunk->columns.size(), 3u);
}

TEST_F(BootstrapServerTest, AThirdRoundClosesTheOldestAndEndedRoundsAreGone) {
  Sql(*primary_,
      "CREATE TABLE app.t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO app.t "
      "VALUES (1)");
  auto first = client_->BeginRound(1, false);
  auto second = client_->BeginRound(1, false);
  auto third = client_->BeginRound(1, false);
  ASSERT_TRUE(first.ok() && second.ok() && third.ok());
  auto gone = client_->ReadChunk(first->round, 0, "app", "t", {}, 1 << 20, false);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(gone.status().message().find("begin a new round"), std::string::npos);
  EXPECT_TRUE(client_->ReadChunk(second->round, 0, "app", "t", {}, 1 << 20, false).ok());
  ASSERT_TRUE(client_->EndRound(second->round).ok());
  EXPECT_FALSE(client_->ReadChunk(second->round, 0, "app", "t", {}, 1 << 20, false).ok());
  EXPECT_TRUE(client_->ReadChunk(third->round, 0, "app", "t", {}, 1 << 20, false).ok());
  // A reader the round does not have, and a key that is no literal, are refused.
  auto bad = client_->ReadChunk(third->round, 3, "app", "t", {}, 1 << 20, false);
  EXPECT_EQ(bad.status().code(), Status::Code::kAborted);
  bad = client_->ReadChunk(third->round, 0, "app", "t", {"1; DROP TABLE app.t"}, 1 << 20, false);
  EXPECT_EQ(bad.status().code(), Status::Code::kAborted);
}

TEST_F(BootstrapServerTest, SchemaObjectsAndUsersComeBackAsRunnableSql) {
  Sql(*primary_,
      "CREATE TABLE app.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB;"
      "CREATE TABLE app.log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20)) "
      "ENGINE=InnoDB;"
      "CREATE VIEW app.z_base AS SELECT id, v FROM app.t;"
      "CREATE VIEW app.a_top AS SELECT id FROM app.z_base WHERE v > 1;"
      "CREATE FUNCTION app.twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;"
      "CREATE PROCEDURE app.fill() BEGIN INSERT INTO app.t VALUES (1, app.twice(1)); END;"
      "CREATE TRIGGER app.t_b AFTER INSERT ON app.t FOR EACH ROW INSERT INTO app.log (what) "
      "VALUES ('b');"
      "CREATE TRIGGER app.t_a AFTER INSERT ON app.t FOR EACH ROW PRECEDES t_b INSERT INTO "
      "app.log (what) VALUES ('a');"
      "CREATE EVENT app.tick ON SCHEDULE EVERY 1 HOUR DO DELETE FROM app.log;"
      "CREATE USER 'reader'@'%' IDENTIFIED BY 'secret';"
      "GRANT SELECT ON app.* TO 'reader'@'%';"
      "CREATE USER 'writer'@'localhost';"
      "GRANT INSERT ON app.t TO 'writer'@'localhost';"
      "CREATE USER 'skipme'@'%';"
      "GRANT SELECT ON app.* TO 'skipme'@'%';"
      "CREATE USER 'elsewhere'@'%';"
      "CREATE DATABASE other;"
      "GRANT SELECT ON other.* TO 'elsewhere'@'%'");
  auto definitions = client_->BeginRound(1, true);
  ASSERT_TRUE(definitions.ok()) << definitions.status().ToString();
  auto point = client_->Position();
  ASSERT_TRUE(point.ok()) << point.status().ToString();
  auto objects = client_->ReadObjects(*point, true, {"skipme"});
  ASSERT_TRUE(objects.ok()) << objects.status().ToString();
  std::vector<std::string> order;
  for (const pb::BootstrapObject& o : *objects) order.push_back(o.kind() + " " + o.name());
  const std::vector<std::string> expected = {
      "FUNCTION twice", "PROCEDURE fill",    "VIEW z_base",
      "VIEW a_top",     "TRIGGER t_a",       "TRIGGER t_b",
      "EVENT tick",     "USER 'reader'@'%'", "USER 'writer'@'localhost'"};
  EXPECT_EQ(order, expected);

  // Made on the secondary's server, with the tables of round 0's definitions.
  MysqlThreadScope scope;
  auto target = MariadbConnection::Open(MysqlFor(Server("secondary")));
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  MariadbConnection& s = **target;
  for (const std::string& db : definitions->databases) ASSERT_TRUE(s.Execute(db).ok()) << db;
  for (const pb::BootstrapTable& t : definitions->tables) {
    ASSERT_TRUE(s.Execute("USE " + QuoteIdentifier(t.name().db())).ok());
    Status st = s.Execute(t.create_sql());
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  for (const pb::BootstrapObject& o : *objects) {
    if (!o.db().empty()) {
      ASSERT_TRUE(s.Execute("USE " + QuoteIdentifier(o.db())).ok());
    }
    for (const std::string& sql : o.sql()) {
      Status st = s.Execute(sql);
      ASSERT_TRUE(st.ok()) << o.kind() << " " << o.name() << ": " << st.ToString();
    }
  }
  ASSERT_TRUE(s.Execute("CALL app.fill()").ok());
  auto log = s.Query("SELECT GROUP_CONCAT(what ORDER BY id) FROM app.log");
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_EQ(log->at(0).at(0).value_or(""), "a,b") << "the triggers in their order";
  auto top = s.Query("SELECT COUNT(*) FROM app.a_top");
  ASSERT_TRUE(top.ok()) << top.status().ToString();
  EXPECT_EQ(top->at(0).at(0).value_or(""), "1");
  auto events =
      s.Query("SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'app'");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->at(0).at(0).value_or(""), "1");
  auto grants = s.Query("SHOW GRANTS FOR 'reader'@'%'");
  ASSERT_TRUE(grants.ok()) << grants.status().ToString();
  std::string text;
  for (const auto& row : *grants) text += row.at(0).value_or("") + "\n";
  EXPECT_NE(text.find("GRANT SELECT ON `app`.*"), std::string::npos) << text;
  EXPECT_NE(text.find("PASSWORD"), std::string::npos) << "the password comes along: " << text;

  // A DDL between the point and the end of the read asks for a new point.
  Sql(*primary_, "CREATE VIEW app.later AS SELECT 1 AS one");
  auto late = client_->ReadObjects(*point, false, {});
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), Status::Code::kUnavailable);
}

}  // namespace
}  // namespace replsync
