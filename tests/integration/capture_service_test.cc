// CaptureService against a real MariaDB server: while a workload runs (row changes in the
// replicated database and another one, DDL run from another default database, large
// transactions cut into parts), capture is stopped and restarted — with a new journal handle, as
// a restarted daemon would — and the server itself is killed and restarted. Afterwards the
// journal must hold every transaction of the replicated database exactly once, in binlog order,
// with its TABLE_MAP/ROWS events byte for byte as the server's binlog files have them (read
// independently with FileBinlogSource).
#include "capture/capture_service.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "capture/binlog/binlog_decoder.h"
#include "capture/binlog/file_binlog_source.h"
#include "replsync.pb.h"
#include "tests/harness/mariadb_server.h"

namespace replsync::capture {
namespace {

using testing::MariadbServer;
namespace fs = std::filesystem;

// What the server's binlog files say about the replicated database: per GTID (in order), the
// raw TABLE_MAP/ROWS events of its tables and whether a statement of the group names it.
struct Expected {
  std::vector<std::string> gtids;
  std::map<std::string, std::vector<std::string>> events;
  std::map<std::string, std::vector<std::string>> ddl;
};

Expected ReadExpected(MariadbServer& server, const std::string& db) {
  Expected out;
  auto files = server.BinlogFiles();
  EXPECT_TRUE(files.ok()) << files.status().ToString();
  auto source = FileBinlogSource::Open(*files);
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  BinlogDecoder decoder;
  std::string gtid;
  bool marked = false;
  auto close = [&] {
    if (!gtid.empty() && marked) out.gtids.push_back(gtid);
    gtid.clear();
    marked = false;
  };
  RawEvent raw;
  while (true) {
    auto more = (*source)->Next(&raw);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    EXPECT_TRUE(decoder.Feed(raw).ok());
    Event event;
    while (true) {
      auto got = decoder.Next(&event);
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (!got.ok() || !*got) break;
      if (const auto* g = std::get_if<GtidEvent>(&event.body)) {
        close();
        gtid = g->gtid.ToString();
      } else if (const auto* map = std::get_if<TableMapEvent>(&event.body)) {
        if (map->table->db == db) {
          marked = true;
          out.events[gtid].emplace_back(decoder.raw_event());
        }
      } else if (const auto* rows = std::get_if<RowsEvent>(&event.body)) {
        if (rows->table->db == db) out.events[gtid].emplace_back(decoder.raw_event());
      } else if (const auto* q = std::get_if<QueryEvent>(&event.body)) {
        if (q->query != "BEGIN" && q->query != "COMMIT" &&
            q->query.find(db + ".") != std::string::npos) {
          marked = true;
          out.ddl[gtid].push_back(q->query);
        }
      }
    }
  }
  close();
  return out;
}

// The sequence number of a MariaDB GTID ("0-1-57" -> 57); 0 for "".
uint64_t SeqOf(const std::string& gtid) {
  if (gtid.empty()) return 0;
  auto parsed = Gtid::Parse(gtid);
  EXPECT_TRUE(parsed.ok()) << gtid;
  return parsed.ok() ? parsed->sequence : 0;
}

class CaptureServiceIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = MariadbServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    std::string tmpl = ::testing::TempDir() + "capture_integration.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
    dir_ = tmpl;
    config_.mysql.host = server_->host();
    config_.mysql.port = server_->port();
    config_.mysql.user = server_->user();
    config_.mysql.password = server_->password();
    config_.mysql.databases = {"shop"};
    config_.mysql.replica_server_id = 7100 + static_cast<uint32_t>(++cases_);
    config_.mysql.heartbeat_ms = 200;
    config_.mysql.connect_timeout_s = 5;
  }
  void TearDown() override {
    capture_.reset();
    journal_.reset();
    fs::remove_all(dir_);
  }

