// The applier's step machine without a server: a real relay journal (RocksDB in a temporary
// folder), a real repository folder, and a fake SQL session that keeps replsync.applied's
// position the way the server would (committed with the transaction that moved it). Each test
// injects one interleaving that the applier once got wrong (issue 11), through the relay's read
// hook or the fake's statement hook, so that it fails for the reason in its name every time.
// Time is a ManualClock: the applier's waits end when the test advances it, and a test knows
// that the applier waits (ManualClock::WaitForWaiters) or has got somewhere (the fake server's
// statements, WaitForApplied) before it asserts.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "apply/applier.h"
#include "replsync.pb.h"
#include "sync/clock.h"
#include "sync/file_lock.h"
#include "sync/files/content_hash.h"
#include "sync/journal/journal.h"
#include "sync/verify/barrier.h"

namespace replsync::apply {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kIdleWait{100};
constexpr milliseconds kRetryMax{50};
// Bounds a wait for the applier that should end long before (real time: a failing test fails
// instead of hanging).
constexpr milliseconds kWait{10000};

// What the fake server holds: the channel's committed position and what happened.
struct FakeServer {
  std::mutex mu;
  uint64_t committed = 0;  // replsync.applied.seq as committed
  uint64_t head = 0;       // ... or as moved by an UPDATE not committed yet (row lock holder)
  std::vector<uint64_t> commits;  // each committed position, in commit order
  std::vector<std::string> log;   // every statement, in order
  std::condition_variable ran;    // with mu: a statement ran (or failed)
  int sessions_opened = 0;
  std::optional<std::string> seq_text;  // replsync.applied.seq as the fake returns it, if set
  // What information_schema.EVENTS says of any event (STATUS, DEFINER); none when empty.
  std::vector<std::optional<std::string>> event_row;
  // Called with every statement before it runs: a non-OK Status is that statement's error.
  std::function<Status(const std::string& sql)> fail;
  // Tables (quoted names as the applier's lookup quotes them, 't') in a foreign key.
  std::set<std::string> foreign_key_tables;
};

class FakeSession : public SqlSession {
 public:
  explicit FakeSession(FakeServer* server) : server_(server) {}
  ~FakeSession() override {
    std::lock_guard<std::mutex> lock(server_->mu);
    RollbackLocked();
  }

  Status Execute(const std::string& sql, std::string_view) override { return Run(sql, nullptr); }
  Result<uint64_t> ExecuteUpdate(const std::string& sql, std::string_view) override {
    uint64_t changed = 0;
    RS_RETURN_IF_ERROR(Run(sql, &changed));
    return changed;
  }
  Status ExecuteBatch(const std::vector<std::string>& statements, std::string_view) override {
    for (const std::string& sql : statements) RS_RETURN_IF_ERROR(Run(sql, nullptr));
    return Status::Ok();
  }
  Result<std::vector<Row>> Query(const std::string& sql, std::string_view) override {
    RS_RETURN_IF_ERROR(Run(sql, nullptr));
    std::lock_guard<std::mutex> lock(server_->mu);
    if (sql.find("VERSION()") != std::string::npos) {
      return std::vector<Row>{{"10.11.6-MariaDB-fake", "67108864", "0"}};
    }
    if (sql.find("FROM replsync.applied") != std::string::npos) {
      return std::vector<Row>{{server_->seq_text.value_or(std::to_string(server_->committed)), "",
                               "", "0", std::nullopt}};
    }
    if (sql.find("information_schema.TABLES") != std::string::npos) {
      bool foreign = false;
      for (const std::string& table : server_->foreign_key_tables) {
        foreign = foreign || sql.find("TABLE_NAME = '" + table + "'") != std::string::npos;
      }
      return std::vector<Row>{{"InnoDB", foreign ? "1" : "0"}};
    }
    if (sql.find("information_schema.EVENTS") != std::string::npos) {
      if (server_->event_row.empty()) return std::vector<Row>{};
      return std::vector<Row>{server_->event_row};
    }
    return std::vector<Row>{};
  }
  int last_error_code() const override { return last_error_code_; }
  bool broken() const override { return broken_; }
  std::string Describe() const override { return "fake@server"; }

 private:
  Status Run(const std::string& sql, uint64_t* changed) {
    std::lock_guard<std::mutex> lock(server_->mu);
    server_->log.push_back(sql);
    server_->ran.notify_all();
    if (server_->fail) {
      Status st = server_->fail(sql);
      if (!st.ok()) {
        last_error_code_ = st.retryable() ? 1205 : 1146;
        if (st.code() == Status::Code::kNetwork) broken_ = true;
        return st;
      }
    }
    last_error_code_ = 0;
    if (sql == "SET SESSION autocommit=0") autocommit_ = false;
    if (sql == "START TRANSACTION") in_txn_ = true;
    if (sql == "COMMIT") CommitLocked();
    if (sql == "ROLLBACK") RollbackLocked();
    static const std::regex kUpdate(
        R"(^UPDATE replsync\.applied SET seq=(\d+),.*?(?: AND seq=(\d+))?$)");
    std::smatch m;
    if (std::regex_match(sql, m, kUpdate)) {
      const uint64_t seq = std::stoull(m[1]);
      const bool matches = !m[2].matched || std::stoull(m[2]) == server_->head;
      if (changed != nullptr) *changed = matches ? 1 : 0;
      if (matches) {
        staged_ = seq;
        server_->head = seq;
      }
      if (autocommit_ && !in_txn_) CommitLocked();
    }
    return Status::Ok();
  }
  void CommitLocked() {
    if (staged_) {
      server_->committed = *staged_;
      server_->commits.push_back(*staged_);
    }
    staged_.reset();
    in_txn_ = false;
  }
  void RollbackLocked() {
    if (staged_) server_->head = server_->committed;
    staged_.reset();
    in_txn_ = false;
  }

