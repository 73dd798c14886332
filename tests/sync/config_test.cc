#include "sync/config.h"

#include <gtest/gtest.h>

#include <fstream>

namespace replsync {
namespace {

TEST(NodeConfigTest, ExampleConfigurationsLoad) {
  auto primary = NodeConfig::Load(std::string(REPLSYNC_SOURCE_DIR) + "/conf/primary.toml");
  ASSERT_TRUE(primary.ok()) << primary.status().ToString();
  EXPECT_EQ(primary->node.role, NodeRole::kPrimary);
  EXPECT_EQ(primary->mysql.databases, std::vector<std::string>{"smarten"});
  EXPECT_EQ(primary->transport.listen, "tcp://0.0.0.0:7700");
  auto secondary = NodeConfig::Load(std::string(REPLSYNC_SOURCE_DIR) + "/conf/secondary.toml");
  ASSERT_TRUE(secondary.ok()) << secondary.status().ToString();
  EXPECT_EQ(secondary->node.role, NodeRole::kSecondary);
  EXPECT_EQ(secondary->transport.primary, "tcp://10.0.0.1:7700");
}

TEST(NodeConfigTest, DefaultsApplyForOmittedKeys) {
  auto c = NodeConfig::Parse("[node]\nrole = \"primary\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->mysql.port, 3306);
  EXPECT_EQ(c->mysql.host, "127.0.0.1");
  EXPECT_EQ(c->mysql.replica_server_id, 5250u);
  EXPECT_TRUE(c->mysql.databases.empty());
  EXPECT_EQ(c->node.state_dir, "/var/lib/replsync");
  EXPECT_EQ(c->repository.quiet_ms, 200u);
  EXPECT_EQ(c->repository.open_write_quiet_ms, 10000u);
}

TEST(NodeConfigTest, PrimaryMysqlSectionIsReadForVerify) {
  auto none = NodeConfig::Parse("[node]\nrole = \"secondary\"\n", "t.toml");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->primary_mysql.set);
  auto c = NodeConfig::Parse(
      "[node]\nrole = \"secondary\"\n[primary_mysql]\nhost = \"10.0.0.1\"\nport = 3307\n"
      "user = \"v\"\npassword = \"p\"\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->primary_mysql.set);
  EXPECT_EQ(c->primary_mysql.host, "10.0.0.1");
  EXPECT_EQ(c->primary_mysql.port, 3307);
  EXPECT_EQ(c->primary_mysql.user, "v");
  auto bad =
      NodeConfig::Parse("[node]\nrole = \"secondary\"\n[primary_mysql]\nprot = 1\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("prot"), std::string::npos);
}

TEST(NodeConfigTest, UnknownKeyIsNamed) {
  auto c = NodeConfig::Parse("[node]\nrole = \"primary\"\n[mysql]\nprot = 3306\n", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("prot"), std::string::npos);
  EXPECT_NE(c.status().message().find("t.toml"), std::string::npos);
}

TEST(NodeConfigTest, BadValuesAreRejectedWithTheKey) {
  struct Case {
    const char* toml;
    const char* expect;
  } cases[] = {
      {"[node]\nrole = \"leader\"\n", "role"},
      {"[node]\nrole = \"primary\"\n[mysql]\nport = 70000\n", "port"},
      {"[node]\nrole = \"primary\"\n[mysql]\nport = \"3306\"\n", "port"},
      {"[node]\nrole = \"primary\"\n[mysql]\ndatabases = \"smarten\"\n", "databases"},
      {"[node]\nrole = \"primary\"\n[mysql]\nreplica_server_id = 0\n", "replica_server_id"},
      {"[node]\nrole = \"primary\"\n[log]\nlevel = \"loud\"\n", "level"},
      {"[mysql]\nport = 1\n", "[node]"},
      {"[node]\nrole = \"primary\"\n[repository]\nquiet_ms = 0\n", "quiet_ms"},
      {"[node]\nrole = \"primary\"\n[repository]\nquiet_ms = 500\nopen_write_quiet_ms = 100\n",
       "open_write_quiet_ms"},
      {"[node]\nrole = \"primary\"\nthis is not toml\n", "t.toml:3"},
  };
  for (const auto& c : cases) {
    auto r = NodeConfig::Parse(c.toml, "t.toml");
    ASSERT_FALSE(r.ok()) << c.toml;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.toml << " -> " << r.status().message();
  }
}

TEST(NodeConfigTest, MissingFileIsNotFound) {
  auto c = NodeConfig::Load("/nonexistent/replsync.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Status::Code::kNotFound);
}

TEST(NodeConfigTest, SystemSchemasAreRecognised) {
  EXPECT_TRUE(IsSystemSchema("mysql"));
  EXPECT_TRUE(IsSystemSchema("performance_schema"));
  EXPECT_TRUE(IsSystemSchema("replsync"));
  EXPECT_FALSE(IsSystemSchema("smarten"));
}

}  // namespace
}  // namespace replsync

namespace replsync {
namespace {

TEST(NodeConfigTest, RepositoryKeepSetidIsOffUnlessSetToTrue) {
  auto none = NodeConfig::Parse("[node]\nrole = \"secondary\"\n", "t.toml");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->repository.keep_setid);
  auto on = NodeConfig::Parse("[node]\nrole = \"secondary\"\n[repository]\nkeep_setid = true\n",
                              "t.toml");
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_TRUE(on->repository.keep_setid);
  auto wrong = NodeConfig::Parse("[node]\nrole = \"secondary\"\n[repository]\nkeep_setid = 1\n",
                                 "t.toml");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("[repository] keep_setid"), std::string::npos)
      << wrong.status().message();
}

}  // namespace
}  // namespace replsync