  void OpenJournal() {
    capture_.reset();
    journal_.reset();
    auto journal = Journal::Open({.path = dir_ + "/journal", .max_bytes = 0, .sync = true});
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(journal).value();
  }
  void StartCapture(MariadbSourceFactory* factory) {
    CaptureOptions options;
    options.databases = config_.mysql.databases;
    options.part_bytes = 64 << 10;  // the large transactions span parts
    capture_ = std::make_unique<CaptureService>(journal_.get(), factory, options);
    ASSERT_TRUE(capture_->Start().ok());
    // A first start begins at the server's position when the thread asks for it: wait for that.
    for (int i = 0; i < 300 && capture_->status().state != CaptureState::kRunning; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_EQ(capture_->status().state, CaptureState::kRunning) << capture_->status().last_error;
  }
  void Exec(const std::string& sql) {
    Status s = server_->Execute(sql);
    ASSERT_TRUE(s.ok()) << sql << ": " << s.ToString();
  }
  std::string GtidBinlogPos() {
    auto rows = server_->Query("SELECT @@gtid_binlog_pos");
    EXPECT_TRUE(rows.ok());
    return rows.ok() && !rows->empty() ? (*rows)[0][0] : "";
  }
  // Waits until the capture checkpoint is the GTID of the server's last transaction.
  void WaitCaughtUp(const std::string& gtid) {
    for (int i = 0; i < 600; ++i) {
      CaptureStatus s = capture_->status();
      ASSERT_NE(s.state, CaptureState::kFailed) << s.last_error;
      if (s.checkpoint_gtid == gtid) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "capture did not reach " << gtid << "; at " << capture_->status().checkpoint_gtid;
  }
  // One round of workload: small and multi-statement transactions, rows in a database that is
  // not replicated, DDL run from another default database, and every `big_every` rounds a
  // transaction of 3000 rows.
  void Round(int i) {
    Exec(
        fmt::format("INSERT INTO shop.t (v, b) VALUES ({0}, REPEAT('x', {0} % 300)), ({0} + 1, "
                    "NULL)",
                    i));
    Exec(
        fmt::format("BEGIN; UPDATE shop.t SET v = v + 1 WHERE id % 7 = {0} % 7; "
                    "DELETE FROM shop.t WHERE id % 11 = {0} % 11 AND v > 1000000; "
                    "INSERT INTO other.u VALUES ({0}); COMMIT",
                    i));
    Exec(fmt::format("INSERT INTO other.u VALUES ({} + 100000)", i));
    if (i % 5 == 0) {
      Exec(
          fmt::format("USE other; CREATE TABLE shop.d{0} (id INT PRIMARY KEY); "
                      "INSERT INTO shop.d{0} VALUES (1), (2)",
                      i));
    }
    if (i % 9 == 4) {
      Exec(fmt::format("INSERT INTO shop.big (v) SELECT seq + {} FROM other.seq_1_to_3000", i));
    }
  }

  static MariadbServer* server_;
  static int cases_;
  std::string dir_;
  NodeConfig config_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<CaptureService> capture_;
};

MariadbServer* CaptureServiceIntegrationTest::server_ = nullptr;
int CaptureServiceIntegrationTest::cases_ = 0;

// Checks the journal against the binlog: every replicated transaction after `first_gtid`
// (exclusive; "" = all) exactly once, in order, parts consecutive, events byte for byte.
void CheckJournal(Journal& journal, const Expected& expected, size_t first_index) {
  auto read = journal.Read(journal.first_seq(), 1000000, size_t{1} << 40);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  std::vector<std::string> gtids;
  std::map<std::string, std::vector<std::string>> events;
  uint32_t part = 0;
  std::string current;
  for (const auto& [seq, bytes] : *read) {
    pb::JournalEntry entry;
    ASSERT_TRUE(entry.ParseFromString(bytes)) << seq;
    const pb::DbTransaction& t = entry.db();
    ASSERT_EQ(t.part(), part) << "seq " << seq << " gtid " << t.gtid();
    if (part > 0) {
      ASSERT_EQ(t.gtid(), current) << seq;
    }
    current = t.gtid();
    ASSERT_FALSE(t.format_description().empty());
    for (const pb::Statement& st : t.statements()) {
      if (st.kind() == pb::Statement::ROWS) {
        for (const std::string& e : st.events()) events[t.gtid()].push_back(e);
      } else {
        ASSERT_EQ(st.kind(), pb::Statement::DDL);
        EXPECT_TRUE(st.db().empty() || st.db() == "shop") << st.db();
        EXPECT_NE(st.sql().find("shop."), std::string::npos) << st.sql();
      }
    }
    if (t.last_part()) {
      gtids.push_back(t.gtid());
      part = 0;
    } else {
      ++part;
    }
  }
  EXPECT_EQ(part, 0u) << "the journal ends inside a transaction";
  std::vector<std::string> want(expected.gtids.begin() + static_cast<std::ptrdiff_t>(first_index),
                                expected.gtids.end());
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& g : v) out += g + " ";
    return out;
  };
  ASSERT_EQ(gtids.size(), want.size()) << "journal: " << join(gtids) << "\nbinlog: " << join(want);
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(gtids[i], want[i]) << i;
  for (const std::string& g : want) {
    auto it = expected.events.find(g);
    if (it == expected.events.end()) {
      EXPECT_EQ(events.count(g), 0u) << g;
      continue;
    }
    ASSERT_EQ(events[g].size(), it->second.size()) << g;
    for (size_t i = 0; i < it->second.size(); ++i) {
      ASSERT_EQ(events[g][i], it->second[i]) << g << " event " << i;
    }
  }
}