  FakeServer* const server_;
  bool autocommit_ = true;
  bool in_txn_ = false;
  std::optional<uint64_t> staged_;
  int last_error_code_ = 0;
  bool broken_ = false;
};

// A small database transaction with no row events (the fake needs none); `parallel` gives it a
// writeset so that it may go to a worker.
std::string DbEntry(uint64_t seq, bool parallel = false) {
  pb::JournalEntry entry;
  pb::DbTransaction* db = entry.mutable_db();
  db->set_gtid("0-1-" + std::to_string(seq));
  db->set_begin_file("binlog.000001");
  db->set_begin_offset(1000 * seq);
  db->set_end_file("binlog.000001");
  db->set_end_offset(1000 * seq + 500);
  db->set_last_part(true);
  if (parallel) {
    db->set_writeset_version(1);
    db->add_writeset(seq);
    pb::TableName* t = db->add_tables();
    t->set_db("app");
    t->set_table("t");
  }
  return entry.SerializeAsString();
}

// A transaction of one DDL statement run in database `db`.
std::string DdlEntry(uint64_t seq, const std::string& db, const std::string& sql) {
  pb::JournalEntry entry;
  pb::DbTransaction* d = entry.mutable_db();
  d->set_gtid("0-1-" + std::to_string(seq));
  d->set_begin_file("binlog.000001");
  d->set_begin_offset(1000 * seq);
  d->set_end_file("binlog.000001");
  d->set_end_offset(1000 * seq + 500);
  d->set_last_part(true);
  d->set_is_ddl(true);
  pb::Statement* st = d->add_statements();
  st->set_kind(pb::Statement::DDL);
  st->set_db(db);
  st->set_sql(sql);
  return entry.SerializeAsString();
}

// A change that creates the folder `path` in the repository.
std::string FolderEntry(const std::string& path) {
  pb::JournalEntry entry;
  pb::FileChange* f = entry.mutable_file();
  f->set_kind(pb::FileChange::DIRECTORY);
  f->set_path(path);
  f->set_last_part(true);
  f->mutable_meta()->set_mode(0755);
  f->mutable_meta()->set_mtime_ns(1700000000000000000);
  f->set_parent_mtime_ns(1700000000000000000);
  f->set_reason("event");
  return entry.SerializeAsString();
}

class ApplierLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "applier_loop_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
    dir_ = tmpl;
    repo_ = dir_ + "/repo";
    std::filesystem::create_directories(repo_);
  }
  void TearDown() override {
    if (applier_) applier_->Stop();
    applier_.reset();
    relay_.reset();
    std::filesystem::remove_all(dir_);
  }

  void OpenRelay(std::function<void(uint64_t, bool)> after_get = {}) {
    Journal::Options o;
    o.path = dir_ + "/relay";
    auto j = Journal::Open(o);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    relay_ = std::move(*j);
    if (after_get) relay_->SetAfterGetForTest(std::move(after_get));
  }

  void Put(uint64_t seq, const std::string& bytes) {
    ASSERT_TRUE(relay_->Put({{seq, bytes}}, {}).ok());
  }

  ApplierOptions Options(int workers) {
    ApplierOptions o;
    o.open_session = [this](const MysqlOptions&) -> Result<std::unique_ptr<SqlSession>> {
      {
        std::lock_guard<std::mutex> lock(server_.mu);
        ++server_.sessions_opened;
      }
      return std::unique_ptr<SqlSession>(std::make_unique<FakeSession>(&server_));
    };
    o.workers = workers;
    o.repository = repo_;
    o.retry_min = milliseconds(10);
    o.retry_max = kRetryMax;
    o.idle_wait = kIdleWait;
    o.barrier_path = dir_ + "/verify.barrier";
    o.paused_path = dir_ + "/verify.paused";
    o.verify_lock_path = dir_ + "/verify.lock";
    return o;
  }

  // The same, on the test's ManualClock.
  ApplierOptions ManualOptions(int workers) {
    ApplierOptions o = Options(workers);
    o.clock = &clock_;
    return o;
  }

  void Start(ApplierOptions o) {
    applier_ = std::make_unique<Applier>(std::move(o), relay_.get());
    ASSERT_TRUE(applier_->Start().ok());
  }

  // Waits until the applier has applied `seq` (true), stopped, or `timeout` passed; fails the
  // test when it stopped on an error.
  bool AppliesWithoutError(uint64_t seq, milliseconds timeout = kWait) {
    const bool applied = applier_->WaitForApplied(seq, timeout);
    ApplierStatus s = applier_->status();
    if (s.state == ApplierState::kError) {
      ADD_FAILURE() << "the applier stopped: " << s.last_error;
      return false;
    }
    return applied;
  }

  // Waits until `done` (called with server_.mu held) is true after some statement ran.
  bool ServerReaches(const std::function<bool()>& done) {
    std::unique_lock<std::mutex> lock(server_.mu);
    return server_.ran.wait_for(lock, kWait, done);
  }

  std::vector<uint64_t> Commits() {
    std::lock_guard<std::mutex> lock(server_.mu);
    return server_.commits;
  }

  std::vector<std::string> Log() {
    std::lock_guard<std::mutex> lock(server_.mu);
    return server_.log;
  }

  // Waits (real time) until the applier holds at its hold, and expects it there at `seq`: what
  // WaitHeld says, what the applier publishes and what the server committed last agree.
  void ExpectHeldAt(uint64_t seq) {
    Result<verify::PausedAt> held = applier_->WaitHeld(kWait);
    ASSERT_TRUE(held.ok()) << held.status().ToString();
    EXPECT_EQ(held->applied_seq, seq);
    EXPECT_EQ(held->token, "");
    if (seq != 0) {
      EXPECT_EQ(held->gtid, "0-1-" + std::to_string(seq));
      EXPECT_EQ(held->source, fmt::format("binlog.000001:{}", 1000 * seq + 500));
    }
    EXPECT_EQ(applier_->applied_seq(), seq);
    // The last position committed (workers' COMMITs reach the fake in any order).
    const std::vector<uint64_t> commits = Commits();
    EXPECT_EQ(commits.empty() ? 0 : *std::max_element(commits.begin(), commits.end()), seq);
  }

  // Lets the applier go round its loop `rounds` times (each wait on the clock ends), so that an
  // applier that would pass its hold has had every chance to.
  void LetItRun(int rounds) {
    for (int i = 0; i < rounds; ++i) {
      const uint64_t n = clock_.waits_begun();
      clock_.Advance(kIdleWait);
      clock_.WaitForWaitsBegun(n + 1);
    }
  }

  // Fills the relay with database transactions first..last.
  void PutDb(uint64_t first, uint64_t last, bool parallel = false) {
    for (uint64_t s = first; s <= last; ++s) Put(s, DbEntry(s, parallel));
  }

  std::string dir_;
  std::string repo_;
  ManualClock clock_;
  FakeServer server_;
  std::unique_ptr<Journal> relay_;
  std::unique_ptr<Applier> applier_;
};

