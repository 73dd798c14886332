#include "capture/binlog/mariadb_binlog_source.h"

#include <sys/socket.h>
#include <unistd.h>

// mariadb_rpl.h uses mysql.h's types, so mysql.h must come first.
// clang-format off
#include <mariadb/mysql.h>
#include <mariadb/mariadb_rpl.h>
// clang-format on

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>
#include <vector>

#include "sync/mysql/mariadb_connection.h"

// How the stream is read. Connector/C's MARIADB_RPL does the replication handshake
// (mariadb_rpl_open sends COM_BINLOG_DUMP with our server_id, flags, file and position), but its
// mariadb_rpl_fetch is not used: it parses every event itself, rejects event types it does not
// know without LOG_EVENT_IGNORABLE_F (MySQL 8 TRANSACTION_PAYLOAD, PARTIAL_UPDATE_ROWS,
// HEARTBEAT_V2, GTID_TAGGED, ...) and copies every packet and row image. The packets of the dump
// are read instead with mysql_net_read_packet on the same connection; each is an OK byte (0x00)
// followed by one whole binlog event, an EOF packet (0xFE, shorter than 9 bytes) at the end of
// a non-blocking dump, or an error packet. The event bytes are handed out in place (they live
// in the connection's read buffer until the next read), so nothing is copied.
// Reference: MariaDB KB "COM_BINLOG_DUMP", "Replication Protocol", sql/sql_repl.cc.

namespace replsync::capture {

namespace {
// ER_SLAVE_SAME_ID: "A slave with the same server_uuid/server_id is already connected".
constexpr unsigned kErrSlaveSameId = 4052;
}  // namespace

namespace {

constexpr size_t kHeaderSize = 19;
constexpr uint8_t kRotateEvent = 4;
constexpr uint8_t kFormatDescriptionEvent = 15;
constexpr uint8_t kHeartbeatEvent = 27;
constexpr uint8_t kHeartbeatV2Event = 41;
constexpr uint16_t kArtificialFlag = 0x0020;
// @mariadb_slave_capability: MARIA_SLAVE_CAPABILITY_GTID (GTID events sent as they are).
constexpr int kSlaveCapability = 4;
// The largest packet Connector/C accepts (and the server's maximum max_allowed_packet).
constexpr unsigned long kMaxPacket = 1024UL * 1024UL * 1024UL;

uint16_t Le16(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint16_t>(u[0] | (u[1] << 8));
}
uint32_t Le32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8) |
         (static_cast<uint32_t>(u[2]) << 16) | (static_cast<uint32_t>(u[3]) << 24);
}
uint64_t Le64(const char* p) {
  return static_cast<uint64_t>(Le32(p)) | (static_cast<uint64_t>(Le32(p + 4)) << 32);
}

bool IsAccessDenied(unsigned int code) {
  switch (code) {
    case 1044:  // ER_DBACCESS_DENIED_ERROR
    case 1045:  // ER_ACCESS_DENIED_ERROR
    case 1142:  // ER_TABLEACCESS_DENIED_ERROR
    case 1227:  // ER_SPECIFIC_ACCESS_DENIED_ERROR
    case 1251:  // ER_NOT_SUPPORTED_AUTH_MODE
    case 1698:  // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    case 1862:  // ER_MUST_CHANGE_PASSWORD_LOGIN
      return true;
    default:
      return false;
  }
}

// Server errors that go away by themselves: a reconnect later may succeed.
bool IsTransientServerError(unsigned int code) {
  switch (code) {
    case 1040:  // ER_CON_COUNT_ERROR: too many connections
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1152:  // ER_ABORTING_CONNECTION
    case 1158:  // ER_NET_READ_ERROR
    case 1159:  // ER_NET_READ_INTERRUPTED
    case 1160:  // ER_NET_ERROR_ON_WRITE
    case 1161:  // ER_NET_WRITE_INTERRUPTED
    case 1203:  // ER_TOO_MANY_USER_CONNECTIONS
    case 1226:  // ER_USER_LIMIT_REACHED
    case 1317:  // ER_QUERY_INTERRUPTED
    case 1927:  // ER_CONNECTION_KILLED
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT
      return true;
    default:
      return false;
  }
}

