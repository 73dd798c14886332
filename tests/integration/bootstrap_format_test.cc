// The bootstrap's chunk format and loader against two real MariaDB servers: tables with every
// column type MariaDB 10.11 has are read on the primary in chunks by key range (SelectList,
// Stream, AppendRow, KeyRangeWhere, KeyLiteral) and loaded on the secondary by ChunkLoader, then
// CHECKSUM TABLE and verify's VerifyTable must say the two are equal. Then what the loader
// promises: a range that held other rows ends exactly as the primary's, a chunk whose columns
// differ or that warns changes nothing, a connection killed in the middle leaves neither rows
// nor progress, the progress row's after_key continues a copy, a table without a key loads in
// pieces. Last, a rough speed of LoadChunk against INSERT statements (printed, not asserted).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apply/bootstrap/chunk_loader.h"
#include "apply/bootstrap/progress_store.h"
#include "sync/bootstrap/key_range.h"
#include "sync/bootstrap/row_format.h"
#include "sync/mysql/mariadb_connection.h"
#include "sync/mysql/mysql_session.h"
#include "sync/verify/table_verify.h"
#include "tests/harness/mariadb_server.h"

namespace replsync {
namespace {

using apply::ChunkLoad;
using apply::ChunkLoader;
using apply::ChunkLoaderOptions;
using apply::ProgressStore;
using apply::TableProgress;
using testing::MariadbServer;

constexpr char kChannel[] = "main";

// Every column type of MariaDB 10.11, with a composite key of an INT and a case-insensitive
// VARCHAR, a VIRTUAL and a STORED generated column and an INVISIBLE one.
constexpr char kEveryType[] =
    "CREATE TABLE allt (id INT NOT NULL, name VARCHAR(40) COLLATE utf8mb4_general_ci NOT NULL, "
    "ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED, "
    "dc DECIMAL(65,30), f FLOAT, f73 FLOAT(7,3), d DOUBLE, bt1 BIT(1), bt64 BIT(64), "
    "da DATE, dt DATETIME, dt6 DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME, tm6 TIME(6), y YEAR, "
    "ch CHAR(10), vc VARCHAR(100), lat VARCHAR(50) CHARACTER SET latin1, tt TINYTEXT, tx TEXT, "
    "mt MEDIUMTEXT, lt LONGTEXT, bn BINARY(8), vb VARBINARY(64), tb TINYBLOB, bl BLOB, "
    "mb MEDIUMBLOB, lb LONGBLOB, e ENUM('a','b','c with space'), s SET('x','y','z'), j JSON, "
    "g GEOMETRY, pt POINT REF_SYSTEM_ID=4326, ls LINESTRING, ip INET6, uu UUID, "
    "vg BIGINT AS (i * 2) VIRTUAL, sg VARCHAR(110) AS (CONCAT(vc, '!')) STORED, "
    "inv INT INVISIBLE, PRIMARY KEY (id, name)) DEFAULT CHARSET=utf8mb4";

// Hand-made rows with the edge values, then generated ones (so there are many chunks).
const char* const kEveryTypeRows[] = {
    // Every nullable column NULL.
    "INSERT INTO allt (id, name) VALUES (0, 'nulls')",
    // Empty strings and zero values; zero dates.
    "INSERT INTO allt (id, name, ti, si, mi, i, bi, ubi, dc, f, f73, d, bt1, bt64, da, dt, dt6, "
    "ts, tm, tm6, y, ch, vc, lat, tt, tx, mt, lt, bn, vb, tb, bl, mb, lb, e, s, j, ip, uu, inv) "
    "VALUES (1, '', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'0', b'0', '0000-00-00', '0000-00-00 00:00:00', "
    "'0000-00-00 00:00:00.000000', '0000-00-00 00:00:00', '00:00:00', '-838:59:59.000000', 0, '', "
    "'', '', '', '', '', '', '', '', '', '', '', '', 'a', '', '[]', '::', "
    "'00000000-0000-0000-0000-000000000000', 0)",
    // The bytes LOAD DATA treats specially, in every string and binary type; NULL's text.
    "INSERT INTO allt (id, name, ch, vc, tt, tx, mt, lt, bn, vb, tb, bl, mb, lb, inv) VALUES "
    "(1, 'A', 'a\\tb', 'x\\0y\\tz\\n\\\\\\\\N', '\\\\N', 'NULL', 'line\\nline\\r\\n', "
    "CONCAT('\\\\', REPEAT('z', 70000)), UNHEX('00090A5CFF'), UNHEX('00090A5CFF0D4E'), "
    "UNHEX('5C4E'), UNHEX('FF00FF'), UNHEX(REPEAT('5C0A09', 30000)), "
    "UNHEX(REPEAT('00FF', 100000)), -1)",
    // utf8mb4 4-byte characters; latin1 text; a trailing space.
    "INSERT INTO allt (id, name, vc, lat, tx, j, ch) VALUES (1, 'b\xF0\x9F\x98\x80', "
    "'\xF0\x9F\x98\x80 \xF0\x9F\x8D\xA3 end ', _latin1 X'636166E920E0', "
    "'\xF0\x9F\x90\xA7', '{\"a\": [1, \"x\\\\ty\"], \"k\": \"\xF0\x9F\x98\x80\"}', 'sp  ')",
    // FLOAT / DOUBLE edge values: the largest, denormals, -0.0, 0.1.
    "INSERT INTO allt (id, name, f, f73, d) VALUES "
    "(2, 'fmax', 3.4028234663852886e38, 9999.999, 1.7976931348623157e308), "
    "(2, 'fmin', -3.4028234663852886e38, -9999.999, -1.7976931348623157e308), "
    "(2, 'denormal', 1.401298464324817e-45, 0.001, 4.9406564584124654e-324), "
    "(2, 'negzero', -0e0, -0e0, -0e0), "
    "(2, 'tenth', 0.1, 0.1, 0.1), "
    "(2, 'third', 1e0/3, 1e0/3, 1e0/3)",
    // DECIMAL(65,30), BIT(64), integer limits.
    "INSERT INTO allt (id, name, dc, bt64, bt1, ti, si, mi, i, bi, ubi) VALUES "
    "(3, 'max', 99999999999999999999999999999999999.999999999999999999999999999999, "
    "18446744073709551615, b'1', 127, 65535, 8388607, 2147483647, 9223372036854775807, "
    "18446744073709551615), "
    "(3, 'min', -99999999999999999999999999999999999.999999999999999999999999999999, "
    "9223372036854775808, b'0', -128, 0, -8388608, -2147483648, -9223372036854775808, 0), "
    "(3, 'tiny', 0.000000000000000000000000000001, 1, b'1', 1, 1, 1, 1, 1, 1)",
    // Temporal values (UTC: this session's time zone), ENUM, SET, spatial with SRID, INET6, UUID.
    "SET time_zone = '+00:00'; "
    "INSERT INTO allt (id, name, da, dt, dt6, ts, tm, tm6, y, e, s, g, pt, ls, ip, uu) VALUES "
    "(4, 'Time', '2024-02-29', '9999-12-31 23:59:59', '1000-01-01 00:00:00.000001', "
    "'2038-01-19 03:14:07.999999', '838:59:59', '-00:00:00.000001', 2155, 'c with space', "
    "'x,z', ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2))', 3857), "
    "ST_GeomFromText('POINT(1.5 -2.25)', 4326), ST_GeomFromText('LINESTRING(0 0,1e300 -1e-300)'), "
    "'2001:db8::ff00:42:8329', '123e4567-e89b-12d3-a456-426655440000'), "
    "(4, 'time2', '2020-00-15', '2020-02-00 01:02:03', '1970-01-01 00:00:01.000000', "
    "'1970-01-01 00:00:01.000000', '-838:59:59', '12:34:56.5', 1901, 'a', '', "
    "ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))'), "
    "ST_GeomFromText('POINT(0 0)', 4326), NULL, '::ffff:1.2.3.4', "
    "'ffffffff-ffff-ffff-ffff-ffffffffffff')",
    // Many generated rows; names of mixed case around chunk boundaries.
    "INSERT INTO allt (id, name, i, vc, bl, d, f, dt6, e, s, bt64, dc, j, ip, uu, inv) "
    "SELECT 10 + seq DIV 3, ELT(1 + seq % 3, 'a', 'B', 'c'), seq, CONCAT('row ', seq), "
    "UNHEX(SHA2(seq, 256)), seq / 3e0, seq / 7e0, '2024-02-29 12:34:56.123456' + INTERVAL seq "
    "SECOND, ELT(1 + seq % 3, 'a', 'b', 'c with space'), 'y', seq * 1234567, seq / 9, "
    "JSON_OBJECT('k', seq), CONCAT('fe80::', HEX(seq)), UUID(), seq FROM seq_1_to_600",
};

// A second keyed table whose key has the other literal kinds: ENUM, binary, DATETIME(6), BIT,
// FLOAT, UUID.
constexpr char kOddKey[] =
    "CREATE TABLE oddkey (e ENUM('z','a','m') NOT NULL, b VARBINARY(8) NOT NULL, "
    "dt DATETIME(6) NOT NULL, bt BIT(5) NOT NULL, f FLOAT NOT NULL, u UUID NOT NULL, v INT, "
    "PRIMARY KEY (e, b, dt, bt, f, u))";
constexpr char kOddKeyRows[] =
    "INSERT INTO oddkey SELECT ELT(1 + seq % 3, 'z', 'a', 'm'), UNHEX(IF(seq % 5 = 0, '00', "
    "'FF0A')), '2024-01-01 00:00:00.5' + INTERVAL seq % 4 SECOND, seq % 32, seq % 7 / 10, "
    "CONCAT('00000000-0000-0000-0000-', LPAD(seq, 12, '0')), seq FROM seq_1_to_400";

constexpr char kNoKey[] = "CREATE TABLE nokey (a INT, b VARCHAR(10), c BLOB)";
constexpr char kNoKeyRows[] =
    "INSERT INTO nokey SELECT seq % 5, IF(seq % 3 = 0, NULL, 'row'), UNHEX('0A09') FROM "
    "seq_1_to_250";

class BootstrapFormatTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    testing::MariadbServerOptions options;
    options.server_id = 61;
    auto a = MariadbServer::Start(options);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    primary_server_ = a->release();
    options.server_id = 62;
    auto b = MariadbServer::Start(options);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    secondary_server_ = b->release();
  }
  static void TearDownTestSuite() {
    delete primary_server_;
    delete secondary_server_;
    primary_server_ = secondary_server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(primary_server_, nullptr);
    ASSERT_NE(secondary_server_, nullptr);
    db_ =
        "bf_" +
        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()).substr(0, 40);
    for (MariadbServer* server : {primary_server_, secondary_server_}) {
      Exec(server, "DROP DATABASE IF EXISTS " + db_ + "; CREATE DATABASE " + db_);
    }
    Exec(secondary_server_, "DROP DATABASE IF EXISTS replsync");
    auto reader = MariadbConnection::Open(Options(primary_server_));
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    reader_ = std::move(*reader);
    ASSERT_TRUE(reader_->Execute("SET NAMES binary").ok());
    ASSERT_TRUE(reader_->Execute("SET SESSION time_zone = '+00:00'").ok());
    auto progress = MariadbConnection::Open(Options(secondary_server_));
    ASSERT_TRUE(progress.ok()) << progress.status().ToString();
    progress_session_ = std::move(*progress);
    store_ = std::make_unique<ProgressStore>(*progress_session_, kChannel);
    Status st = store_->Create();
    ASSERT_TRUE(st.ok()) << st.ToString();
    loader_ = OpenLoader();
    ASSERT_NE(loader_, nullptr);
  }

  static MysqlOptions Options(MariadbServer* server) {
    MysqlOptions o;
    o.host = server->host();
    o.port = server->port();
    o.user = server->user();
    o.password = server->password();
    return o;
  }
  static std::unique_ptr<ChunkLoader> OpenLoader(ChunkLoaderOptions options = {}) {
    auto loader = ChunkLoader::Open(Options(secondary_server_), std::move(options));
    EXPECT_TRUE(loader.ok()) << loader.status().ToString();
    return loader.ok() ? std::move(*loader) : nullptr;
  }
  static void Exec(MariadbServer* server, const std::string& sql) {
    Status st = server->Execute(sql);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\nSQL: " << sql.substr(0, 500);
  }
  void Both(const std::string& sql) {
    Exec(primary_server_, "USE " + db_ + "; " + sql);
    Exec(secondary_server_, "USE " + db_ + "; " + sql);
  }
  void OnPrimary(const std::string& sql) { Exec(primary_server_, "USE " + db_ + "; " + sql); }
  void OnSecondary(const std::string& sql) { Exec(secondary_server_, "USE " + db_ + "; " + sql); }
  static std::string Scalar(MariadbServer* server, const std::string& sql) {
    auto rows = server->Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString() << "\nSQL: " << sql;
    if (!rows.ok() || rows->empty() || (*rows)[0].empty()) return "<none>";
    return (*rows)[0][0];
  }
  // Every row of `table` on `server` as text (an exact comparison of small tables).
  std::vector<std::vector<std::string>> Rows(MariadbServer* server, const std::string& table,
                                             const std::string& order) {
    auto rows = server->Query("SELECT * FROM " + db_ + "." + table + " ORDER BY " + order);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? *rows : std::vector<std::vector<std::string>>{};
  }

  // One chunk read on the primary: the rows of (after, +inf) in key order, at most `limit`.
  struct Chunk {
    std::vector<bootstrap::Column> columns;
    std::string text;
    uint64_t rows = 0;
    std::vector<std::string> last_key;
    bool table_done = false;
  };
  Chunk ReadChunk(const std::string& table, const std::vector<std::string>& key_columns,
                  const std::vector<std::string>& after, uint64_t limit) {
    Chunk chunk;
    auto columns = bootstrap::ReadColumns(*reader_, db_, table);
    EXPECT_TRUE(columns.ok()) << columns.status().ToString();
    if (!columns.ok()) return chunk;
    chunk.columns = bootstrap::StoredColumns(*columns);
    auto positions = bootstrap::KeyPositions(chunk.columns, key_columns);
    EXPECT_TRUE(positions.ok()) << positions.status().ToString();
    if (!positions.ok()) return chunk;
    const std::string sql = "SELECT " + bootstrap::SelectList(chunk.columns) + " FROM " +
                            QuoteIdentifier(db_) + "." + QuoteIdentifier(table) +
                            bootstrap::KeyRangeWhere(key_columns, after, {}) + " ORDER BY " +
                            bootstrap::KeyOrder(key_columns) + " LIMIT " + std::to_string(limit);
    Status st = reader_->Stream(sql, [&](const MariadbConnection::RowView& row) {
      bootstrap::AppendRow(row.values, row.lengths, row.count, &chunk.text);
      ++chunk.rows;
      chunk.last_key.clear();
      for (size_t p : *positions) {
        chunk.last_key.push_back(
            bootstrap::KeyLiteral(chunk.columns[p], row.values[p], row.lengths[p]));
      }
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    chunk.table_done = chunk.rows < limit;
    if (chunk.table_done) chunk.last_key.clear();  // the last chunk reaches +infinity
    return chunk;
  }

  ChunkLoad LoadOf(const std::string& table, const std::vector<std::string>& key_columns,
                   const std::vector<std::string>& lower, const Chunk& chunk) {
    ChunkLoad load;
    load.channel = kChannel;
    load.db = db_;
    load.table = table;
    load.key_columns = key_columns;
    load.lower = lower;
    load.upper = chunk.last_key;
    load.columns = chunk.columns;
    load.text = chunk.text;
    load.rows = chunk.rows;
    load.bytes = chunk.text.size();
    load.table_done = chunk.table_done;
    return load;
  }

  // Copies a keyed table chunk by chunk from `after` on; returns the number of chunks.
  int CopyKeyed(const std::string& table, const std::vector<std::string>& key_columns,
                uint64_t chunk_rows, std::vector<std::string> after = {}) {
    int chunks = 0;
    while (true) {
      Chunk chunk = ReadChunk(table, key_columns, after, chunk_rows);
      Status st = loader_->LoadChunk(LoadOf(table, key_columns, after, chunk));
      EXPECT_TRUE(st.ok()) << st.ToString();
      if (!st.ok()) return chunks;
      ++chunks;
      if (chunk.table_done) return chunks;
      after = chunk.last_key;
    }
  }

  // Copies a table without a key in pieces of `piece_rows` (read in one snapshot).
  void CopyWhole(const std::string& table, uint64_t piece_rows) {
    ASSERT_TRUE(reader_->Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT").ok());
    auto columns = bootstrap::ReadColumns(*reader_, db_, table);
    ASSERT_TRUE(columns.ok()) << columns.status().ToString();
    const auto stored = bootstrap::StoredColumns(*columns);
    Status st = loader_->BeginWholeTable(kChannel, db_, table);
    ASSERT_TRUE(st.ok()) << st.ToString();
    for (uint64_t offset = 0;; offset += piece_rows) {
      Chunk piece;
      piece.columns = stored;
      st = reader_->Stream("SELECT " + bootstrap::SelectList(stored) + " FROM " + db_ + "." +
                               table + " LIMIT " + std::to_string(piece_rows) + " OFFSET " +
                               std::to_string(offset),
                           [&](const MariadbConnection::RowView& row) {
                             bootstrap::AppendRow(row.values, row.lengths, row.count, &piece.text);
                             ++piece.rows;
                             return Status::Ok();
                           });
      ASSERT_TRUE(st.ok()) << st.ToString();
      if (piece.rows == 0) break;
      st = loader_->LoadPiece(LoadOf(table, {}, {}, piece));
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    ASSERT_TRUE(reader_->Execute("COMMIT").ok());
    st = loader_->FinishWholeTable();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // CHECKSUM TABLE equal on both servers, and verify's VerifyTable says "equal".
  void ExpectEqual(const std::string& table, uint64_t rows) {
    const std::string checksum = "CHECKSUM TABLE " + db_ + "." + table + " EXTENDED";
    auto p = primary_server_->Query(checksum);
    auto s = secondary_server_->Query(checksum);
    ASSERT_TRUE(p.ok() && s.ok());
    ASSERT_EQ(p->size(), 1u);
    ASSERT_EQ(s->size(), 1u);
    EXPECT_NE((*p)[0][1], "\\N");
    EXPECT_EQ((*p)[0][1], (*s)[0][1]) << "CHECKSUM TABLE of " << table << " differs";
    EXPECT_EQ(Scalar(secondary_server_, "SELECT COUNT(*) FROM " + db_ + "." + table),
              std::to_string(rows));

    std::unique_ptr<MysqlSession> sessions[2];
    MariadbServer* servers[2] = {primary_server_, secondary_server_};
    for (int i = 0; i < 2; ++i) {
      auto session = MysqlSession::Open(Options(servers[i]));
      ASSERT_TRUE(session.ok()) << session.status().ToString();
      sessions[i] = std::move(*session);
      ASSERT_TRUE(sessions[i]->Execute("SET SESSION time_zone = '+00:00'").ok());
      ASSERT_TRUE(sessions[i]->Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT").ok());
    }
    verify::TableVerifyOptions options;
    options.chunk_rows = 100;
    options.chunk_target = std::chrono::milliseconds(0);
    auto result = verify::VerifyTable(sessions[0].get(), sessions[1].get(), db_, table, options);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    EXPECT_EQ(result->status, "equal")
        << table << ": " << result->error << " missing " << result->missing_rows << " extra "
        << result->extra_rows << " changed " << result->changed_rows << " e.g. "
        << (result->sample_keys.empty() ? "" : result->sample_keys[0]);
    EXPECT_EQ(result->rows, rows);
  }

  std::optional<TableProgress> ProgressOf(const std::string& table) {
    auto tables = store_->ReadTables();
    EXPECT_TRUE(tables.ok()) << tables.status().ToString();
    if (!tables.ok()) return std::nullopt;
    for (const TableProgress& t : *tables) {
      if (t.db == db_ && t.table == table) return t;
    }
    return std::nullopt;
  }

  static MariadbServer* primary_server_;
  static MariadbServer* secondary_server_;
  std::string db_;
  std::unique_ptr<MariadbConnection> reader_;
  std::unique_ptr<MariadbConnection> progress_session_;
  std::unique_ptr<ProgressStore> store_;
  std::unique_ptr<ChunkLoader> loader_;
};

MariadbServer* BootstrapFormatTest::primary_server_ = nullptr;
MariadbServer* BootstrapFormatTest::secondary_server_ = nullptr;

TEST_F(BootstrapFormatTest, EveryColumnTypeRoundTripsThroughChunks) {
  Both(kEveryType);
  for (const char* sql : kEveryTypeRows) OnPrimary(sql);
  const uint64_t rows =
      std::stoull(Scalar(primary_server_, "SELECT COUNT(*) FROM " + db_ + ".allt"));
  ASSERT_EQ(rows, 615u);
  // The premise: the edge values are what the statements meant.
  const std::string from = " FROM " + db_ + ".allt WHERE ";
  EXPECT_EQ(Scalar(primary_server_, "SELECT HEX(bn)" + from + "id = 1 AND name = 'A'"),
            "00090A5CFF000000");
  EXPECT_EQ(Scalar(primary_server_, "SELECT HEX(tt)" + from + "id = 1 AND name = 'A'"), "5C4E");
  EXPECT_EQ(Scalar(primary_server_, "SELECT HEX(vc)" + from + "id = 1 AND name = 'A'"),
            "780079097A0A5C5C4E");
  EXPECT_EQ(Scalar(primary_server_, "SELECT HEX(lat)" + from + "lat != ''"), "636166E920E0");
  EXPECT_EQ(Scalar(primary_server_, "SELECT HEX(name)" + from + "vc LIKE '%end%'"), "62F09F9880");
  EXPECT_EQ(Scalar(primary_server_, "SELECT ST_SRID(pt) FROM " + db_ + ".allt WHERE name = 'Time'"),
            "4326");

  const int chunks = CopyKeyed("allt", {"id", "name"}, 7);
  EXPECT_EQ(chunks, 88);  // 615 rows in chunks of 7: 87 full ones and the last
  ExpectEqual("allt", rows);
  // The secondary computed the generated columns; the invisible one was copied.
  EXPECT_EQ(Scalar(secondary_server_,
                   "SELECT CONCAT(SUM(vg), ',', COUNT(sg), ',', SUM(inv)) FROM " + db_ + ".allt"),
            Scalar(primary_server_,
                   "SELECT CONCAT(SUM(vg), ',', COUNT(sg), ',', SUM(inv)) FROM " + db_ + ".allt"));
  auto progress = ProgressOf("allt");
  ASSERT_TRUE(progress.has_value());
  EXPECT_TRUE(progress->done);
  EXPECT_EQ(progress->rows, rows);
  ASSERT_TRUE(progress->after_key.has_value());
  EXPECT_TRUE(progress->after_key->empty());  // the last chunk reached +infinity
}

TEST_F(BootstrapFormatTest, KeysOfEveryLiteralKindRoundTrip) {
  Both(kOddKey);
  OnPrimary(kOddKeyRows);
  const uint64_t rows =
      std::stoull(Scalar(primary_server_, "SELECT COUNT(*) FROM " + db_ + ".oddkey"));
  ASSERT_GT(rows, 300u);
  CopyKeyed("oddkey", {"e", "b", "dt", "bt", "f", "u"}, 9);
  ExpectEqual("oddkey", rows);
}

TEST_F(BootstrapFormatTest, ATableWithoutAKeyLoadsInPiecesAndReplacesWhatWasThere) {
  Both(kNoKey);
  OnPrimary(kNoKeyRows);
  OnSecondary("INSERT INTO nokey VALUES (99, 'stale', NULL), (1, 'row', UNHEX('0A09'))");
  CopyWhole("nokey", 60);  // 5 pieces (the last one 10 rows)
  ExpectEqual("nokey", 250);
  auto progress = ProgressOf("nokey");
  ASSERT_TRUE(progress.has_value());
  EXPECT_TRUE(progress->done);
  EXPECT_EQ(progress->rows, 250u);
  EXPECT_EQ(Scalar(secondary_server_, "SELECT COUNT(*) FROM " + db_ + ".nokey WHERE a = 99"), "0");
}

TEST_F(BootstrapFormatTest, AFailingPieceRollsTheWholeTableBack) {
  Both(kNoKey);
  OnPrimary(kNoKeyRows);
  OnSecondary("INSERT INTO nokey VALUES (99, 'stale', NULL)");
  ASSERT_TRUE(loader_->BeginWholeTable(kChannel, db_, "nokey").ok());
  Chunk piece;
  piece.columns = bootstrap::StoredColumns(*bootstrap::ReadColumns(*reader_, db_, "nokey"));
  piece.text = "1\trow\t\\N\n2\trow\t\\N\n";
  piece.rows = 2;
  ASSERT_TRUE(loader_->LoadPiece(LoadOf("nokey", {}, {}, piece)).ok());
  Chunk bad = piece;
  bad.text = "3\tfar too long for ten\t\\N\n";
  bad.rows = 1;
  Status st = loader_->LoadPiece(LoadOf("nokey", {}, {}, bad));
  EXPECT_EQ(st.code(), Status::Code::kServer) << st.ToString();
  // Everything rolled back: the old row is there, the first piece is not, no progress.
  EXPECT_EQ(Scalar(secondary_server_, "SELECT GROUP_CONCAT(a) FROM " + db_ + ".nokey"), "99");
  EXPECT_FALSE(ProgressOf("nokey").has_value());
  // Out of order now: no table is open.
  st = loader_->FinishWholeTable();
  EXPECT_EQ(st.code(), Status::Code::kInternal) << st.ToString();
}

// A piece that could not be read (the table dropped or changed under the round's snapshot): the
// bootstrapper abandons the table, whose rows are back as they were, and the same loader takes
// its next table (it refused every BeginWholeTable after, ending the bootstrap, before).
TEST_F(BootstrapFormatTest, AnAbandonedWholeTableIsRolledBackAndTheLoaderGoesOn) {
  Both(kNoKey);
  OnPrimary(kNoKeyRows);
  OnSecondary("INSERT INTO nokey VALUES (99, 'stale', NULL)");
  ASSERT_TRUE(loader_->BeginWholeTable(kChannel, db_, "nokey").ok());
  Chunk piece;
  piece.columns = bootstrap::StoredColumns(*bootstrap::ReadColumns(*reader_, db_, "nokey"));
  piece.text = "1\trow\t\\N\n2\trow\t\\N\n";
  piece.rows = 2;
  ASSERT_TRUE(loader_->LoadPiece(LoadOf("nokey", {}, {}, piece)).ok());
  loader_->AbandonWholeTable();
  EXPECT_EQ(Scalar(secondary_server_, "SELECT GROUP_CONCAT(a) FROM " + db_ + ".nokey"), "99");
  EXPECT_FALSE(ProgressOf("nokey").has_value());
  loader_->AbandonWholeTable();  // none open: nothing happens
  CopyWhole("nokey", 60);
  ExpectEqual("nokey", 250);
}

TEST_F(BootstrapFormatTest, ARangeThatHeldOtherRowsEndsExactlyAsThePrimarys) {
  Both("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))");
  OnPrimary("INSERT INTO t SELECT seq * 2, CONCAT('p', seq) FROM seq_1_to_100");  // 2..200
  // Before the first key, between keys, on keys with other values, after the last key.
  OnSecondary(
      "INSERT INTO t VALUES (-5, 'below'), (0, 'below'), (2, 'other'), (3, 'between'), "
      "(51, 'between'), (100, 'other'), (199, 'between'), (201, 'above'), (100000, 'above')");
  CopyKeyed("t", {"id"}, 13);
  ExpectEqual("t", 100);
  EXPECT_EQ(Rows(primary_server_, "t", "id"), Rows(secondary_server_, "t", "id"));
}

TEST_F(BootstrapFormatTest, AChunkWhoseColumnsDifferChangesNothing) {
  Both("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))");
  OnPrimary("INSERT INTO t VALUES (1, 'a'), (2, 'b')");
  // An instant ALTER the secondary has applied and the chunk's snapshot did not see.
  OnSecondary("INSERT INTO t VALUES (1, 'old'); ALTER TABLE t ADD COLUMN w INT");
  Chunk chunk = ReadChunk("t", {"id"}, {}, 100);
  ASSERT_EQ(chunk.rows, 2u);
  Status st = loader_->LoadChunk(LoadOf("t", {"id"}, {}, chunk));
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition) << st.ToString();
  EXPECT_EQ(st.message(), db_ +
                              ".t: the chunk's columns (id, v) are not the table's (id, v, w) at "
                              "this point");
  EXPECT_EQ(Scalar(secondary_server_, "SELECT GROUP_CONCAT(id, v) FROM " + db_ + ".t"), "1old");
  EXPECT_FALSE(ProgressOf("t").has_value());
  // The loader goes on with the next chunk.
  OnSecondary("ALTER TABLE t DROP COLUMN w");
  st = loader_->LoadChunk(LoadOf("t", {"id"}, {}, chunk));
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectEqual("t", 2);
}

// A table created or renamed in on the primary after the round's point: the secondary at that
// point does not have it, and the chunk is refused as one whose columns differ (the bootstrapper
// reads it again in a later round) instead of ending the bootstrap.
TEST_F(BootstrapFormatTest, AChunkOfATableNotHereAtThisPointIsRefusedAsChanged) {
  OnPrimary(
      "CREATE TABLE later_t (id INT PRIMARY KEY, v VARCHAR(20)); "
      "INSERT INTO later_t VALUES (1, 'a')");
  Chunk chunk = ReadChunk("later_t", {"id"}, {}, 100);
  ASSERT_EQ(chunk.rows, 1u);
  Status st = loader_->LoadChunk(LoadOf("later_t", {"id"}, {}, chunk));
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("no such table"), std::string::npos) << st.ToString();
  EXPECT_FALSE(ProgressOf("later_t").has_value());
  // The loader goes on once the table is there.
  OnSecondary("CREATE TABLE later_t (id INT PRIMARY KEY, v VARCHAR(20))");
  st = loader_->LoadChunk(LoadOf("later_t", {"id"}, {}, chunk));
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectEqual("later_t", 1);
}

TEST_F(BootstrapFormatTest, AWarningRollsTheChunkBackAndIsNamed) {
  Both("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))");
  OnPrimary("INSERT INTO t VALUES (1, 'a'), (2, 'much too long'), (3, 'c')");
  OnSecondary("INSERT INTO t VALUES (2, 'x'), (9, 'y'); ALTER TABLE t MODIFY v VARCHAR(3)");
  Chunk chunk = ReadChunk("t", {"id"}, {}, 100);
  Status st = loader_->LoadChunk(LoadOf("t", {"id"}, {}, chunk));
  EXPECT_EQ(st.code(), Status::Code::kServer) << st.ToString();
  EXPECT_FALSE(st.retryable());
  EXPECT_NE(st.message().find("1 warning(s)"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("Data truncated for column 'v' at row 2"), std::string::npos)
      << st.ToString();
  EXPECT_EQ(Scalar(secondary_server_, "SELECT GROUP_CONCAT(id, v ORDER BY id) FROM " + db_ + ".t"),
            "2x,9y");
  EXPECT_FALSE(ProgressOf("t").has_value());
}

TEST_F(BootstrapFormatTest, AKilledLoaderLeavesNeitherRowsNorProgress) {
  Both("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))");
  OnPrimary("INSERT INTO t SELECT seq, 'new' FROM seq_1_to_1000");
  OnSecondary("INSERT INTO t VALUES (5, 'old'), (2000, 'old')");
  Chunk chunk = ReadChunk("t", {"id"}, {}, 100000);
  for (const char* step : {"load", "progress", "commit"}) {
    SCOPED_TRACE(step);
    std::unique_ptr<MariadbConnection> killer;
    {
      auto k = MariadbConnection::Open(Options(secondary_server_));
      ASSERT_TRUE(k.ok());
      killer = std::move(*k);
    }
    ChunkLoader* loader = nullptr;
    bool killed = false;
    auto owned = OpenLoader({.before_step = [&](std::string_view at) {
      if (at != step) return;
      // The DELETE (and for later steps the LOAD) ran in the open transaction.
      Status k = killer->Execute("KILL " + std::to_string(loader->connection().thread_id()));
      EXPECT_TRUE(k.ok()) << k.ToString();
      killed = true;
    }});
    ASSERT_NE(owned, nullptr);
    loader = owned.get();
    Status st = loader->LoadChunk(LoadOf("t", {"id"}, {}, chunk));
    EXPECT_TRUE(killed);
    EXPECT_EQ(st.code(), Status::Code::kNetwork) << st.ToString();
    EXPECT_TRUE(loader->connection().broken());
    EXPECT_EQ(
        Scalar(secondary_server_, "SELECT GROUP_CONCAT(id, v ORDER BY id) FROM " + db_ + ".t"),
        "5old,2000old");
    EXPECT_FALSE(ProgressOf("t").has_value());
  }
  // A new loader loads the same chunk.
  Status st = loader_->LoadChunk(LoadOf("t", {"id"}, {}, chunk));
  ASSERT_TRUE(st.ok()) << st.ToString();
  ExpectEqual("t", 1000);
}

TEST_F(BootstrapFormatTest, TheProgressRowsAfterKeyContinuesTheCopy) {
  Both(kEveryType);
  for (const char* sql : kEveryTypeRows) OnPrimary(sql);
  // Two chunks, then a "restart": the copy continues from what the progress row says.
  Chunk first = ReadChunk("allt", {"id", "name"}, {}, 50);
  ASSERT_TRUE(loader_->LoadChunk(LoadOf("allt", {"id", "name"}, {}, first)).ok());
  Chunk second = ReadChunk("allt", {"id", "name"}, first.last_key, 50);
  ASSERT_TRUE(loader_->LoadChunk(LoadOf("allt", {"id", "name"}, first.last_key, second)).ok());
  auto progress = ProgressOf("allt");
  ASSERT_TRUE(progress.has_value());
  EXPECT_FALSE(progress->done);
  EXPECT_EQ(progress->rows, 100u);
  EXPECT_EQ(progress->bytes, first.text.size() + second.text.size());
  ASSERT_TRUE(progress->after_key.has_value());
  EXPECT_EQ(*progress->after_key, second.last_key);
  ASSERT_EQ(second.last_key.size(), 2u);
  EXPECT_EQ(second.last_key[1].rfind("_utf8mb4 X'", 0), 0u) << second.last_key[1];
  loader_ = OpenLoader();
  CopyKeyed("allt", {"id", "name"}, 100, *progress->after_key);
  ExpectEqual("allt", 615);
}

TEST_F(BootstrapFormatTest, ProgressStorePhasesMoveForwardOnly) {
  EXPECT_FALSE(store_->ReadBootstrap()->has_value());
  apply::BootstrapState state;
  state.token = "tok-1";
  state.start_file = "binlog.000007";
  state.start_offset = 1234;
  state.start_seq = 99;
  ASSERT_TRUE(store_->Start(state).ok());
  auto read = store_->ReadBootstrap();
  ASSERT_TRUE(read.ok() && read->has_value()) << read.status().ToString();
  EXPECT_EQ((*read)->token, "tok-1");
  EXPECT_EQ((*read)->phase, "copying");
  EXPECT_EQ((*read)->start_file, "binlog.000007");
  EXPECT_EQ((*read)->start_offset, 1234u);
  EXPECT_EQ((*read)->start_seq, 99u);
  EXPECT_FALSE((*read)->lenient);
  EXPECT_FALSE((*read)->started_at.empty());
  ASSERT_TRUE(store_->SetLenient(true).ok());
  ASSERT_TRUE(store_->SetPhase("objects").ok());
  Status back = store_->SetPhase("copying");
  EXPECT_EQ(back.code(), Status::Code::kFailedPrecondition) << back.ToString();
  ASSERT_TRUE(store_->SetPhase("failed", "the primary went away").ok());
  EXPECT_EQ(store_->SetPhase("done").code(), Status::Code::kFailedPrecondition);
  read = store_->ReadBootstrap();
  EXPECT_EQ((*read)->phase, "failed");
  EXPECT_EQ((*read)->error, "the primary went away");
  EXPECT_TRUE((*read)->lenient);
  EXPECT_EQ(store_->SetPhase("sideways").code(), Status::Code::kInvalidArgument);

  ASSERT_TRUE(store_->AddTable("app", "t").ok());
  ASSERT_TRUE(store_->AdvanceTable("app", "u", {"5", "_utf8mb4 X'41'"}, false, 10, 100).ok());
  ASSERT_TRUE(store_->AdvanceTable("app", "u", {"9", "'it''s'"}, false, 5, 50).ok());
  auto tables = store_->ReadTables();
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  ASSERT_EQ(tables->size(), 2u);
  EXPECT_EQ((*tables)[0], (TableProgress{"app", "t", std::nullopt, false, 0, 0}));
  EXPECT_EQ((*tables)[1],
            (TableProgress{"app", "u", std::vector<std::string>{"9", "'it''s'"}, false, 15, 150}));
  // The stored form is the JSON array.
  EXPECT_EQ(Scalar(secondary_server_,
                   "SELECT after_key FROM replsync.bootstrap_tables WHERE "
                   "tbl = 'u'"),
            "[\"9\",\"'it''s'\"]");
  ASSERT_TRUE(store_->Reset().ok());
  EXPECT_TRUE(store_->ReadTables()->empty());
  EXPECT_FALSE(store_->ReadBootstrap()->has_value());
}

// Rough speed of LoadChunk (8 MiB chunks) against multi-row INSERT statements, for a
// sysbench-like table of 200k rows. Printed, not asserted (the machine is shared).
TEST_F(BootstrapFormatTest, SpeedOfLoadChunkAgainstInserts) {
  const std::string create =
      "CREATE TABLE sb (id INT NOT NULL PRIMARY KEY, k INT NOT NULL DEFAULT 0, "
      "c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k))";
  Both(create);
  Both("CREATE TABLE sb_insert LIKE sb");
  OnPrimary(
      "INSERT INTO sb SELECT seq, FLOOR(RAND(seq) * 200000), CONCAT_WS('-', "
      "LPAD(FLOOR(RAND(seq + 1) * 1e11), 11, '0'), LPAD(FLOOR(RAND(seq + 2) * 1e11), 11, '0'), "
      "LPAD(FLOOR(RAND(seq + 3) * 1e11), 11, '0'), LPAD(FLOOR(RAND(seq + 4) * 1e11), 11, '0'), "
      "LPAD(FLOOR(RAND(seq + 5) * 1e11), 11, '0'), LPAD(FLOOR(RAND(seq + 6) * 1e11), 11, '0'), "
      "LPAD(FLOOR(RAND(seq + 7) * 1e11), 11, '0'), LPAD(FLOOR(RAND(seq + 8) * 1e11), 11, '0'), "
      "LPAD(FLOOR(RAND(seq + 9) * 1e11), 11, '0'), LPAD(FLOOR(RAND(seq + 10) * 1e11), 11, '0')), "
      "CONCAT_WS('-', LPAD(FLOOR(RAND(seq + 11) * 1e11), 11, '0'), LPAD(FLOOR(RAND(seq + 12) * "
      "1e11), 11, '0'), LPAD(FLOOR(RAND(seq + 13) * 1e11), 11, '0'), LPAD(FLOOR(RAND(seq + 14) * "
      "1e11), 11, '0'), LPAD(FLOOR(RAND(seq + 15) * 1e11), 11, '0')) FROM seq_1_to_200000");
  // The chunks, read once (8 MiB of text each).
  constexpr size_t kChunkBytes = 8u << 20;
  std::vector<Chunk> chunks;
  std::vector<std::vector<std::string>> lowers;
  std::vector<std::string> inserts;  // the same rows as INSERT statements of about 1 MiB
  {
    auto columns = bootstrap::ReadColumns(*reader_, db_, "sb");
    ASSERT_TRUE(columns.ok());
    const auto stored = bootstrap::StoredColumns(*columns);
    chunks.emplace_back();
    chunks.back().columns = stored;
    lowers.emplace_back();
    std::string insert;
    Status st = reader_->Stream(
        "SELECT " + bootstrap::SelectList(stored) + " FROM " + db_ + ".sb ORDER BY id",
        [&](const MariadbConnection::RowView& row) {
          Chunk& chunk = chunks.back();
          bootstrap::AppendRow(row.values, row.lengths, row.count, &chunk.text);
          ++chunk.rows;
          const std::string id(row.values[0], row.lengths[0]);
          if (chunk.text.size() >= kChunkBytes) {
            chunk.last_key = {id};
            chunks.emplace_back();
            chunks.back().columns = stored;
            lowers.push_back({id});
          }
          insert += insert.empty() ? "INSERT INTO " + db_ + ".sb_insert VALUES " : ",";
          insert += "(" + id + "," + std::string(row.values[1], row.lengths[1]) + "," +
                    QuoteString(std::string_view(row.values[2], row.lengths[2])) + "," +
                    QuoteString(std::string_view(row.values[3], row.lengths[3])) + ")";
          if (insert.size() >= (1u << 20)) {
            inserts.push_back(std::move(insert));
            insert.clear();
          }
          return Status::Ok();
        });
    ASSERT_TRUE(st.ok()) << st.ToString();
    if (!insert.empty()) inserts.push_back(std::move(insert));
    chunks.back().table_done = true;
  }
  uint64_t total_bytes = 0;
  for (const Chunk& c : chunks) total_bytes += c.text.size();

  const auto load_start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < chunks.size(); ++i) {
    Status st = loader_->LoadChunk(LoadOf("sb", {"id"}, lowers[i], chunks[i]));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  ExpectEqual("sb", 200000);

  auto session = MariadbConnection::Open(Options(secondary_server_));
  ASSERT_TRUE(session.ok());
  MariadbConnection& s = **session;
  ASSERT_TRUE(
      s.Execute("SET SESSION sql_log_bin = 0, foreign_key_checks = 0, unique_checks = 0").ok());
  const auto insert_start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < inserts.size(); ++i) {
    if (i % 8 == 0) {  // transactions of about 8 MiB, like the chunks
      ASSERT_TRUE(s.Execute("START TRANSACTION").ok());
    }
    Status st = s.Execute(inserts[i]);
    ASSERT_TRUE(st.ok()) << st.ToString();
    if (i % 8 == 7 || i + 1 == inserts.size()) {
      ASSERT_TRUE(s.Execute("COMMIT").ok());
    }
  }
  const double insert_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - insert_start).count();
  EXPECT_EQ(Scalar(secondary_server_, "SELECT COUNT(*) FROM " + db_ + ".sb_insert"), "200000");
  const double mb = static_cast<double>(total_bytes) / (1 << 20);
  std::printf(
      "[ speed    ] 200000 rows, %.1f MiB of LOAD DATA text in %zu chunks\n"
      "[ speed    ] LoadChunk: %.2f s, %.0f rows/s, %.1f MiB/s\n"
      "[ speed    ] INSERT (%zu statements of ~1 MiB): %.2f s, %.0f rows/s, %.1f MiB/s\n",
      mb, chunks.size(), load_s, 200000 / load_s, mb / load_s, inserts.size(), insert_s,
      200000 / insert_s, mb / insert_s);
}

}  // namespace
}  // namespace replsync
