#include "capture/binlog/source_factory.h"

#include <fmt/format.h>
#include <strings.h>

#include <chrono>
#include <filesystem>
#include <utility>

#include "capture/binlog/binlog_event.h"
#include "capture/binlog/file_binlog_source.h"
#include "capture/binlog/mariadb_binlog_source.h"
#include "sync/mysql/mysql_session.h"
#include "sync/text.h"

namespace replsync::capture {

namespace {

// A session on the server's SQL interface (settings checks, SHOW MASTER STATUS), with the hint
// an operator needs when it cannot be opened.
Result<std::unique_ptr<MysqlSession>> OpenSqlSession(const NodeConfig::Mysql& config) {
  MysqlOptions options = MysqlOptionsOf(config);
  options.read_timeout = options.connect_timeout;
  options.write_timeout = options.connect_timeout;
  Result<std::unique_ptr<MysqlSession>> session = MysqlSession::Open(options);
  if (session.ok()) return session;
  const Status& st = session.status();
  if (st.code() == Status::Code::kNetwork) {
    return Status::Network(st.message() + "; is the server running?");
  }
  return Status::Server(st.message() + "; check [mysql] user and password in the configuration",
                        st.retryable());
}

}  // namespace

// ---- MariadbSourceFactory ---------------------------------------------------------------------

// The open source, registered with the factory so that Interrupt can reach it.
class MariadbSourceFactory::Source : public BinlogSource {
 public:
  Source(MariadbSourceFactory* factory, std::unique_ptr<MariadbBinlogSource> source)
      : factory_(factory), source_(std::move(source)) {}
  ~Source() override {
    std::lock_guard<std::mutex> lock(factory_->mu_);
    if (factory_->current_ == source_.get()) factory_->current_ = nullptr;
  }
  Result<bool> Next(RawEvent* event) override { return source_->Next(event); }
  std::string Describe() const override { return source_->Describe(); }

 private:
  MariadbSourceFactory* factory_;
  std::unique_ptr<MariadbBinlogSource> source_;
};

MariadbSourceFactory::MariadbSourceFactory(const NodeConfig& config) : config_(config.mysql) {}
MariadbSourceFactory::~MariadbSourceFactory() = default;

std::string MariadbSourceFactory::Describe() const {
  return fmt::format("server {}:{}", config_.host, config_.port);
}

Result<BinlogPosition> MariadbSourceFactory::CurrentPosition() {
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlSession> conn, OpenSqlSession(config_));
  RS_RETURN_IF_ERROR(CheckBinlogSettings(*conn));
  RS_ASSIGN_OR_RETURN(std::vector<SqlSession::Row> rows,
                      conn->Query("SHOW MASTER STATUS", "read the binlog position"));
  if (rows.empty() || rows[0].size() < 2 || !rows[0][0] || !rows[0][1]) {
    return Status::InvalidArgument(fmt::format(
        "SHOW MASTER STATUS on {} returned no position: binary logging is off; set log_bin in "
        "the server's configuration and restart it",
        Describe()));
  }
  uint64_t offset = 0;
  if (!ParseU64(*rows[0][1], &offset)) {
    return Status::Server(
        fmt::format("SHOW MASTER STATUS on {}: bad position '{}'", Describe(), *rows[0][1]));
  }
  return BinlogPosition{*rows[0][0], offset};
}

Result<std::unique_ptr<BinlogSource>> MariadbSourceFactory::Open(const BinlogPosition& start) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (interrupted_) return Status::Aborted(Describe() + ": stopped");
  }
  {
    RS_ASSIGN_OR_RETURN(std::unique_ptr<MysqlSession> conn, OpenSqlSession(config_));
    RS_RETURN_IF_ERROR(CheckBinlogSettings(*conn));
  }
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MariadbBinlogSource> source,
                      MariadbBinlogSource::Open(SourceOptionsOf(config_, start, true)));
  std::lock_guard<std::mutex> lock(mu_);
  if (interrupted_) return Status::Aborted(Describe() + ": stopped");
  current_ = source.get();
  return std::unique_ptr<BinlogSource>(new Source(this, std::move(source)));
}

