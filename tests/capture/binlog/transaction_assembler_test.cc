#include "capture/binlog/transaction_assembler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "capture/binlog/binlog_decoder.h"
#include "capture/binlog/file_binlog_source.h"

namespace replsync::capture {
namespace {

namespace fs = std::filesystem;

const std::string kBinlogDir = std::string(REPLSYNC_FIXTURES_DIR) + "/binlog";

// Records what the assembler reports and checks that calls come in a valid order.
class RecordingSink : public TransactionSink {
 public:
  Status OnBegin(const TransactionInfo& txn) override {
    EXPECT_FALSE(open_) << "OnBegin inside an open transaction at " << txn.begin.ToString();
    open_ = true;
    log.push_back("begin " + txn.gtid.ToString());
    begins.push_back(txn);
    return fail_on_begin_ ? Status::Aborted("sink refused") : Status::Ok();
  }
  Status OnRows(const TransactionInfo& txn, const Event& event, const RowsEvent& rows) override {
    EXPECT_TRUE(open_) << "rows outside a transaction at " << event.position.ToString();
    EXPECT_NE(rows.table, nullptr);
    log.push_back("rows " + rows.table->table);
    return Status::Ok();
  }
  Status OnDdl(const TransactionInfo& txn, const Event& event, const DdlStatement& ddl) override {
    EXPECT_TRUE(open_) << "DDL outside a transaction at " << event.position.ToString();
    EXPECT_TRUE(txn.is_ddl);
    EXPECT_NE(ddl.query, nullptr);
    log.push_back("ddl " + ddl.sql);
    ddls.push_back(ddl.db + ": " + ddl.sql);
    return Status::Ok();
  }
  Status OnCommit(const TransactionInfo& txn) override {
    EXPECT_TRUE(open_) << "commit outside a transaction";
    open_ = false;
    log.push_back("commit");
    ends.push_back(txn);
    return Status::Ok();
  }
  Status OnRollback(const TransactionInfo& txn) override {
    EXPECT_TRUE(open_) << "rollback outside a transaction";
    open_ = false;
    log.push_back("rollback");
    ends.push_back(txn);
    return Status::Ok();
  }

  void FailOnBegin() { fail_on_begin_ = true; }
  bool open() const { return open_; }

  std::vector<std::string> log;
  std::vector<std::string> ddls;
  std::vector<TransactionInfo> begins;
  std::vector<TransactionInfo> ends;

 private:
  bool open_ = false;
  bool fail_on_begin_ = false;
};

// ---- Synthetic events
// ----------------------------------------------------------------------------

class Stream {
 public:
  Event Base(uint8_t type, uint64_t size = 40) {
    Event e;
    e.header.type = type;
    e.header.timestamp = 1700000000 + static_cast<uint32_t>(offset_);
    e.header.event_size = static_cast<uint32_t>(size);
    e.position = {"binlog.000007", offset_};
    e.next_offset = offset_ + size;
    offset_ += size;
    return e;
  }
  Event Query(std::string sql, std::string db = "shop") {
    Event e = Base(2);
    QueryEvent q;
    q.db = std::move(db);
    q.query = std::move(sql);
    e.body = std::move(q);
    return e;
  }
  Event MysqlGtid(uint64_t gno) {
    Event e = Base(33);
    GtidEvent g;
    std::array<uint8_t, 16> uuid{};
    uuid[15] = 7;
    g.gtid = Gtid::Mysql(uuid, "", gno);
    e.body = g;
    return e;
  }
  Event MariadbGtid(uint64_t seq, uint8_t flags) {
    Event e = Base(162);
    GtidEvent g;
    g.gtid = Gtid::Mariadb(0, 1, seq);
    g.mariadb_flags = flags;
    e.body = g;
    return e;
  }
  Event Map() {
    Event e = Base(19);
    e.body = TableMapEvent{table_};
    return e;
  }
  Event Rows(bool end_of_statement) {
    Event e = Base(30);
    RowsEvent r;
    r.table = table_.get();
    r.table_id = 5;
    r.flags = end_of_statement ? 1 : 0;
    e.body = r;
    return e;
  }
  Event Xid(uint64_t xid) {
    Event e = Base(16);
    e.body = XidEvent{xid};
    return e;
  }
  Event XaPrepare() {
    Event e = Base(38);
    e.body = XaPrepareEvent{false, 1, "g", ""};
    return e;
  }
  Event Rotate() {
    Event e = Base(4);
    e.body = RotateEvent{4, "binlog.000008"};
    return e;
  }