// Race 1 of issue 11, as seen in the demo ("relay entry 18990 is a file change where a database
// transaction (or its next part) was expected"): the applier finds nothing at seq 2, and the
// receiver stores a file change there before the applier looks again. On 75a7482 the applier
// peeked, found nothing, fell through to the database path and read seq 2 a second time, found
// the file change there and stopped for good. Read once, it waits, reads again and applies it.
class FileEntryStoredBetweenTwoReads : public ApplierLoopTest,
                                       public ::testing::WithParamInterface<int> {};

TEST_P(FileEntryStoredBetweenTwoReads, IsAppliedAsAFileChangeAndNeverStops) {
  std::atomic<int> inserted{0};
  OpenRelay([&](uint64_t seq, bool found) {
    // The receiver's write, right after the applier's first read of seq 2 found nothing.
    if (seq == 2 && !found && inserted.exchange(1) == 0) Put(2, FolderEntry("reports"));
  });
  Put(1, DbEntry(1, /*parallel=*/true));
  Start(ManualOptions(GetParam()));
  // Its first wait comes after it found nothing at seq 2: that wait's end is its next look.
  clock_.WaitForWaiters(1);
  clock_.Advance(kIdleWait);
  ASSERT_TRUE(AppliesWithoutError(2)) << applier_->status().last_error;
  EXPECT_EQ(inserted.load(), 1) << "the interleaving was not injected: the test proved nothing";
  struct stat st;
  EXPECT_EQ(stat((repo_ + "/reports").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  // And the stream goes on after it.
  Put(3, DbEntry(3, /*parallel=*/true));
  applier_->Notify();
  EXPECT_TRUE(AppliesWithoutError(3));
}

INSTANTIATE_TEST_SUITE_P(Workers, FileEntryStoredBetweenTwoReads, ::testing::Values(1, 4),
                         [](const auto& info) { return "Workers" + std::to_string(info.param); });

// A database transaction stored right after the applier found nothing at its seq, while a run of
// file changes is being applied: it is applied as a database transaction, in order.
TEST_F(ApplierLoopTest, DatabaseEntryAfterARunOfFilesIsAppliedInOrder) {
  std::atomic<int> inserted{0};
  OpenRelay([&](uint64_t seq, bool found) {
    if (seq == 3 && !found && inserted.exchange(1) == 0) Put(3, DbEntry(3));
  });
  Put(1, FolderEntry("a"));
  Put(2, FolderEntry("a/b"));
  Start(ManualOptions(1));
  // It waits after the run found nothing at seq 3 (the hook stored it then).
  clock_.WaitForWaiters(1);
  clock_.Advance(kIdleWait);
  ASSERT_TRUE(AppliesWithoutError(3));
  EXPECT_EQ(inserted.load(), 1);
  EXPECT_TRUE(std::filesystem::is_directory(repo_ + "/a/b"));
  // The files' position moved to 2 in one statement, then seq 3's transaction committed.
  const std::vector<uint64_t> commits = Commits();
  ASSERT_FALSE(commits.empty());
  EXPECT_EQ(commits.back(), 3u);
}

// Every entry is read once per decision: the applier reads seq N again only after it found
// nothing there (to look again) — never after it found an entry.
TEST_F(ApplierLoopTest, EachEntryFoundIsReadOnce) {
  std::mutex mu;
  std::map<uint64_t, int> found_reads;
  OpenRelay([&](uint64_t seq, bool found) {
    if (!found) return;
    std::lock_guard<std::mutex> lock(mu);
    ++found_reads[seq];
  });
  for (uint64_t s = 1; s <= 40; ++s) {
    Put(s, s % 5 == 0 ? FolderEntry(fmt::format("f{}", s)) : DbEntry(s, /*parallel=*/s % 2));
  }
  Start(ManualOptions(4));
  ASSERT_TRUE(AppliesWithoutError(40));
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [seq, n] : found_reads) EXPECT_EQ(n, 1) << "seq " << seq << " read " << n;
  EXPECT_EQ(found_reads.size(), 40u);
}

// A file the secondary cannot rebuild (the base it copies from is missing) is asked for whole; the
// list survives a restart and lives in its own file, not in the relay, which only the receiver
// writes.
TEST_F(ApplierLoopTest, PathsWaitingForAWholeCopySurviveARestartOutsideTheRelay) {
  OpenRelay();
  pb::JournalEntry entry;
  pb::FileChange* f = entry.mutable_file();
  f->set_kind(pb::FileChange::FILE);
  f->set_path("cube.bin");
  f->set_last_part(true);
  f->mutable_meta()->set_mode(0644);
  f->mutable_meta()->set_size(10);
  f->mutable_meta()->set_mtime_ns(1700000000000000000);
  f->set_parent_mtime_ns(-1);
  f->set_base_hash(std::string(32, 'b'));
  f->set_content_hash(std::string(32, 'c'));
  pb::ContentOp* op = f->add_ops();
  op->set_offset(0);
  op->set_length(10);  // a copy from a base this secondary does not have
  Put(1, entry.SerializeAsString());
  std::vector<std::string> asked;
  std::mutex mu;
  std::condition_variable asked_cv;
  ApplierOptions o = ManualOptions(1);
  o.on_file_resync = [&](std::vector<std::string> paths) {
    std::lock_guard<std::mutex> lock(mu);
    asked = std::move(paths);
    asked_cv.notify_all();
  };
  Start(o);
  ASSERT_TRUE(AppliesWithoutError(1));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(asked, std::vector<std::string>{"cube.bin"});
  }
  EXPECT_TRUE(std::filesystem::exists(relay_->path() + ".file_resync"));
  EXPECT_FALSE(relay_->GetMeta("file_resync")->has_value());
  applier_->Stop();
  applier_.reset();
  {
    std::lock_guard<std::mutex> lock(mu);
    asked.clear();
  }
  Start(o);
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(asked_cv.wait_for(lock, kWait, [&] { return !asked.empty(); }));
  EXPECT_EQ(asked, std::vector<std::string>{"cube.bin"});
}

