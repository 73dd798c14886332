// BootstrapClient (sync/bootstrap/bootstrap_client.h) against a scripted primary on the
// in-process transport: the primary's replies are queued before the client asks (the transport
// keeps them), so the tests run on one thread and need no timing.
#include "sync/bootstrap/bootstrap_client.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sync/clock.h"
#include "sync/wire/inproc_transport.h"
#include "tests/harness/server_receive.h"

namespace replsync {
namespace {

using std::chrono::milliseconds;

class BorrowedTransport : public ClientTransport {
 public:
  explicit BorrowedTransport(ClientTransport* end) : end_(end) {}
  Result<bool> Receive(pb::Envelope* message, std::chrono::milliseconds timeout) override {
    return end_->Receive(message, timeout);
  }
  Status Send(const pb::Envelope& message) override { return end_->Send(message); }
  Status Reconnect() override { return end_->Reconnect(); }
  uint64_t bad_frames() const override { return end_->bad_frames(); }

 private:
  ClientTransport* end_;
};

// A client end whose connection is lost (connections_lost() moves) on the `lose_at`th Receive.
class LosingTransport : public BorrowedTransport {
 public:
  LosingTransport(ClientTransport* end, int lose_at) : BorrowedTransport(end), lose_at_(lose_at) {}
  Result<bool> Receive(pb::Envelope* message, std::chrono::milliseconds timeout) override {
    if (++receives_ == lose_at_) ++lost_;
    return BorrowedTransport::Receive(message, timeout);
  }
  uint64_t connections_lost() const override { return lost_; }
  void Lose() { ++lost_; }

 private:
  int lose_at_;
  int receives_ = 0;
  uint64_t lost_ = 0;
};

std::string Compress(const std::string& text) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 1));
  return out;
}

class BootstrapClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = hub_.CreateServer();
    end_ = hub_.CreateClient("s1");
    peer_ = hub_.PeerId(*end_);
    BootstrapClient::Options options;
    options.reply_timeout = std::chrono::seconds(5);
    options.node_name = "s1";
    client_ = std::make_unique<BootstrapClient>(std::make_unique<BorrowedTransport>(end_.get()),
                                                "inproc://primary", options);
  }

  void Reply(uint64_t id, pb::BootstrapReply reply) {
    reply.set_request_id(id);
    pb::Envelope e;
    *e.mutable_bootstrap_reply() = std::move(reply);
    ASSERT_TRUE(server_->Send(peer_, e).ok());
  }

  // The next request the primary received (after the Hello{tree_only} that precedes each).
  pb::BootstrapRequest Request() {
    std::string peer;
    pb::Envelope got;
    auto received = testing::ServerReceive(*server_, &peer, &got, milliseconds(1000));
    EXPECT_TRUE(received.ok() && *received);
    EXPECT_TRUE(got.has_hello() && got.hello().tree_only()) << got.DebugString();
    EXPECT_EQ(got.hello().node_name(), "s1");
    received = testing::ServerReceive(*server_, &peer, &got, milliseconds(1000));
    EXPECT_TRUE(received.ok() && *received);
    EXPECT_TRUE(got.has_bootstrap_request());
    return got.bootstrap_request();
  }

  pb::BootstrapReply ChunkReply(const std::string& text) {
    pb::BootstrapReply r;
    r.add_columns("id");
    pb::BootstrapColumn* c = r.add_column_types();
    c->set_name("id");
    c->set_data_type("int");
    c->set_column_type("int(11)");
    r.add_columns("name");
    pb::BootstrapColumn* n = r.add_column_types();
    n->set_name("name");
    n->set_data_type("varchar");
    n->set_column_type("varchar(20)");
    n->set_charset("utf8mb4");
    r.set_data(Compress(text));
    r.set_raw_bytes(text.size());
    return r;
  }

  InprocHub hub_;
  std::unique_ptr<InprocServerTransport> server_;
  std::unique_ptr<InprocClientTransport> end_;
  std::string peer_;
  std::unique_ptr<BootstrapClient> client_;
};