 private:
  uint64_t offset_ = 4;
  std::shared_ptr<TableMap> table_ = [] {
    auto t = std::make_shared<TableMap>();
    t->table_id = 5;
    t->db = "shop";
    t->table = "orders";
    return t;
  }();
};

Status FeedAll(TransactionAssembler* assembler, const std::vector<Event>& events) {
  for (const Event& e : events) RS_RETURN_IF_ERROR(assembler->Feed(e));
  return Status::Ok();
}

TEST(TransactionAssemblerTest, GtidBeginRowsXidIsOneTransaction) {
  Stream s;
  std::vector<Event> events = {s.MysqlGtid(9), s.Query("BEGIN"), s.Map(),
                               s.Rows(false),  s.Rows(true),     s.Xid(321)};
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(FeedAll(&assembler, events).ok());
  EXPECT_EQ(sink.log, (std::vector<std::string>{"begin 00000000-0000-0000-0000-000000000007:9",
                                                "rows orders", "rows orders", "commit"}));
  ASSERT_EQ(sink.ends.size(), 1u);
  const TransactionInfo& t = sink.ends[0];
  EXPECT_EQ(t.begin, events[0].position);
  EXPECT_EQ(t.end, (BinlogPosition{"binlog.000007", events[5].next_offset}));
  EXPECT_EQ(t.timestamp, events[0].header.timestamp);
  EXPECT_EQ(t.xid, 321u);
  EXPECT_FALSE(t.is_ddl);
  EXPECT_FALSE(assembler.in_transaction());
  EXPECT_EQ(assembler.committed_position(), t.end);
}

TEST(TransactionAssemblerTest, GtidFollowedByDdlIsAOneStatementTransaction) {
  Stream s;
  std::vector<Event> events = {s.MysqlGtid(1),   s.Query("CREATE TABLE t (a INT)"),
                               s.MysqlGtid(2),   s.Query("BEGIN"),
                               s.Map(),          s.Rows(true),
                               s.Query("COMMIT")};
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(FeedAll(&assembler, events).ok());
  EXPECT_EQ(sink.log, (std::vector<std::string>{"begin 00000000-0000-0000-0000-000000000007:1",
                                                "ddl CREATE TABLE t (a INT)", "commit",
                                                "begin 00000000-0000-0000-0000-000000000007:2",
                                                "rows orders", "commit"}));
  EXPECT_TRUE(sink.ends[0].is_ddl);
  EXPECT_EQ(sink.ends[0].end.offset, events[1].next_offset);
  EXPECT_FALSE(sink.ends[1].is_ddl);
  EXPECT_EQ(sink.ddls, (std::vector<std::string>{"shop: CREATE TABLE t (a INT)"}));
}

TEST(TransactionAssemblerTest, MariadbStandaloneGroupEndsAfterItsStatement) {
  Stream s;
  std::vector<Event> events = {s.MariadbGtid(10, 0x01 | 0x20),
                               s.Query("/* admin */ ALTER TABLE t ADD COLUMN b INT"),
                               s.MariadbGtid(11, 0x0c),
                               s.Query("BEGIN"),
                               s.Map(),
                               s.Rows(true),
                               s.Xid(5)};
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(FeedAll(&assembler, events).ok());
  EXPECT_EQ(sink.log, (std::vector<std::string>{
                          "begin 0-1-10", "ddl /* admin */ ALTER TABLE t ADD COLUMN b INT",
                          "commit", "begin 0-1-11", "rows orders", "commit"}));
  EXPECT_EQ(sink.ends[1].gtid.ToString(), "0-1-11");
}

TEST(TransactionAssemblerTest, DdlOutsideBeginIsItsOwnTransaction) {
  Stream s;
  std::vector<Event> events = {s.Query("  -- cleanup\n  DROP TABLE old"), s.Query("begin"),
                               s.Query("insert into t values (1)"), s.Query("Commit")};
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(FeedAll(&assembler, events).ok());
  EXPECT_EQ(sink.log,
            (std::vector<std::string>{"begin ", "ddl   -- cleanup\n  DROP TABLE old", "commit",
                                      "begin ", "ddl insert into t values (1)", "commit"}));
  EXPECT_TRUE(sink.begins[0].gtid.empty());
  EXPECT_EQ(sink.ends[0].begin, events[0].position);
  EXPECT_EQ(sink.ends[1].begin, events[1].position);
  EXPECT_EQ(sink.ends[1].end.offset, events[3].next_offset);
}

TEST(TransactionAssemblerTest, RollbackReportsOnRollback) {
  Stream s;
  std::vector<Event> events = {s.Query("BEGIN"), s.Map(), s.Rows(true), s.Query("ROLLBACK")};
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(FeedAll(&assembler, events).ok());
  EXPECT_EQ(sink.log, (std::vector<std::string>{"begin ", "rows orders", "rollback"}));
  EXPECT_EQ(assembler.committed_position().offset, events[3].next_offset);
}

TEST(TransactionAssemblerTest, SavepointsStayInsideTheTransaction) {
  Stream s;
  std::vector<Event> events = {s.MysqlGtid(3),
                               s.Query("BEGIN"),
                               s.Query("SAVEPOINT `a`"),
                               s.Map(),
                               s.Rows(true),
                               s.Query("ROLLBACK TO `a`"),
                               s.Query("rollback work to savepoint a"),
                               s.Xid(8)};
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(FeedAll(&assembler, events).ok());
  EXPECT_EQ(sink.log, (std::vector<std::string>{"begin 00000000-0000-0000-0000-000000000007:3",
                                                "rows orders", "commit"}));
}

TEST(TransactionAssemblerTest, XaTransactionsEndAtPrepareAndAtTheSecondPhase) {
  Stream s;
  std::vector<Event> events = {s.MysqlGtid(4), s.Query("XA START X'01',X'',1"), s.Map(),
                               s.Rows(true), s.Query("XA END X'01',X'',1"), s.XaPrepare(),
                               s.MysqlGtid(5), s.Query("XA COMMIT X'01',X'',1"),
                               // MariaDB: the prepare is a QUERY, the rollback a group of its own.
                               s.MariadbGtid(20, 0x40), s.Query("XA START X'02',X'',1"), s.Map(),
                               s.Rows(true), s.Query("XA END X'02',X'',1"),
                               s.Query("XA PREPARE X'02',X'',1"), s.MariadbGtid(21, 0x80 | 0x01),
                               s.Query("XA ROLLBACK X'02',X'',1")};
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(FeedAll(&assembler, events).ok());
  EXPECT_EQ(sink.log, (std::vector<std::string>{
                          "begin 00000000-0000-0000-0000-000000000007:4", "rows orders", "commit",
                          "begin 00000000-0000-0000-0000-000000000007:5", "commit", "begin 0-1-20",
                          "rows orders", "commit", "begin 0-1-21", "rollback"}));
  ASSERT_EQ(sink.ends.size(), 4u);
  EXPECT_TRUE(sink.ends[0].xa_prepare);
  EXPECT_FALSE(sink.ends[1].xa_prepare);
  EXPECT_FALSE(sink.ends[1].is_ddl);
  EXPECT_TRUE(sink.ends[2].xa_prepare);
}

TEST(TransactionAssemblerTest, RowsWithoutGtidsOrBeginEndWithTheirStatement) {
  Stream s;
  std::vector<Event> events = {s.Map(), s.Rows(false), s.Rows(true), s.Rotate()};
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(FeedAll(&assembler, events).ok());
  EXPECT_EQ(sink.log, (std::vector<std::string>{"begin ", "rows orders", "rows orders", "commit"}));
  // A restart must replay the TABLE_MAP too: the transaction begins there.
  EXPECT_EQ(sink.ends[0].begin, events[0].position);
  EXPECT_EQ(sink.ends[0].end.offset, events[2].next_offset);
}

TEST(TransactionAssemblerTest, CompoundBeginIsAStatement) {
  Stream s;
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(assembler.Feed(s.Query("BEGIN NOT ATOMIC SELECT 1; END")).ok());
  EXPECT_EQ(sink.log,
            (std::vector<std::string>{"begin ", "ddl BEGIN NOT ATOMIC SELECT 1; END", "commit"}));
}

TEST(TransactionAssemblerTest, ContradictionsAreCorruption) {
  {
    Stream s;
    RecordingSink sink;
    TransactionAssembler assembler(&sink);
    Status st = assembler.Feed(s.Query("COMMIT"));
    EXPECT_TRUE(st.IsCorruption()) << st.ToString();
    EXPECT_NE(st.message().find("binlog.000007:4: COMMIT without a BEGIN"), std::string::npos);
  }
  {
    Stream s;
    RecordingSink sink;
    TransactionAssembler assembler(&sink);
    EXPECT_TRUE(assembler.Feed(s.Xid(1)).IsCorruption());
  }
  {
    Stream s;
    RecordingSink sink;
    TransactionAssembler assembler(&sink);
    ASSERT_TRUE(FeedAll(&assembler, {s.MysqlGtid(1), s.Query("BEGIN"), s.Xid(1)}).ok());
    EXPECT_TRUE(assembler.Feed(s.Rows(true)).IsCorruption());  // GTIDs on: rows need a GTID
  }
  {
    Stream s;
    RecordingSink sink;
    TransactionAssembler assembler(&sink);
    ASSERT_TRUE(FeedAll(&assembler, {s.MysqlGtid(1), s.Query("BEGIN")}).ok());
    EXPECT_TRUE(assembler.Feed(s.MysqlGtid(2)).IsCorruption());
    EXPECT_TRUE(assembler.Feed(s.Query("BEGIN")).IsCorruption());
  }
}

TEST(TransactionAssemblerTest, SinkErrorsStopFeed) {
  Stream s;
  RecordingSink sink;
  sink.FailOnBegin();
  TransactionAssembler assembler(&sink);
  Status st = assembler.Feed(s.MysqlGtid(1));
  EXPECT_EQ(st.code(), Status::Code::kAborted);
}

// ---- Recorded binlogs
// ----------------------------------------------------------------------------

const char* kCorruptFixtures[] = {
    "rust_mysql_common/binlog_truncated_event.000001",
    "rust_mysql_common/binlog_truncated_prev_gtid_event.000001",
    "rust_mysql_common/corrupt-relay-bin.000624",
};
// Recorded files that stop inside a transaction: the Aurora sample ends right after BEGIN.
const char* kEndsInsideTransaction[] = {"mysql-binlog-connector-java/mysql-bin.aurora-padding"};

Status Assemble(const std::string& path, RecordingSink* sink, TransactionAssembler* assembler) {
  RS_ASSIGN_OR_RETURN(auto source, FileBinlogSource::Open({path}));
  BinlogReader reader(std::move(source));
  while (true) {
    RS_ASSIGN_OR_RETURN(const Event* e, reader.Next());
    if (e == nullptr) return Status::Ok();
    RS_RETURN_IF_ERROR(assembler->Feed(*e));
  }
}

TEST(TransactionAssemblerTest, RecordedStreamsHaveBalancedTransactions) {
  size_t files = 0, transactions = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kBinlogDir)) {
    if (!entry.is_regular_file() || entry.path().filename() == "SOURCES.md") continue;
    std::string rel = fs::relative(entry.path(), kBinlogDir).string();
    if (std::find(std::begin(kCorruptFixtures), std::end(kCorruptFixtures), rel) !=
        std::end(kCorruptFixtures)) {
      continue;
    }
    ++files;
    RecordingSink sink;
    TransactionAssembler assembler(&sink);
    Status st = Assemble(entry.path().string(), &sink, &assembler);
    EXPECT_TRUE(st.ok()) << rel << ": " << st.ToString();
    bool open_expected =
        std::find(std::begin(kEndsInsideTransaction), std::end(kEndsInsideTransaction), rel) !=
        std::end(kEndsInsideTransaction);
    EXPECT_EQ(assembler.in_transaction(), open_expected) << rel;
    EXPECT_EQ(sink.open(), open_expected) << rel;
    EXPECT_EQ(sink.begins.size(), sink.ends.size() + (open_expected ? 1 : 0)) << rel;
    for (size_t i = 0; i < sink.ends.size(); ++i) {
      const TransactionInfo& t = sink.ends[i];
      EXPECT_LT(t.begin.offset, t.end.offset) << rel;
      if (i > 0) {
        EXPECT_LE(sink.ends[i - 1].end.offset, t.begin.offset) << rel;
      }
    }
    if (!sink.ends.empty()) {
      EXPECT_EQ(assembler.committed_position(), sink.ends.back().end) << rel;
    }
    transactions += sink.ends.size();
  }
  EXPECT_GE(files + std::size(kCorruptFixtures), 70u);  // SOURCES.md lists 72 binlogs
  EXPECT_GT(transactions, 500u);
}