// Race 4 of issue 11: a verify that died (kill -9) left its barrier. On 75a7482 the applier
// lifted it only when kill(pid, 0) said the pid was gone: a reused pid (here: this very process,
// alive) held the applier for good. The lock says the truth: no verify holds verify.lock.
TEST_F(ApplierLoopTest, BarrierOfADeadVerifyIsLiftedEvenWhenItsPidLivesOn) {
  OpenRelay();
  ASSERT_TRUE(verify::WriteBarrierFile(
                  dir_ + "/verify.barrier",
                  {"dead01", verify::StopBefore::Now(), static_cast<uint64_t>(getpid())})
                  .ok());
  Put(1, DbEntry(1));
  Start(ManualOptions(1));
  ASSERT_TRUE(AppliesWithoutError(1));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/verify.barrier"));
}

// ... while the barrier of a verify that runs (it holds verify.lock) holds the applier, which
// says where it holds, until verify lifts it.
TEST_F(ApplierLoopTest, BarrierOfARunningVerifyHoldsUntilLifted) {
  OpenRelay();
  Result<FileLock> verify = FileLock::Acquire(dir_ + "/verify.lock");
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  ASSERT_TRUE(
      verify::WriteBarrierFile(dir_ + "/verify.barrier", {"live01", verify::StopBefore::Now(), 0})
          .ok());
  Put(1, DbEntry(1));
  Start(ManualOptions(1));
  // One round of the applier while it holds: it waits 5 ms on the clock between two looks.
  auto step = [&] {
    const uint64_t n = clock_.waits_begun();
    clock_.Advance(milliseconds(5));
    clock_.WaitForWaitsBegun(n + 1);
  };
  clock_.WaitForWaitsBegun(1);
  for (int i = 0; i < 100 && !std::filesystem::exists(dir_ + "/verify.paused"); ++i) step();
  ASSERT_TRUE(std::filesystem::exists(dir_ + "/verify.paused"));
  for (int i = 0; i < 120; ++i) step();  // 600 ms: several lock probes (every 200 ms)
  EXPECT_NE(applier_->status().state, ApplierState::kError) << applier_->status().last_error;
  EXPECT_EQ(applier_->applied_seq(), 0u);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/verify.barrier"));
  std::filesystem::remove(dir_ + "/verify.barrier");
  step();
  EXPECT_TRUE(AppliesWithoutError(1)) << applier_->status().last_error;
}

