// MysqlSession: an RAII owner of one MySQL Connector/C++ connection to the secondary's database
// server, for the row applier.
//
// Connector/C++ reports errors by throwing sql::SQLException; every method here catches what it
// throws and returns a Status instead (no exception leaves this file). The Status says whether
// trying again may succeed:
//   - connection errors (2002/2003/2006/2013/2055 client errors, server shutdown 1053, connection
//     killed 1927, network read/write errors 1152..1161, too many connections 1040/1203):
//     Status::Network, retryable; the session is broken() afterwards and must be dropped;
//   - transient server errors (lock wait timeout 1205, deadlock 1213, XA deadlock 1614, query
//     interrupted 1317, statement timeout 1969, lock aborted 1689, too many transactions 1637,
//     out of resources 1041, disk full 1021): Status::Server, retryable; any open transaction
//     was (or must be) rolled back;
//   - everything else (a missing table, a duplicate key, a syntax error, missing privileges):
//     Status::Server, not retryable.
// The connection allows multi-statements (ExecuteBatch) unless MysqlOptions::multi_statements
// is off, and never reconnects by itself
// (OPT_RECONNECT off): a silent reconnect would lose the session settings (sql_log_bin=0) and the
// open transaction without anyone noticing. Thread-safety: not thread-safe; one thread uses a
// session at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sync/config.h"
#include "sync/position.h"
#include "sync/status.h"

namespace sql {
class Connection;
class Statement;
}  // namespace sql

namespace replsync {

struct MysqlOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 3306;
  std::string socket;  // a Unix socket path: used instead of host:port when set
  std::string user;
  std::string password;
  std::chrono::seconds connect_timeout{10};
  // Socket read/write timeouts; 0 = none (a long DDL may legitimately run for hours).
  std::chrono::seconds read_timeout{0};
  std::chrono::seconds write_timeout{0};
  // CLIENT_MULTI_STATEMENTS: ExecuteBatch needs it. Off, the server runs exactly one statement
  // per call and refuses a text that holds more (the applier runs replicated DDL that way).
  bool multi_statements = true;
  // TLS ([mysql] / [primary_mysql] ssl_*), as the client library applies it: DISABLED sets no
  // TLS option; PREFERRED hands over the ssl_* files (TLS when one is set and the server offers
  // it); REQUIRED also refuses a plain connection; VERIFY_CA needs ssl_ca and refuses a server
  // certificate it does not sign; VERIFY_IDENTITY also checks the certificate names the host.
  // A CA given under REQUIRED is checked too (MariaDB Connector/C verifies the chain whenever it
  // has a CA).
  MysqlTls tls;
};

// The session options of this node's server ([mysql]) and of the primary's server as the
// secondary reaches it ([primary_mysql]; connect timeout 10 s). No read or write timeout.
MysqlOptions MysqlOptionsOf(const NodeConfig::Mysql& config);
MysqlOptions MysqlOptionsOf(const NodeConfig::PrimaryMysql& config);

// How an error number is handled (see the file comment).
enum class MysqlErrorKind { kConnection, kTransient, kPermanent };
MysqlErrorKind ClassifyMysqlError(int error_code);

// SqlSession: what the applier needs of a connection to the secondary's server. MysqlSession is
// the real one; unit tests of the applier's loop use a fake. Errors follow the classification in
// the file comment. Thread-safety: not thread-safe; one thread uses a session at a time.
class SqlSession {
 public:
  using Row = std::vector<std::optional<std::string>>;

  virtual ~SqlSession() = default;
  // Runs one statement and discards any result. `what` names the operation in an error message
  // ("apply seq 12"); the message also quotes the start of the statement.
  virtual Status Execute(const std::string& sql, std::string_view what = {}) = 0;
  // Runs one INSERT/UPDATE/DELETE and returns how many rows it changed.
  virtual Result<uint64_t> ExecuteUpdate(const std::string& sql, std::string_view what = {}) = 0;
  // Runs several statements in one round trip (a multi-statement), in order. The server stops
  // at the first that fails; its error is returned (the ones before it took effect, so callers
  // batch only what an open transaction contains or what may be repeated).
  // Needs a session opened with multi_statements (else the server refuses the batch).
  // A BINLOG statement may only come last: MariaDB (10.11) answers BINLOG with an OK packet
  // that lacks SERVER_MORE_RESULTS_EXISTS, so the results of statements after it would be read
  // as the answers to later commands ("Commands out of sync"). Internal error otherwise.
  virtual Status ExecuteBatch(const std::vector<std::string>& statements,
                              std::string_view what = {}) = 0;
  // Runs a query and returns every row of its result; NULL is std::nullopt.
  virtual Result<std::vector<Row>> Query(const std::string& sql, std::string_view what = {}) = 0;
  // The server's (or client library's) error number of the last failed call; 0 after a success.
  virtual int last_error_code() const = 0;
  // True after a connection error: the session is unusable and must be dropped.
  virtual bool broken() const = 0;
  // "root@127.0.0.1:3306"
  virtual std::string Describe() const = 0;
};

class MysqlSession : public SqlSession {
 public:
  // Connects (autocommit on, utf8mb4). Errors: Network (retryable) when the server cannot be
  // reached, Server when it refuses (access denied is not retryable); the message names
  // user@host:port.
  static Result<std::unique_ptr<MysqlSession>> Open(const MysqlOptions& options);
  // Closes the connection; the server rolls back a transaction left open.
  ~MysqlSession() override;

  Status Execute(const std::string& sql, std::string_view what = {}) override;
  Result<uint64_t> ExecuteUpdate(const std::string& sql, std::string_view what = {}) override;
  Status ExecuteBatch(const std::vector<std::string>& statements,
                      std::string_view what = {}) override;
  Result<std::vector<Row>> Query(const std::string& sql, std::string_view what = {}) override;
  int last_error_code() const override { return last_error_code_; }
  bool broken() const override { return broken_; }
  std::string Describe() const override;

 private:
  MysqlSession(std::unique_ptr<sql::Connection> connection, MysqlOptions options);
  // Turns the exception being handled into a Status and records its error number;
  // `statements` describes what ran, for the message.
  Status CurrentError(const std::string& statements, std::string_view what);

  std::unique_ptr<sql::Connection> connection_;
  std::unique_ptr<sql::Statement> statement_;
  MysqlOptions options_;
  int last_error_code_ = 0;
  bool broken_ = false;
};

// The server's binlog position now (SHOW MASTER STATUS). Server error when it has no binlog.
Result<BinlogPosition> MasterPosition(SqlSession& session);

// Quotes an SQL identifier with backticks (doubling any backtick inside).
std::string QuoteIdentifier(std::string_view name);
// Quotes a string literal with single quotes, escaping \, ', NUL, \n, \r and Ctrl-Z, valid
// whatever the sql_mode (NO_BACKSLASH_ESCAPES is never set on the applier's session).
std::string QuoteString(std::string_view text);

// Per-thread set-up of the client library (mysql_thread_init / mysql_thread_end). A thread that
// opens sessions holds one for its lifetime.
class MysqlThreadScope {
 public:
  MysqlThreadScope();
  ~MysqlThreadScope();
  MysqlThreadScope(const MysqlThreadScope&) = delete;
  MysqlThreadScope& operator=(const MysqlThreadScope&) = delete;
};

}  // namespace replsync
