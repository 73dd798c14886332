#include "sync/wire/zmq_transport.h"
#include "sync/wire/curve_keys.h"
#include "tests/harness/server_receive.h"

#include <gtest/gtest.h>

#include <functional>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <zmq.hpp>

namespace replsync {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kWait{5000};  // generous: loopback delivery takes well under a second

pb::Envelope MakeHello(const std::string& node, uint64_t durable_seq) {
  pb::Envelope e;  // version left 0: the transport stamps it
  e.mutable_hello()->set_node_name(node);
  e.mutable_hello()->set_durable_seq(durable_seq);
  e.mutable_hello()->set_applied_seq(durable_seq - 1);
  e.mutable_hello()->set_credit(64);
  return e;
}

pb::Envelope MakeEntries() {
  pb::Envelope e;
  e.set_version(kProtocolVersion);
  pb::Entries* entries = e.mutable_entries();
  entries->add_seqs(41);
  entries->add_entries(std::string("\0\x01\x02zero bytes\xff", 14));
  entries->add_compressed(false);
  entries->add_seqs(42);
  entries->add_entries(std::string(3000, 'z'));
  entries->add_compressed(true);
  entries->set_primary_last_seq(99);
  entries->set_primary_time(1714557600);
  return e;
}

pb::Envelope MakeHeartbeat(uint64_t last_seq) {
  pb::Envelope e;
  e.mutable_heartbeat()->set_last_seq(last_seq);
  e.mutable_heartbeat()->set_time(1714557600);
  return e;
}

// Real CURVE keys for every test here: the server's, and one client's that it allows as "node2".
struct TestKeys {
  CurveKeyPair server = *GenerateCurveKeyPair();
  CurveKeyPair client = *GenerateCurveKeyPair();
};
const TestKeys& Keys() {
  static const TestKeys keys;
  return keys;
}
ZmqServerSecurity ServerSecurity() {
  ZmqServerSecurity security;
  security.secret_key = Keys().server.secret_key;
  security.peers[Keys().client.public_key] = "node2";
  return security;
}
ZmqClientSecurity ClientSecurity() {
  return {.secret_key = Keys().client.secret_key,
          .public_key = Keys().client.public_key,
          .server_key = Keys().server.public_key};
}

// A raw socket as the allowed client.
void SetClientKeys(zmq::socket_t& socket) {
  socket.set(zmq::sockopt::curve_serverkey, Keys().server.public_key);
  socket.set(zmq::sockopt::curve_publickey, Keys().client.public_key);
  socket.set(zmq::sockopt::curve_secretkey, Keys().client.secret_key);
}

std::unique_ptr<ZmqServerTransport> BindLoopback(const ZmqOptions& options = {}) {
  auto server = ZmqServerTransport::Bind("tcp://127.0.0.1:*", ServerSecurity(), options);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

std::unique_ptr<ZmqClientTransport> ConnectTo(const std::string& endpoint,
                                              const ZmqOptions& options = {}) {
  auto client = ZmqClientTransport::Connect(endpoint, ClientSecurity(), options);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(client).value() : nullptr;
}

// Sends, retrying while the connection is being (re)established.
Status SendWithin(ZmqClientTransport& client, const pb::Envelope& message, milliseconds limit) {
  const auto deadline = steady_clock::now() + limit;
  for (;;) {
    Status s = client.Send(message);
    if (s.ok() || !s.retryable() || steady_clock::now() >= deadline) return s;
  }
}

TEST(ZmqTransportTest, BindToAnyPortReportsTheBoundEndpoint) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  const std::string& endpoint = server->bound_endpoint();
  ASSERT_TRUE(endpoint.starts_with("tcp://127.0.0.1:")) << endpoint;
  const int port = std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
  EXPECT_GT(port, 0);
  EXPECT_LE(port, 65535);
}

TEST(ZmqTransportTest, RoundTripBothWays) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  auto client = ConnectTo(server->bound_endpoint());
  ASSERT_NE(client, nullptr);

