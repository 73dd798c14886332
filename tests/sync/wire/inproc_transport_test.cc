#include "sync/wire/inproc_transport.h"
#include "tests/harness/server_receive.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

namespace replsync {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

pb::Envelope MakeHello(const std::string& node, uint64_t durable_seq) {
  pb::Envelope e;  // version left 0: the transport stamps it
  e.mutable_hello()->set_node_name(node);
  e.mutable_hello()->set_durable_seq(durable_seq);
  e.mutable_hello()->set_credit(16);
  return e;
}

pb::Envelope MakeHeartbeat(uint64_t last_seq) {
  pb::Envelope e;
  e.mutable_heartbeat()->set_last_seq(last_seq);
  return e;
}

// Receives on the server within a short time, failing the test when nothing comes.
pb::Envelope ServerGets(InprocServerTransport& server, std::string* peer) {
  pb::Envelope got;
  auto received = testing::ServerReceive(server, peer, &got, milliseconds(1000));
  EXPECT_TRUE(received.ok() && *received);
  return got;
}

bool ServerGetsNothing(InprocServerTransport& server) {
  std::string peer;
  pb::Envelope got;
  auto received = testing::ServerReceive(server, &peer, &got, milliseconds(20));
  return received.ok() && !*received;
}

bool ClientGetsNothing(InprocClientTransport& client) {
  pb::Envelope got;
  auto received = client.Receive(&got, milliseconds(20));
  return received.ok() && !*received;
}

TEST(InprocTransportTest, RoundTripBothWays) {
  InprocHub hub;
  auto server = hub.CreateServer();
  ASSERT_NE(server, nullptr);
  auto client = hub.CreateClient();
  ASSERT_TRUE(client->Send(MakeHello("a", 7)).ok());
  std::string peer;
  pb::Envelope got = ServerGets(*server, &peer);
  EXPECT_EQ(peer, hub.PeerId(*client));
  EXPECT_EQ(peer, "inproc-1");
  EXPECT_EQ(got.version(), kProtocolVersion);
  EXPECT_EQ(got.hello().node_name(), "a");
  EXPECT_EQ(got.hello().durable_seq(), 7u);

  pb::Envelope entries;
  entries.mutable_entries()->add_seqs(8);
  entries.mutable_entries()->add_entries(std::string("\0bytes", 6));
  entries.mutable_entries()->add_compressed(false);
  ASSERT_TRUE(server->Send(peer, entries).ok());
  pb::Envelope reply;
  auto received = client->Receive(&reply, milliseconds(1000));
  ASSERT_TRUE(received.ok() && *received);
  EXPECT_EQ(reply.version(), kProtocolVersion);
  EXPECT_EQ(reply.entries().entries(0), std::string("\0bytes", 6));
}

TEST(InprocTransportTest, SeveralClientsHaveDistinctPeerIds) {
  InprocHub hub;
  auto server = hub.CreateServer();
  std::vector<std::unique_ptr<InprocClientTransport>> clients;
  std::set<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(hub.CreateClient());
    ids.insert(hub.PeerId(*clients.back()));
    ASSERT_TRUE(clients.back()->Send(MakeHello(fmt::format("n{}", i), i)).ok());
  }
  EXPECT_EQ(ids.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    std::string peer;
    pb::Envelope got = ServerGets(*server, &peer);
    EXPECT_EQ(peer, hub.PeerId(*clients[got.hello().durable_seq()]));
    ASSERT_TRUE(server->Send(peer, MakeHeartbeat(100 + got.hello().durable_seq())).ok());
  }
  for (int i = 0; i < 3; ++i) {
    pb::Envelope got;
    ASSERT_TRUE(*clients[i]->Receive(&got, milliseconds(1000)));
    EXPECT_EQ(got.heartbeat().last_seq(), 100u + i);
    EXPECT_TRUE(ClientGetsNothing(*clients[i]));
  }
}