// A Status for the last error on `mysql`; `what` names the operation and the server.
Status MysqlError(MYSQL* mysql, const std::string& what) {
  unsigned int code = mysql_errno(mysql);
  std::string text = fmt::format("{}: error {}: {}", what, code, mysql_error(mysql));
  if (code >= 2000 && code < 3000) return Status::Network(text);  // Connector/C (CR_*) errors
  if (IsAccessDenied(code)) return Status::Server(text, /*retryable=*/false);
  return Status::Server(text, IsTransientServerError(code));
}

// Runs one statement and collects its rows (NULL as "").
Status RunQuery(MYSQL* mysql, const std::string& sql, const std::string& where,
                std::vector<std::vector<std::string>>* rows) {
  if (mysql_real_query(mysql, sql.data(), sql.size()) != 0) {
    return MysqlError(mysql, fmt::format("{} on {}", sql, where));
  }
  MYSQL_RES* res = mysql_store_result(mysql);
  if (res == nullptr) {
    if (mysql_field_count(mysql) != 0) {
      return MysqlError(mysql, fmt::format("{} on {}", sql, where));
    }
    return Status::Ok();
  }
  unsigned int fields = mysql_num_fields(res);
  MYSQL_ROW row;
  while ((row = mysql_fetch_row(res)) != nullptr) {
    if (rows == nullptr) continue;
    unsigned long* lengths = mysql_fetch_lengths(res);
    std::vector<std::string> out;
    for (unsigned int i = 0; i < fields; ++i) {
      out.emplace_back(row[i] != nullptr ? std::string(row[i], lengths[i]) : std::string());
    }
    rows->push_back(std::move(out));
  }
  mysql_free_result(res);
  return Status::Ok();
}

// The name this host shows in the primary's SHOW SLAVE HOSTS.
std::string ReplicaHostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "replsync";
  return std::string("replsync@") + name;
}

std::string EscapeString(MYSQL* mysql, const std::string& s) {
  std::string out(s.size() * 2 + 1, '\0');
  unsigned long n = mysql_real_escape_string(mysql, out.data(), s.data(), s.size());
  out.resize(n);
  return out;
}

}  // namespace

// One connection to the server and its MARIADB_RPL handle.
class MariadbBinlogSource::Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (rpl != nullptr) mariadb_rpl_close(rpl);
    if (mysql != nullptr) mysql_close(mysql);
  }

  MYSQL* mysql = nullptr;
  MARIADB_RPL* rpl = nullptr;
};

MariadbBinlogSource::MariadbBinlogSource(MariadbSourceOptions options)
    : options_(std::move(options)) {
  file_ = options_.start.file;
  offset_ = options_.start.offset < 4 ? 4 : options_.start.offset;
}

MariadbBinlogSource::~MariadbBinlogSource() { DropConnection(); }

Result<std::unique_ptr<MariadbBinlogSource>> MariadbBinlogSource::Open(
    MariadbSourceOptions options) {
  if (!options.start.file.empty() && !options.start_gtid.empty()) {
    return Status::InvalidArgument(
        fmt::format("binlog source {}:{}: give a start position or a start GTID, not both",
                    options.host, options.port));
  }
  if (options.reconnect_min.count() <= 0 || options.reconnect_max < options.reconnect_min) {
    return Status::InvalidArgument(fmt::format(
        "binlog source {}:{}: reconnect delays must satisfy 0 < reconnect_min <= reconnect_max",
        options.host, options.port));
  }
  std::unique_ptr<MariadbBinlogSource> source(new MariadbBinlogSource(std::move(options)));
  RS_RETURN_IF_ERROR(source->Connect());
  return source;
}