  ASSERT_TRUE(SendWithin(*client, MakeHello("replica-a", 17), kWait).ok());
  std::string peer;
  pb::Envelope got;
  auto received = testing::ServerReceive(*server, &peer, &got, kWait);
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  ASSERT_TRUE(*received);
  EXPECT_FALSE(peer.empty());
  EXPECT_EQ(peer.find_first_not_of("0123456789abcdef"), std::string::npos) << peer;
  EXPECT_EQ(got.version(), kProtocolVersion);  // stamped by the sender
  pb::Envelope expected = MakeHello("replica-a", 17);
  expected.set_version(kProtocolVersion);
  EXPECT_EQ(got.SerializeAsString(), expected.SerializeAsString());

  ASSERT_TRUE(server->Send(peer, MakeEntries()).ok());
  pb::Envelope reply;
  received = client->Receive(&reply, kWait);
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  ASSERT_TRUE(*received);
  EXPECT_EQ(reply.SerializeAsString(), MakeEntries().SerializeAsString());
  EXPECT_EQ(reply.entries().entries(0), std::string("\0\x01\x02zero bytes\xff", 14));
  EXPECT_EQ(server->bad_frames(), 0u);
  EXPECT_EQ(client->bad_frames(), 0u);
}

TEST(ZmqTransportTest, SeveralClientsHaveDistinctPeerIds) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<ZmqClientTransport>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(ConnectTo(server->bound_endpoint()));
    ASSERT_NE(clients.back(), nullptr);
    ASSERT_TRUE(SendWithin(*clients.back(), MakeHello("node" + std::to_string(i), 1), kWait).ok());
  }
  std::map<std::string, std::string> peer_of;  // node name -> peer id
  std::set<std::string> peers;
  for (int i = 0; i < 3; ++i) {
    std::string peer;
    pb::Envelope got;
    auto received = testing::ServerReceive(*server, &peer, &got, kWait);
    ASSERT_TRUE(received.ok() && *received);
    peer_of[got.hello().node_name()] = peer;
    peers.insert(peer);
  }
  ASSERT_EQ(peer_of.size(), 3u);
  EXPECT_EQ(peers.size(), 3u);
  // Each reply reaches exactly the client it was addressed to.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(server->Send(peer_of["node" + std::to_string(i)], MakeHeartbeat(100 + i)).ok());
  }
  for (int i = 0; i < 3; ++i) {
    pb::Envelope got;
    auto received = clients[i]->Receive(&got, kWait);
    ASSERT_TRUE(received.ok() && *received);
    EXPECT_EQ(got.heartbeat().last_seq(), 100u + i);
    received = clients[i]->Receive(&got, milliseconds(50));
    ASSERT_TRUE(received.ok());
    EXPECT_FALSE(*received);
  }
}

