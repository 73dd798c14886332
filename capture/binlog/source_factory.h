// BinlogSourceFactory: opens the binlog sources a capture reads, at a position, again after
// every error (the capture service retries with a new source).
//
// Contract of every factory:
// - CurrentPosition() is where a capture with no checkpoint starts (a live server's SHOW MASTER
//   STATUS; the first event of the first file).
// - Open(start) returns a source whose events start at `start` (the start of an event at a
//   transaction boundary), the FORMAT_DESCRIPTION in force there handed out first. A binlog
//   that is gone (purged, or not among the files) is NotFound, never skipped.
// - Interrupt() makes a Next (or Open) blocked in the source opened last return soon; until
//   Resume(), new sources fail with Aborted. This is how CaptureService::Stop reaches a source
//   that follows a server.
// Implementations: MariadbSourceFactory (a live server, from NodeConfig [mysql]) and
// FileSourceFactory (binlog files read in order: tests, replay).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "capture/binlog/binlog_source.h"
#include "capture/binlog/mariadb_binlog_source.h"
#include "sync/config.h"
#include "sync/mysql/mysql_session.h"
#include "sync/position.h"
#include "sync/status.h"

namespace replsync::capture {

class MariadbBinlogSource;

// Opens binlog sources for capture at a position.
// Thread-safety: Open/CurrentPosition from the capture thread; Interrupt from any thread.
class BinlogSourceFactory {
 public:
  virtual ~BinlogSourceFactory() = default;
  // Where a capture with no checkpoint starts: the server's current binlog position.
  // Errors: Network (retryable), Server, InvalidArgument (binlog off or not ROW/FULL).
  virtual Result<BinlogPosition> CurrentPosition() = 0;
  // A source whose events start at `start` (the start of an event, a transaction boundary), with
  // the FORMAT_DESCRIPTION in force there handed out first. Errors as BinlogSource::Next plus
  // NotFound for a purged binlog.
  virtual Result<std::unique_ptr<BinlogSource>> Open(const BinlogPosition& start) = 0;
  // Makes a Next (or Open) blocked in the source opened last return soon; until Resume(), new
  // sources fail with Aborted.
  virtual void Interrupt() = 0;
  virtual void Resume() = 0;
  virtual std::string Describe() const = 0;
};

// A live server from NodeConfig [mysql] (MariadbBinlogSource, following the binlog). Each Open
// checks the server's binlog settings (CheckBinlogSettings) first.
// Thread-safety: as BinlogSourceFactory.
class MariadbSourceFactory : public BinlogSourceFactory {
 public:
  explicit MariadbSourceFactory(const NodeConfig& config);
  ~MariadbSourceFactory() override;
  Result<BinlogPosition> CurrentPosition() override;
  Result<std::unique_ptr<BinlogSource>> Open(const BinlogPosition& start) override;
  void Interrupt() override;
  void Resume() override;
  std::string Describe() const override;

 private:
  class Source;
  NodeConfig::Mysql config_;
  std::mutex mu_;  // guards current_, interrupted_
  MariadbBinlogSource* current_ = nullptr;
  bool interrupted_ = false;
};

// Binlog files read in order (tests, replay). CurrentPosition is the first file's first event;
// Open(file:offset) starts at the named file (by base name) and skips the events before
// `offset` except FORMAT_DESCRIPTION, as a server's dump does. The source ends at the end of
// the last file, which ends the capture (CaptureService::Wait returns).
// Thread-safety: as BinlogSourceFactory (Interrupt does nothing: reading files never blocks).
class FileSourceFactory : public BinlogSourceFactory {
 public:
  explicit FileSourceFactory(std::vector<std::string> paths);
  Result<BinlogPosition> CurrentPosition() override;
  Result<std::unique_ptr<BinlogSource>> Open(const BinlogPosition& start) override;
  void Interrupt() override {}
  void Resume() override {}
  std::string Describe() const override;

 private:
  class Source;
  std::vector<std::string> paths_;
};

// Checks that the server writes a binlog replsync can replicate: log_bin ON, binlog_format ROW,
// binlog_row_image FULL, binlog_row_metadata FULL (when the server has it). Returns
// InvalidArgument listing every setting that is wrong and the line to put in the server's
// configuration.
Status CheckBinlogSettings(SqlSession& conn);

// The options of a binlog connection to the server `mysql` describes, as the capture reads it
// (its replica id, heartbeat, timeouts, TLS), from `start`; `follow`: wait for new events at the
// end rather than stop there.
MariadbSourceOptions SourceOptionsOf(const NodeConfig::Mysql& mysql, const BinlogPosition& start,
                                     bool follow);

}  // namespace replsync::capture
