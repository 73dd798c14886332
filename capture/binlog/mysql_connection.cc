#include "capture/binlog/mysql_connection.h"

#include <mysql.h>

#include <fmt/format.h>

namespace replsync::capture {

namespace {
bool IsNetworkError(unsigned int err) {
  return err == 2002 || err == 2003 || err == 2005 || err == 2006 || err == 2013 ||
         err == 2026 || err == 2055;  // CR_CONNECTION_ERROR .. CR_SERVER_LOST_EXTENDED
}
}  // namespace

Result<std::unique_ptr<MysqlConnection>> MysqlConnection::Open(const ConnectOptions& options) {
  MYSQL* mysql = mysql_init(nullptr);
  if (!mysql) return Status::Internal("mysql_init: out of memory");
  unsigned int timeout = static_cast<unsigned int>(options.timeout.count());
  mysql_optionsv(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_optionsv(mysql, MYSQL_OPT_READ_TIMEOUT, &timeout);
  mysql_optionsv(mysql, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
  const bool by_socket = !options.socket.empty();
  if (!mysql_real_connect(mysql, by_socket ? "localhost" : options.host.c_str(),
                          options.user.c_str(), options.password.c_str(), nullptr, options.port,
                          by_socket ? options.socket.c_str() : nullptr,
                          CLIENT_MULTI_STATEMENTS)) {
    unsigned int err = mysql_errno(mysql);
    std::string msg = fmt::format("connect to MySQL {}@{}:{}: {} (error {})", options.user,
                                  options.host, options.port, mysql_error(mysql), err);
    mysql_close(mysql);
    if (IsNetworkError(err)) return Status::Network(msg + "; is the server running?");
    return Status::Server(msg + "; check [mysql] user and password in the configuration");
  }
  return std::unique_ptr<MysqlConnection>(new MysqlConnection(mysql, options));
}

MysqlConnection::MysqlConnection(st_mysql* mysql, ConnectOptions options)
    : mysql_(mysql), options_(std::move(options)) {}

MysqlConnection::~MysqlConnection() { mysql_close(mysql_); }

std::string MysqlConnection::Describe() const {
  return fmt::format("{}@{}:{}", options_.user, options_.host, options_.port);
}

Status MysqlConnection::Error(const std::string& what) const {
  unsigned int err = mysql_errno(mysql_);
  std::string msg =
      fmt::format("{} on {}: {} (error {})", what, Describe(), mysql_error(mysql_), err);
  if (IsNetworkError(err)) return Status::Network(msg);
  return Status::Server(msg);
}

Status MysqlConnection::Execute(const std::string& sql) {
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return Error("execute '" + sql + "'");
  do {
    MYSQL_RES* res = mysql_store_result(mysql_);
    if (res) mysql_free_result(res);
  } while (mysql_next_result(mysql_) == 0);
  if (mysql_errno(mysql_) != 0) return Error("execute '" + sql + "'");
  return Status::Ok();
}

Result<std::vector<MysqlConnection::Row>> MysqlConnection::Query(const std::string& sql) {
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return Error("query '" + sql + "'");
  MYSQL_RES* res = mysql_store_result(mysql_);
  if (!res) {
    if (mysql_errno(mysql_) != 0) return Error("query '" + sql + "'");
    return std::vector<Row>{};
  }
  std::vector<Row> rows;
  unsigned int fields = mysql_num_fields(res);
  while (MYSQL_ROW row = mysql_fetch_row(res)) {
    unsigned long* lengths = mysql_fetch_lengths(res);
    Row out;
    out.reserve(fields);
    for (unsigned int i = 0; i < fields; ++i) {
      if (row[i]) {
        out.emplace_back(std::string(row[i], lengths[i]));
      } else {
        out.emplace_back(std::nullopt);
      }
    }
    rows.push_back(std::move(out));
  }
  mysql_free_result(res);
  while (mysql_next_result(mysql_) == 0) {
    if (MYSQL_RES* more = mysql_store_result(mysql_)) mysql_free_result(more);
  }
  return rows;
}

Status CheckBinlogSettings(MysqlConnection& conn) {
  RS_ASSIGN_OR_RETURN(
      auto rows,
      conn.Query("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', "
                 "'binlog_row_image', 'binlog_row_metadata')"));
  struct Want {
    const char* name;
    const char* value;
    const char* line;
  };
  static const Want kWants[] = {
      {"log_bin", "ON", "log-bin = binlog"},
      {"binlog_format", "ROW", "binlog-format = ROW"},
      {"binlog_row_image", "FULL", "binlog-row-image = FULL"},
      {"binlog_row_metadata", "FULL", "binlog-row-metadata = FULL"},
  };
  std::string problems;
  for (const Want& want : kWants) {
    bool found = false;
    for (const auto& row : rows) {
      if (row.size() < 2 || !row[0] || *row[0] != want.name) continue;
      found = true;
      std::string value = row[1].value_or("");
      if (strcasecmp(value.c_str(), want.value) != 0) {
        problems += fmt::format("\n  {} is {} (needs {}: put '{}' under [mysqld])", want.name,
                                value, want.value, want.line);
      }
    }
    // binlog_row_metadata exists from MariaDB 10.5 / MySQL 8.0; older servers are still
    // readable, columns are then shown by position.
    if (!found && std::string_view(want.name) != "binlog_row_metadata") {
      problems += fmt::format("\n  {} is not set (needs {}: put '{}' under [mysqld])", want.name,
                              want.value, want.line);
    }
  }
  if (!problems.empty()) {
    return Status::InvalidArgument(fmt::format(
        "MySQL server {} does not write a binlog replsync can replicate:{}\nthen restart it",
        conn.Describe(), problems));
  }
  return Status::Ok();
}

}  // namespace replsync::capture
