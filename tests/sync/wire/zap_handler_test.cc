// ZapHandler (sync/wire/zap_handler.h): the decision per request, and the handler answering real
// ZAP requests over its inproc socket.
#include "sync/wire/zap_handler.h"

#include <gtest/gtest.h>
#include <zmq.h>

#include <zmq.hpp>

#include "sync/wire/curve_keys.h"

namespace replsync {
namespace {

// The 32 bytes of a Z85 key.
std::string Binary(const std::string& z85) {
  std::string out(32, '\0');
  EXPECT_NE(zmq_z85_decode(reinterpret_cast<uint8_t*>(out.data()), z85.c_str()), nullptr);
  return out;
}

ZapRequest CurveRequest(const std::string& public_key) {
  return {.version = "1.0",
          .request_id = "7",
          .domain = "replsync",
          .address = "10.0.0.9",
          .routing_id = "",
          .mechanism = "CURVE",
          .credentials = {Binary(public_key)}};
}

TEST(ZapDecisionTest, AllowsAConfiguredKeyUnderItsPeerName) {
  const CurveKeyPair node2 = *GenerateCurveKeyPair();
  const ZapReply reply = DecideZap(CurveRequest(node2.public_key), {{node2.public_key, "node2"}});
  EXPECT_EQ(reply.status_code, "200");
  EXPECT_EQ(reply.user_id, "node2");
}

TEST(ZapDecisionTest, RefusesEverythingElse) {
  const CurveKeyPair node2 = *GenerateCurveKeyPair();
  const CurveKeyPair stranger = *GenerateCurveKeyPair();
  const std::map<std::string, std::string> peers = {{node2.public_key, "node2"}};

  ZapReply unknown = DecideZap(CurveRequest(stranger.public_key), peers);
  EXPECT_EQ(unknown.status_code, "400");
  EXPECT_EQ(unknown.user_id, "");
  EXPECT_NE(unknown.status_text.find(stranger.public_key), std::string::npos);
  EXPECT_NE(unknown.status_text.find("is not in [peers]"), std::string::npos);

  ZapRequest null = CurveRequest(node2.public_key);
  null.mechanism = "NULL";
  null.credentials.clear();
  EXPECT_EQ(DecideZap(null, peers).status_code, "400");

  ZapRequest plain = CurveRequest(node2.public_key);
  plain.mechanism = "PLAIN";
  EXPECT_EQ(DecideZap(plain, peers).status_code, "400");

  ZapRequest short_key = CurveRequest(node2.public_key);
  short_key.credentials = {std::string(31, 'k')};
  EXPECT_EQ(DecideZap(short_key, peers).status_code, "400");

  ZapRequest two = CurveRequest(node2.public_key);
  two.credentials.push_back(two.credentials[0]);
  EXPECT_EQ(DecideZap(two, peers).status_code, "400");

  ZapRequest version = CurveRequest(node2.public_key);
  version.version = "2.0";
  EXPECT_EQ(DecideZap(version, peers).status_code, "500");

  EXPECT_EQ(DecideZap(CurveRequest(node2.public_key), {}).status_code, "400")
      << "no peers: nobody is allowed";
}

// The handler answers what libzmq would ask, frame by frame (RFC 27), and counts refusals.
TEST(ZapHandlerTest, AnswersRequestsOnTheZapEndpointAndCountsRefusals) {
  const CurveKeyPair node2 = *GenerateCurveKeyPair();
  const CurveKeyPair stranger = *GenerateCurveKeyPair();
  zmq::context_t context;
  RefusalLog refusals("tcp://test:1");
  auto handler = ZapHandler::Start(context, {{node2.public_key, "node2"}}, &refusals);
  ASSERT_TRUE(handler.ok()) << handler.status().ToString();

  zmq::socket_t req(context, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.set(zmq::sockopt::rcvtimeo, 5000);
  req.connect(kZapEndpoint);
  auto ask = [&](const std::string& id, const std::string& key) {
    const std::vector<std::string> frames = {"1.0", id, "replsync", "10.0.0.9", "", "CURVE",
                                             Binary(key)};
    for (size_t i = 0; i < frames.size(); ++i) {
      req.send(zmq::buffer(frames[i]),
               i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    std::vector<std::string> reply;
    bool more = true;
    while (more) {
      zmq::message_t part;
      EXPECT_TRUE(req.recv(part));
      more = part.more();
      reply.push_back(part.to_string());
    }
    return reply;
  };
  std::vector<std::string> allowed = ask("1", node2.public_key);
  ASSERT_EQ(allowed.size(), 6u);
  EXPECT_EQ(allowed[0], "1.0");
  EXPECT_EQ(allowed[1], "1");
  EXPECT_EQ(allowed[2], "200");
  EXPECT_EQ(allowed[4], "node2");
  EXPECT_EQ(allowed[5], "") << "no metadata";
  EXPECT_EQ(refusals.Get().count, 0u);

  std::vector<std::string> refused = ask("2", stranger.public_key);
  ASSERT_EQ(refused.size(), 6u);
  EXPECT_EQ(refused[1], "2");
  EXPECT_EQ(refused[2], "400");
  EXPECT_EQ(refused[4], "");
  PeerRefusals noted = refusals.Get();
  EXPECT_EQ(noted.count, 1u);
  EXPECT_EQ(noted.last, "refused 10.0.0.9: its key " + stranger.public_key + " is not in [peers]");
  EXPECT_GT(noted.last_unix_ms, 0);
  EXPECT_EQ((*handler)->requests(), 2u);

  // One handler per context: the ZAP endpoint is taken.
  auto second = ZapHandler::Start(context, {}, &refusals);
  EXPECT_FALSE(second.ok());
  req.close();
  handler->reset();  // stops within its poll interval
}

}  // namespace
}  // namespace replsync