TEST(InprocTransportTest, ReceiveTimeoutReturnsFalse) {
  InprocHub hub;
  auto server = hub.CreateServer();
  auto client = hub.CreateClient();
  const auto start = steady_clock::now();
  std::string peer;
  pb::Envelope got;
  auto received = testing::ServerReceive(*server, &peer, &got, milliseconds(50));
  ASSERT_TRUE(received.ok());
  EXPECT_FALSE(*received);
  EXPECT_GE(steady_clock::now() - start, milliseconds(50));
  received = client->Receive(&got, milliseconds(0));
  ASSERT_TRUE(received.ok());
  EXPECT_FALSE(*received);
}

TEST(InprocTransportTest, DisconnectDropsQueuedMessagesBothWaysAndGivesANewPeerId) {
  InprocHub hub;
  auto server = hub.CreateServer();
  auto client = hub.CreateClient();
  const std::string old_peer = hub.PeerId(*client);
  ASSERT_TRUE(client->Send(MakeHeartbeat(1)).ok());
  ASSERT_TRUE(client->Send(MakeHeartbeat(2)).ok());
  ASSERT_TRUE(server->Send(old_peer, MakeHeartbeat(3)).ok());

  hub.Disconnect(*client);
  EXPECT_TRUE(ServerGetsNothing(*server));
  EXPECT_TRUE(ClientGetsNothing(*client));
  const std::string new_peer = hub.PeerId(*client);
  EXPECT_FALSE(new_peer.empty());
  EXPECT_NE(new_peer, old_peer);

  // The old peer id is gone: sends to it are dropped without error.
  EXPECT_TRUE(server->Send(old_peer, MakeHeartbeat(4)).ok());
  EXPECT_TRUE(ClientGetsNothing(*client));
  ASSERT_TRUE(client->Send(MakeHello("a", 5)).ok());
  std::string peer;
  pb::Envelope got = ServerGets(*server, &peer);
  EXPECT_EQ(peer, new_peer);
  EXPECT_EQ(got.hello().durable_seq(), 5u);
}

TEST(InprocTransportTest, ClientReconnectDiscardsQueuedMessages) {
  InprocHub hub;
  auto server = hub.CreateServer();
  auto client = hub.CreateClient();
  const std::string old_peer = hub.PeerId(*client);
  ASSERT_TRUE(server->Send(old_peer, MakeHeartbeat(1)).ok());
  ASSERT_TRUE(client->Reconnect().ok());
  EXPECT_TRUE(ClientGetsNothing(*client));
  EXPECT_NE(hub.PeerId(*client), old_peer);
}

TEST(InprocTransportTest, UnreachableClientCannotSendUntilReachableAgain) {
  InprocHub hub;
  auto server = hub.CreateServer();
  auto client = hub.CreateClient();
  const std::string old_peer = hub.PeerId(*client);
  hub.SetReachable(*client, false);
  EXPECT_EQ(hub.PeerId(*client), "");
  Status s = client->Send(MakeHello("a", 1));
  EXPECT_EQ(s.code(), Status::Code::kNetwork);
  EXPECT_TRUE(s.retryable());
  EXPECT_TRUE(server->Send(old_peer, MakeHeartbeat(1)).ok());
  EXPECT_TRUE(ClientGetsNothing(*client));
  ASSERT_TRUE(client->Reconnect().ok());  // reconnecting does not help while unreachable
  EXPECT_EQ(hub.PeerId(*client), "");

  hub.SetReachable(*client, true);
  EXPECT_FALSE(hub.PeerId(*client).empty());
  EXPECT_NE(hub.PeerId(*client), old_peer);
  ASSERT_TRUE(client->Send(MakeHello("a", 2)).ok());
  std::string peer;
  EXPECT_EQ(ServerGets(*server, &peer).hello().durable_seq(), 2u);
}