TEST(ZmqTransportTest, GarbageFramesAreCountedAndIgnored) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  zmq::context_t context;
  zmq::socket_t raw(context, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  SetClientKeys(raw);
  raw.connect(server->bound_endpoint());

  // Not protobuf; protobuf without a version; a version-1 envelope with no body; two parts.
  const std::string garbage = "\xff\xff\xff\xff garbage \x00\x01";
  raw.send(zmq::buffer(garbage), zmq::send_flags::none);
  raw.send(zmq::message_t(), zmq::send_flags::none);
  pb::Envelope no_body;
  no_body.set_version(kProtocolVersion);
  raw.send(zmq::buffer(no_body.SerializeAsString()), zmq::send_flags::none);
  pb::Envelope good = MakeHeartbeat(5);
  good.set_version(kProtocolVersion);
  raw.send(zmq::buffer(good.SerializeAsString()), zmq::send_flags::sndmore);
  raw.send(zmq::buffer(good.SerializeAsString()), zmq::send_flags::none);
  // Then a valid message, which must still arrive.
  good.mutable_heartbeat()->set_last_seq(6);
  raw.send(zmq::buffer(good.SerializeAsString()), zmq::send_flags::none);

  std::string peer;
  pb::Envelope got;
  auto received = testing::ServerReceive(*server, &peer, &got, kWait);
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  ASSERT_TRUE(*received);
  EXPECT_EQ(got.heartbeat().last_seq(), 6u);
  EXPECT_EQ(server->bad_frames(), 4u);

  // The client side drops garbage too: a raw ROUTER answers a client with junk, then a
  // valid message.
  zmq::socket_t raw_server(context, zmq::socket_type::router);
  raw_server.set(zmq::sockopt::linger, 0);
  raw_server.set(zmq::sockopt::curve_server, 1);
  raw_server.set(zmq::sockopt::curve_secretkey, Keys().server.secret_key);
  raw_server.bind("tcp://127.0.0.1:*");
  auto client = ConnectTo(raw_server.get(zmq::sockopt::last_endpoint));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(SendWithin(*client, MakeHello("c", 1), kWait).ok());
  zmq::message_t id, body;
  ASSERT_TRUE(raw_server.recv(id));
  ASSERT_TRUE(raw_server.recv(body));
  raw_server.send(zmq::buffer(id.to_string()), zmq::send_flags::sndmore);
  raw_server.send(zmq::buffer(garbage), zmq::send_flags::none);
  pb::Envelope wrong_version = MakeHeartbeat(7);
  wrong_version.set_version(kProtocolVersion + 1);
  raw_server.send(zmq::buffer(id.to_string()), zmq::send_flags::sndmore);
  raw_server.send(zmq::buffer(wrong_version.SerializeAsString()), zmq::send_flags::none);
  good.mutable_heartbeat()->set_last_seq(8);
  raw_server.send(zmq::buffer(id.to_string()), zmq::send_flags::sndmore);
  raw_server.send(zmq::buffer(good.SerializeAsString()), zmq::send_flags::none);
  received = client->Receive(&got, kWait);
  ASSERT_TRUE(received.ok() && *received);
  EXPECT_EQ(got.heartbeat().last_seq(), 8u);
  EXPECT_EQ(client->bad_frames(), 2u);
}

TEST(ZmqTransportTest, WrongVersionIsDropped) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  auto client = ConnectTo(server->bound_endpoint());
  ASSERT_NE(client, nullptr);
  pb::Envelope future = MakeHeartbeat(1);
  future.set_version(kProtocolVersion + 1);  // a version set by the caller is sent as is
  ASSERT_TRUE(SendWithin(*client, future, kWait).ok());
  ASSERT_TRUE(client->Send(MakeHeartbeat(2)).ok());
  std::string peer;
  pb::Envelope got;
  auto received = testing::ServerReceive(*server, &peer, &got, kWait);
  ASSERT_TRUE(received.ok() && *received);
  EXPECT_EQ(got.heartbeat().last_seq(), 2u);
  EXPECT_EQ(server->bad_frames(), 1u);
  received = testing::ServerReceive(*server, &peer, &got, milliseconds(50));
  ASSERT_TRUE(received.ok());
  EXPECT_FALSE(*received);
}

TEST(ZmqTransportTest, ReceiveTimeoutReturnsFalse) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  auto client = ConnectTo(server->bound_endpoint());
  ASSERT_NE(client, nullptr);
  std::string peer;
  pb::Envelope got;
  auto start = steady_clock::now();
  auto received = testing::ServerReceive(*server, &peer, &got, milliseconds(100));
  auto elapsed = steady_clock::now() - start;
  ASSERT_TRUE(received.ok());
  EXPECT_FALSE(*received);
  EXPECT_GE(elapsed, milliseconds(95));
  EXPECT_LT(elapsed, milliseconds(2000));

  start = steady_clock::now();
  received = client->Receive(&got, milliseconds(100));
  elapsed = steady_clock::now() - start;
  ASSERT_TRUE(received.ok());
  EXPECT_FALSE(*received);
  EXPECT_GE(elapsed, milliseconds(95));
  EXPECT_LT(elapsed, milliseconds(2000));

  received = client->Receive(&got, milliseconds(0));
  ASSERT_TRUE(received.ok());
  EXPECT_FALSE(*received);
}