// Race 5 of issue 11: the state after an error the operator must fix stays "error" (on 75a7482
// one path broke out of the loop without noting it, and the final "stopped" hid the error).
TEST_F(ApplierLoopTest, ErrorThatNeedsTheOperatorStaysAnErrorAfterStop) {
  OpenRelay();
  server_.fail = [](const std::string& sql) {
    if (sql.rfind("UPDATE replsync.applied SET seq=1,", 0) == 0) {
      return Status::Server("Table 'app.t' doesn't exist (1146)");
    }
    return Status::Ok();
  };
  Put(1, DbEntry(1));
  Start(ManualOptions(1));
  applier_->WaitForApplied(1, kWait);  // ends on the error
  ASSERT_EQ(applier_->status().state, ApplierState::kError);
  EXPECT_NE(applier_->status().last_error.find("1146"), std::string::npos);
  applier_->Stop();
  EXPECT_EQ(applier_->status().state, ApplierState::kError);
  EXPECT_EQ(applier_->applied_seq(), 0u);
}

// A position that is not a number (a row edited by hand) is an error naming the column and the
// text, not the end of the process (std::stoull threw on it).
TEST_F(ApplierLoopTest, PositionThatIsNotANumberIsAnErrorNamingIt) {
  OpenRelay();
  server_.seq_text = "12x";
  Put(1, DbEntry(1));
  Start(ManualOptions(1));
  ASSERT_TRUE(ServerReaches([&] { return server_.log.size() >= 1; }));
  clock_.WaitForWaiters(1);  // connecting is tried again after a backoff
  const ApplierStatus s = applier_->status();
  EXPECT_EQ(s.state, ApplierState::kRetrying);
  EXPECT_NE(s.last_error.find("replsync.applied.seq of channel 'default' is '12x', not an "
                              "unsigned number"),
            std::string::npos)
      << s.last_error;
  EXPECT_EQ(applier_->applied_seq(), 0u);
}

// What replsync can retry it retries and says so; a stop while it waits ends "stopped" (on
// 75a7482 a stop while aborting could leave "applying").
TEST_F(ApplierLoopTest, RetryableErrorsAreRetriedAndAStopWhileRetryingEndsStopped) {
  OpenRelay();
  std::atomic<int> failures{0};
  std::atomic<bool> heal{false};
  server_.fail = [&](const std::string& sql) {
    if (!heal && sql.rfind("UPDATE replsync.applied SET seq=1,", 0) == 0) {
      ++failures;
      return Status::Network("Lost connection to server during query (2013)");
    }
    return Status::Ok();
  };
  Put(1, DbEntry(1));
  Start(ManualOptions(1));
  for (int tries = 1; tries <= 3; ++tries) {
    ASSERT_TRUE(ServerReaches([&] { return failures.load() >= tries; }));
    clock_.WaitForWaiters(1);  // backing off before the next try
    if (tries < 3) clock_.Advance(kRetryMax);
  }
  EXPECT_EQ(applier_->status().state, ApplierState::kRetrying);
  EXPECT_GE(applier_->status().retries, 2u);
  heal = true;
  clock_.Advance(kRetryMax);
  ASSERT_TRUE(AppliesWithoutError(1));
  // Now make it retry for good and stop it meanwhile.
  heal = false;
  std::atomic<int> gone{0};
  {
    std::lock_guard<std::mutex> lock(server_.mu);
    server_.fail = [&gone](const std::string&) {
      ++gone;
      return Status::Network("server gone (2006)");
    };
  }
  Put(2, DbEntry(2));
  applier_->Notify();
  ASSERT_TRUE(ServerReaches([&] { return gone.load() >= 1; }));
  clock_.WaitForWaiters(1);  // backing off
  ASSERT_EQ(applier_->status().state, ApplierState::kRetrying) << applier_->status().last_error;
  applier_->Stop();
  EXPECT_EQ(applier_->status().state, ApplierState::kStopped);
}

// A new entry announced while the coordinator waits for its workers is applied at once, not
// after the idle wait (here an hour): the wait ends on a condition, not a timed sleep.
TEST_F(ApplierLoopTest, EntryAnnouncedWhileWorkersAreBusyIsAppliedWithoutTheIdleWait) {
  OpenRelay();
  std::mutex mu;
  std::condition_variable cv;
  bool on_worker = false;  // guarded by mu
  bool release = false;    // guarded by mu
  ApplierOptions o = ManualOptions(2);
  o.idle_wait = std::chrono::hours(1);  // and the clock does not move
  o.before_worker_apply = [&](uint64_t seq) {
    if (seq != 1) return;
    std::unique_lock<std::mutex> lock(mu);
    on_worker = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  Put(1, DbEntry(1, /*parallel=*/true));
  Start(o);
  bool seq1_on_worker;
  {
    std::unique_lock<std::mutex> lock(mu);
    seq1_on_worker = cv.wait_for(lock, kWait, [&] { return on_worker; });
  }
  // The coordinator found nothing at seq 2 and waits for its workers.
  if (seq1_on_worker) clock_.WaitForWaiters(1);
  Put(2, DbEntry(2, /*parallel=*/true));
  applier_->Notify();
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(seq1_on_worker);
  EXPECT_TRUE(AppliesWithoutError(2, milliseconds(3000)));
  Put(3, FolderEntry("x"));
  applier_->Notify();
  EXPECT_TRUE(AppliesWithoutError(3, milliseconds(3000)));
}

// A writeset does not show what a foreign key checks or cascades to: transactions on a table in a
// foreign key never go to a worker, those on other tables still do.
TEST_F(ApplierLoopTest, TransactionsOnTablesInAForeignKeyAreAppliedOneAtATime) {
  OpenRelay();
  server_.foreign_key_tables = {"child"};
  ApplierOptions o = ManualOptions(2);
  std::atomic<int> on_workers{0};
  o.before_worker_apply = [&](uint64_t) { ++on_workers; };
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    pb::JournalEntry entry;
    ASSERT_TRUE(entry.ParseFromString(DbEntry(seq, /*parallel=*/true)));
    if (seq > 2) entry.mutable_db()->mutable_tables(0)->set_table("child");
    Put(seq, entry.SerializeAsString());
  }
  Start(o);
  EXPECT_TRUE(AppliesWithoutError(4, milliseconds(3000)));
  EXPECT_EQ(on_workers.load(), 2);
  EXPECT_EQ(applier_->status().parallel_applied, 2u);
}

