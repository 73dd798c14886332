// Decoded binlog events: the value types BinlogDecoder produces.
//
// Layouts are described in the MySQL source documentation ("Binary log events",
// libbinlogevents) and the MariaDB knowledge base ("Replication Protocol", "Binlog Event
// Header", per-event pages). Small events are decoded into owned fields; ROWS events keep
// views into the event's bytes (valid until the next event is read) so that the hot path
// copies nothing.
// Thread-safety: value types.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "capture/binlog/table_map.h"
#include "sync/position.h"

namespace replsync::capture {

enum class EventType : uint8_t {
  kUnknown = 0,
  kStartV3 = 1,
  kQuery = 2,
  kStop = 3,
  kRotate = 4,
  kIntvar = 5,
  kLoad = 6,
  kSlave = 7,
  kCreateFile = 8,
  kAppendBlock = 9,
  kExecLoad = 10,
  kDeleteFile = 11,
  kNewLoad = 12,
  kRand = 13,
  kUserVar = 14,
  kFormatDescription = 15,
  kXid = 16,
  kBeginLoadQuery = 17,
  kExecuteLoadQuery = 18,
  kTableMap = 19,
  kPreGaWriteRows = 20,
  kPreGaUpdateRows = 21,
  kPreGaDeleteRows = 22,
  kWriteRowsV1 = 23,
  kUpdateRowsV1 = 24,
  kDeleteRowsV1 = 25,
  kIncident = 26,
  kHeartbeat = 27,
  kIgnorable = 28,
  kRowsQuery = 29,
  kWriteRowsV2 = 30,
  kUpdateRowsV2 = 31,
  kDeleteRowsV2 = 32,
  kGtid = 33,
  kAnonymousGtid = 34,
  kPreviousGtids = 35,
  kTransactionContext = 36,
  kViewChange = 37,
  kXaPrepare = 38,
  kPartialUpdateRows = 39,
  kTransactionPayload = 40,
  kHeartbeatV2 = 41,
  kGtidTagged = 42,
  // MariaDB
  kAnnotateRows = 160,
  kBinlogCheckpoint = 161,
  kMariadbGtid = 162,
  kGtidList = 163,
  kStartEncryption = 164,
  kQueryCompressed = 165,
  kWriteRowsCompressedV1 = 166,
  kUpdateRowsCompressedV1 = 167,
  kDeleteRowsCompressedV1 = 168,
  kWriteRowsCompressed = 169,
  kUpdateRowsCompressed = 170,
  kDeleteRowsCompressed = 171,
};

// "WRITE_ROWS_EVENT" style name for logs and the text dump; "UNKNOWN_EVENT(n)" otherwise.
std::string EventTypeName(uint8_t type);

constexpr size_t kEventHeaderSize = 19;
constexpr size_t kChecksumSize = 4;
constexpr uint16_t kFlagArtificial = 0x0020;
constexpr uint16_t kFlagIgnorable = 0x0080;

// The 19-byte header every event starts with (v4 binlogs).
struct EventHeader {
  uint32_t timestamp = 0;   // seconds since the epoch when the statement began
  uint8_t type = 0;         // EventType, kept raw so unknown numbers survive
  uint32_t server_id = 0;
  uint32_t event_size = 0;  // header + body + checksum
  uint32_t log_pos = 0;     // end position in the file (32-bit; wraps past 4 GiB); 0 if none
  uint16_t flags = 0;
  bool operator==(const EventHeader&) const = default;
};

enum class ChecksumAlg : uint8_t { kOff = 0, kCrc32 = 1, kUndefined = 255 };

enum class ServerFlavor : uint8_t { kMysql, kMariadb };

struct FormatDescriptionEvent {
  uint16_t binlog_version = 4;
  std::string server_version;  // "8.0.32", "10.11.6-MariaDB-log"
  uint32_t create_timestamp = 0;
  uint8_t header_length = 19;
  std::vector<uint8_t> post_header_lengths;  // index = event type - 1
  ChecksumAlg checksum = ChecksumAlg::kOff;
  ServerFlavor flavor = ServerFlavor::kMysql;
  bool operator==(const FormatDescriptionEvent&) const = default;
};

struct RotateEvent {
  uint64_t position = 0;
  std::string next_file;
  bool operator==(const RotateEvent&) const = default;
};

// QUERY status variables that matter for replaying or understanding a statement. Unknown ones are
// skipped by their length rules.
struct QueryStatusVars {
  std::optional<uint32_t> flags2;
  std::optional<uint64_t> sql_mode;
  std::optional<std::string> catalog;
  std::optional<uint16_t> auto_increment_increment;
  std::optional<uint16_t> auto_increment_offset;
  // character_set_client, collation_connection, collation_server
  std::optional<uint16_t> charset_client, collation_connection, collation_server;
  std::optional<std::string> time_zone;
  std::optional<uint16_t> lc_time_names;
  std::optional<uint16_t> collation_database;
  std::optional<uint64_t> table_map_for_update;
  std::optional<std::string> invoker_user, invoker_host;
  std::vector<std::string> updated_db_names;  // Q_UPDATED_DB_NAMES (MySQL)
  std::optional<uint32_t> microseconds;       // Q_MICROSECONDS / MariaDB Q_HRNOW
  std::optional<uint8_t> explicit_defaults_for_timestamp;
  std::optional<uint64_t> ddl_xid;            // MySQL Q_DDL_LOGGED_WITH_XID, MariaDB Q_XID
  std::optional<uint16_t> default_collation_for_utf8mb4;
  std::optional<uint8_t> sql_require_primary_key;
  std::optional<uint8_t> default_table_encryption;
  bool operator==(const QueryStatusVars&) const = default;
};

struct QueryEvent {
  uint32_t thread_id = 0;
  uint32_t exec_time = 0;
  uint16_t error_code = 0;
  std::string db;     // the session's default database
  std::string query;  // decompressed for MariaDB QUERY_COMPRESSED
  QueryStatusVars status;
  bool operator==(const QueryEvent&) const = default;
};

struct XidEvent {
  uint64_t xid = 0;
  bool operator==(const XidEvent&) const = default;
};

// MySQL GTID / ANONYMOUS_GTID / GTID_TAGGED, and MariaDB GTID (162).
struct GtidEvent {
  Gtid gtid;              // empty for ANONYMOUS_GTID
  bool anonymous = false;
  // MySQL
  uint8_t mysql_flags = 0;           // bit 0: may have been committed in a single-statement txn
  int64_t last_committed = 0;
  int64_t sequence_number = 0;
  uint64_t immediate_commit_us = 0;  // microseconds since the epoch; 0 if absent
  uint64_t original_commit_us = 0;
  uint64_t transaction_length = 0;
  uint32_t immediate_server_version = 0;
  uint32_t original_server_version = 0;
  // MariaDB
  uint8_t mariadb_flags = 0;   // FL_STANDALONE 0x01, FL_GROUP_COMMIT_ID 0x02, FL_DDL 0x20,
                               // FL_PREPARED_XA 0x40, FL_COMPLETED_XA 0x80, ...
  uint64_t commit_id = 0;      // with FL_GROUP_COMMIT_ID
  std::string xa_xid;          // with FL_PREPARED_XA / FL_COMPLETED_XA, as X'gtrid',X'bqual',fmt
  // True when the transaction has no terminating COMMIT/XID (MariaDB FL_STANDALONE: DDL).
  bool standalone() const { return (mariadb_flags & 0x01) != 0; }
  bool operator==(const GtidEvent&) const = default;
};

// MySQL PREVIOUS_GTIDS (35) and MariaDB GTID_LIST (163): the GTID state at a file's start.
struct GtidSetEvent {
  std::string gtid_set;  // MySQL "uuid:1-5:7,uuid2:1-3"; MariaDB "0-1-100,1-2-7"
  bool operator==(const GtidSetEvent&) const = default;
};

struct BinlogCheckpointEvent {
  std::string file;
  bool operator==(const BinlogCheckpointEvent&) const = default;
};

// MariaDB ANNOTATE_ROWS (160) and MySQL ROWS_QUERY (29): the statement that made the rows.
struct RowsQueryEvent {
  std::string query;
  bool operator==(const RowsQueryEvent&) const = default;
};

struct TableMapEvent {
  std::shared_ptr<const TableMap> table;
};

enum class RowsKind : uint8_t { kWrite, kUpdate, kDelete };

// WRITE/UPDATE/DELETE rows v0 (pre-GA), v1, v2, MariaDB compressed, and PARTIAL_UPDATE_ROWS.
// The views point into the event bytes (or its decompressed copy) and are valid until the next
// event is decoded. RowDecoder turns `rows` into row images.
struct RowsEvent {
  RowsKind kind = RowsKind::kWrite;
  bool partial_json = false;   // PARTIAL_UPDATE_ROWS_EVENT: after images may hold JSON diffs
  uint8_t version = 2;         // 0 pre-GA, 1, 2
  uint64_t table_id = 0;
  uint16_t flags = 0;          // STMT_END_F 0x01, NO_FOREIGN_KEY_CHECKS_F 0x02, ...
  std::string_view extra_data; // v2 extra row info (without its length prefix)
  uint64_t column_count = 0;
  std::string_view columns_before;  // present-column bitmap of the before image
  std::string_view columns_after;   // ... of the after image (UPDATE only; else empty)
  std::string_view rows;            // the row images
  const TableMap* table = nullptr;  // from the TABLE_MAP with this table_id; never null
  bool end_of_statement() const { return (flags & 0x01) != 0; }
};

struct XaPrepareEvent {
  bool one_phase = false;
  int32_t format_id = 0;
  std::string gtrid;
  std::string bqual;
  bool operator==(const XaPrepareEvent&) const = default;
};

struct HeartbeatEvent {
  std::string log_file;
  uint64_t position = 0;
  bool operator==(const HeartbeatEvent&) const = default;
};

struct IncidentEvent {
  uint16_t incident = 0;
  std::string message;
  bool operator==(const IncidentEvent&) const = default;
};

struct StopEvent {
  bool operator==(const StopEvent&) const = default;
};

// INTVAR (LAST_INSERT_ID / INSERT_ID), RAND seeds and USER_VAR: statement-based context,
// decoded for the text dump; ignored by row replication.
struct IntvarEvent {
  uint8_t kind = 0;
  uint64_t value = 0;
  bool operator==(const IntvarEvent&) const = default;
};
struct RandEvent {
  uint64_t seed1 = 0, seed2 = 0;
  bool operator==(const RandEvent&) const = default;
};
struct UserVarEvent {
  std::string name;
  bool is_null = true;
  bool operator==(const UserVarEvent&) const = default;
};

// An event replsync recognises as safe to skip: flagged LOG_EVENT_IGNORABLE_F, or a known event
// that carries nothing replication needs (START_ENCRYPTION is not among them: it is an error).
struct SkippedEvent {
  bool operator==(const SkippedEvent&) const = default;
};

using EventBody =
    std::variant<SkippedEvent, FormatDescriptionEvent, RotateEvent, QueryEvent, XidEvent, GtidEvent,
                 GtidSetEvent, BinlogCheckpointEvent, RowsQueryEvent, TableMapEvent, RowsEvent,
                 XaPrepareEvent, HeartbeatEvent, IncidentEvent, StopEvent, IntvarEvent, RandEvent,
                 UserVarEvent>;

struct Event {
  EventHeader header;
  BinlogPosition position;   // file and 64-bit start offset; inner events of a
                             // TRANSACTION_PAYLOAD carry the payload event's position
  uint64_t next_offset = 0;  // where the next event starts in the same file
  bool in_payload = false;   // came out of a TRANSACTION_PAYLOAD_EVENT
  EventBody body;
};

}  // namespace replsync::capture