TEST(ZmqTransportTest, ClientReconnectsAfterServerRestart) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  const std::string endpoint = server->bound_endpoint();
  auto client = ConnectTo(endpoint);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(SendWithin(*client, MakeHello("r", 1), kWait).ok());
  std::string peer;
  pb::Envelope got;
  ASSERT_TRUE(*testing::ServerReceive(*server, &peer, &got, kWait));

  server.reset();                                       // the primary goes away...
  auto restarted = ZmqServerTransport::Bind(endpoint, ServerSecurity());  // ...and comes back on the same port
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  server = std::move(restarted).value();

  // ZeroMQ reconnects by itself (100 ms backoff); sends fail until it has, and a send that
  // went into the old connection just as it broke is lost: like the Receiver, say Hello again
  // until the primary hears it.
  const auto deadline = steady_clock::now() + kWait;
  bool heard = false;
  while (!heard && steady_clock::now() < deadline) {
    Status s = client->Send(MakeHello("r", 2));
    ASSERT_TRUE(s.ok() || s.retryable()) << s.ToString();
    if (!s.ok()) continue;
    auto received = testing::ServerReceive(*server, &peer, &got, milliseconds(200));
    ASSERT_TRUE(received.ok());
    heard = *received;
  }
  ASSERT_TRUE(heard);
  EXPECT_EQ(got.hello().durable_seq(), 2u);
  ASSERT_TRUE(server->Send(peer, MakeHeartbeat(9)).ok());
  auto received = client->Receive(&got, kWait);
  ASSERT_TRUE(received.ok() && *received);
  EXPECT_EQ(got.heartbeat().last_seq(), 9u);
}

TEST(ZmqTransportTest, ReconnectDiscardsQueuedMessagesAndGetsANewPeerId) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  auto client = ConnectTo(server->bound_endpoint());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(SendWithin(*client, MakeHello("r", 1), kWait).ok());
  std::string old_peer;
  pb::Envelope got;
  ASSERT_TRUE(*testing::ServerReceive(*server, &old_peer, &got, kWait));

  // A message waiting in the client's queue is stale after Reconnect.
  ASSERT_TRUE(server->Send(old_peer, MakeHeartbeat(1)).ok());
  auto queued = client->WaitForMessage(kWait);
  ASSERT_TRUE(queued.ok() && *queued) << "the message never reached the client: the test proves "
                                         "nothing";
  ASSERT_TRUE(client->Reconnect().ok());
  auto received = client->Receive(&got, milliseconds(200));
  ASSERT_TRUE(received.ok());
  EXPECT_FALSE(*received);

  ASSERT_TRUE(SendWithin(*client, MakeHello("r", 2), kWait).ok());
  std::string new_peer;
  ASSERT_TRUE(*testing::ServerReceive(*server, &new_peer, &got, kWait));
  EXPECT_NE(new_peer, old_peer);
  // The old peer is gone: sending to it is not an error, and nothing arrives.
  EXPECT_TRUE(server->Send(old_peer, MakeHeartbeat(2)).ok());
  ASSERT_TRUE(server->Send(new_peer, MakeHeartbeat(3)).ok());
  received = client->Receive(&got, kWait);
  ASSERT_TRUE(received.ok() && *received);
  EXPECT_EQ(got.heartbeat().last_seq(), 3u);
}

