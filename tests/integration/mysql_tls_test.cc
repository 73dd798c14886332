// TLS on every MySQL connection replsync makes: Connector/C++ sessions (applier, verify, the
// primary's settings checks), the binlog stream's own libmariadb connection and bootstrap's
// MariadbConnection, against a real
// MariaDB server that refuses plain TCP (--require-secure-transport).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "capture/binlog/mariadb_binlog_source.h"
#include "sync/config.h"
#include "sync/mysql/mariadb_connection.h"
#include "sync/mysql/mysql_session.h"
#include "tests/harness/mariadb_server.h"

namespace replsync {
namespace {

using testing::MariadbServer;

class MysqlTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::MariadbServerOptions options;
    options.server_id = 41;
    options.tls = true;
    options.require_secure_transport = true;
    auto server = MariadbServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = server->release();
    ASSERT_TRUE(server_
                    ->Execute("CREATE DATABASE tls_db; CREATE TABLE tls_db.t (id INT PRIMARY KEY);"
                              "INSERT INTO tls_db.t VALUES (1), (2)")
                    .ok());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  static MysqlOptions Options(MysqlSslMode mode, const std::string& ca = "") {
    MysqlOptions o;
    o.host = server_->host();
    o.port = server_->port();
    o.user = server_->user();
    o.password = server_->password();
    o.connect_timeout = std::chrono::seconds(5);
    o.tls.mode = mode;
    o.tls.ca = ca;
    return o;
  }

  // The cipher of the session's connection ("" when it is plain).
  static std::string CipherOf(SqlSession& session) {
    auto rows = session.Query("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
    if (!rows.ok() || rows->empty() || (*rows)[0].size() < 2 || !(*rows)[0][1]) return "";
    return *(*rows)[0][1];
  }

  static capture::MariadbSourceOptions SourceOptions(MysqlSslMode mode, const std::string& ca) {
    capture::MariadbSourceOptions o;
    o.host = server_->host();
    o.port = server_->port();
    o.user = server_->user();
    o.password = server_->password();
    o.replica_server_id = 4100;
    o.follow = false;
    o.reconnect_attempts = 1;
    o.reconnect_min = std::chrono::milliseconds(50);
    o.reconnect_max = std::chrono::milliseconds(50);
    o.connect_timeout = std::chrono::seconds(5);
    o.start = BinlogPosition{"binlog.000001", 4};
    o.tls.mode = mode;
    o.tls.ca = ca;
    return o;
  }

  static MariadbServer* server_;
};

MariadbServer* MysqlTlsTest::server_ = nullptr;

TEST_F(MysqlTlsTest, PlainConnectionIsRefusedByTheServer) {
  // The premise of the tests below: this server refuses what is not TLS. MariaDB 10.11 answers
  // a plain login under --require-secure-transport with "Access denied"; the same login with
  // ssl_mode = REQUIRED succeeds (RequiredConnectsOverTls), so TLS is what it lacked.
  auto session = MysqlSession::Open(Options(MysqlSslMode::kDisabled));
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.status().code(), Status::Code::kServer) << session.status().ToString();
}

TEST_F(MysqlTlsTest, RequiredConnectsOverTls) {
  auto session = MysqlSession::Open(Options(MysqlSslMode::kRequired));
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_FALSE(CipherOf(**session).empty());
}

TEST_F(MysqlTlsTest, VerifyCaConnectsWithTheServersCa) {
  auto session = MysqlSession::Open(Options(MysqlSslMode::kVerifyCa, server_->tls_ca_path()));
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_FALSE(CipherOf(**session).empty());
  auto rows = (*session)->Query("SELECT COUNT(*) FROM tls_db.t");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*(*rows)[0][0], "2");
}

TEST_F(MysqlTlsTest, VerifyCaRefusesACertificateAnotherCaSigned) {
  auto session =
      MysqlSession::Open(Options(MysqlSslMode::kVerifyCa, server_->tls_untrusted_ca_path()));
  ASSERT_FALSE(session.ok()) << "connected although the CA did not sign the server's certificate";
  EXPECT_NE(session.status().message().find("TLS/SSL error"), std::string::npos)
      << session.status().message();
}