TEST_F(CaptureServiceIntegrationTest, StopsAndRestartsMidStreamWithoutGapOrDuplicate) {
  Exec(
      "CREATE DATABASE IF NOT EXISTS shop; CREATE DATABASE IF NOT EXISTS other; "
      "CREATE TABLE IF NOT EXISTS shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v BIGINT, b TEXT); "
      "CREATE TABLE IF NOT EXISTS shop.big (id INT AUTO_INCREMENT PRIMARY KEY, v BIGINT, "
      "pad CHAR(60) DEFAULT 'padding padding padding'); "
      "CREATE TABLE IF NOT EXISTS other.u (x INT)");
  const std::string before = GtidBinlogPos();
  OpenJournal();
  MariadbSourceFactory factory(config_);
  StartCapture(&factory);
  std::atomic<bool> done{false};
  std::thread workload([&] {
    for (int i = 1; i <= 60; ++i) {
      Round(i);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    done = true;
  });
  // Stop and restart capture while the workload runs (a restarted daemon: new journal handle).
  for (int k = 0; k < 4 && !done; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + 70 * k));
    capture_->Stop();
    EXPECT_EQ(capture_->status().state, CaptureState::kStopped) << capture_->status().last_error;
    OpenJournal();
    StartCapture(&factory);
  }
  workload.join();
  Exec("INSERT INTO shop.t (v) VALUES (-1)");  // the last transaction is a replicated one
  const std::string last = GtidBinlogPos();
  WaitCaughtUp(last);
  capture_->Stop();
  Expected expected = ReadExpected(*server_, "shop");
  // The capture started at the position after the set-up: the set-up DDL is not in it.
  size_t first = 0;
  while (first < expected.gtids.size() && SeqOf(expected.gtids[first]) <= SeqOf(before)) ++first;
  ASSERT_GT(expected.gtids.size() - first, 100u);
  CheckJournal(*journal_, expected, first);
  CaptureStatus s = capture_->status();
  EXPECT_EQ(s.checkpoint_gtid, last);
  EXPECT_TRUE(s.last_error.empty()) << s.last_error;
}

TEST_F(CaptureServiceIntegrationTest, ServerCrashAndRestartLoseNothing) {
  Exec(
      "CREATE DATABASE IF NOT EXISTS shop; CREATE DATABASE IF NOT EXISTS other; "
      "CREATE TABLE IF NOT EXISTS shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v BIGINT, b TEXT); "
      "CREATE TABLE IF NOT EXISTS shop.big (id INT AUTO_INCREMENT PRIMARY KEY, v BIGINT, "
      "pad CHAR(60) DEFAULT 'padding padding padding'); "
      "CREATE TABLE IF NOT EXISTS other.u (x INT)");
  const std::string before = GtidBinlogPos();
  OpenJournal();
  MariadbSourceFactory factory(config_);
  StartCapture(&factory);
  for (int i = 100; i < 115; ++i) Round(i);
  server_->Kill();
  ASSERT_TRUE(server_->Restart().ok());
  for (int i = 115; i < 130; ++i) Round(i);
  Exec("INSERT INTO shop.t (v) VALUES (-2)");
  const std::string last = GtidBinlogPos();
  WaitCaughtUp(last);
  capture_->Stop();
  Expected expected = ReadExpected(*server_, "shop");
  size_t first = 0;
  while (first < expected.gtids.size() && SeqOf(expected.gtids[first]) <= SeqOf(before)) ++first;
  ASSERT_GT(expected.gtids.size() - first, 30u);
  CheckJournal(*journal_, expected, first);
}