TEST(ZmqTransportTest, SendToUnknownPeerIsDroppedAndMalformedPeerIsInvalid) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(server->Send("00deadbeef", MakeHeartbeat(1)).ok());
  EXPECT_EQ(server->Send("not hex!", MakeHeartbeat(1)).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(server->Send("", MakeHeartbeat(1)).code(), Status::Code::kInvalidArgument);
}

TEST(ZmqTransportTest, ClientSendWithoutServerIsRetryableNetworkError) {
  // Find a port nobody listens on: bind one, note it, close it.
  std::string endpoint;
  {
    auto server = BindLoopback();
    ASSERT_NE(server, nullptr);
    endpoint = server->bound_endpoint();
  }
  ZmqOptions options;
  options.send_timeout = milliseconds(100);
  auto client = ConnectTo(endpoint, options);
  ASSERT_NE(client, nullptr);
  const auto start = steady_clock::now();
  Status s = client->Send(MakeHello("r", 1));
  EXPECT_EQ(s.code(), Status::Code::kNetwork) << s.ToString();
  EXPECT_TRUE(s.retryable());
  EXPECT_NE(s.message().find(endpoint), std::string::npos) << s.ToString();
  EXPECT_LT(steady_clock::now() - start, milliseconds(2000));
}

TEST(ZmqTransportTest, BadEndpointIsInvalidArgumentShowingAValidOne) {
  for (const std::string bad :
       {"0.0.0.0:7700", "tcp://0.0.0.0", "tcp://:7700", "tcp://0.0.0.0:99999", "tcp://0.0.0.0:77a0",
        "udp://0.0.0.0:7700", "tcp://0.0.0.0:0"}) {
    auto server = ZmqServerTransport::Bind(bad, ServerSecurity());
    ASSERT_FALSE(server.ok()) << bad;
    EXPECT_EQ(server.status().code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(server.status().message().find(bad), std::string::npos) << server.status().ToString();
    EXPECT_NE(server.status().message().find("tcp://0.0.0.0:7700"), std::string::npos)
        << server.status().ToString();
  }
  for (const std::string bad : {"10.0.0.1:7700", "tcp://10.0.0.1", "tcp://10.0.0.1:*"}) {
    auto client = ZmqClientTransport::Connect(bad, ClientSecurity());
    ASSERT_FALSE(client.ok()) << bad;
    EXPECT_EQ(client.status().code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_NE(client.status().message().find("tcp://10.0.0.1:7700"), std::string::npos)
        << client.status().ToString();
  }
  // Well-formed but not an interface of this host.
  auto no_such_interface = ZmqServerTransport::Bind("tcp://nosuchif0:7700", ServerSecurity());
  ASSERT_FALSE(no_such_interface.ok());
  EXPECT_EQ(no_such_interface.status().code(), Status::Code::kInvalidArgument)
      << no_such_interface.status().ToString();
}

TEST(ZmqTransportTest, AddressInUseIsANetworkError) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  auto second = ZmqServerTransport::Bind(server->bound_endpoint(), ServerSecurity());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kNetwork);
  EXPECT_NE(second.status().message().find(server->bound_endpoint()), std::string::npos)
      << second.status().ToString();
}