TEST_F(MysqlTlsTest, VerifyIdentityConnectsToTheNamedHost) {
  auto session =
      MysqlSession::Open(Options(MysqlSslMode::kVerifyIdentity, server_->tls_ca_path()));
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_FALSE(CipherOf(**session).empty());
}

TEST_F(MysqlTlsTest, PreferredWithACaUsesTls) {
  auto session = MysqlSession::Open(Options(MysqlSslMode::kPreferred, server_->tls_ca_path()));
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_FALSE(CipherOf(**session).empty());
}

TEST_F(MysqlTlsTest, MariadbConnectionUsesTheSameTlsOptions) {
  auto plain = MariadbConnection::Open(Options(MysqlSslMode::kDisabled));
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().code(), Status::Code::kServer) << plain.status().ToString();
  auto required = MariadbConnection::Open(Options(MysqlSslMode::kRequired));
  ASSERT_TRUE(required.ok()) << required.status().ToString();
  EXPECT_FALSE(CipherOf(**required).empty());
  auto verified = MariadbConnection::Open(Options(MysqlSslMode::kVerifyIdentity,
                                                  server_->tls_ca_path()));
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_FALSE(CipherOf(**verified).empty());
  auto untrusted = MariadbConnection::Open(
      Options(MysqlSslMode::kVerifyCa, server_->tls_untrusted_ca_path()));
  ASSERT_FALSE(untrusted.ok()) << "connected although the CA did not sign the certificate";
  EXPECT_NE(untrusted.status().message().find("TLS/SSL error"), std::string::npos)
      << untrusted.status().message();
}

TEST_F(MysqlTlsTest, ConfigKeysReachTheSessionOfBothSections) {
  // What verify's link to the primary's database ([primary_mysql]) and the node's own ([mysql])
  // are built from.
  const std::string tls = "ssl_mode = \"VERIFY_CA\"\nssl_ca = \"" + server_->tls_ca_path() +
                          "\"\nhost = \"127.0.0.1\"\nuser = \"root\"\nport = " +
                          std::to_string(server_->port()) + "\n";
  auto config = NodeConfig::Parse(
      "[node]\nrole = \"secondary\"\n[mysql]\n" + tls + "[primary_mysql]\n" + tls, "t.toml");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  for (const MysqlOptions& options :
       {MysqlOptionsOf(config->mysql), MysqlOptionsOf(config->primary_mysql)}) {
    EXPECT_EQ(options.tls.mode, MysqlSslMode::kVerifyCa);
    auto session = MysqlSession::Open(options);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    EXPECT_FALSE(CipherOf(**session).empty());
  }
}

// Reads the server's binlog to its end; the number of events, or the error.
Result<int> ReadToEnd(const capture::MariadbSourceOptions& options) {
  RS_ASSIGN_OR_RETURN(std::unique_ptr<capture::MariadbBinlogSource> source,
                      capture::MariadbBinlogSource::Open(options));
  int events = 0;
  capture::RawEvent raw;
  for (;;) {
    RS_ASSIGN_OR_RETURN(bool got, source->Next(&raw));
    if (!got) return events;
    ++events;
  }
}

TEST_F(MysqlTlsTest, BinlogStreamConnectsOverTls) {
  auto events = ReadToEnd(SourceOptions(MysqlSslMode::kVerifyCa, server_->tls_ca_path()));
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  EXPECT_GT(*events, 0);
}

TEST_F(MysqlTlsTest, BinlogStreamWithoutTlsIsRefused) {
  auto events = ReadToEnd(SourceOptions(MysqlSslMode::kDisabled, ""));
  ASSERT_FALSE(events.ok()) << "read " << *events << " events over plain TCP";
}

TEST_F(MysqlTlsTest, BinlogStreamRefusesACertificateAnotherCaSigned) {
  auto events =
      ReadToEnd(SourceOptions(MysqlSslMode::kVerifyCa, server_->tls_untrusted_ca_path()));
  ASSERT_FALSE(events.ok()) << "read " << *events << " events from an unverified server";
  EXPECT_NE(events.status().message().find("TLS/SSL error"), std::string::npos)
      << events.status().message();
}

}  // namespace
}  // namespace replsync