TEST_F(BootstrapClientTest, BeginRoundCarriesTheDefinitionsAndSkipsOtherReplies) {
  pb::BootstrapReply stale;
  stale.set_round(99);
  stale.set_point_file("old.000001");
  Reply(5, stale);  // a reply to a request of another client's life
  pb::BootstrapReply r;
  r.set_round(3);
  r.set_point_file("binlog.000002");
  r.set_point_offset(1234);
  r.set_point_gtid("0-1-7");
  r.set_lock_ms(4);
  r.set_journal_seq(42);
  r.add_databases("CREATE DATABASE `app`");
  pb::BootstrapTable* t = r.add_tables();
  t->mutable_name()->set_db("app");
  t->mutable_name()->set_table("t");
  t->add_key_columns("id");
  Reply(1, r);
  auto round = client_->BeginRound(2, true);
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  EXPECT_EQ(round->round, 3u);
  EXPECT_EQ(round->point, (BinlogPosition{"binlog.000002", 1234}));
  EXPECT_EQ(round->gtid, "0-1-7");
  EXPECT_EQ(round->lock_ms, 4u);
  EXPECT_EQ(round->journal_seq, 42u);
  ASSERT_EQ(round->databases.size(), 1u);
  ASSERT_EQ(round->tables.size(), 1u);
  EXPECT_EQ(round->tables[0].key_columns(0), "id");
  pb::BootstrapRequest request = Request();
  EXPECT_EQ(request.op(), pb::BootstrapRequest::BEGIN_ROUND);
  EXPECT_EQ(request.readers(), 2u);
  EXPECT_TRUE(request.definitions());
}

TEST_F(BootstrapClientTest, AChunkIsDecompressedWithItsColumnsAndKey) {
  pb::BootstrapReply r = ChunkReply("1\n2\n");
  r.set_rows(2);
  r.add_last_key("2");
  r.set_table_done(true);
  Reply(1, r);
  auto chunk = client_->ReadChunk(3, 1, "app", "t", {"0"}, 1 << 20, false);
  ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
  EXPECT_EQ(chunk->text, "1\n2\n");
  EXPECT_EQ(chunk->rows, 2u);
  EXPECT_EQ(chunk->raw_bytes, 4u);
  EXPECT_EQ(chunk->wire_bytes, r.data().size());
  ASSERT_EQ(chunk->columns.size(), 2u);
  EXPECT_EQ(chunk->columns[0], (bootstrap::Column{"id", "int", "int(11)", false, ""}));
  EXPECT_EQ(chunk->columns[1],
            (bootstrap::Column{"name", "varchar", "varchar(20)", false, "utf8mb4"}));
  EXPECT_EQ(chunk->last_key, std::vector<std::string>{"2"});
  EXPECT_TRUE(chunk->table_done);
  EXPECT_FALSE(chunk->more_pieces);
  pb::BootstrapRequest request = Request();
  EXPECT_EQ(request.op(), pb::BootstrapRequest::READ_CHUNK);
  EXPECT_EQ(request.round(), 3u);
  EXPECT_EQ(request.reader(), 1u);
  EXPECT_EQ(request.table().db(), "app");
  EXPECT_EQ(request.table().table(), "t");
  ASSERT_EQ(request.after_size(), 1);
  EXPECT_EQ(request.after(0), "0");
  EXPECT_EQ(request.max_bytes(), 1u << 20);
}

TEST_F(BootstrapClientTest, RetryRepliesAreUnavailableAndOtherErrorsAborted) {
  pb::BootstrapReply retry;
  retry.set_error("a DDL came while the definitions were read");
  retry.set_retry(true);
  Reply(1, retry);
  auto round = client_->BeginRound(1, true);
  ASSERT_FALSE(round.ok());
  EXPECT_EQ(round.status().code(), Status::Code::kUnavailable);
  EXPECT_TRUE(round.status().retryable());
  EXPECT_NE(round.status().message().find("a DDL came"), std::string::npos);

  pb::BootstrapReply refused;
  refused.set_error("a round has 1 to 8 readers, not 9");
  Reply(2, refused);
  round = client_->BeginRound(9, false);
  ASSERT_FALSE(round.ok());
  EXPECT_EQ(round.status().code(), Status::Code::kAborted);
  EXPECT_FALSE(round.status().retryable());
}

TEST_F(BootstrapClientTest, AChunkClaimingTooManyBytesIsRefusedBeforeDecompressing) {
  pb::BootstrapReply r = ChunkReply("x\n");
  r.set_raw_bytes(BootstrapClient::kMaxChunkBytes + 1);
  Reply(1, r);
  auto chunk = client_->ReadChunk(1, 0, "app", "t", {}, 1 << 20, false);
  ASSERT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.status().code(), Status::Code::kCorruption);
  // A frame whose size is not raw_bytes is refused too.
  pb::BootstrapReply lying = ChunkReply("abc\n");
  lying.set_raw_bytes(2);
  Reply(2, lying);
  chunk = client_->ReadChunk(1, 0, "app", "t", {}, 1 << 20, false);
  ASSERT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.status().code(), Status::Code::kCorruption);
}