TEST_F(CaptureServiceIntegrationTest, CreateTableSelectIsOneTransaction) {
  Exec(
      "CREATE DATABASE IF NOT EXISTS shop; CREATE DATABASE IF NOT EXISTS other; "
      "CREATE TABLE IF NOT EXISTS shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v BIGINT, b TEXT)");
  OpenJournal();
  MariadbSourceFactory factory(config_);
  StartCapture(&factory);
  Exec("INSERT INTO shop.t (v) VALUES (1)");
  Exec("CREATE TABLE shop.copy SELECT id, v FROM shop.t");
  Exec("INSERT INTO shop.t (v) VALUES (2)");
  WaitCaughtUp(GtidBinlogPos());
  capture_->Stop();
  auto read = journal_->Read(journal_->first_seq(), 100, 1 << 20);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 3u);
  pb::JournalEntry ctas;
  ASSERT_TRUE(ctas.ParseFromString((*read)[1].second));
  ASSERT_EQ(ctas.db().statements_size(), 2);
  EXPECT_EQ(ctas.db().statements(0).kind(), pb::Statement::DDL);
  EXPECT_EQ(ctas.db().statements(1).kind(), pb::Statement::ROWS);
  EXPECT_TRUE(ctas.db().is_ddl());
}

// Runs last: it purges the server's binlogs.
TEST_F(CaptureServiceIntegrationTest, PurgedBinlogStopsCaptureWithWhatIsMissing) {
  Exec(
      "CREATE DATABASE IF NOT EXISTS shop; "
      "CREATE TABLE IF NOT EXISTS shop.t (id INT AUTO_INCREMENT PRIMARY KEY, v BIGINT, b TEXT)");
  auto files = server_->BinlogFiles();
  ASSERT_TRUE(files.ok());
  const std::string oldest = fs::path(files->front()).filename().string();
  Exec("FLUSH BINARY LOGS");
  auto status = server_->Query("SHOW MASTER STATUS");
  ASSERT_TRUE(status.ok());
  ASSERT_FALSE(status->empty());
  const std::string current = (*status)[0][0];
  Exec("PURGE BINARY LOGS TO '" + current + "'");
  OpenJournal();
  ASSERT_TRUE(journal_
                  ->PutMeta({{"capture.file", oldest},
                             {"capture.offset", "4"},
                             {"capture.gtid", ""},
                             {"capture.last_complete_seq", "0"}})
                  .ok());
  MariadbSourceFactory factory(config_);
  CaptureOptions options;
  options.databases = config_.mysql.databases;
  CaptureService capture(journal_.get(), &factory, options);
  ASSERT_TRUE(capture.Start().ok());
  Status s = capture.Wait();
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find(oldest), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(current), std::string::npos)
      << "names what the server still has: " << s.message();
  EXPECT_EQ(capture.status().state, CaptureState::kFailed);
  EXPECT_EQ(journal_->last_seq(), 0u);
  auto offset = journal_->GetMeta("capture.file");
  ASSERT_TRUE(offset.ok());
  EXPECT_EQ(offset->value_or(""), oldest) << "the checkpoint is never moved past what is missing";
}

TEST_F(CaptureServiceIntegrationTest, WrongBinlogSettingsAreRefusedWithTheLineToFix) {
  MariadbSourceFactory factory(config_);
  ASSERT_TRUE(factory.CurrentPosition().ok());
  Exec("SET GLOBAL binlog_format = 'STATEMENT'");
  Result<BinlogPosition> position = factory.CurrentPosition();
  Exec("SET GLOBAL binlog_format = 'ROW'");
  ASSERT_FALSE(position.ok());
  EXPECT_EQ(position.status().code(), Status::Code::kInvalidArgument)
      << position.status().ToString();
  EXPECT_NE(position.status().message().find(
                "binlog_format is STATEMENT (needs ROW: put 'binlog-format = ROW' under [mysqld])"),
            std::string::npos)
      << position.status().message();
}

TEST_F(CaptureServiceIntegrationTest, RefusedCredentialsAreAServerErrorNamingTheSetting) {
  config_.mysql.password = "not-the-password";
  MariadbSourceFactory factory(config_);
  Result<BinlogPosition> position = factory.CurrentPosition();
  ASSERT_FALSE(position.ok());
  EXPECT_EQ(position.status().code(), Status::Code::kServer) << position.status().ToString();
  EXPECT_FALSE(position.status().retryable());
  EXPECT_NE(position.status().message().find("check [mysql] user and password"),
            std::string::npos)
      << position.status().message();
}

TEST_F(CaptureServiceIntegrationTest, UnreachableServerIsARetryableNetworkError) {
  config_.mysql.port = 1;  // nothing listens there
  MariadbSourceFactory factory(config_);
  Result<BinlogPosition> position = factory.CurrentPosition();
  ASSERT_FALSE(position.ok());
  EXPECT_EQ(position.status().code(), Status::Code::kNetwork) << position.status().ToString();
  EXPECT_TRUE(position.status().retryable());
  EXPECT_NE(position.status().message().find("is the server running?"), std::string::npos)
      << position.status().message();
}

}  // namespace
}  // namespace replsync::capture
