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
#include <cstdint>
#include <memory>
#include <string>

#include "capture/binlog_source.h"
#include "sync/position.h"

namespace replsync::capture {

struct MariadbSourceOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 3306;
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
  explicit MariadbBinlogSource(MariadbSourceOptions options);
  Status Connect();

  MariadbSourceOptions options_;
  std::unique_ptr<Connection> conn_;
  std::string file_;
  uint64_t offset_ = 4;
  std::string buffer_;
  std::atomic<bool> stop_{false};
};

}  // namespace replsync::capture
