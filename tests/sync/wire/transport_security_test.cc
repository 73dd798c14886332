// LoadTransportSecurity (sync/wire/transport_security.h): what a node's configuration gives its
// sockets, and the refusals that keep a node without keys from starting.
#include "sync/wire/transport_security.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace replsync {
namespace {

class TransportSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "security.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    own_ = *GenerateCurveKeyPair();
    node1_ = *GenerateCurveKeyPair();
    ASSERT_TRUE(WriteCurveSecretKeyFile(dir_ + "/node2.key", own_.secret_key).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A secondary "node2" following node1 at tcp://10.0.0.1:7700.
  NodeConfig Config(const std::string& transport_extra, const std::string& peers) {
    auto c = NodeConfig::Parse("[node]\nrole = \"secondary\"\nname = \"node2\"\n[transport]\n"
                               "primary = \"tcp://10.0.0.1:7700\"\n" +
                                   transport_extra + peers,
                               "node2.toml");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : NodeConfig{};
  }
  std::string KeyLine() const { return "secret_key_file = \"" + dir_ + "/node2.key\"\n"; }
  std::string Node1(const std::string& key) const {
    return "[peers.node1]\nendpoint = \"tcp://10.0.0.1:7700\"\npublic_key = \"" + key + "\"\n";
  }

  std::string dir_;
  CurveKeyPair own_;
  CurveKeyPair node1_;
};

TEST_F(TransportSecurityTest, KeysGiveTheServerItsPeersAndTheClientItsPrimary) {
  auto security = LoadTransportSecurity(Config(KeyLine(), Node1(node1_.public_key)));
  ASSERT_TRUE(security.ok()) << security.status().ToString();
  EXPECT_FALSE(security->insecure);
  EXPECT_EQ(security->own.public_key, own_.public_key);
  ZmqServerSecurity server = security->ForServer();
  EXPECT_EQ(server.secret_key, own_.secret_key);
  ASSERT_EQ(server.peers.size(), 1u);
  EXPECT_EQ(server.peers.at(node1_.public_key), "node1");
  auto client = security->ForClient("tcp://10.0.0.1:7700");
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ(client->server_key, node1_.public_key);
  EXPECT_EQ(client->public_key, own_.public_key);
  auto elsewhere = security->ForClient("tcp://10.0.0.7:7700");
  ASSERT_FALSE(elsewhere.ok());
  EXPECT_NE(elsewhere.status().message().find("not the endpoint of any [peers.<name>]"),
            std::string::npos);
}

TEST_F(TransportSecurityTest, NoKeyFileRefusesToStartAndSaysHowToMakeOne) {
  auto security = LoadTransportSecurity(Config("", Node1(node1_.public_key)));
  ASSERT_FALSE(security.ok());
  EXPECT_NE(security.status().message().find("replsync keygen --out"), std::string::npos)
      << security.status().message();
  EXPECT_NE(security.status().message().find("insecure = true"), std::string::npos);
}

TEST_F(TransportSecurityTest, InsecureNeedsNoKeysAndGivesNone) {
  auto security = LoadTransportSecurity(Config("insecure = true\n", Node1("")));
  ASSERT_TRUE(security.ok()) << security.status().ToString();
  EXPECT_TRUE(security->insecure);
  EXPECT_EQ(security->ForServer().secret_key, "");
  auto client = security->ForClient("tcp://10.0.0.1:7700");
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->secret_key, "");
}

TEST_F(TransportSecurityTest, BadPeerKeysAreRefusedNamingThePeer) {
  auto missing = LoadTransportSecurity(Config(KeyLine(), Node1("")));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("[peers.node1] public_key is missing"),
            std::string::npos);
  auto garbage = LoadTransportSecurity(Config(KeyLine(), Node1("not a key")));
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.status().message().find("is not a CURVE public key"), std::string::npos);
  auto own = LoadTransportSecurity(Config(KeyLine(), Node1(own_.public_key)));
  ASSERT_FALSE(own.ok());
  EXPECT_NE(own.status().message().find("this node's own public key"), std::string::npos);
}

TEST_F(TransportSecurityTest, AKeyFileOthersMayReadIsRefused) {
  ASSERT_EQ(::chmod((dir_ + "/node2.key").c_str(), 0640), 0);
  auto security = LoadTransportSecurity(Config(KeyLine(), Node1(node1_.public_key)));
  ASSERT_FALSE(security.ok());
  EXPECT_NE(security.status().message().find("chmod 600"), std::string::npos);
  EXPECT_NE(security.status().message().find("secret_key_file"), std::string::npos);
}

}  // namespace
}  // namespace replsync
