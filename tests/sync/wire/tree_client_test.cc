// TreeClient (sync/wire/tree_client.h) against a scripted primary on the in-process transport:
// the primary's replies are queued before the client asks (the transport keeps them), so the
// tests run on one thread and need no timing.
#include "sync/wire/tree_client.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sync/wire/inproc_transport.h"
#include "sync/wire/zmq_transport.h"
#include "tests/harness/server_receive.h"

namespace replsync {
namespace {

using std::chrono::milliseconds;

pb::TreeNode Node(const std::string& name) {
  pb::TreeNode n;
  n.set_name(name);
  return n;
}

// The client's end, kept by the test: an in-process end drops what it queued when it is
// destroyed, and the test wants to see what the TreeClient sent last.
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

class TreeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = hub_.CreateServer();
    end_ = hub_.CreateClient();
    transport_ = end_.get();
    peer_ = hub_.PeerId(*transport_);
    TreeClient::Options options;
    options.reply_timeout = std::chrono::seconds(5);
    client_ = std::make_unique<TreeClient>(std::make_unique<BorrowedTransport>(transport_),
                                           "inproc://primary", options);
  }

  // Queues the primary's reply to request `id`.
  void Reply(uint64_t id, pb::TreeReply reply) {
    reply.set_request_id(id);
    pb::Envelope e;
    *e.mutable_tree_reply() = std::move(reply);
    ASSERT_TRUE(server_->Send(peer_, e).ok());
  }

  // The next request the primary received (after the Hello{tree_only} that precedes each).
  pb::TreeRequest Request() {
    std::string peer;
    pb::Envelope got;
    auto received = testing::ServerReceive(*server_, &peer, &got, milliseconds(1000));
    EXPECT_TRUE(received.ok() && *received);
    EXPECT_TRUE(got.has_hello() && got.hello().tree_only()) << got.DebugString();
    received = testing::ServerReceive(*server_, &peer, &got, milliseconds(1000));
    EXPECT_TRUE(received.ok() && *received);
    EXPECT_TRUE(got.has_tree_request());
    return got.tree_request();
  }

  void Open() {
    pb::TreeReply opened;
    opened.set_session("s1");
    Reply(1, opened);
    ASSERT_TRUE(client_->Open(false, {}).ok());
    (void)Request();
  }

  InprocHub hub_;
  std::unique_ptr<InprocServerTransport> server_;
  std::unique_ptr<InprocClientTransport> end_;
  InprocClientTransport* transport_ = nullptr;
  std::string peer_;
  std::unique_ptr<TreeClient> client_;
};

TEST_F(TreeClientTest, OpenAsksForASnapshotAndSkipsRepliesToOtherRequests) {
  pb::TreeReply stale;
  stale.set_session("old");
  Reply(7, stale);  // a reply to a request of another client's life
  pb::TreeReply opened;
  opened.set_session("s1");
  opened.set_journal_seq(42);
  opened.set_paths(3);
  Reply(1, opened);
  Result<pb::TreeReply> reply = client_->Open(true, {"docs/a.txt", "img"});
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->session(), "s1");
  EXPECT_EQ(reply->journal_seq(), 42u);
  EXPECT_EQ(reply->paths(), 3u);
  pb::TreeRequest request = Request();
  EXPECT_EQ(request.request_id(), 1u);
  EXPECT_TRUE(request.open());
  EXPECT_TRUE(request.deep());
  ASSERT_EQ(request.resync_paths_size(), 2);
  EXPECT_EQ(request.resync_paths(1), "img");
  EXPECT_EQ(client_->requests(), 1u);
}

TEST_F(TreeClientTest, ATruncatedListingIsAskedAgainAfterItsLastName) {
  ASSERT_NO_FATAL_FAILURE(Open());
  pb::TreeReply first;
  pb::TreeListing* root = first.add_listings();
  root->set_dir("");
  *root->add_nodes() = Node("a");
  *root->add_nodes() = Node("b");
  root->set_truncated(true);
  Reply(2, first);
  pb::TreeReply second;
  pb::TreeListing* rest = second.add_listings();
  rest->set_dir("");
  *rest->add_nodes() = Node("c");
  pb::TreeListing* docs = second.add_listings();
  docs->set_dir("docs");
  *docs->add_nodes() = Node("x");
  Reply(3, second);

  auto listed = client_->List({"", "docs"});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  std::vector<std::string> names;
  for (const pb::TreeNode& n : (*listed)[""]) names.push_back(n.name());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ((*listed)["docs"].size(), 1u);
  EXPECT_EQ(client_->listed_nodes(), 4u);
  EXPECT_EQ(client_->requests(), 3u);

  pb::TreeRequest asked = Request();
  EXPECT_EQ(asked.session(), "s1");
  ASSERT_EQ(asked.dirs_size(), 2);
  EXPECT_EQ(asked.after(0), "");
  pb::TreeRequest again = Request();
  ASSERT_EQ(again.dirs_size(), 2);
  EXPECT_EQ(again.dirs(0), "");
  EXPECT_EQ(again.after(0), "b");
  EXPECT_EQ(again.dirs(1), "docs");
}