void MariadbSourceFactory::Interrupt() {
  std::lock_guard<std::mutex> lock(mu_);
  interrupted_ = true;
  if (current_ != nullptr) current_->Stop();
}

void MariadbSourceFactory::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  interrupted_ = false;
}

// ---- FileSourceFactory ------------------------------------------------------------------------

// Skips the events before the start offset in the first file, except FORMAT_DESCRIPTION.
class FileSourceFactory::Source : public BinlogSource {
 public:
  Source(std::unique_ptr<FileBinlogSource> files, BinlogPosition start)
      : files_(std::move(files)), start_(std::move(start)) {}
  Result<bool> Next(RawEvent* event) override {
    while (true) {
      RS_ASSIGN_OR_RETURN(bool more, files_->Next(event));
      if (!more) return false;
      if (skipping_ && (event->file != start_.file || event->offset >= start_.offset)) {
        skipping_ = false;
      }
      if (!skipping_) return true;
      if (event->data.size() > 4 && static_cast<uint8_t>(event->data[4]) ==
                                        static_cast<uint8_t>(EventType::kFormatDescription)) {
        return true;
      }
    }
  }
  std::string Describe() const override { return files_->Describe(); }

 private:
  std::unique_ptr<FileBinlogSource> files_;
  BinlogPosition start_;
  bool skipping_ = true;
};

FileSourceFactory::FileSourceFactory(std::vector<std::string> paths) : paths_(std::move(paths)) {}

std::string FileSourceFactory::Describe() const {
  if (paths_.empty()) return "no binlog files";
  return paths_.size() == 1 ? "file " + paths_[0]
                            : fmt::format("files {} .. {}", paths_.front(), paths_.back());
}

Result<BinlogPosition> FileSourceFactory::CurrentPosition() {
  if (paths_.empty()) return Status::InvalidArgument("file binlog source: no files");
  return BinlogPosition{std::filesystem::path(paths_[0]).filename().string(), 4};
}

Result<std::unique_ptr<BinlogSource>> FileSourceFactory::Open(const BinlogPosition& start) {
  size_t first = paths_.size();
  for (size_t i = 0; i < paths_.size(); ++i) {
    if (std::filesystem::path(paths_[i]).filename().string() == start.file) {
      first = i;
      break;
    }
  }
  if (first == paths_.size()) {
    return Status::NotFound(
        fmt::format("binlog file {} (capture position {}) is not among {}: it was purged or "
                    "never existed; re-bootstrap the secondary",
                    start.file, start.ToString(), Describe()));
  }
  std::vector<std::string> paths(paths_.begin() + static_cast<std::ptrdiff_t>(first), paths_.end());
  RS_ASSIGN_OR_RETURN(std::unique_ptr<FileBinlogSource> files,
                      FileBinlogSource::Open(std::move(paths)));
  return std::unique_ptr<BinlogSource>(new Source(std::move(files), start));
}

Status CheckBinlogSettings(SqlSession& conn) {
  RS_ASSIGN_OR_RETURN(
      auto rows,
      conn.Query("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', "
                 "'binlog_row_image', 'binlog_row_metadata')",
                 "check the binlog settings"));
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

MariadbSourceOptions SourceOptionsOf(const NodeConfig::Mysql& mysql, const BinlogPosition& start,
                                     bool follow) {
  MariadbSourceOptions options;
  options.host = mysql.host;
  options.port = mysql.port;
  options.socket = mysql.socket;
  options.user = mysql.user;
  options.password = mysql.password;
  options.replica_server_id = mysql.replica_server_id;
  options.start = start;
  options.follow = follow;
  options.heartbeat = std::chrono::milliseconds(mysql.heartbeat_ms);
  options.connect_timeout = std::chrono::seconds(mysql.connect_timeout_s);
  options.tls = mysql.tls;
  return options;
}

}  // namespace replsync::capture