// Part `part` of the three-part file "big" whose whole content is "head-middle-tail".
std::string BigFilePart(uint32_t part) {
  static const char* const kLiterals[] = {"head-", "middle-", "tail"};
  pb::JournalEntry entry;
  pb::FileChange* f = entry.mutable_file();
  f->set_kind(pb::FileChange::FILE);
  f->set_path("big");
  f->set_part(part);
  f->set_last_part(part == 2);
  f->add_ops()->set_data(kLiterals[part]);
  if (part == 2) {
    f->set_content_hash(Sha256::Of("head-middle-tail"));
    f->mutable_meta()->set_mode(0644);
    f->mutable_meta()->set_size(16);
    f->mutable_meta()->set_mtime_ns(1700000000000000000);
    f->set_parent_mtime_ns(1700000000000000000);
  }
  return entry.SerializeAsString();
}

// A run of file entries cut by Stop inside a file (its last part not received yet) was not
// committed: after Start it is applied again from the file's first part, and nothing of the
// interrupted run stays in progress (the bootstrap stops and starts the applier this way).
TEST_F(ApplierLoopTest, FileCutByStopIsAppliedAgainFromItsFirstPartAfterStart) {
  OpenRelay();
  Put(1, BigFilePart(0));
  Put(2, BigFilePart(1));
  Start(Options(1));
  // The first two parts are in a temporary file while the applier waits for the third.
  auto temporaries = [this] {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(repo_)) {
      n += e.path().filename().string().rfind(".replsync-tmp.", 0) == 0;
    }
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (temporaries() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_EQ(temporaries(), 1u) << "the applier never began the file: the test proves nothing";
  applier_->Stop();
  ASSERT_TRUE(applier_->Start().ok());
  Put(3, BigFilePart(2));
  applier_->Notify();
  ASSERT_TRUE(AppliesWithoutError(3)) << applier_->status().last_error;
  std::ifstream in(repo_ + "/big");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "head-middle-tail");
}

// In a bootstrap's lenient window nothing goes to a worker (the server skips what it cannot
// find, so a conflict between workers would be silent); after it, workers again.
TEST_F(ApplierLoopTest, LenientWindowAppliesOneAtATime) {
  OpenRelay();
  ApplierOptions o = ManualOptions(2);
  std::atomic<int> on_workers{0};
  o.before_worker_apply = [&](uint64_t) { ++on_workers; };
  PutDb(1, 4, /*parallel=*/true);
  applier_ = std::make_unique<Applier>(std::move(o), relay_.get());
  applier_->SetLenient(true);
  ASSERT_TRUE(applier_->Start().ok());
  EXPECT_TRUE(AppliesWithoutError(4, milliseconds(3000)));
  EXPECT_EQ(on_workers.load(), 0);
  applier_->SetLenient(false);
  PutDb(5, 8, /*parallel=*/true);
  applier_->Notify();
  EXPECT_TRUE(AppliesWithoutError(8, milliseconds(3000)));
  EXPECT_GT(on_workers.load(), 0);
}

// ---- the owner's hold (SetHold / WaitHeld) and the bootstrap's DDL skipping

// A hold set before Start holds from the first step: nothing is applied until it is lifted.
TEST_F(ApplierLoopTest, HoldSetBeforeStartHoldsFromTheFirstStep) {
  OpenRelay();
  PutDb(1, 5);
  applier_ = std::make_unique<Applier>(ManualOptions(1), relay_.get());
  applier_->SetHold(verify::StopBefore::Now());
  ASSERT_TRUE(applier_->Start().ok());
  ExpectHeldAt(0);
  LetItRun(5);
  EXPECT_EQ(applier_->applied_seq(), 0u);
  EXPECT_TRUE(Commits().empty());
  applier_->SetHold(std::nullopt);
  EXPECT_TRUE(AppliesWithoutError(5));
  EXPECT_EQ(Commits().back(), 5u);
}

// A hold at a binlog position in the middle of the relay: every transaction that begins before
// it is applied and committed, none after; moved forward, it applies up to the new one; lifted,
// everything.
class HoldInTheMiddleOfTheRelay : public ApplierLoopTest,
                                  public ::testing::WithParamInterface<int> {};

TEST_P(HoldInTheMiddleOfTheRelay, AppliesWhatComesBeforeItAndNothingAfter) {
  OpenRelay();
  PutDb(1, 10, /*parallel=*/true);
  applier_ = std::make_unique<Applier>(ManualOptions(GetParam()), relay_.get());
  // Seq 6 begins at binlog.000001:6000.
  applier_->SetHold(verify::StopBefore::At({"binlog.000001", 6000}));
  ASSERT_TRUE(applier_->Start().ok());
  ExpectHeldAt(5);
  LetItRun(3);
  EXPECT_EQ(applier_->applied_seq(), 5u);
  Result<verify::PausedAt> held = applier_->WaitHeld(kWait);
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(held->stop, verify::StopBefore::At({"binlog.000001", 6000}));
  // Moved forward to just after seq 8's begin: seq 8 begins before it and is applied.
  applier_->SetHold(verify::StopBefore::At({"binlog.000001", 8001}));
  ExpectHeldAt(8);
  LetItRun(3);
  EXPECT_EQ(applier_->applied_seq(), 8u);
  applier_->SetHold(std::nullopt);
  EXPECT_TRUE(AppliesWithoutError(10));
}

