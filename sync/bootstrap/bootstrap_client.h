// BootstrapClient: the secondary's client of the primary's bootstrap service
// (schemas/bootstrap.md "Messages"; the server is capture/bootstrap_server.h).
//
// It talks over a ClientTransport of its own (a DEALER to `[transport] primary`, CURVE with the
// node's key) and says Hello{tree_only} before each request: the primary then serves bootstrap
// requests on that connection, starts no replication session and names the client by its key's
// [peers] name. Each request carries an id, and only the reply with that id is taken (replies
// to earlier, timed-out requests are skipped). The primary keeps rounds per peer name, so
// several clients of one node (one per reader thread) share the rounds one of them began.
//
// Errors of every request: Unavailable (retryable) when the primary answers with `retry` (a DDL
// during the definitions, a table changed under the snapshot, a round closed: begin a new
// round), with the primary's message; Aborted (not retryable) for its other errors and a fatal
// Error message; Network (retryable) when the request cannot be sent, receiving fails, the
// connection ends before the reply came (the transport's connections_lost() moved: the primary's
// replsyncd stopped or restarted, and with it the request), or no reply comes within
// reply_timeout; Corruption for a reply that does not hold together (a chunk
// that does not decompress to its raw_bytes, or claims more than kMaxChunkBytes).
//
// Thread-safety: not thread-safe; one thread uses a client.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "replsync.pb.h"
#include "sync/bootstrap/row_format.h"
#include "sync/clock.h"
#include "sync/position.h"
#include "sync/status.h"
#include "sync/wire/transport.h"
#include "sync/wire/transport_security.h"
#include "sync/zstd.h"

namespace replsync {

class BootstrapClient {
 public:
  // The largest chunk text accepted (raw_bytes), refused before anything is allocated.
  static constexpr uint64_t kMaxChunkBytes = uint64_t{256} << 20;

  struct Options {
    // The longest wait for one reply (a round 0 waits for the primary's capture to pass its
    // point; a chunk may wait for the primary's throttle).
    std::chrono::seconds reply_timeout{300};
    // The reply deadlines go by this clock.
    Clock* clock = &SystemClock();
    // The name its Hello gives ([node] name). With CURVE the primary names the client by its
    // key instead; without, this must be a [peers] name.
    std::string node_name;
  };

  // A round of snapshots on the primary sharing one point (BEGIN_ROUND's reply).
  struct Round {
    uint64_t round = 0;
    BinlogPosition point;
    std::string gtid;
    uint32_t lock_ms = 0;
    // Round 0 (`definitions`): the first journal sequence at or after the point, kept for this
    // node by the primary; the CREATE DATABASE statements; the base tables and sequences.
    uint64_t journal_seq = 0;
    std::vector<std::string> databases;
    std::vector<pb::BootstrapTable> tables;
  };

  // A chunk (or a piece of a table without a key) as READ_CHUNK's reply carries it.
  struct Chunk {
    std::vector<bootstrap::Column> columns;  // the selected (stored) columns, in text order
    std::string text;                        // the rows in LOAD DATA text, decompressed
    uint64_t rows = 0;
    uint64_t raw_bytes = 0;             // text.size()
    uint64_t wire_bytes = 0;            // compressed, as shipped
    std::vector<std::string> last_key;  // the last row's key (SQL literals); empty: no row
    bool table_done = false;            // no row after this chunk
    bool more_pieces = false;           // a table without a key goes on (continue_piece)
  };

  // Connects a ZeroMQ DEALER to the primary's endpoint with `security` (it connects in the
  // background; a primary that is down shows on the first request). Errors: "connect to the
  // primary at <endpoint>: <reason>" (InvalidArgument for a malformed endpoint or key).
  static Result<std::unique_ptr<BootstrapClient>> Connect(const std::string& endpoint,
                                                          const ZmqClientSecurity& security,
                                                          const Options& options);
  // The same as node `config` asks the node at `endpoint` (its [peers] endpoint, or [transport]
  // primary): its keys (LoadTransportSecurity), its [node] name in the Hello. Errors: the keys',
  // then Connect's.
  static Result<std::unique_ptr<BootstrapClient>> Connect(const NodeConfig& config,
                                                          const std::string& endpoint,
                                                          Options options);

  // Over `transport` (unit tests: an in-process one); `endpoint` names the primary in messages.
  BootstrapClient(std::unique_ptr<ClientTransport> transport, std::string endpoint,
                  Options options);
  BootstrapClient(const BootstrapClient&) = delete;
  BootstrapClient& operator=(const BootstrapClient&) = delete;

