// MariadbBinlogSource: the binary log of a live MySQL or MariaDB server, through libmariadb's
// MARIADB_RPL API (replication protocol, COM_BINLOG_DUMP, authentication).
//
// It registers as a replica with its own server_id, negotiates CRC32 checksums
// (@master_binlog_checksum), asks for ANNOTATE_ROWS and GTID events
// (@mariadb_slave_capability=4), sets a heartbeat period, and starts at a file:position or, on
// MariaDB, at a GTID (@slave_connect_state). A dropped connection is reopened with exponential
// backoff at the position after the last event handed out; the FORMAT_DESCRIPTION the server
// resends then is passed on (offset unchanged) so the decoder's state stays right.
// Reference: MariaDB KB "COM_BINLOG_DUMP", "Replication Protocol", Connector/C mariadb_rpl.h.
// Thread-safety: not thread-safe; Stop() may be called from another thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "capture/binlog/binlog_source.h"
#include "sync/config.h"
#include "sync/position.h"

namespace replsync::capture {

struct MariadbSourceOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 3306;
  std::string socket;  // a Unix socket path: used instead of host:port when set
  std::string user;
  std::string password;
  // server_id replsync presents as a replica; must differ from every server's and replica's.
  uint32_t replica_server_id = 5250;
  // Where to start. With neither set: the server's current position (SHOW MASTER STATUS).
  BinlogPosition start;  // file:offset
  std::string start_gtid;  // MariaDB GTID state, e.g. "0-1-5" (start after it)
  // Wait for new events (true) or stop at the end of the binlog (false).
  bool follow = true;
  std::chrono::milliseconds heartbeat{1000};
  // Reconnect with backoff from `reconnect_min` doubling to `reconnect_max`; 0 attempts = forever.
  std::chrono::milliseconds reconnect_min{200};
  std::chrono::milliseconds reconnect_max{10000};
  int reconnect_attempts = 0;
  std::chrono::seconds connect_timeout{10};
  // TLS for the dump connection and its probes, applied as for MysqlOptions (sync/mysql).
  MysqlTls tls;
};

class MariadbBinlogSource : public BinlogSource {
 public:
  // Connects and starts the dump. Errors: Network (retryable) when the server cannot be reached,
  // Server for refused credentials or missing REPLICATION SLAVE privilege, NotFound when the
  // start file has been purged (the message says which binlogs the server still has).
  static Result<std::unique_ptr<MariadbBinlogSource>> Open(MariadbSourceOptions options);
  ~MariadbBinlogSource() override;

  Result<bool> Next(RawEvent* event) override;
  std::string Describe() const override;

  // Makes a blocked Next return Aborted soon; safe from any thread.
  void Stop();

  // The position after the last event handed out.
  BinlogPosition position() const;

 private:
  class Connection;
  // What one read from the server gave: an event (its bytes in `data`) or the end of a
  // non-blocking dump.
  enum class PacketKind { kEvent, kEnd };

  explicit MariadbBinlogSource(MariadbSourceOptions options);
  // Opens a connection, negotiates the session variables and starts COM_BINLOG_DUMP at file_:
  // offset_ (or the GTID / the server's current position when file_ is empty), then reads the
  // first packet so that start errors (purged binlog, missing privilege) surface here.
  Status Connect();
  // Reopens a dropped connection with exponential backoff; `cause` is why it dropped.
  Status Reconnect(Status cause);
  // Closes the connection (and forgets its socket so Stop() cannot touch a reused fd).
  void DropConnection();
  // Reads the next packet of the dump from conn_.
  Result<PacketKind> ReadPacket(std::string_view* data);
  // Turns the bytes of one event into *event and moves the position past it.
  Status HandOut(std::string_view data, RawEvent* event);
  // The full 64-bit end offset of an event whose header says `log_pos` (32 bits, wrapping).
  uint64_t ExtendLogPos(uint32_t log_pos, uint32_t event_size) const;
  // A NotFound/Server status for an error the server returned to COM_BINLOG_DUMP.
  Status DumpError(unsigned int code, const std::string& message);
  // "binlog.000001:4" or "GTID 0-1-5", for messages.
  std::string StartDescription() const;

  MariadbSourceOptions options_;
  std::unique_ptr<Connection> conn_;
  std::string file_;        // the binlog file being read ("" until known for a GTID start)
  uint64_t offset_ = 4;     // where the next event of file_ starts
  std::string event_file_;  // the file named by the event last handed out
  bool checksum_ = true;    // events carry a CRC32 (from the last FORMAT_DESCRIPTION)
  bool ended_ = false;      // a non-blocking dump reached the end
  // The first packet of a dump, read by Connect and handed out by the next Next.
  bool pending_ = false;
  PacketKind pending_kind_ = PacketKind::kEnd;
  std::string_view pending_data_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;  // guards socket_; with cv_, wakes the reconnect backoff on Stop
  std::condition_variable cv_;
  int socket_ = -1;  // the connection's socket, for Stop() to shut down
};

}  // namespace replsync::capture