INSTANTIATE_TEST_SUITE_P(Workers, HoldInTheMiddleOfTheRelay, ::testing::Values(1, 4),
                         [](const auto& info) { return "Workers" + std::to_string(info.param); });

// A hold set while a transaction is on a worker takes effect once it committed: WaitHeld does
// not return before, and then says where the applier really stands.
TEST_F(ApplierLoopTest, HoldSetWhileATransactionIsOnAWorkerWaitsForIt) {
  OpenRelay();
  std::mutex mu;
  std::condition_variable cv;
  bool on_worker = false;  // guarded by mu
  bool release = false;    // guarded by mu
  ApplierOptions o = ManualOptions(2);
  o.before_worker_apply = [&](uint64_t seq) {
    if (seq != 1) return;
    std::unique_lock<std::mutex> lock(mu);
    on_worker = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  Put(1, DbEntry(1, /*parallel=*/true));
  Start(o);
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return on_worker; }));
  }
  applier_->SetHold(verify::StopBefore::Now());
  PutDb(2, 3, /*parallel=*/true);
  applier_->Notify();
  // Seq 1 is still on its worker: not held yet.
  Result<verify::PausedAt> early = applier_->WaitHeld(milliseconds(300));
  EXPECT_EQ(early.status().code(), Status::Code::kUnavailable) << early.status().ToString();
  EXPECT_TRUE(Commits().empty());
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  ExpectHeldAt(1);
  LetItRun(3);
  EXPECT_EQ(applier_->applied_seq(), 1u);
  EXPECT_EQ(Commits(), std::vector<uint64_t>{1});
  applier_->SetHold(std::nullopt);
  EXPECT_TRUE(AppliesWithoutError(3));
}

// A hold before a relay sequence ends a run of file changes there.
TEST_F(ApplierLoopTest, HoldBeforeASequenceStopsARunOfFiles) {
  OpenRelay();
  Put(1, FolderEntry("a"));
  Put(2, DbEntry(2));
  Put(3, FolderEntry("b"));
  Put(4, FolderEntry("c"));
  Put(5, FolderEntry("d"));
  applier_ = std::make_unique<Applier>(ManualOptions(1), relay_.get());
  applier_->SetHold(verify::StopBefore::Seq(5));
  ASSERT_TRUE(applier_->Start().ok());
  Result<verify::PausedAt> held = applier_->WaitHeld(kWait);
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_EQ(held->applied_seq, 4u);
  EXPECT_TRUE(std::filesystem::is_directory(repo_ + "/c"));
  EXPECT_FALSE(std::filesystem::exists(repo_ + "/d"));
  applier_->SetHold(std::nullopt);
  EXPECT_TRUE(AppliesWithoutError(5));
  EXPECT_TRUE(std::filesystem::is_directory(repo_ + "/d"));
}

// Held at a position with nothing left before it (the applied transaction ended at it), WaitHeld
// returns at once, without a transaction after it in the relay; a position the applier has not
// reached, with nothing to apply, is not held (Unavailable after the timeout).
TEST_F(ApplierLoopTest, IdleAtAHoldPositionIsHeldAtOnce) {
  OpenRelay();
  PutDb(1, 3);
  Start(ManualOptions(1));
  ASSERT_TRUE(AppliesWithoutError(3));
  applier_->SetHold(verify::StopBefore::At({"binlog.000001", 3500}));  // seq 3's end
  const auto before = std::chrono::steady_clock::now();
  ExpectHeldAt(3);
  EXPECT_LT(std::chrono::steady_clock::now() - before, milliseconds(2000));
  applier_->SetHold(verify::StopBefore::At({"binlog.000001", 5000}));
  Result<verify::PausedAt> not_yet = applier_->WaitHeld(milliseconds(200));
  EXPECT_EQ(not_yet.status().code(), Status::Code::kUnavailable) << not_yet.status().ToString();
  // The transactions that begin before it arrive: applied, then held (seq 5 begins at 5000).
  PutDb(4, 6);
  applier_->Notify();
  ExpectHeldAt(4);
}

// The hold is the applier's state: it survives Stop/Start.
TEST_F(ApplierLoopTest, HoldSurvivesStopAndStart) {
  OpenRelay();
  PutDb(1, 4);
  Start(ManualOptions(1));
  ASSERT_TRUE(AppliesWithoutError(4));
  applier_->SetHold(verify::StopBefore::Now());
  ExpectHeldAt(4);
  applier_->Stop();
  EXPECT_EQ(applier_->WaitHeld(milliseconds(0)).status().code(), Status::Code::kAborted);
  PutDb(5, 6);
  ASSERT_TRUE(applier_->Start().ok());
  // (The fake keeps only replsync.applied.seq across the restart, no gtid or source.)
  Result<verify::PausedAt> held = applier_->WaitHeld(kWait);
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_EQ(held->applied_seq, 4u);
  LetItRun(3);
  EXPECT_EQ(applier_->applied_seq(), 4u);
  applier_->SetHold(std::nullopt);
  EXPECT_TRUE(AppliesWithoutError(6));
}

