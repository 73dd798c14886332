// MysqlConnection: an RAII owner of one libmariadb MYSQL* session for plain SQL (server checks,
// SHOW MASTER STATUS, SHOW BINARY LOGS). The replication stream has its own connection inside
// MariadbBinlogSource.
// Thread-safety: not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sync/status.h"

struct st_mysql;

namespace replsync::capture {

struct ConnectOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 3306;
  std::string socket;  // a Unix socket path: used instead of host:port when set
  std::string user;
  std::string password;
  std::chrono::seconds timeout{10};
};

class MysqlConnection {
 public:
  using Row = std::vector<std::optional<std::string>>;

  // Connects. Errors: Network (retryable) when the server cannot be reached, Server
  // (not retryable) when it refuses the credentials; the message names user@host:port.
  static Result<std::unique_ptr<MysqlConnection>> Open(const ConnectOptions& options);
  ~MysqlConnection();

  Status Execute(const std::string& sql);
  // Every row of the first result set; NULL is std::nullopt.
  Result<std::vector<Row>> Query(const std::string& sql);
  std::string Describe() const;  // "root@127.0.0.1:3306"

 private:
  MysqlConnection(st_mysql* mysql, ConnectOptions options);
  Status Error(const std::string& what) const;

  st_mysql* mysql_;
  ConnectOptions options_;
};

// Checks that the server writes a binlog replsync can replicate: log_bin ON, binlog_format ROW,
// binlog_row_image FULL, binlog_row_metadata FULL (when the server has it). Returns
// InvalidArgument listing every setting that is wrong and the line to put in the server's
// configuration.
Status CheckBinlogSettings(MysqlConnection& conn);

}  // namespace replsync::capture