TEST(TransactionAssemblerTest, CanalAlterTableStatementsAreDdl) {
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(Assemble(kBinlogDir + "/canal/binlog/tsdb/mysql-bin.000003", &sink, &assembler).ok());
  size_t alters = 0;
  for (const std::string& ddl : sink.ddls) {
    std::string lower = ddl;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (lower.find("alter table wanshao_test") != std::string::npos) ++alters;
  }
  EXPECT_GE(alters, 5u);
  // Each ALTER is a transaction of its own, between the row transactions.
  size_t ddl_txns = 0, row_txns = 0;
  for (const TransactionInfo& t : sink.ends) (t.is_ddl ? ddl_txns : row_txns)++;
  EXPECT_EQ(ddl_txns, sink.ddls.size());
  EXPECT_GT(row_txns, 0u);
  for (size_t i = 0; i + 2 < sink.log.size(); ++i) {
    if (sink.log[i].rfind("ddl ", 0) == 0) {
      EXPECT_EQ(sink.log[i + 1], "commit");
      EXPECT_EQ(sink.log[i - 1].rfind("begin", 0), 0u);
    }
  }
}

TEST(TransactionAssemblerTest, CompressedTransactionEndsAfterThePayload) {
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(
      Assemble(kBinlogDir + "/mysql-binlog-connector-java/mysql-bin.compressed", &sink, &assembler)
          .ok());
  EXPECT_EQ(sink.log, (std::vector<std::string>{"begin ", "rows movies", "commit"}));
  ASSERT_EQ(sink.ends.size(), 1u);
  EXPECT_EQ(sink.ends[0].begin.offset, 157u);  // the ANONYMOUS_GTID before the payload
  EXPECT_EQ(sink.ends[0].end.offset, 724u);    // after the TRANSACTION_PAYLOAD
  EXPECT_EQ(sink.ends[0].xid, 31u);
}

TEST(TransactionAssemblerTest, RecordedGtidsReachTheSink) {
  RecordingSink sink;
  TransactionAssembler assembler(&sink);
  ASSERT_TRUE(
      Assemble(kBinlogDir + "/rust_mysql_common/mariadb-bin.000001", &sink, &assembler).ok());
  ASSERT_EQ(sink.ends.size(), 2u);
  EXPECT_EQ(sink.ends[0].gtid.ToString(), "0-1-1");
  EXPECT_EQ(sink.ends[0].xid, 800u);
  EXPECT_EQ(sink.ends[0].begin.offset, 330u);
  EXPECT_EQ(sink.ends[0].end.offset, 702u);
  EXPECT_EQ(sink.ends[1].gtid.ToString(), "0-1-2");
}

}  // namespace
}  // namespace replsync::capture
