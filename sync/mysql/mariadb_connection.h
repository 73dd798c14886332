// MariadbConnection: an RAII owner of one MariaDB Connector/C (libmariadb) connection, for the
// bulk paths of bootstrap (schemas/bootstrap.md): streaming a chunk's rows on the primary
// (mysql_use_result, memory bounded by one row) and `LOAD DATA LOCAL INFILE` fed from memory on
// the secondary (mysql_set_local_infile_handler: the "file" is a buffer, never the disk).
// Connector/C++ (MysqlSession) can do neither.
//
// It is also an SqlSession (sync/mysql/mysql_session.h), with the same error classification
// (ClassifyMysqlError: Network and broken() for connection errors, retryable Server errors for
// lock waits and deadlocks, other Server errors not retryable), the same TLS options and no
// automatic reconnect. Error messages name the operation, the server (user@host:port) and the
// start of the statement.
//
// Thread-safety: not thread-safe; one thread uses a connection at a time (and holds a
// MysqlThreadScope).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/status.h"

struct st_mysql;  // MYSQL

namespace replsync {

class MariadbConnection : public SqlSession {
 public:
  struct Options {
    // Allow LOAD DATA LOCAL (MYSQL_OPT_LOCAL_INFILE); only LoadLocal's buffer is ever read.
    bool local_infile = false;
  };
  // One row of a streamed result: values[i] is nullptr for NULL, else lengths[i] bytes (not
  // NUL-terminated for binary data). Valid only during the call.
  struct RowView {
    const char* const* values;
    const unsigned long* lengths;
    size_t count;
  };
  struct LoadResult {
    uint64_t rows = 0;      // affected rows the server reported
    uint64_t warnings = 0;  // warning count after the statement
    // The first warnings (SHOW WARNINGS LIMIT 5), "Level Code Message; ...", when warnings > 0.
    std::string warning_text;
  };

  // Connects (autocommit on, utf8mb4 unless the caller changes it; multi-statements per
  // `mysql.multi_statements`). Errors as MysqlSession::Open.
  static Result<std::unique_ptr<MariadbConnection>> Open(const MysqlOptions& mysql,
                                                         Options options);
  static Result<std::unique_ptr<MariadbConnection>> Open(const MysqlOptions& mysql) {
    return Open(mysql, Options{});
  }
  ~MariadbConnection() override;  // closes; the server rolls back an open transaction
  MariadbConnection(const MariadbConnection&) = delete;
  MariadbConnection& operator=(const MariadbConnection&) = delete;

  // SqlSession.
  Status Execute(const std::string& sql, std::string_view what = {}) override;
  Result<uint64_t> ExecuteUpdate(const std::string& sql, std::string_view what = {}) override;
  Status ExecuteBatch(const std::vector<std::string>& statements,
                      std::string_view what = {}) override;
  Result<std::vector<Row>> Query(const std::string& sql, std::string_view what = {}) override;
  int last_error_code() const override { return last_error_code_; }
  bool broken() const override { return broken_; }
  std::string Describe() const override;

  // Runs `sql` and streams its rows (mysql_use_result): `row` is called once per row, in order.
  // A non-OK Status from `row` stops reading (the rest of the result is read and discarded, as
  // the protocol requires) and is returned. Errors: the server's, classified as above.
  Status Stream(const std::string& sql, const std::function<Status(const RowView& row)>& row,
                std::string_view what = {});

  // Runs `sql`, a `LOAD DATA LOCAL INFILE '<any name>' ...` statement, with `data` as the
  // file's whole content (the name is not opened). Needs Options::local_infile. Warnings are
  // returned, not treated as errors: the caller decides.
  Result<LoadResult> LoadLocal(const std::string& sql, std::string_view data,
                               std::string_view what = {});

  // The server's connection id (for KILL QUERY from another connection).
  uint64_t thread_id() const;

 private:
  struct LocalInfile;  // the buffer LoadLocal hands to the client library's callbacks
  friend class MariadbInfileCallbacks;

  MariadbConnection(st_mysql* mysql, MysqlOptions options);
  // Records the handle's error (number, broken) and returns it as a Status.
  Status LastError(std::string_view sql, std::string_view what);
  // After a successful mysql_real_query of `sql`: reads and frees every result left (all of a
  // multi-statement's), so the connection is ready for the next command; the first error.
  Status DrainResults(std::string_view sql, std::string_view what);

  st_mysql* mysql_;
  MysqlOptions options_;
  bool local_infile_ = false;  // Options::local_infile
  int last_error_code_ = 0;
  bool broken_ = false;
  // Set only while LoadLocal runs: what the server's request for a local file is given. At any
  // other time such a request is refused (a server cannot make the client read a file).
  LocalInfile* infile_ = nullptr;
};

// Sets the TLS options of a libmariadb connection not yet made, as MysqlOptions::tls describes
// them: DISABLED sets none; PREFERRED the files (TLS when one is set and the server offers it);
// REQUIRED and above refuse a plain connection (MYSQL_OPT_SSL_ENFORCE); VERIFY_IDENTITY checks
// the host name too. Connector/C verifies the server's chain whenever it has a CA. Shared by
// MariadbConnection and the binlog source.
void SetMariadbTlsOptions(st_mysql* mysql, const MysqlTls& tls);

}  // namespace replsync