TEST(ZmqTransportTest, MessagesOverTheSizeLimitAreNeitherSentNorAccepted) {
  ZmqOptions small;
  small.max_message_bytes = 1024;
  auto server = BindLoopback(small);
  ASSERT_NE(server, nullptr);
  auto client = ConnectTo(server->bound_endpoint(), small);
  ASSERT_NE(client, nullptr);
  // The sender refuses to produce a message the receiver would not accept.
  Status s = client->Send(MakeEntries());
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();

  // A peer that sends one anyway loses its connection; the message never arrives.
  zmq::context_t context;
  zmq::socket_t raw(context, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  SetClientKeys(raw);
  raw.connect(server->bound_endpoint());
  pb::Envelope big = MakeEntries();
  big.set_version(kProtocolVersion);
  raw.send(zmq::buffer(big.SerializeAsString()), zmq::send_flags::none);
  std::string peer;
  pb::Envelope got;
  auto received = testing::ServerReceive(*server, &peer, &got, milliseconds(300));
  ASSERT_TRUE(received.ok());
  EXPECT_FALSE(*received);

  // Small messages still go through.
  ASSERT_TRUE(SendWithin(*client, MakeHeartbeat(4), kWait).ok());
  received = testing::ServerReceive(*server, &peer, &got, kWait);
  ASSERT_TRUE(received.ok() && *received);
  EXPECT_EQ(got.heartbeat().last_seq(), 4u);
}

// ---- CURVE: only configured keys get in ----

// Receives on `server` for up to `limit`, returning how many messages arrived (and handling the
// handshake events meanwhile).
int ReceiveFor(ZmqServerTransport& server, milliseconds limit) {
  int received = 0;
  const auto deadline = steady_clock::now() + limit;
  while (steady_clock::now() < deadline) {
    std::string peer, name;
    pb::Envelope got;
    auto r = server.Receive(&peer, &name, &got, milliseconds(50));
    if (r.ok() && *r) ++received;
  }
  return received;
}

// Waits until `done` holds, calling `pump` (which runs the transports' event handling).
bool WaitUntil(const std::function<bool()>& done, const std::function<void()>& pump,
               milliseconds limit = milliseconds(5000)) {
  const auto deadline = steady_clock::now() + limit;
  while (steady_clock::now() < deadline) {
    if (done()) return true;
    pump();
  }
  return done();
}

TEST(ZmqCurveTest, MessagesCarryTheAuthenticatedPeersName) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  auto client = ConnectTo(server->bound_endpoint());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(SendWithin(*client, MakeHello("claims-to-be-someone-else", 1), kWait).ok());
  std::string peer, name;
  pb::Envelope got;
  auto received = server->Receive(&peer, &name, &got, kWait);
  ASSERT_TRUE(received.ok() && *received);
  EXPECT_EQ(name, "node2") << "the key's [peers] name, not the Hello's";
  EXPECT_EQ(got.hello().node_name(), "claims-to-be-someone-else");
  EXPECT_EQ(server->refusals().count, 0u);
  EXPECT_EQ(client->refusal(), "");
}

TEST(ZmqCurveTest, AnUnknownKeyIsRefusedAndBothEndsSaySo) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  const CurveKeyPair stranger = *GenerateCurveKeyPair();
  ZmqOptions quick;
  quick.send_timeout = milliseconds(200);
  auto client = ZmqClientTransport::Connect(server->bound_endpoint(),
                                            {.secret_key = stranger.secret_key,
                                             .public_key = stranger.public_key,
                                             .server_key = Keys().server.public_key},
                                            quick);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Status sent = (*client)->Send(MakeHello("node2", 1));
  EXPECT_FALSE(sent.ok()) << "no connection is ever established";
  EXPECT_EQ(ReceiveFor(*server, milliseconds(300)), 0);
  ASSERT_TRUE(WaitUntil([&] { return server->refusals().count > 0 && !(*client)->refusal().empty(); },
                        [&] {
                          ReceiveFor(*server, milliseconds(20));
                          pb::Envelope ignored;
                          (void)(*client)->Receive(&ignored, milliseconds(20));
                        }));
  EXPECT_EQ(server->refusals().last,
            "refused 127.0.0.1: its key " + stranger.public_key + " is not in [peers]");
  EXPECT_NE((*client)->refusal().find("refused this node's key " + stranger.public_key),
            std::string::npos)
      << (*client)->refusal();
  EXPECT_NE((*client)->refusal().find("add it to the primary's [peers]"), std::string::npos);
}

