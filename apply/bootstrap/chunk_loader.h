// ChunkLoader: loads bootstrap chunks into the secondary's database (schemas/bootstrap.md,
// "Loading a chunk"), each in one transaction: the DELETE of the chunk's key range (lower,
// upper], `LOAD DATA LOCAL` of its rows from memory (sync/bootstrap/row_format.h), and its table's
// progress row (apply/bootstrap/progress_store.h). After the commit the range holds exactly the
// chunk's rows, whatever it held before; after any failure it holds what it held before and the
// progress row is unchanged.
//
// The connection (MariadbConnection with local_infile) is set up once: sql_log_bin = 0 (the copy
// is not the secondary's own change), foreign_key_checks = 0 and unique_checks = 0 (the rows come
// from a consistent snapshot), sql_mode = 'NO_AUTO_VALUE_ON_ZERO' (a 0 in an AUTO_INCREMENT column
// stays 0), time_zone = '+00:00' (TIMESTAMP text is UTC on both sides), SET NAMES binary, READ
// COMMITTED.
//
// A table without a usable key is one chunk loaded in pieces inside one transaction:
// BeginWholeTable (START TRANSACTION, DELETE of every row), LoadPiece per piece, FinishWholeTable
// (progress row done, COMMIT).
//
// Errors: FailedPrecondition when the chunk's columns are not the table's stored columns at this
// point (an instant ALTER read through an old snapshot), or the table is not here at this point
// (created or renamed in on the primary after it; the caller reads the range again in a later
// round); Server (not retryable) when the LOAD warned (any warning: a value the secondary's
// column cannot hold exactly) or loaded another number of rows than the chunk holds, with the
// warnings in the message; otherwise the connection's (Network and broken() for a connection
// error: the loader must then be dropped; retryable Server errors for lock waits and deadlocks).
// Every failure rolls the transaction back (the server does when the connection died).
//
// Thread-safety: not thread-safe; one thread uses a loader at a time (with a MysqlThreadScope).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sync/bootstrap/row_format.h"
#include "sync/mysql/mariadb_connection.h"
#include "sync/status.h"

namespace replsync::apply {

// One chunk (or one piece of a table without a key) to load.
struct ChunkLoad {
  std::string channel;  // the progress row's channel
  std::string db, table;
  std::vector<std::string> key_columns;  // the chunking key (names); empty: no usable key
  // The key range (lower, upper] as SQL literals (sync/bootstrap/key_range.h): lower empty =
  // from -infinity, upper empty = to +infinity. Unused for pieces.
  std::vector<std::string> lower, upper;
  // The chunk's columns in data order (BootstrapReply.columns). Only the names are compared with
  // the secondary's stored columns; the LOAD statement is built from the secondary's own column
  // types (they are the same columns when the names are).
  std::vector<bootstrap::Column> columns;
  std::string_view text;    // the LOAD DATA text (decompressed); not owned
  uint64_t rows = 0;        // rows in `text`
  uint64_t bytes = 0;       // bytes counted in the progress row (the text's size)
  bool table_done = false;  // the table's last chunk: its progress row is marked done
};

struct ChunkLoaderOptions {
  // Called before each step of a chunk's transaction with the step's name: "begin", "check",
  // "delete", "load", "progress", "commit". For tests that interrupt a load at a given step.
  std::function<void(std::string_view step)> before_step;
};

class ChunkLoader {
 public:
  // Connects to the secondary's server with local_infile and sets the session up (see above).
  static Result<std::unique_ptr<ChunkLoader>> Open(const MysqlOptions& mysql,
                                                   ChunkLoaderOptions options = {});

  // Loads one chunk of a keyed table in one transaction (see the file comment).
  Status LoadChunk(const ChunkLoad& load);

  // A table without a usable key: opens the transaction and deletes every row of `db`.`table`.
  // Then LoadPiece for each piece (its columns checked, its text loaded, its rows and bytes
  // counted), then FinishWholeTable, which records the table done with the pieces' counts and
  // commits. Any failure rolls the whole table back (begin again). Internal when called out of
  // this order.
  Status BeginWholeTable(const std::string& channel, const std::string& db,
                         const std::string& table);
  Status LoadPiece(const ChunkLoad& piece);
  Status FinishWholeTable();
  // Rolls back the table without a key being loaded, when its next piece could not be read (the
  // table changed under the snapshot, the primary went away): its rows are what they were, and
  // the loader takes a BeginWholeTable again. Nothing happens when no such table is open.
  void AbandonWholeTable();

  // The loader's connection (its thread_id, for a KILL in tests; broken()).
  MariadbConnection& connection() { return *connection_; }

 private:
  ChunkLoader(std::unique_ptr<MariadbConnection> connection, ChunkLoaderOptions options);
  void Step(std::string_view step) const;
  // Inside the open transaction: the secondary's stored columns of the chunk's table, when
  // they are the chunk's (FailedPrecondition otherwise).
  Result<std::vector<bootstrap::Column>> CheckColumns(const ChunkLoad& load);
  // Inside the open transaction: loads `load.text` into the table (`stored`: CheckColumns').
  Status Load(const ChunkLoad& load, const std::vector<bootstrap::Column>& stored);
  // Rolls back after `failure` (when the connection still works) and returns `failure`.
  Status Fail(Status failure);

  std::unique_ptr<MariadbConnection> connection_;
  ChunkLoaderOptions options_;
  // The table without a key being loaded (BeginWholeTable .. FinishWholeTable).
  struct WholeTable {
    std::string channel, db, table;
    uint64_t rows = 0, bytes = 0;
  };
  std::unique_ptr<WholeTable> whole_;
};

}  // namespace replsync::apply