// WaitHeld without a hold is a caller's error; with the applier stopped on an error, it is that
// error.
TEST_F(ApplierLoopTest, WaitHeldSaysWhyItCannotHold) {
  OpenRelay();
  server_.fail = [](const std::string& sql) {
    if (sql.rfind("UPDATE replsync.applied SET seq=2,", 0) == 0) {
      return Status::Server("Table 'app.t' doesn't exist (1146)");
    }
    return Status::Ok();
  };
  PutDb(1, 3);
  applier_ = std::make_unique<Applier>(ManualOptions(1), relay_.get());
  EXPECT_EQ(applier_->WaitHeld(milliseconds(0)).status().code(), Status::Code::kInvalidArgument);
  applier_->SetHold(verify::StopBefore::Seq(3));
  ASSERT_TRUE(applier_->Start().ok());
  Result<verify::PausedAt> held = applier_->WaitHeld(kWait);
  ASSERT_FALSE(held.ok());
  EXPECT_EQ(held.status().code(), Status::Code::kAborted);
  EXPECT_NE(held.status().message().find("1146"), std::string::npos) << held.status().message();
  EXPECT_EQ(applier_->status().state, ApplierState::kError);
}

// Bootstrap's lenient window: DDL of views, routines, triggers and events moves the position
// without running; other DDL runs. Turned off, an event is created DISABLE ON SLAVE.
TEST_F(ApplierLoopTest, ObjectDdlIsSkippedWhileAskedAndEventsAreCreatedDisabledOnSlave) {
  OpenRelay();
  Put(1, DdlEntry(1, "app",
                  "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER "
                  "VIEW `v` AS select 1 AS `1`"));
  Put(2, DdlEntry(2, "app", "CREATE TABLE t2 (a INT PRIMARY KEY)"));
  Put(3, DdlEntry(3, "app", "DROP TRIGGER IF EXISTS app.trg"));
  Put(4, DdlEntry(4, "app",
                  "CREATE DEFINER=`root`@`localhost` EVENT `e1` ON SCHEDULE EVERY 1 SECOND DO "
                  "INSERT INTO t2 VALUES (1)"));
  Put(5, DbEntry(5));
  applier_ = std::make_unique<Applier>(ManualOptions(1), relay_.get());
  applier_->SetSkipObjectDdl(true);
  ASSERT_TRUE(applier_->Start().ok());
  ASSERT_TRUE(AppliesWithoutError(5));
  ApplierStatus st = applier_->status();
  EXPECT_EQ(st.ddl_skipped, 3u);
  EXPECT_EQ(st.ddl_applied, 1u);
  EXPECT_EQ(st.transactions_applied, 5u);
  const std::vector<uint64_t> commits = Commits();
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    EXPECT_NE(std::find(commits.begin(), commits.end(), seq), commits.end()) << seq;
  }
  for (const std::string& sql : Log()) {
    EXPECT_EQ(sql.find("VIEW"), std::string::npos) << sql;
    EXPECT_EQ(sql.find("TRIGGER"), std::string::npos) << sql;
    EXPECT_EQ(sql.find("EVENT"), std::string::npos) << sql;
  }
  {
    const std::vector<std::string> log = Log();
    EXPECT_NE(std::find(log.begin(), log.end(), "CREATE TABLE t2 (a INT PRIMARY KEY)"), log.end());
  }

  // Off: the event is created DISABLE ON SLAVE (its text rewritten); one the secondary still
  // has enabled after an ALTER (here a rename) is altered to DISABLE ON SLAVE, definer kept.
  applier_->SetSkipObjectDdl(false);
  Put(6, DdlEntry(6, "app",
                  "CREATE DEFINER=`root`@`localhost` EVENT `e1` ON SCHEDULE EVERY 1 SECOND DO "
                  "INSERT INTO t2 VALUES (1)"));
  applier_->Notify();
  ASSERT_TRUE(AppliesWithoutError(6));
  {
    const std::vector<std::string> log = Log();
    EXPECT_NE(std::find(log.begin(), log.end(),
                        "CREATE DEFINER=`root`@`localhost` EVENT `e1` ON SCHEDULE EVERY 1 SECOND "
                        "DISABLE ON SLAVE DO INSERT INTO t2 VALUES (1)"),
              log.end());
  }
  {
    std::lock_guard<std::mutex> lock(server_.mu);
    server_.event_row = {"ENABLED", "app@%"};
  }
  Put(7, DdlEntry(7, "app", "ALTER EVENT e1 RENAME TO arc.e2"));
  applier_->Notify();
  ASSERT_TRUE(AppliesWithoutError(7));
  const std::vector<std::string> log = Log();
  auto alter = std::find(log.begin(), log.end(), "ALTER EVENT e1 RENAME TO arc.e2");
  ASSERT_NE(alter, log.end());
  auto disable =
      std::find(alter, log.end(), "ALTER DEFINER='app'@'%' EVENT `arc`.`e2` DISABLE ON SLAVE");
  EXPECT_NE(disable, log.end());
  EXPECT_EQ(applier_->status().ddl_applied, 3u);
  EXPECT_EQ(applier_->status().ddl_skipped, 3u);
}

}  // namespace
}  // namespace replsync::apply