TEST(ZmqCurveTest, APeerWithoutKeysOrWithTheWrongSecretGetsNothingIn) {
  auto server = BindLoopback();
  ASSERT_NE(server, nullptr);
  zmq::context_t context;
  // No CURVE at all.
  zmq::socket_t plain(context, zmq::socket_type::dealer);
  plain.set(zmq::sockopt::linger, 0);
  plain.connect(server->bound_endpoint());
  // The allowed client's public key with a secret key that is not its own.
  zmq::socket_t impostor(context, zmq::socket_type::dealer);
  impostor.set(zmq::sockopt::linger, 0);
  impostor.set(zmq::sockopt::curve_serverkey, Keys().server.public_key);
  impostor.set(zmq::sockopt::curve_publickey, Keys().client.public_key);
  impostor.set(zmq::sockopt::curve_secretkey, GenerateCurveKeyPair()->secret_key);
  impostor.connect(server->bound_endpoint());
  pb::Envelope hello = MakeHello("node2", 1);
  hello.set_version(kProtocolVersion);
  for (int i = 0; i < 3; ++i) {
    (void)plain.send(zmq::buffer(hello.SerializeAsString()), zmq::send_flags::dontwait);
    (void)impostor.send(zmq::buffer(hello.SerializeAsString()), zmq::send_flags::dontwait);
  }
  EXPECT_EQ(ReceiveFor(*server, milliseconds(1500)), 0);
  ASSERT_TRUE(WaitUntil([&] { return server->refusals().count >= 2; },
                        [&] { ReceiveFor(*server, milliseconds(20)); }))
      << "refusals: " << server->refusals().count << ", last: " << server->refusals().last;
  EXPECT_NE(server->refusals().last.find("refused a connection"), std::string::npos)
      << server->refusals().last;
  zmq::pollitem_t items[2] = {{plain.handle(), 0, ZMQ_POLLIN, 0},
                              {impostor.handle(), 0, ZMQ_POLLIN, 0}};
  EXPECT_EQ(zmq::poll(items, 2, milliseconds(100)), 0) << "the intruders received nothing";
}

TEST(ZmqCurveTest, AClientRefusesAServerWithAnotherKey) {
  // A server that is not the configured primary: its own key, and it would accept the client.
  const CurveKeyPair other = *GenerateCurveKeyPair();
  ZmqServerSecurity impostor;
  impostor.secret_key = other.secret_key;
  impostor.peers[Keys().client.public_key] = "node2";
  auto server = ZmqServerTransport::Bind("tcp://127.0.0.1:*", impostor);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ZmqOptions quick;
  quick.send_timeout = milliseconds(200);
  auto client = ConnectTo((*server)->bound_endpoint(), quick);  // expects Keys().server
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(client->Send(MakeHello("node2", 1)).ok());
  EXPECT_EQ(ReceiveFor(**server, milliseconds(300)), 0);
  ASSERT_TRUE(WaitUntil([&] { return !client->refusal().empty(); },
                        [&] {
                          ReceiveFor(**server, milliseconds(20));
                          pb::Envelope ignored;
                          (void)client->Receive(&ignored, milliseconds(20));
                        }));
  EXPECT_NE(client->refusal().find("is not the configured primary (key mismatch"),
            std::string::npos)
      << client->refusal();
}

