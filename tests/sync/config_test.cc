#include "sync/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace replsync {
namespace {

// A fresh folder under the test temp dir, removed at the end.
class TempFolder {
 public:
  TempFolder() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "config_test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempFolder() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  // Writes `text` to `name` with `mode` and returns its path.
  std::string Write(const std::string& name, const std::string& text, mode_t mode) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    ::chmod(file.c_str(), mode);
    return file;
  }

 private:
  std::string path_;
};

// An example from conf/, copied as an operator installs it (mode 0600): the files in the source
// tree are world-readable, which Load refuses.
std::string InstalledExample(const TempFolder& dir, const std::string& name) {
  std::ifstream in(std::string(REPLSYNC_SOURCE_DIR) + "/conf/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return dir.Write(name, text.str(), 0600);
}

TEST(NodeConfigTest, ExampleConfigurationsLoad) {
  TempFolder dir;
  auto primary = NodeConfig::Load(InstalledExample(dir, "primary.toml"));
  ASSERT_TRUE(primary.ok()) << primary.status().ToString();
  EXPECT_EQ(primary->node.role, NodeRole::kPrimary);
  EXPECT_EQ(primary->mysql.databases, std::vector<std::string>{"smarten"});
  EXPECT_EQ(primary->transport.listen, "tcp://0.0.0.0:7700");
  // The other node's database, for verify once this node follows it.
  EXPECT_TRUE(primary->primary_mysql.set);
  EXPECT_EQ(primary->primary_mysql.host, "10.0.0.2");
  auto secondary = NodeConfig::Load(InstalledExample(dir, "secondary.toml"));
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

TEST(NodeConfigTest, FileReadableByOthersIsRefusedWithChmodHint) {
  TempFolder dir;
  const std::string text = "[node]\nrole = \"primary\"\n";
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    const std::string file = dir.Write("node.toml", text, mode);
    auto c = NodeConfig::Load(file);
    ASSERT_FALSE(c.ok()) << std::oct << mode;
    EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(c.status().message().find(file), std::string::npos) << c.status().message();
    EXPECT_NE(c.status().message().find("chmod 600 " + file), std::string::npos)
        << c.status().message();
  }
}

TEST(NodeConfigTest, FileReadableByOwnerOnlyLoads) {
  TempFolder dir;
  const std::string text = "[node]\nrole = \"primary\"\n";
  for (mode_t mode : {0600, 0400}) {
    auto c = NodeConfig::Load(dir.Write("node.toml", text, mode));
    EXPECT_TRUE(c.ok()) << std::oct << mode << ": " << c.status().ToString();
  }
}

TEST(NodeConfigTest, TlsKeysAreReadInBothMysqlSections) {
  auto c = NodeConfig::Parse(
      "[node]\nrole = \"secondary\"\n"
      "[mysql]\nssl_mode = \"VERIFY_CA\"\nssl_ca = \"/etc/ca.pem\"\n"
      "ssl_cert = \"/etc/c.pem\"\nssl_key = \"/etc/c.key\"\n"
      "[primary_mysql]\nssl_mode = \"REQUIRED\"\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->mysql.tls.mode, MysqlSslMode::kVerifyCa);
  EXPECT_EQ(c->mysql.tls.ca, "/etc/ca.pem");
  EXPECT_EQ(c->mysql.tls.cert, "/etc/c.pem");
  EXPECT_EQ(c->mysql.tls.key, "/etc/c.key");
  EXPECT_EQ(c->primary_mysql.tls.mode, MysqlSslMode::kRequired);
  EXPECT_TRUE(c->primary_mysql.tls.ca.empty());
}

TEST(NodeConfigTest, TlsModeDefaultsToPreferred) {
  auto c = NodeConfig::Parse("[node]\nrole = \"secondary\"\n[primary_mysql]\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->mysql.tls.mode, MysqlSslMode::kPreferred);
  EXPECT_EQ(c->primary_mysql.tls.mode, MysqlSslMode::kPreferred);
}

TEST(NodeConfigTest, ContradictoryTlsKeysAreRejected) {
  struct Case {
    std::string toml;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"[mysql]\nssl_mode = \"required\"\n", "ssl_mode = \"required\""},
      {"[mysql]\nssl_mode = \"VERIFY_CA\"\n", "needs ssl_ca"},
      {"[primary_mysql]\nssl_mode = \"VERIFY_IDENTITY\"\n", "[primary_mysql] ssl_mode"},
      {"[mysql]\nssl_mode = \"DISABLED\"\nssl_ca = \"/ca.pem\"\n", "DISABLED"},
      {"[mysql]\nssl_cert = \"/c.pem\"\n", "ssl_cert and ssl_key go together"},
      {"[primary_mysql]\nssl_key = \"/c.key\"\n", "ssl_cert and ssl_key go together"},
  };
  for (const Case& c : cases) {
    auto r = NodeConfig::Parse("[node]\nrole = \"secondary\"\n" + c.toml, "t.toml");
    ASSERT_FALSE(r.ok()) << c.toml;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.toml << " -> " << r.status().message();
  }
}

TEST(NodeConfigTest, PeersAndTransportKeysAreRead) {
  auto c = NodeConfig::Parse(R"([node]
role = "secondary"
name = "node2"
[transport]
primary = "tcp://10.0.0.1:7700"
secret_key_file = "/etc/replsync/node2.key"
[peers.node3]
endpoint = "tcp://10.0.0.3:7700"
public_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
[peers.node1]
endpoint = "tcp://10.0.0.1:7700"
public_key = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
)",
                             "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node.name, "node2");
  EXPECT_EQ(c->transport.secret_key_file, "/etc/replsync/node2.key");
  EXPECT_FALSE(c->transport.insecure);
  ASSERT_EQ(c->peers.size(), 2u);
  EXPECT_EQ(c->peers[0].name, "node1") << "sorted by name";
  EXPECT_EQ(c->peers[0].endpoint, "tcp://10.0.0.1:7700");
  EXPECT_EQ(c->peers[0].public_key, "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID");
  EXPECT_EQ(c->peers[1].name, "node3");
  auto insecure =
      NodeConfig::Parse("[node]\nrole = \"primary\"\n[transport]\ninsecure = true\n", "t.toml");
  ASSERT_TRUE(insecure.ok()) << insecure.status().ToString();
  EXPECT_TRUE(insecure->transport.insecure);
}

TEST(NodeConfigTest, BadPeersAreRejectedWithTheKey) {
  struct Case {
    std::string toml;
    std::string expect;
  };
  const std::string node = "[node]\nrole = \"primary\"\nname = \"node1\"\n";
  const std::vector<Case> cases = {
      {"[peers.node2]\npublic_key = \"k\"\n", "[peers.node2] endpoint is missing"},
      {"[peers.node2]\nendpoint = \"tcp://a:1\"\nport = 3\n", "unknown key [peers.node2] port"},
      {"[peers]\nnode2 = \"tcp://a:1\"\n", "peers.node2 must be a table"},
      {"[peers.\"bad name\"]\nendpoint = \"tcp://a:1\"\n", "letters, digits"},
      {"[peers.node1]\nendpoint = \"tcp://a:1\"\n", "this node's own name"},
      {"[peers.a]\nendpoint = \"tcp://a:1\"\n[peers.b]\nendpoint = \"tcp://a:1\"\n",
       "the same endpoint"},
      {"[peers.a]\nendpoint = \"tcp://a:1\"\npublic_key = \"K\"\n[peers.b]\nendpoint = "
       "\"tcp://b:1\"\npublic_key = \"K\"\n",
       "the same public_key"},
      {"[transport]\ninsecure = \"yes\"\n", "[transport] insecure must be true or false"},
  };
  for (const Case& c : cases) {
    auto r = NodeConfig::Parse(node + c.toml, "t.toml");
    ASSERT_FALSE(r.ok()) << c.toml;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << c.toml << " -> " << r.status().message();
  }
  auto bad_name = NodeConfig::Parse("[node]\nrole = \"primary\"\nname = \"no/slash\"\n", "t.toml");
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.status().message().find("[node] name"), std::string::npos);
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
  auto wrong =
      NodeConfig::Parse("[node]\nrole = \"secondary\"\n[repository]\nkeep_setid = 1\n", "t.toml");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("[repository] keep_setid"), std::string::npos)
      << wrong.status().message();
}

