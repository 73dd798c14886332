#include "sync/mysql/mysql_session.h"

#include <cppconn/connection.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <fmt/format.h>

#include <charconv>
#include <exception>
#include <mutex>
#include <utility>

#include "sync/mysql/statement_snippet.h"

namespace replsync {
namespace {

// The driver singleton. get_driver_instance() is not safe to call from two threads at once the
// first time, so it is called once under std::call_once.
Result<sql::Driver*> GetDriver() {
  static std::once_flag once;
  static sql::Driver* driver = nullptr;
  static std::string error;
  std::call_once(once, [] {
    try {
      driver = get_driver_instance();
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  if (driver == nullptr) {
    return Status::Internal("load MySQL Connector/C++ driver: " +
                            (error.empty() ? std::string("no driver") : error));
  }
  return driver;
}

}  // namespace

std::string StatementSnippet(const std::string& sql) {
  constexpr size_t kMax = 300;
  if (sql.rfind("BINLOG", 0) == 0) return fmt::format("BINLOG '...' ({} bytes)", sql.size());
  if (sql.size() <= kMax) return sql;
  return sql.substr(0, kMax) + fmt::format("... ({} bytes)", sql.size());
}

MysqlErrorKind ClassifyMysqlError(int code) {
  if (code == 0) return MysqlErrorKind::kConnection;  // Connector/C++: connection closed
  if (code >= 2000 && code < 3000) return MysqlErrorKind::kConnection;  // client library
  switch (code) {
    case 1040:  // ER_CON_COUNT_ERROR: too many connections
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1152:  // ER_ABORTING_CONNECTION
    case 1158:  // ER_NET_READ_ERROR
    case 1159:  // ER_NET_READ_INTERRUPTED
    case 1160:  // ER_NET_ERROR_ON_WRITE
    case 1161:  // ER_NET_WRITE_INTERRUPTED
    case 1203:  // ER_TOO_MANY_USER_CONNECTIONS
    case 1927:  // ER_CONNECTION_KILLED
    case 4031:  // MySQL 8: disconnected by the server because of inactivity
      return MysqlErrorKind::kConnection;
    case 1021:  // ER_DISK_FULL
    case 1041:  // ER_OUT_OF_RESOURCES
    case 1205:  // ER_LOCK_WAIT_TIMEOUT
    case 1213:  // ER_LOCK_DEADLOCK
    case 1317:  // ER_QUERY_INTERRUPTED
    case 1614:  // ER_XA_RBDEADLOCK
    case 1637:  // ER_TOO_MANY_CONCURRENT_TRXS
    case 1689:  // ER_LOCK_ABORTED
    case 1969:  // ER_STATEMENT_TIMEOUT
      return MysqlErrorKind::kTransient;
    default:
      return MysqlErrorKind::kPermanent;
  }
}

MysqlOptions MysqlOptionsOf(const NodeConfig::Mysql& config) {
  MysqlOptions o;
  o.host = config.host;
  o.port = config.port;
  o.user = config.user;
  o.password = config.password;
  o.socket = config.socket;
  o.connect_timeout = std::chrono::seconds(config.connect_timeout_s);
  o.tls = config.tls;
  return o;
}

MysqlOptions MysqlOptionsOf(const NodeConfig::PrimaryMysql& config) {
  MysqlOptions o;
  o.host = config.host;
  o.port = config.port;
  o.user = config.user;
  o.password = config.password;
  o.socket = config.socket;
  o.tls = config.tls;
  return o;
}

Result<std::unique_ptr<MysqlSession>> MysqlSession::Open(const MysqlOptions& options) {
  RS_ASSIGN_OR_RETURN(sql::Driver * driver, GetDriver());
  const std::string where = options.socket.empty()
                                ? fmt::format("{}@{}:{}", options.user, options.host, options.port)
                                : fmt::format("{}@{}", options.user, options.socket);
  try {
    driver->threadInit();
    sql::ConnectOptionsMap props;
    if (options.socket.empty()) {
      props["hostName"] = sql::SQLString(fmt::format("tcp://{}:{}", options.host, options.port));
    } else {
      props["hostName"] = sql::SQLString("unix://" + options.socket);
    }
    props["userName"] = sql::SQLString(options.user);
    props["password"] = sql::SQLString(options.password);
    props["OPT_CONNECT_TIMEOUT"] = static_cast<int>(options.connect_timeout.count());
    if (options.read_timeout.count() > 0) {
      props["OPT_READ_TIMEOUT"] = static_cast<int>(options.read_timeout.count());
    }
    if (options.write_timeout.count() > 0) {
      props["OPT_WRITE_TIMEOUT"] = static_cast<int>(options.write_timeout.count());
    }
    if (options.tls.mode != MysqlSslMode::kDisabled) {
      if (!options.tls.ca.empty()) props["sslCA"] = sql::SQLString(options.tls.ca);
      if (!options.tls.cert.empty()) props["sslCert"] = sql::SQLString(options.tls.cert);
      if (!options.tls.key.empty()) props["sslKey"] = sql::SQLString(options.tls.key);
      if (options.tls.mode != MysqlSslMode::kPreferred) props["sslEnforce"] = true;
      if (options.tls.mode == MysqlSslMode::kVerifyIdentity) props["sslVerify"] = true;
    }
    props["OPT_RECONNECT"] = false;
    props["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
    // For ExecuteBatch; off, a text with several statements is a syntax error at the second.
    props["CLIENT_MULTI_STATEMENTS"] = options.multi_statements;
    std::unique_ptr<sql::Connection> connection(driver->connect(props));
    connection->setAutoCommit(true);
    return std::unique_ptr<MysqlSession>(new MysqlSession(std::move(connection), options));
  } catch (const sql::SQLException& e) {
    const int code = e.getErrorCode();
    const std::string message = fmt::format("connect to MySQL {}: ERROR {} ({}): {}", where, code,
                                            e.getSQLState(), e.what());
    if (ClassifyMysqlError(code) == MysqlErrorKind::kPermanent) return Status::Server(message);
    return Status::Network(message);
  } catch (const std::exception& e) {
    return Status::Network(fmt::format("connect to MySQL {}: {}", where, e.what()));
  }
}

MysqlSession::MysqlSession(std::unique_ptr<sql::Connection> connection, MysqlOptions options)
    : connection_(std::move(connection)), options_(std::move(options)) {}

MysqlSession::~MysqlSession() {
  try {
    statement_.reset();
    if (connection_ != nullptr) connection_->close();
  } catch (...) {
    // Closing a broken connection may throw; the socket is gone either way.
  }
}

std::string MysqlSession::Describe() const {
  if (!options_.socket.empty()) return fmt::format("{}@{}", options_.user, options_.socket);
  return fmt::format("{}@{}:{}", options_.user, options_.host, options_.port);
}

Status MysqlSession::CurrentError(const std::string& statements, std::string_view what) {
  const std::string context = what.empty() ? std::string("run SQL") : std::string(what);
  int code = 0;
  std::string detail;
  try {
    throw;
  } catch (const sql::SQLException& e) {
    code = e.getErrorCode();
    detail = fmt::format("ERROR {} ({}): {}", code, e.getSQLState(), e.what());
  } catch (const std::exception& e) {
    detail = e.what();
  } catch (...) {
    detail = "unknown exception from Connector/C++";
  }
  last_error_code_ = code;
  const std::string message =
      fmt::format("{} on {}: {} [{}]", context, Describe(), detail, statements);
  switch (ClassifyMysqlError(code)) {
    case MysqlErrorKind::kConnection:
      broken_ = true;
      statement_.reset();
      return Status::Network(message);
    case MysqlErrorKind::kTransient:
      return Status::Server(message, /*retryable=*/true);
    case MysqlErrorKind::kPermanent:
      break;
  }
  return Status::Server(message);
}

Status MysqlSession::Execute(const std::string& sql, std::string_view what) {
  if (broken_) return Status::Network("session " + Describe() + " is broken");
  try {
    if (statement_ == nullptr) statement_.reset(connection_->createStatement());
    statement_->execute(sql::SQLString(sql));
    // Drain a result set a statement may have produced (none of ours do; SHOW-like ones would).
    std::unique_ptr<sql::ResultSet> rs(statement_->getResultSet());
    last_error_code_ = 0;
    return Status::Ok();
  } catch (...) {
    return CurrentError("statement: " + StatementSnippet(sql), what);
  }
}

Result<uint64_t> MysqlSession::ExecuteUpdate(const std::string& sql, std::string_view what) {
  if (broken_) return Status::Network("session " + Describe() + " is broken");
  try {
    if (statement_ == nullptr) statement_.reset(connection_->createStatement());
    const int affected = statement_->executeUpdate(sql::SQLString(sql));
    last_error_code_ = 0;
    return static_cast<uint64_t>(affected < 0 ? 0 : affected);
  } catch (...) {
    return CurrentError("statement: " + StatementSnippet(sql), what);
  }
}

Status MysqlSession::ExecuteBatch(const std::vector<std::string>& statements,
                                  std::string_view what) {
  if (statements.empty()) return Status::Ok();
  if (statements.size() == 1) return Execute(statements[0], what);
  if (broken_) return Status::Network("session " + Describe() + " is broken");
  for (size_t i = 0; i + 1 < statements.size(); ++i) {
    if (statements[i].rfind("BINLOG", 0) == 0) {
      return Status::Internal("ExecuteBatch: a BINLOG statement must be the last of a batch");
    }
  }
  size_t bytes = 0;
  for (const std::string& s : statements) bytes += s.size() + 2;
  std::string sql;
  sql.reserve(bytes);
  for (const std::string& s : statements) {
    if (!sql.empty()) sql += ";\n";
    sql += s;
  }
  try {
    if (statement_ == nullptr) statement_.reset(connection_->createStatement());
    statement_->execute(sql::SQLString(sql));
    std::unique_ptr<sql::ResultSet> rs(statement_->getResultSet());
    // One result per statement; an error in statement k surfaces when result k is fetched (the
    // server does not run the statements after it).
    for (size_t i = 1; i < statements.size(); ++i) {
      statement_->getMoreResults();
      rs.reset(statement_->getResultSet());
    }
    last_error_code_ = 0;
    return Status::Ok();
  } catch (...) {
    std::string described = "statements: ";
    for (size_t i = 0; i < statements.size(); ++i) {
      if (i > 0) described += "; ";
      std::string one = StatementSnippet(statements[i]);
      if (one.size() > 80) one = one.substr(0, 80) + "...";
      described += one;
    }
    return CurrentError(described, what);
  }
}

Result<std::vector<MysqlSession::Row>> MysqlSession::Query(const std::string& sql,
                                                           std::string_view what) {
  if (broken_) return Status::Network("session " + Describe() + " is broken");
  try {
    if (statement_ == nullptr) statement_.reset(connection_->createStatement());
    std::unique_ptr<sql::ResultSet> rs(statement_->executeQuery(sql::SQLString(sql)));
    const unsigned columns = rs->getMetaData()->getColumnCount();
    std::vector<Row> rows;
    while (rs->next()) {
      Row row;
      row.reserve(columns);
      for (unsigned i = 1; i <= columns; ++i) {
        if (rs->isNull(i)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(rs->getString(i).asStdString());
        }
      }
      rows.push_back(std::move(row));
    }
    last_error_code_ = 0;
    return rows;
  } catch (...) {
    return CurrentError("statement: " + StatementSnippet(sql), what);
  }
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out.push_back('`');
  for (char c : name) {
    if (c == '`') out.push_back('`');
    out.push_back(c);
  }
  out.push_back('`');
  return out;
}

std::string QuoteString(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('\'');
  for (char c : text) {
    switch (c) {
      case '\0':
        out += "\\0";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\x1a':
        out += "\\Z";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\'':
        out += "\\'";
        break;
      default:
        out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

MysqlThreadScope::MysqlThreadScope() {
  auto driver = GetDriver();
  if (driver.ok()) (*driver)->threadInit();
}

MysqlThreadScope::~MysqlThreadScope() {
  auto driver = GetDriver();
  if (driver.ok()) (*driver)->threadEnd();
}

Result<BinlogPosition> MasterPosition(SqlSession& session) {
  RS_ASSIGN_OR_RETURN(auto rows, session.Query("SHOW MASTER STATUS", "read the binlog position"));
  uint64_t offset = 0;
  if (rows.empty() || rows[0].size() < 2 || !rows[0][0] || !rows[0][1] ||
      std::from_chars(rows[0][1]->data(), rows[0][1]->data() + rows[0][1]->size(), offset).ec !=
          std::errc()) {
    return Status::Server("SHOW MASTER STATUS shows no binlog: the server needs log_bin");
  }
  return BinlogPosition{*rows[0][0], offset};
}

}  // namespace replsync