// A refused client closes its socket and tries again after a backoff: without it, libzmq
// reconnected several times a second forever (a server that closes during the handshake resets
// its backoff) or, after a ZAP refusal, never again. Once the right server is there, it gets in.
TEST(ZmqCurveTest, ARefusedClientBacksOffThenGetsInOnceTheRightServerAnswers) {
  const CurveKeyPair other = *GenerateCurveKeyPair();
  ZmqServerSecurity impostor;
  impostor.secret_key = other.secret_key;
  impostor.peers[Keys().client.public_key] = "node2";
  auto wrong = ZmqServerTransport::Bind("tcp://127.0.0.1:*", impostor);
  ASSERT_TRUE(wrong.ok()) << wrong.status().ToString();
  const std::string endpoint = (*wrong)->bound_endpoint();
  ZmqOptions options;
  options.send_timeout = milliseconds(100);
  options.refused_retry_interval = milliseconds(500);
  options.refused_retry_interval_max = milliseconds(500);
  auto client = ConnectTo(endpoint, options);
  ASSERT_NE(client, nullptr);
  const auto until = steady_clock::now() + milliseconds(2500);
  while (steady_clock::now() < until) {
    pb::Envelope ignored;
    (void)client->Receive(&ignored, milliseconds(20));
    ReceiveFor(**wrong, milliseconds(20));
  }
  const uint64_t attempts = (*wrong)->refusals().count;
  EXPECT_GE(attempts, 2u) << "it keeps trying";
  EXPECT_LE(attempts, 7u) << "at most one attempt per backoff (500 ms) in 2.5 s";
  EXPECT_NE(client->refusal().find("not the configured primary"), std::string::npos);
  EXPECT_FALSE(client->Send(MakeHeartbeat(1)).ok());

  wrong->reset();
  auto right = ZmqServerTransport::Bind(endpoint, ServerSecurity());
  ASSERT_TRUE(right.ok()) << right.status().ToString();
  bool sent = false;
  const auto deadline = steady_clock::now() + milliseconds(5000);
  while (!sent && steady_clock::now() < deadline) {
    pb::Envelope ignored;
    (void)client->Receive(&ignored, milliseconds(50));
    sent = client->Send(MakeHeartbeat(7)).ok();
  }
  ASSERT_TRUE(sent) << client->refusal();
  std::string peer, name;
  pb::Envelope got;
  auto received = (*right)->Receive(&peer, &name, &got, kWait);
  ASSERT_TRUE(received.ok() && *received);
  EXPECT_EQ(name, "node2");
  pb::Envelope ignored;
  (void)client->Receive(&ignored, milliseconds(50));
  EXPECT_EQ(client->refusal(), "") << "accepted now";
}

// libzmq lets every CURVE client in when no ZAP handler answers: the transport must then drop
// what they send (no User-Id), never hand it on unnamed.
TEST(ZmqCurveTest, WithoutAZapHandlerTheServerFailsClosed) {
  ZmqServerSecurity security = ServerSecurity();
  security.zap_handler = false;
  auto server = ZmqServerTransport::Bind("tcp://127.0.0.1:*", security);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const CurveKeyPair stranger = *GenerateCurveKeyPair();
  auto client = ZmqClientTransport::Connect((*server)->bound_endpoint(),
                                            {.secret_key = stranger.secret_key,
                                             .public_key = stranger.public_key,
                                             .server_key = Keys().server.public_key});
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(SendWithin(**client, MakeHello("node2", 1), kWait).ok())
      << "libzmq accepted the connection";
  EXPECT_EQ(ReceiveFor(**server, milliseconds(500)), 0);
  EXPECT_GE((*server)->bad_frames(), 1u);
}

TEST(ZmqCurveTest, InsecureEndsNameNobody) {
  auto server = ZmqServerTransport::Bind("tcp://127.0.0.1:*", ZmqServerSecurity{});
  ASSERT_TRUE(server.ok());
  auto client = ZmqClientTransport::Connect((*server)->bound_endpoint(), ZmqClientSecurity{});
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(SendWithin(**client, MakeHello("node2", 1), kWait).ok());
  std::string peer, name = "unset";
  pb::Envelope got;
  auto received = (*server)->Receive(&peer, &name, &got, kWait);
  ASSERT_TRUE(received.ok() && *received);
  EXPECT_EQ(name, "");
  // And a CURVE client cannot talk to it.
  ZmqOptions quick;
  quick.send_timeout = milliseconds(200);
  auto curve = ConnectTo((*server)->bound_endpoint(), quick);
  EXPECT_FALSE(curve->Send(MakeHello("node2", 1)).ok());
}

}  // namespace
}  // namespace replsync