TEST(NodeConfigTest, BootstrapKeysAreReadWithDefaults) {
  auto defaults = NodeConfig::Parse("[node]\nrole = \"secondary\"\n", "t.toml");
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_FALSE(defaults->node.bootstrap_auto);
  EXPECT_EQ(defaults->bootstrap.readers, 2u);
  EXPECT_EQ(defaults->bootstrap.chunk_megabytes, 8u);
  EXPECT_EQ(defaults->bootstrap.snapshot_seconds, 10u);
  EXPECT_TRUE(defaults->bootstrap.users);
  auto c = NodeConfig::Parse(
      "[node]\nrole = \"secondary\"\nbootstrap = \"auto\"\n"
      "[bootstrap]\nreaders = 4\nchunk_megabytes = 16\nsnapshot_seconds = 30\nmax_running = 0\n"
      "max_rate_megabytes = 50\nusers = false\nexclude_users = [\"report\", \"etl\"]\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->node.bootstrap_auto);
  EXPECT_EQ(c->bootstrap.readers, 4u);
  EXPECT_EQ(c->bootstrap.chunk_megabytes, 16u);
  EXPECT_EQ(c->bootstrap.snapshot_seconds, 30u);
  EXPECT_EQ(c->bootstrap.max_running, 0u);
  EXPECT_EQ(c->bootstrap.max_rate_megabytes, 50u);
  EXPECT_FALSE(c->bootstrap.users);
  EXPECT_EQ(c->bootstrap.exclude_users, (std::vector<std::string>{"report", "etl"}));
}

TEST(NodeConfigTest, BadBootstrapValuesAreRejectedWithTheKey) {
  struct Case {
    const char* toml;
    const char* needle;
  };
  for (const Case& bad : {
           Case{"[node]\nrole = \"secondary\"\nbootstrap = \"always\"\n", "[node] bootstrap"},
           Case{"[node]\nrole = \"secondary\"\n[bootstrap]\nreaders = 0\n", "[bootstrap] readers"},
           Case{"[node]\nrole = \"secondary\"\n[bootstrap]\nreaders = 9\n", "[bootstrap] readers"},
           Case{"[node]\nrole = \"secondary\"\n[bootstrap]\nchunk_megabytes = 65\n",
                "[bootstrap] chunk_megabytes"},
           Case{"[node]\nrole = \"secondary\"\n[bootstrap]\nsnapshot_seconds = 0\n",
                "[bootstrap] snapshot_seconds"},
           Case{"[node]\nrole = \"secondary\"\n[bootstrap]\nexclude_users = \"x\"\n",
                "[bootstrap] exclude_users"},
           Case{"[node]\nrole = \"secondary\"\n[bootstrap]\nthreads = 2\n", "threads"},
       }) {
    auto c = NodeConfig::Parse(bad.toml, "t.toml");
    ASSERT_FALSE(c.ok()) << bad.toml;
    EXPECT_NE(c.status().message().find(bad.needle), std::string::npos) << c.status().ToString();
  }
}

TEST(NodeConfigTest, HealthKeysAreReadWithDefaults) {
  auto none = NodeConfig::Parse("[node]\nrole = \"primary\"\n", "t.toml");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->health.listen, "");  // no endpoint
  EXPECT_EQ(none->health.max_lag_seconds, 10u);
  EXPECT_EQ(none->health.peer_timeout_seconds, 10u);

  auto c = NodeConfig::Parse(
      "[node]\nrole = \"secondary\"\n[health]\nlisten = \"0.0.0.0:7701\"\n"
      "max_lag_seconds = 30\npeer_timeout_seconds = 5\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->health.listen, "0.0.0.0:7701");
  EXPECT_EQ(c->health.host, "0.0.0.0");
  EXPECT_EQ(c->health.port, 7701);
  EXPECT_EQ(c->health.max_lag_seconds, 30u);
  EXPECT_EQ(c->health.peer_timeout_seconds, 5u);

  // 0 is a lag limit too: only a secondary that is exactly caught up is fit.
  auto zero =
      NodeConfig::Parse("[node]\nrole = \"secondary\"\n[health]\nmax_lag_seconds = 0\n", "t.toml");
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_EQ(zero->health.max_lag_seconds, 0u);
}

TEST(NodeConfigTest, HealthListenTakesHostsNamesAndBracketedIpv6) {
  struct Case {
    const char* listen;
    const char* host;
    uint16_t port;
  };
  for (const Case& ok :
       {Case{"127.0.0.1:7701", "127.0.0.1", 7701}, Case{"localhost:1", "localhost", 1},
        Case{"[::]:7701", "::", 7701}, Case{"[::1]:65535", "::1", 65535}}) {
    std::string host;
    uint16_t port = 0;
    EXPECT_EQ(ParseHostPort(ok.listen, &host, &port), "") << ok.listen;
    EXPECT_EQ(host, ok.host) << ok.listen;
    EXPECT_EQ(port, ok.port) << ok.listen;
  }
}

TEST(NodeConfigTest, BadHealthValuesAreRejectedWithTheKey) {
  struct Case {
    const char* toml;
    const char* needle;
  };
  const std::string head = "[node]\nrole = \"primary\"\n[health]\n";
  for (const Case& bad : {
           Case{"listen = \"7701\"\n", "[health] listen = \"7701\": must be host:port"},
           Case{"listen = \"tcp://0.0.0.0:7701\"\n", "without a scheme"},
           Case{"listen = \"0.0.0.0:0\"\n", "the port must be 1..65535"},
           Case{"listen = \"0.0.0.0:70000\"\n", "the port must be 1..65535"},
           Case{"listen = \"0.0.0.0:77o1\"\n", "the port must be 1..65535"},
           Case{"listen = \":7701\"\n", "the host is missing"},
           Case{"listen = \"::1:7701\"\n", "in brackets"},
           Case{"listen = 7701\n", "[health] listen must be a string"},
           Case{"max_lag_seconds = -1\n", "[health] max_lag_seconds"},
           Case{"max_lag_seconds = 86401\n", "[health] max_lag_seconds = 86401: must be 0..86400"},
           Case{"max_lag_seconds = \"10\"\n", "[health] max_lag_seconds must be an integer"},
           Case{"peer_timeout_seconds = 0\n",
                "[health] peer_timeout_seconds = 0: must be 1..86400"},
           Case{"port = 7701\n", "unknown key [health] port"},
       }) {
    auto c = NodeConfig::Parse(head + bad.toml, "t.toml");
    ASSERT_FALSE(c.ok()) << bad.toml;
    EXPECT_EQ(c.status().code(), Status::Code::kInvalidArgument) << bad.toml;
    EXPECT_NE(c.status().message().find(bad.needle), std::string::npos) << c.status().ToString();
    EXPECT_NE(c.status().message().find("t.toml"), std::string::npos) << c.status().ToString();
  }
}

}  // namespace
}  // namespace replsync