  // Opens a round of `readers` snapshots (1..8); with `definitions` also the definitions and
  // the stream's start (round 0), pinned on the primary unless `keep_stream` (a secondary that
  // follows the stream copies tables entering its set: nothing is pinned).
  Result<Round> BeginRound(uint32_t readers, bool definitions, bool keep_stream = false);
  // The next chunk of `db`.`table` read by `reader` of `round`: the rows after the key `after`
  // (empty: from the table's start), about `max_bytes` of text; `continue_piece` asks for the
  // next piece of a table without a key.
  Result<Chunk> ReadChunk(uint64_t round, uint32_t reader, const std::string& db,
                          const std::string& table, const std::vector<std::string>& after,
                          uint64_t max_bytes, bool continue_piece);
  // Resync: the summary of the chunk ReadChunk would return (the rows after `after`, about
  // `max_bytes`; a table without a key whole) instead of its rows (READ_CHUNK summary_only).
  struct Summary {
    std::vector<bootstrap::Column> columns;  // the table's stored columns in the snapshot
    uint64_t rows = 0;
    std::string sha256;                 // sync/bootstrap/chunk_summary.h; "" for no rows
    bool exact = false;                 // false: the primary's server cut it short
    std::vector<std::string> last_key;  // the range's last key; empty: no row
    bool table_done = false;            // the range goes to +infinity
  };
  Result<Summary> SummarizeChunk(uint64_t round, uint32_t reader, const std::string& db,
                                 const std::string& table, const std::vector<std::string>& after,
                                 uint64_t max_bytes);
  // Exactly the rows of `db`.`table` in (after, upper] (`upper` empty: to +infinity), whatever
  // their size: the range a Summary named (READ_CHUNK bounded).
  Result<Chunk> ReadRange(uint64_t round, uint32_t reader, const std::string& db,
                          const std::string& table, const std::vector<std::string>& after,
                          const std::vector<std::string>& upper);
  // Releases the round's snapshots (a round already closed is fine).
  Status EndRound(uint64_t round);
  // The schema objects (and with `users` the accounts) at `point`, in creation order.
  Result<std::vector<pb::BootstrapObject>> ReadObjects(
      const BinlogPosition& point, bool users, const std::vector<std::string>& exclude_users);
  // The primary's current binlog position.
  Result<BinlogPosition> Position();
  // CHANGED_PATHS: the repository paths the primary's journal changed after `after_seq`, and
  // whether its journal still held every entry after it.
  struct ChangedPaths {
    std::vector<std::string> paths;
    bool complete = false;
  };
  Result<ChangedPaths> ChangedPathsAfter(uint64_t after_seq);

  // A path of the primary's repository as READ_FILES answers it, its content decompressed.
  struct RepositoryFile {
    std::string path;
    pb::BootstrapFile::Kind kind = pb::BootstrapFile::KIND_UNSPECIFIED;
    pb::FileMeta meta;
    std::string link_target;            // SYMLINK
    uint64_t offset = 0;                // FILE: where `data` starts
    std::string data;                   // FILE: content from `offset`
    bool eof = false;                   // FILE: `data` reaches its end
    std::vector<std::string> children;  // DIRECTORY: the names inside, sorted
  };
  // The repository paths `paths` (at most 256; the first one's content from `offset`) as they
  // are on the primary now, whole until about `max_bytes` of content (READ_FILES). The answer
  // holds the first paths in order, at least one: ask again for the rest, and for the rest of
  // the last one's content when it is a FILE without eof. Errors: as every request's; Aborted
  // when the primary refuses a path (not a repository path) or has no [repository]; Corruption
  // for an answer that names other paths or whose content does not decompress.
  Result<std::vector<RepositoryFile>> ReadFiles(const std::vector<std::string>& paths,
                                                uint64_t offset, uint64_t max_bytes);

  uint64_t requests() const { return requests_; }  // round trips so far

 private:
  // Sends `request` with a fresh id after a Hello{tree_only} and waits for the reply with that
  // id. Errors: see the file comment.
  Result<pb::BootstrapReply> Ask(pb::BootstrapRequest request);
  // `data`, one zstd frame of `raw_bytes` (a chunk's rows, a file's content), decompressed into
  // *out. Corruption naming `what` when it is not that.
  Status Decompress(const std::string& data, uint64_t raw_bytes, const std::string& what,
                    std::string* out);
  // A READ_CHUNK request for `reader` of `round` on `db`.`table` after `after`.
  static pb::BootstrapRequest ChunkRequest(uint64_t round, uint32_t reader, const std::string& db,
                                           const std::string& table,
                                           const std::vector<std::string>& after);
  // The chunk a READ_CHUNK reply carries (decompressed and checked); `what` names it.
  Result<Chunk> ChunkOf(const pb::BootstrapReply& reply, const std::string& what);

  std::unique_ptr<ClientTransport> transport_;
  std::string endpoint_;
  Options options_;
  ZstdDCtx dctx_;  // nullptr when zstd could not allocate (then one is made per chunk)
  uint64_t next_id_ = 0;
  uint64_t requests_ = 0;
};

}  // namespace replsync