TEST(InprocTransportTest, ServerRestartDropsEveryConnection) {
  InprocHub hub;
  auto client = hub.CreateClient();  // before any server: not connected
  EXPECT_EQ(hub.PeerId(*client), "");
  EXPECT_EQ(client->Send(MakeHello("a", 1)).code(), Status::Code::kNetwork);

  auto server = hub.CreateServer();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(hub.CreateServer(), nullptr);  // one at a time
  const std::string first_peer = hub.PeerId(*client);
  ASSERT_FALSE(first_peer.empty());
  ASSERT_TRUE(client->Send(MakeHello("a", 1)).ok());  // queued, lost in the restart
  ASSERT_TRUE(server->Send(first_peer, MakeHeartbeat(1)).ok());

  server.reset();
  EXPECT_EQ(hub.PeerId(*client), "");
  EXPECT_EQ(client->Send(MakeHello("a", 2)).code(), Status::Code::kNetwork);
  EXPECT_TRUE(ClientGetsNothing(*client));

  server = hub.CreateServer();
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(ServerGetsNothing(*server));
  EXPECT_NE(hub.PeerId(*client), first_peer);
  ASSERT_TRUE(client->Send(MakeHello("a", 3)).ok());
  std::string peer;
  EXPECT_EQ(ServerGets(*server, &peer).hello().durable_seq(), 3u);
}

TEST(InprocTransportTest, BadFramesAreCountedAndIgnored) {
  InprocHub hub;
  auto server = hub.CreateServer();
  auto client = hub.CreateClient();
  pb::Envelope wrong_version = MakeHeartbeat(1);
  wrong_version.set_version(kProtocolVersion + 1);
  pb::Envelope no_body;
  no_body.set_version(kProtocolVersion);
  hub.InjectFrameToServer(*client, "\xff\xff\xff garbage");
  hub.InjectFrameToServer(*client, "");
  hub.InjectFrameToServer(*client, no_body.SerializeAsString());
  ASSERT_TRUE(client->Send(wrong_version).ok());  // a version set by the caller is kept
  ASSERT_TRUE(client->Send(MakeHeartbeat(2)).ok());
  std::string peer;
  EXPECT_EQ(ServerGets(*server, &peer).heartbeat().last_seq(), 2u);
  EXPECT_EQ(server->bad_frames(), 4u);

  hub.InjectFrameToClient(*client, "\xff\xff\xff garbage");
  ASSERT_TRUE(server->Send(peer, wrong_version).ok());
  ASSERT_TRUE(server->Send(peer, MakeHeartbeat(3)).ok());
  pb::Envelope got;
  ASSERT_TRUE(*client->Receive(&got, milliseconds(1000)));
  EXPECT_EQ(got.heartbeat().last_seq(), 3u);
  EXPECT_EQ(client->bad_frames(), 2u);
}

TEST(InprocTransportTest, BlockedReceiversWakeAndOrderIsKeptAcrossThreads) {
  InprocHub hub;
  auto server = hub.CreateServer();
  auto client = hub.CreateClient();
  constexpr uint64_t kCount = 5000;
  std::thread sender([&] {
    for (uint64_t i = 1; i <= kCount; ++i) ASSERT_TRUE(client->Send(MakeHeartbeat(i)).ok());
  });
  std::string peer;
  for (uint64_t i = 1; i <= kCount; ++i) {
    pb::Envelope got;
    auto received = testing::ServerReceive(*server, &peer, &got, milliseconds(5000));
    ASSERT_TRUE(received.ok() && *received) << i;
    ASSERT_EQ(got.heartbeat().last_seq(), i);
    ASSERT_TRUE(server->Send(peer, got).ok());  // echo
  }
  sender.join();
  for (uint64_t i = 1; i <= kCount; ++i) {
    pb::Envelope got;
    ASSERT_TRUE(*client->Receive(&got, milliseconds(5000)));
    ASSERT_EQ(got.heartbeat().last_seq(), i);
  }
}

TEST(InprocTransportTest, EndsMayOutliveTheHub) {
  std::unique_ptr<InprocServerTransport> server;
  std::unique_ptr<InprocClientTransport> client;
  {
    InprocHub hub;
    server = hub.CreateServer();
    client = hub.CreateClient();
  }
  ASSERT_TRUE(client->Send(MakeHeartbeat(1)).ok());
  std::string peer;
  EXPECT_EQ(ServerGets(*server, &peer).heartbeat().last_seq(), 1u);
}

}  // namespace
}  // namespace replsync