TEST_F(TreeClientTest, ThePrimarysErrorIsReturnedNamingIt) {
  pb::TreeReply failed;
  failed.set_error("no repository");
  Reply(1, failed);
  Result<pb::TreeReply> reply = client_->Open(false, {});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().message(), "the primary at inproc://primary: no repository");
}

TEST_F(TreeClientTest, AListingOutOfOrderIsCorruption) {
  ASSERT_NO_FATAL_FAILURE(Open());
  pb::TreeReply reply;
  reply.add_listings()->set_dir("other");
  Reply(2, reply);
  auto listed = client_->List({"docs"});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(listed.status().message(), "the primary listed \"other\" out of order");
}

TEST_F(TreeClientTest, AnUnreachablePrimaryIsANetworkError) {
  hub_.SetReachable(*transport_, false);
  Result<pb::TreeReply> reply = client_->Open(false, {});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Status::Code::kNetwork);
  EXPECT_NE(reply.status().message().find(
                "the primary's replsyncd at inproc://primary cannot be reached"),
            std::string::npos)
      << reply.status().message();
}

TEST_F(TreeClientTest, TheSessionIsClosedWhenTheClientGoes) {
  ASSERT_NO_FATAL_FAILURE(Open());
  client_.reset();
  pb::TreeRequest close = Request();
  EXPECT_TRUE(close.close());
  EXPECT_EQ(close.session(), "s1");
}

// The primary refuses messages over kServerMaxReceiveBytes: a resync list longer than that goes
// in several open requests, each well under it, every path once and in order, `deep` on the last
// only; the last reply's session is the one returned and kept.
TEST_F(TreeClientTest, AResyncListOverThePrimarysLimitIsSplitAndTheLastSessionIsKept) {
  std::vector<std::string> paths;
  for (int i = 0; i < 9000; ++i) {
    paths.push_back(fmt::format("folder/{}/{}", i, std::string(1000, 'x')));
  }
  pb::Envelope whole;
  whole.mutable_tree_request()->set_open(true);
  for (const std::string& p : paths) whole.mutable_tree_request()->add_resync_paths(p);
  ASSERT_GT(whole.ByteSizeLong(), static_cast<size_t>(kServerMaxReceiveBytes));  // the premise

  constexpr uint64_t kReplies = 10;  // more than the client needs; the rest stay unread
  for (uint64_t id = 1; id <= kReplies; ++id) {
    pb::TreeReply opened;
    opened.set_session(fmt::format("s{}", id));
    opened.set_journal_seq(100 + id);
    Reply(id, opened);
  }
  Result<pb::TreeReply> reply = client_->Open(true, paths);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();

  const uint64_t requests = client_->requests();
  ASSERT_GE(requests, 4u);  // 9 MB in batches of at most 2 MiB
  ASSERT_LT(requests, kReplies);
  EXPECT_EQ(reply->session(), fmt::format("s{}", requests));
  EXPECT_EQ(reply->journal_seq(), 100 + requests);
  std::vector<std::string> sent;
  for (uint64_t id = 1; id <= requests; ++id) {
    pb::TreeRequest request = Request();
    EXPECT_EQ(request.request_id(), id);
    EXPECT_TRUE(request.open());
    EXPECT_EQ(request.deep(), id == requests) << "request " << id;
    EXPECT_GT(request.resync_paths_size(), 0);
    pb::Envelope e;
    *e.mutable_tree_request() = request;
    EXPECT_LE(e.ByteSizeLong(), kPathBytesPerRequest + 64) << "request " << id;
    for (const std::string& p : request.resync_paths()) sent.push_back(p);
  }
  EXPECT_EQ(sent, paths);

  // The session the client keeps (and closes when it goes) is the last one.
  client_.reset();
  pb::TreeRequest close = Request();
  EXPECT_TRUE(close.close());
  EXPECT_EQ(close.session(), fmt::format("s{}", requests));
}

TEST_F(TreeClientTest, ASplitOpenStopsAtTheFirstRequestThePrimaryRefuses) {
  std::vector<std::string> paths(5000, std::string(1000, 'p'));
  pb::TreeReply first;
  first.set_session("s1");
  Reply(1, first);
  pb::TreeReply refused;
  refused.set_error("a snapshot for verify is still being taken");
  Reply(2, refused);
  Result<pb::TreeReply> reply = client_->Open(false, paths);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Status::Code::kAborted);
  EXPECT_EQ(client_->requests(), 2u);
  EXPECT_TRUE(Request().open());
  EXPECT_TRUE(Request().open());
  // Nothing more was sent.
  std::string peer;
  pb::Envelope more;
  auto received = testing::ServerReceive(*server_, &peer, &more, milliseconds(50));
  ASSERT_TRUE(received.ok());
  EXPECT_FALSE(*received) << more.DebugString();
}

}  // namespace
}  // namespace replsync