TEST_F(BootstrapClientTest, NoReplyInTimeIsANetworkError) {
  ManualClock clock;
  BootstrapClient::Options options;
  options.reply_timeout = std::chrono::seconds(2);
  options.clock = &clock;
  options.node_name = "s1";
  auto end = hub_.CreateClient("s1");
  BootstrapClient client(std::make_unique<BorrowedTransport>(end.get()), "inproc://primary",
                         options);
  std::thread advance([&] {
    for (int i = 0; i < 50; ++i) {
      clock.Advance(std::chrono::milliseconds(100));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  auto position = client.Position();
  advance.join();
  ASSERT_FALSE(position.ok());
  EXPECT_EQ(position.status().code(), Status::Code::kNetwork);
  EXPECT_TRUE(position.status().retryable());
}

// The primary's replsyncd killed while it reads a chunk: the request went with its connection,
// and the client says so at once instead of waiting reply_timeout (300 s by default) for a reply
// that cannot come.
TEST_F(BootstrapClientTest, AConnectionLostBeforeTheReplyIsANetworkErrorAtOnce) {
  BootstrapClient::Options options;
  options.reply_timeout = std::chrono::seconds(60);
  options.node_name = "s1";
  auto end = hub_.CreateClient("s1");
  auto transport = std::make_unique<LosingTransport>(end.get(), /*lose_at=*/3);
  BootstrapClient client(std::move(transport), "inproc://primary", options);
  const auto start = std::chrono::steady_clock::now();
  auto position = client.Position();
  ASSERT_FALSE(position.ok());
  EXPECT_EQ(position.status().code(), Status::Code::kNetwork);
  EXPECT_TRUE(position.status().retryable());
  EXPECT_NE(position.status().message().find("ended before it answered"), std::string::npos)
      << position.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

// A connection lost before the request was sent is not the request's: its reply is taken.
TEST_F(BootstrapClientTest, AConnectionLostBeforeTheRequestDoesNotFailIt) {
  BootstrapClient::Options options;
  options.reply_timeout = std::chrono::seconds(5);
  options.node_name = "s1";
  auto transport = std::make_unique<LosingTransport>(end_.get(), /*lose_at=*/0);
  LosingTransport* losing = transport.get();
  BootstrapClient client(std::move(transport), "inproc://primary", options);
  losing->Lose();
  pb::BootstrapReply reply;
  reply.set_point_file("bin.000002");
  reply.set_point_offset(77);
  Reply(1, reply);
  auto position = client.Position();
  ASSERT_TRUE(position.ok()) << position.status().ToString();
  EXPECT_EQ(position->offset, 77u);
}

TEST_F(BootstrapClientTest, PositionAndObjectsAndEndRound) {
  pb::BootstrapReply position;
  position.set_point_file("binlog.000003");
  position.set_point_offset(77);
  Reply(1, position);
  auto at = client_->Position();
  ASSERT_TRUE(at.ok()) << at.status().ToString();
  EXPECT_EQ(*at, (BinlogPosition{"binlog.000003", 77}));
  EXPECT_EQ(Request().op(), pb::BootstrapRequest::POSITION);

  pb::BootstrapReply objects;
  pb::BootstrapObject* view = objects.add_objects();
  view->set_kind("VIEW");
  view->set_db("app");
  view->set_name("v");
  view->add_sql("CREATE VIEW `v` AS SELECT 1");
  Reply(2, objects);
  auto got = client_->ReadObjects(*at, true, {"backup"});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].kind(), "VIEW");
  pb::BootstrapRequest request = Request();
  EXPECT_EQ(request.op(), pb::BootstrapRequest::READ_OBJECTS);
  EXPECT_EQ(request.point_file(), "binlog.000003");
  EXPECT_EQ(request.point_offset(), 77u);
  EXPECT_TRUE(request.users());
  ASSERT_EQ(request.exclude_users_size(), 1);

  Reply(3, pb::BootstrapReply());
  EXPECT_TRUE(client_->EndRound(4).ok());
  request = Request();
  EXPECT_EQ(request.op(), pb::BootstrapRequest::END_ROUND);
  EXPECT_EQ(request.round(), 4u);
}

}  // namespace
}  // namespace replsync