std::string MariadbBinlogSource::Describe() const {
  return fmt::format("server {}:{}", options_.host, options_.port);
}

BinlogPosition MariadbBinlogSource::position() const { return {file_, offset_}; }

std::string MariadbBinlogSource::StartDescription() const {
  if (!file_.empty()) return fmt::format("{}:{}", file_, offset_);
  if (!options_.start_gtid.empty()) return "GTID " + options_.start_gtid;
  return "the current position";
}

void MariadbBinlogSource::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  // Wakes a read blocked in the connection: it fails at once and Next sees stop_.
  if (socket_ >= 0) shutdown(socket_, SHUT_RDWR);
  cv_.notify_all();
}

void MariadbBinlogSource::DropConnection() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    socket_ = -1;
  }
  pending_ = false;
  conn_.reset();
}

Status MariadbBinlogSource::Connect() {
  DropConnection();
  if (stop_) return Status::Aborted(Describe() + ": stopped");
  // Leaves no half-started connection behind on any error.
  struct DropUnlessDone {
    MariadbBinlogSource* self;
    bool done = false;
    ~DropUnlessDone() {
      if (!done) self->DropConnection();
    }
  } guard{this};
  const std::string where = Describe();
  auto conn = std::make_unique<Connection>();
  conn->mysql = mysql_init(nullptr);
  if (conn->mysql == nullptr) return Status::Internal(where + ": mysql_init failed");
  MYSQL* mysql = conn->mysql;

  unsigned int connect_timeout =
      static_cast<unsigned int>(std::max<int64_t>(1, options_.connect_timeout.count()));
  // A silent connection is dead after three missed heartbeats (at least 5 s); without
  // heartbeats a following dump may legitimately wait forever.
  int64_t heartbeat_ms = options_.heartbeat.count();
  unsigned int read_timeout = 0;
  if (heartbeat_ms > 0) {
    read_timeout = static_cast<unsigned int>(std::max<int64_t>(5, (3 * heartbeat_ms + 999) / 1000));
  } else if (!options_.follow) {
    read_timeout = 60;
  }
  unsigned int write_timeout = 30;
  unsigned long max_packet = kMaxPacket;
  mysql_optionsv(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  if (read_timeout > 0) mysql_optionsv(mysql, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
  mysql_optionsv(mysql, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
  mysql_optionsv(mysql, MYSQL_OPT_MAX_ALLOWED_PACKET, &max_packet);
  SetMariadbTlsOptions(mysql, options_.tls);

  const bool by_socket = !options_.socket.empty();
  if (mysql_real_connect(mysql, by_socket ? "localhost" : options_.host.c_str(),
                         options_.user.c_str(), options_.password.c_str(), nullptr,
                         options_.port, by_socket ? options_.socket.c_str() : nullptr,
                         0) == nullptr) {
    Status s = MysqlError(mysql, "connect to " + where + " as '" + options_.user + "'");
    if (IsAccessDenied(mysql_errno(mysql))) {
      return Status::Server(
          s.message() + "; check the user and password replsync is configured with",
          /*retryable=*/false);
    }
    return s;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    socket_ = static_cast<int>(mysql_get_socket(mysql));
    if (stop_) {
      socket_ = -1;
      return Status::Aborted(where + ": stopped");
    }
  }
  conn_ = std::move(conn);

  // The server's checksum setting decides whether events end with a CRC32; announcing it in
  // @master_binlog_checksum makes the server send events exactly as they are in its files.
  std::vector<std::vector<std::string>> rows;
  std::string checksum = "NONE";
  if (RunQuery(mysql, "SELECT @@global.binlog_checksum", where, &rows).ok() && !rows.empty() &&
      !rows[0].empty()) {
    checksum = rows[0][0];
  } else if (mysql_errno(mysql) >= 2000) {
    return MysqlError(mysql, "read @@global.binlog_checksum on " + where);
  }
  checksum_ = checksum != "NONE";
  std::string quoted_checksum = "'" + EscapeString(mysql, checksum) + "'";
  std::string heartbeat_ns = std::to_string(std::max<int64_t>(0, heartbeat_ms) * 1000000);
  std::string setup = fmt::format(
      "SET @master_binlog_checksum = {0}, @source_binlog_checksum = {0}, "
      "@mariadb_slave_capability = {1}, @master_heartbeat_period = {2}, "
      "@source_heartbeat_period = {2}, @slave_gtid_strict_mode = 0, "
      "@slave_gtid_ignore_duplicates = 0",
      quoted_checksum, kSlaveCapability, heartbeat_ns);
  RS_RETURN_IF_ERROR(RunQuery(mysql, setup, where, nullptr));

  bool gtid_start = file_.empty() && !options_.start_gtid.empty();
  if (gtid_start) {
    RS_RETURN_IF_ERROR(RunQuery(
        mysql, "SET @slave_connect_state = '" + EscapeString(mysql, options_.start_gtid) + "'",
        where, nullptr));
  } else if (file_.empty()) {
    rows.clear();
    Status s = RunQuery(mysql, "SHOW MASTER STATUS", where, &rows);
    if (!s.ok()) {
      if (IsAccessDenied(mysql_errno(mysql))) {
        return Status::Server(
            s.message() +
                "; reading the current binlog position needs the BINLOG MONITOR privilege "
                "(MariaDB 10.5+) or REPLICATION CLIENT (MySQL, older MariaDB), or configure a "
                "start position",
            /*retryable=*/false);
      }
      return s;
    }
    if (rows.empty() || rows[0].size() < 2 || rows[0][0].empty()) {
      return Status::Unsupported(where +
                                 ": the server has no binary log (start it with --log-bin "
                                 "and binlog_format=ROW)");
    }
    uint64_t pos = 0;
    for (char c : rows[0][1]) {
      if (c < '0' || c > '9') {
        return Status::Server(where + ": SHOW MASTER STATUS gave position '" + rows[0][1] + "'");
      }
      pos = pos * 10 + static_cast<uint64_t>(c - '0');
    }
    file_ = rows[0][0];
    offset_ = pos;
  }
  if (!gtid_start && offset_ > UINT32_MAX) {
    return Status::Unsupported(fmt::format(
        "{}: cannot start a binlog dump at {}:{}: COM_BINLOG_DUMP takes 32-bit positions; start "
        "from a GTID instead",
        where, file_, offset_));
  }

  conn_->rpl = mariadb_rpl_init(mysql);
  if (conn_->rpl == nullptr) return MysqlError(mysql, "mariadb_rpl_init on " + where);
  MARIADB_RPL* rpl = conn_->rpl;
  unsigned int flags = MARIADB_RPL_BINLOG_SEND_ANNOTATE_ROWS;
  if (!options_.follow) flags |= MARIADB_RPL_BINLOG_DUMP_NON_BLOCK;
  std::string dump_file = gtid_start ? std::string() : file_;
  unsigned long dump_pos = gtid_start ? 4UL : static_cast<unsigned long>(offset_);
  if (mariadb_rpl_optionsv(rpl, MARIADB_RPL_SERVER_ID,
                           static_cast<unsigned int>(options_.replica_server_id)) != 0 ||
      mariadb_rpl_optionsv(rpl, MARIADB_RPL_FLAGS, flags) != 0 ||
      mariadb_rpl_optionsv(rpl, MARIADB_RPL_FILENAME, dump_file.c_str(), dump_file.size()) != 0 ||
      mariadb_rpl_optionsv(rpl, MARIADB_RPL_START, dump_pos) != 0 ||
      // With a host set, mariadb_rpl_open registers the replica first (COM_REGISTER_SLAVE), so
      // operators see replsync in SHOW SLAVE HOSTS.
      mariadb_rpl_optionsv(rpl, MARIADB_RPL_HOST, ReplicaHostName().c_str()) != 0 ||
      mariadb_rpl_optionsv(rpl, MARIADB_RPL_PORT, 0U) != 0) {
    return Status::Internal(where + ": setting MARIADB_RPL options failed");
  }
  if (mariadb_rpl_open(rpl) != 0) {
    Status s = MysqlError(mysql, "start binlog dump at " + StartDescription() + " on " + where);
    if (s.code() == Status::Code::kNetwork) return s;
    return DumpError(mysql_errno(mysql), mysql_error(mysql));
  }

  // The server answers COM_BINLOG_DUMP with the first event or an error; read it now so that a
  // purged binlog or a missing privilege is reported by Open.
  std::string_view data;
  Result<PacketKind> first = ReadPacket(&data);
  if (!first.ok()) return first.status();
  pending_ = true;
  pending_kind_ = *first;
  pending_data_ = data;
  guard.done = true;
  return Status::Ok();
}

Status MariadbBinlogSource::DumpError(unsigned int code, const std::string& message) {
  const std::string where = Describe();
  std::string text = fmt::format("binlog dump from {} at {}: server error {}: {}", where,
                                 StartDescription(), code, message);
  if (IsAccessDenied(code)) {
    return Status::Server(text +
                              "; the user needs the REPLICATION SLAVE privilege "
                              "(GRANT REPLICATION SLAVE ON *.* TO ...)",
                          /*retryable=*/false);
  }
  if (code == kErrSlaveSameId) {
    // Another replica connection registered with this server_id and the server dropped this
    // one in its favour: retried (with backoff), saying who is probably in the way.
    return Status::Server(
        text + "; another connection registered as a replica with the same server_id (a second "
               "replsyncd for this primary, or another tool using [mysql] replica_server_id); "
               "give each its own id",
        /*retryable=*/true);
  }
  std::string lower = message;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  bool missing = code == 1236 && (lower.find("could not find") != std::string::npos ||
                                  lower.find("purged") != std::string::npos ||
                                  lower.find("not in the master's binlog") != std::string::npos ||
                                  lower.find("impossible position") != std::string::npos);
  // MariaDB's own codes for a GTID start the binlogs no longer hold.
  missing = missing || code == 1945 || code == 1950 || code == 1955;
  if (!missing) return Status::Server(text, IsTransientServerError(code));

  // Say what the server still has, and what to do. The server closes a dump connection after
  // an error, so ask on a connection of its own.
  std::vector<std::vector<std::string>> rows;
  Status s = Status::Ok();
  {
    Connection probe;
    probe.mysql = mysql_init(nullptr);
    unsigned int timeout =
        static_cast<unsigned int>(std::max<int64_t>(1, options_.connect_timeout.count()));
    if (probe.mysql == nullptr) {
      s = Status::Internal("mysql_init failed");
    } else {
      mysql_optionsv(probe.mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
      mysql_optionsv(probe.mysql, MYSQL_OPT_READ_TIMEOUT, &timeout);
      SetMariadbTlsOptions(probe.mysql, options_.tls);
      const bool by_socket = !options_.socket.empty();
      if (mysql_real_connect(probe.mysql, by_socket ? "localhost" : options_.host.c_str(),
                             options_.user.c_str(), options_.password.c_str(), nullptr,
                             options_.port, by_socket ? options_.socket.c_str() : nullptr,
                             0) == nullptr) {
        s = MysqlError(probe.mysql, "connect to " + where);
      } else {
        s = RunQuery(probe.mysql, "SHOW BINARY LOGS", where, &rows);
      }
    }
  }
  std::string have;
  if (s.ok() && !rows.empty() && !rows.front().empty()) {
    have = fmt::format(
        "; the server still has {} binlog file(s), {} to {}; re-bootstrap the secondary (full "
        "copy) or start from an available position such as {}:4",
        rows.size(), rows.front()[0], rows.back()[0], rows.front()[0]);
  } else if (s.ok()) {
    have = "; the server has no binlog files; re-bootstrap the secondary (full copy)";
  } else {
    have = " (listing the server's binlogs failed: " + s.message() +
           "); re-bootstrap the secondary (full copy) or start from an available position";
  }
  return Status::NotFound(text + have);
}

Result<MariadbBinlogSource::PacketKind> MariadbBinlogSource::ReadPacket(std::string_view* data) {
  MYSQL* mysql = conn_->mysql;
  unsigned long len = mysql_net_read_packet(mysql);
  if (len == static_cast<unsigned long>(packet_error)) {
    unsigned int code = mysql_errno(mysql);
    if (code >= 2000 && code < 3000) {
      return MysqlError(
          mysql, fmt::format("read binlog dump from {} after {}", Describe(), StartDescription()));
    }
    return DumpError(code, mysql_error(mysql));
  }
  const char* p = reinterpret_cast<const char*>(mysql->net.read_pos);
  if (len == 0) {
    return Status::Corruption(
        fmt::format("binlog dump from {} after {}: empty packet", Describe(), StartDescription()));
  }
  uint8_t marker = static_cast<uint8_t>(p[0]);
  if (marker == 0xFE && len < 9) return PacketKind::kEnd;
  if (marker != 0x00) {
    return Status::Corruption(fmt::format(
        "binlog dump from {} after {}: packet of {} bytes starts with 0x{:02x}, not an event",
        Describe(), StartDescription(), len, marker));
  }
  *data = std::string_view(p + 1, len - 1);
  return PacketKind::kEvent;
}

uint64_t MariadbBinlogSource::ExtendLogPos(uint32_t log_pos, uint32_t event_size) const {
  // The header keeps the low 32 bits of the end offset; pick the full offset nearest to where
  // this event should end.
  constexpr uint64_t kWrap = uint64_t{1} << 32;
  uint64_t expected = offset_ + event_size;
  uint64_t candidate = (expected & ~(kWrap - 1)) | log_pos;
  if (candidate + kWrap / 2 < expected) {
    candidate += kWrap;
  } else if (candidate > expected + kWrap / 2 && candidate >= kWrap) {
    candidate -= kWrap;
  }
  return candidate;
}

Status MariadbBinlogSource::HandOut(std::string_view data, RawEvent* event) {
  if (data.size() < kHeaderSize) {
    return Status::Corruption(fmt::format(
        "binlog dump from {} at {}:{}: event of {} bytes is shorter than its 19-byte header",
        Describe(), file_, offset_, data.size()));
  }
  uint8_t type = static_cast<uint8_t>(data[4]);
  uint32_t size = Le32(data.data() + 9);
  uint32_t log_pos = Le32(data.data() + 13);
  uint16_t flags = Le16(data.data() + 17);
  if (size != data.size()) {
    return Status::Corruption(fmt::format(
        "binlog dump from {} at {}:{}: event type {} says {} bytes but its packet holds {}",
        Describe(), file_, offset_, type, size, data.size()));
  }
  if (event_file_ != file_) event_file_ = file_;
  event->data = data;
  event->file = event_file_;
  // Artificial events (the ROTATE and FORMAT_DESCRIPTION a dump starts with, heartbeats) are in
  // no file at this place: they leave the position alone.
  bool in_file = (flags & kArtificialFlag) == 0 && log_pos != 0 && type != kHeartbeatEvent &&
                 type != kHeartbeatV2Event;
  if (in_file) {
    uint64_t end = ExtendLogPos(log_pos, size);
    if (end < size + 4) {
      return Status::Corruption(
          fmt::format("binlog dump from {} at {}:{}: event type {} ends at {} but is {} bytes long",
                      Describe(), file_, offset_, type, log_pos, size));
    }
    event->offset = end - size;
    event->next_offset = end;
    offset_ = end;
  } else {
    event->offset = offset_;
    event->next_offset = offset_;
  }

  if (type == kFormatDescriptionEvent) {
    // binlog version (2), server version (50), create time (4), header length (1), post-header
    // lengths, then the checksum algorithm (1) and the checksum (4) on servers that have them.
    constexpr size_t kFixed = kHeaderSize + 2 + 50 + 4 + 1;
    if (size >= kFixed + 5) {
      uint8_t alg = static_cast<uint8_t>(data[size - 5]);
      checksum_ = alg == 1;
    } else {
      checksum_ = false;
    }
  } else if (type == kRotateEvent) {
    size_t trailer = checksum_ ? 4 : 0;
    if (size < kHeaderSize + 8 + trailer + 1) {
      return Status::Corruption(fmt::format("binlog dump from {} at {}:{}: ROTATE of {} bytes",
                                            Describe(), file_, event->offset, size));
    }
    uint64_t position = Le64(data.data() + kHeaderSize);
    std::string_view next = data.substr(kHeaderSize + 8, size - kHeaderSize - 8 - trailer);
    file_.assign(next.data(), next.size());
    offset_ = position;
  }
  return Status::Ok();
}

Status MariadbBinlogSource::Reconnect(Status cause) {
  auto delay = options_.reconnect_min;
  int attempt = 0;
  Status last = std::move(cause);
  while (true) {
    if (stop_) return Status::Aborted(Describe() + ": stopped");
    ++attempt;
    if (options_.reconnect_attempts > 0 && attempt > options_.reconnect_attempts) {
      return last.WithContext(fmt::format("{}: gave up after {} reconnect attempts", Describe(),
                                          options_.reconnect_attempts));
    }
    spdlog::warn("binlog source {}: {}; reconnecting in {} ms to resume at {} (attempt {})",
                 Describe(), last.ToString(), delay.count(), StartDescription(), attempt);
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, delay, [this] { return stop_.load(); });
    }
    if (stop_) return Status::Aborted(Describe() + ": stopped");
    Status s = Connect();
    if (s.ok()) {
      spdlog::info("binlog source {}: reconnected, resuming at {}", Describe(), StartDescription());
      return s;
    }
    if (stop_) return Status::Aborted(Describe() + ": stopped");
    if (!s.retryable()) return s;
    last = s;
    delay = std::min(delay * 2, options_.reconnect_max);
  }
}

Result<bool> MariadbBinlogSource::Next(RawEvent* event) {
  Status dropped;
  while (true) {
    if (stop_) return Status::Aborted(Describe() + ": stopped");
    if (ended_) return false;
    if (conn_ == nullptr) {
      RS_RETURN_IF_ERROR(Reconnect(dropped.ok() ? Status::Network("not connected") : dropped));
    }
    std::string_view data;
    Result<PacketKind> kind = PacketKind::kEnd;
    if (pending_) {
      pending_ = false;
      kind = pending_kind_;
      data = pending_data_;
    } else {
      kind = ReadPacket(&data);
    }
    if (!kind.ok()) {
      if (stop_) return Status::Aborted(Describe() + ": stopped");
      if (!kind.status().retryable()) {
        DropConnection();  // a later Next starts over with a reconnect
        return kind.status();
      }
      dropped = kind.status();
      DropConnection();
      continue;
    }
    if (*kind == PacketKind::kEnd) {
      if (!options_.follow) {
        ended_ = true;
        DropConnection();
        return false;
      }
      // A following dump never ends by itself: the server closed it (e.g. shutting down).
      dropped = Status::Network(Describe() + ": the server ended the binlog dump");
      DropConnection();
      continue;
    }
    RS_RETURN_IF_ERROR(HandOut(data, event));
    return true;
  }
}

}  // namespace replsync::capture
