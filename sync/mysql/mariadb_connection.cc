#include "sync/mysql/mariadb_connection.h"

#include <fmt/format.h>
#include <mariadb/mysql.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <utility>

#include "sync/mysql/statement_snippet.h"

// The client library: MariaDB Connector/C 3.x (libmariadb), the same library Connector/C++ is
// built on here. References: the Connector/C API (mysql_real_query, mysql_use_result,
// mysql_next_result, mysql_set_local_infile_handler) and its ma_loaddata.c for the LOAD DATA
// LOCAL protocol (the server answers the statement with a request for the named file; the
// client sends the content in packets, then an empty packet, and reads the statement's result).

namespace replsync {

// What LoadLocal hands to the callbacks: the file's whole content and how much was sent.
struct MariadbConnection::LocalInfile {
  std::string_view data;
  size_t sent = 0;
};

namespace {

// The largest packet the client accepts (the server's maximum max_allowed_packet): a streamed
// row may be as large as a LONGBLOB the server allows.
constexpr unsigned long kMaxPacket = 1024UL * 1024UL * 1024UL;
// The error a refused local-file request reports (a CR_* client code: the request did not come
// from LoadLocal, so the connection is not trusted any more).
constexpr int kRefusedInfileError = 2000;  // CR_UNKNOWN_ERROR

}  // namespace

// The local-infile callbacks. `userdata` is the connection's `LocalInfile*` slot: nullptr
// outside LoadLocal, when every request is refused, so no file of this machine is ever read
// whatever the server asks for. (A class, a friend of MariadbConnection's: they need its private
// LocalInfile.)
class MariadbInfileCallbacks {
 public:
  struct InfileHandle {
    MariadbConnection::LocalInfile* infile;  // nullptr: refused
  };
  static int Init(void** handle, const char* /*filename*/, void* userdata) {
    auto* slot = static_cast<MariadbConnection::LocalInfile**>(userdata);
    auto* h = new InfileHandle{slot == nullptr ? nullptr : *slot};
    *handle = h;
    return h->infile == nullptr ? 1 : 0;
  }
  static int Read(void* handle, char* buf, unsigned int size) {
    auto* h = static_cast<InfileHandle*>(handle);
    if (h->infile == nullptr) return -1;
    MariadbConnection::LocalInfile& in = *h->infile;
    const size_t n = std::min<size_t>(size, in.data.size() - in.sent);
    if (n > 0) std::memcpy(buf, in.data.data() + in.sent, n);
    in.sent += n;
    return static_cast<int>(n);
  }
  static void End(void* handle) { delete static_cast<InfileHandle*>(handle); }
  static int Error(void* handle, char* buf, unsigned int size) {
    std::snprintf(buf, size, "%s",
                  "LOAD DATA LOCAL refused: the client sends only a buffer given to "
                  "MariadbConnection::LoadLocal, never a file");
    return kRefusedInfileError;
  }
};

namespace {

std::string Where(const MysqlOptions& o) {
  if (!o.socket.empty()) return fmt::format("{}@{}", o.user, o.socket);
  return fmt::format("{}@{}:{}", o.user, o.host, o.port);
}

}  // namespace

void SetMariadbTlsOptions(st_mysql* mysql, const MysqlTls& tls) {
  if (tls.mode == MysqlSslMode::kDisabled) return;
  if (!tls.ca.empty()) mysql_optionsv(mysql, MYSQL_OPT_SSL_CA, tls.ca.c_str());
  if (!tls.cert.empty()) mysql_optionsv(mysql, MYSQL_OPT_SSL_CERT, tls.cert.c_str());
  if (!tls.key.empty()) mysql_optionsv(mysql, MYSQL_OPT_SSL_KEY, tls.key.c_str());
  if (tls.mode != MysqlSslMode::kPreferred) {
    my_bool enforce = 1;
    mysql_optionsv(mysql, MYSQL_OPT_SSL_ENFORCE, &enforce);
  }
  if (tls.mode == MysqlSslMode::kVerifyIdentity) {
    my_bool verify = 1;
    mysql_optionsv(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
  }
}

Result<std::unique_ptr<MariadbConnection>> MariadbConnection::Open(const MysqlOptions& mysql,
                                                                   Options options) {
  // mysql_library_init is not thread-safe; mysql_init would call it on first use.
  static std::once_flag library_once;
  std::call_once(library_once, [] { mysql_library_init(0, nullptr, nullptr); });
  const std::string where = Where(mysql);
  MYSQL* handle = mysql_init(nullptr);
  if (handle == nullptr)
    return Status::Internal("connect to MySQL " + where + ": mysql_init failed");

  unsigned int connect_timeout =
      static_cast<unsigned int>(std::max<int64_t>(1, mysql.connect_timeout.count()));
  mysql_optionsv(handle, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  if (mysql.read_timeout.count() > 0) {
    unsigned int t = static_cast<unsigned int>(mysql.read_timeout.count());
    mysql_optionsv(handle, MYSQL_OPT_READ_TIMEOUT, &t);
  }
  if (mysql.write_timeout.count() > 0) {
    unsigned int t = static_cast<unsigned int>(mysql.write_timeout.count());
    mysql_optionsv(handle, MYSQL_OPT_WRITE_TIMEOUT, &t);
  }
  unsigned long max_packet = kMaxPacket;
  mysql_optionsv(handle, MYSQL_OPT_MAX_ALLOWED_PACKET, &max_packet);
  my_bool reconnect = 0;
  mysql_optionsv(handle, MYSQL_OPT_RECONNECT, &reconnect);
  mysql_optionsv(handle, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  unsigned int local_infile = options.local_infile ? 1 : 0;
  mysql_optionsv(handle, MYSQL_OPT_LOCAL_INFILE, &local_infile);
  SetMariadbTlsOptions(handle, mysql.tls);

  const bool by_socket = !mysql.socket.empty();
  const unsigned long flags = mysql.multi_statements ? CLIENT_MULTI_STATEMENTS : 0;
  if (mysql_real_connect(handle, by_socket ? "localhost" : mysql.host.c_str(), mysql.user.c_str(),
                         mysql.password.c_str(), nullptr, mysql.port,
                         by_socket ? mysql.socket.c_str() : nullptr, flags) == nullptr) {
    const int code = static_cast<int>(mysql_errno(handle));
    const std::string message = fmt::format("connect to MySQL {}: ERROR {} ({}): {}", where, code,
                                            mysql_sqlstate(handle), mysql_error(handle));
    mysql_close(handle);
    if (ClassifyMysqlError(code) == MysqlErrorKind::kPermanent) return Status::Server(message);
    return Status::Network(message);
  }
  std::unique_ptr<MariadbConnection> connection(new MariadbConnection(handle, mysql));
  connection->local_infile_ = options.local_infile;
  // Every request for a local file goes to these callbacks, LoadLocal's or not (the default
  // handler would open the file the server names).
  mysql_set_local_infile_handler(handle, &MariadbInfileCallbacks::Init,
                                 &MariadbInfileCallbacks::Read, &MariadbInfileCallbacks::End,
                                 &MariadbInfileCallbacks::Error, &connection->infile_);
  return connection;
}

MariadbConnection::MariadbConnection(st_mysql* mysql, MysqlOptions options)
    : mysql_(mysql), options_(std::move(options)) {}

MariadbConnection::~MariadbConnection() {
  if (mysql_ != nullptr) mysql_close(mysql_);
}

std::string MariadbConnection::Describe() const { return Where(options_); }

uint64_t MariadbConnection::thread_id() const { return mysql_thread_id(mysql_); }

Status MariadbConnection::LastError(std::string_view sql, std::string_view what) {
  const int code = static_cast<int>(mysql_errno(mysql_));
  last_error_code_ = code;
  const std::string context = what.empty() ? std::string("run SQL") : std::string(what);
  const std::string message =
      fmt::format("{} on {}: ERROR {} ({}): {} [statement: {}]", context, Describe(), code,
                  mysql_sqlstate(mysql_), mysql_error(mysql_), StatementSnippet(std::string(sql)));
  switch (ClassifyMysqlError(code)) {
    case MysqlErrorKind::kConnection:
      broken_ = true;
      return Status::Network(message);
    case MysqlErrorKind::kTransient:
      return Status::Server(message, /*retryable=*/true);
    case MysqlErrorKind::kPermanent:
      break;
  }
  return Status::Server(message);
}

// After a successful mysql_real_query: reads (and frees) every result of the statement or
// statements, so the connection is ready for the next command; the first error is returned (the
// server runs no statement after a failed one).
Status MariadbConnection::DrainResults(std::string_view sql, std::string_view what) {
  while (true) {
    MYSQL_RES* res = mysql_store_result(mysql_);
    if (res != nullptr) {
      mysql_free_result(res);
    } else if (mysql_field_count(mysql_) != 0) {
      return LastError(sql, what);
    }
    const int next = mysql_next_result(mysql_);
    if (next < 0) break;
    if (next > 0) return LastError(sql, what);
  }
  last_error_code_ = 0;
  return Status::Ok();
}

Status MariadbConnection::Execute(const std::string& sql, std::string_view what) {
  if (broken_) return Status::Network("session " + Describe() + " is broken");
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return LastError(sql, what);
  return DrainResults(sql, what);
}

Result<uint64_t> MariadbConnection::ExecuteUpdate(const std::string& sql, std::string_view what) {
  if (broken_) return Status::Network("session " + Describe() + " is broken");
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return LastError(sql, what);
  const my_ulonglong affected = mysql_affected_rows(mysql_);
  RS_RETURN_IF_ERROR(DrainResults(sql, what));
  return affected == static_cast<my_ulonglong>(-1) ? uint64_t{0} : static_cast<uint64_t>(affected);
}

Status MariadbConnection::ExecuteBatch(const std::vector<std::string>& statements,
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
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return LastError(sql, what);
  return DrainResults(sql, what);
}

Result<std::vector<SqlSession::Row>> MariadbConnection::Query(const std::string& sql,
                                                              std::string_view what) {
  if (broken_) return Status::Network("session " + Describe() + " is broken");
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return LastError(sql, what);
  std::vector<Row> rows;
  MYSQL_RES* res = mysql_store_result(mysql_);
  if (res == nullptr) {
    if (mysql_field_count(mysql_) != 0) return LastError(sql, what);
  } else {
    const unsigned int fields = mysql_num_fields(res);
    rows.reserve(mysql_num_rows(res));
    MYSQL_ROW values;
    while ((values = mysql_fetch_row(res)) != nullptr) {
      const unsigned long* lengths = mysql_fetch_lengths(res);
      Row row;
      row.reserve(fields);
      for (unsigned int i = 0; i < fields; ++i) {
        if (values[i] == nullptr) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(values[i], lengths[i]));
        }
      }
      rows.push_back(std::move(row));
    }
    mysql_free_result(res);
  }
  // Later results of a multi-statement are read and dropped.
  const int next = mysql_next_result(mysql_);
  if (next > 0) return LastError(sql, what);
  if (next == 0) RS_RETURN_IF_ERROR(DrainResults(sql, what));
  last_error_code_ = 0;
  return rows;
}

Status MariadbConnection::Stream(const std::string& sql,
                                 const std::function<Status(const RowView& row)>& row,
                                 std::string_view what) {
  if (broken_) return Status::Network("session " + Describe() + " is broken");
  if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return LastError(sql, what);
  MYSQL_RES* res = mysql_use_result(mysql_);
  if (res == nullptr) {
    if (mysql_field_count(mysql_) != 0) return LastError(sql, what);
    return DrainResults(sql, what);  // a statement without rows
  }
  const unsigned int fields = mysql_num_fields(res);
  Status stopped;
  MYSQL_ROW values;
  while ((values = mysql_fetch_row(res)) != nullptr) {
    const RowView view{values, mysql_fetch_lengths(res), fields};
    stopped = row(view);
    if (!stopped.ok()) break;
  }
  if (stopped.ok() && mysql_errno(mysql_) != 0) {
    // The end of the rows was an error (the connection died, the query was killed).
    Status error = LastError(sql, what);
    mysql_free_result(res);
    return error;
  }
  // For a result read with mysql_use_result, mysql_free_result reads and discards the rows the
  // server still sends, as the protocol requires before the next command.
  mysql_free_result(res);
  if (mysql_errno(mysql_) != 0) {
    Status error = LastError(sql, what);
    return stopped.ok() ? error : stopped;
  }
  const int next = mysql_next_result(mysql_);
  if (next > 0) {
    Status error = LastError(sql, what);
    return stopped.ok() ? error : stopped;
  }
  if (next == 0) {
    Status drained = DrainResults(sql, what);
    if (stopped.ok()) return drained;
  }
  if (!stopped.ok()) return stopped;
  last_error_code_ = 0;
  return Status::Ok();
}

Result<MariadbConnection::LoadResult> MariadbConnection::LoadLocal(const std::string& sql,
                                                                   std::string_view data,
                                                                   std::string_view what) {
  if (broken_) return Status::Network("session " + Describe() + " is broken");
  if (!local_infile_) {
    return Status::Internal(
        fmt::format("{}: LoadLocal on {} needs a connection opened with Options::local_infile",
                    what.empty() ? std::string_view("LOAD DATA LOCAL") : what, Describe()));
  }
  LocalInfile infile{data, 0};
  infile_ = &infile;
  const int rc = mysql_real_query(mysql_, sql.data(), sql.size());
  infile_ = nullptr;
  if (rc != 0) return LastError(sql, what);
  LoadResult result;
  const my_ulonglong affected = mysql_affected_rows(mysql_);
  result.rows = affected == static_cast<my_ulonglong>(-1) ? 0 : static_cast<uint64_t>(affected);
  result.warnings = mysql_warning_count(mysql_);
  RS_RETURN_IF_ERROR(DrainResults(sql, what));
  if (result.warnings > 0) {
    RS_ASSIGN_OR_RETURN(std::vector<Row> warnings,
                        Query("SHOW WARNINGS LIMIT 5", what.empty() ? "read warnings" : what));
    for (const Row& w : warnings) {
      if (!result.warning_text.empty()) result.warning_text += "; ";
      for (size_t i = 0; i < w.size(); ++i) {
        if (i > 0) result.warning_text += ' ';
        result.warning_text += w[i].value_or("NULL");
      }
    }
  }
  return result;
}

}  // namespace replsync
