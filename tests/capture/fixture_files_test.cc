#include <filesystem>
#include <cstdio>
#include <map>
#include <gtest/gtest.h>
#include "capture/binlog_decoder.h"
#include "capture/file_binlog_source.h"
#include "capture/transaction_assembler.h"

namespace replsync::capture {
namespace {
TEST(FixtureFiles, Explore) {
  std::vector<std::string> files;
  for (auto& e : std::filesystem::recursive_directory_iterator(REPLSYNC_FIXTURES_DIR "/binlog")) {
    if (e.is_regular_file() && e.path().filename() != "SOURCES.md") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (auto& f : files) {
    auto src = FileBinlogSource::Open({f});
    ASSERT_TRUE(src.ok());
    BinlogReader reader(std::move(src).value());
    size_t n = 0;
    std::map<int,int> types;
    Status err;
    while (true) {
      auto ev = reader.Next();
      if (!ev.ok()) { err = ev.status(); break; }
      if (*ev == nullptr) break;
      ++n; types[(*ev)->header.type]++;
    }
    std::string t;
    for (auto [k, v] : types) t += std::to_string(k) + ":" + std::to_string(v) + " ";
    printf("%-70s %5zu %s %s\n", f.c_str() + sizeof(REPLSYNC_FIXTURES_DIR), n, err.ok() ? "OK" : err.ToString().c_str(), t.c_str());
  }
}
TEST(FixtureFiles, Explore2) {
  const char* names[] = {"rust_mysql_common/binlog_transaction_with_GTID_TAG.000001", "rust_mysql_common/binlog_transaction_previous_GTID_no_tag.000001","mysql-binlog-connector-java/mysql-bin.compressed","rust_mysql_common/mariadb-bin.000001","rust_mysql_common/minimal_row_metadata.000001","rust_mysql_common/mysql-enum-string-set.000001","rust_mysql_common/vector.binlog","rust_mysql_common/binlog-invisible-columns.000001","rust_mysql_common/mysql_type_bit.000001","rust_mysql_common/json.binlog.000001","mysql-cdc-rs/events/5.7/33_35_gtid_prev_gtid/log.bin", "rust_mysql_common/bug27213339-bin.000001", "rust_mysql_common/rpl_cross_version_default_utf8mb4_collation.000001","rust_mysql_common/ver_5_1-wl2325_r.001","mysql-cdc-rs/events/8.0/02_query_bigger/binlog.000733", "rust_mysql_common/rpl_atomic_ddl_rollback_full.000001"};
  for (auto n : names) {
    auto src = FileBinlogSource::Open({std::string(REPLSYNC_FIXTURES_DIR "/binlog/") + n});
    ASSERT_TRUE(src.ok());
    BinlogReader reader(std::move(src).value());
    printf("=== %s\n", n);
    int k = 0;
    while (true) {
      auto ev = reader.Next();
      ASSERT_TRUE(ev.ok()) << ev.status().ToString();
      if (*ev == nullptr) break;
      const Event& e = **ev;
      if (++k > 40) continue;
      printf("%s:%lu %s%s ", e.position.file.c_str(), (unsigned long)e.position.offset, EventTypeName(e.header.type).c_str(), e.in_payload ? "(in payload)" : "");
      std::visit([&](auto&& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, GtidEvent>) printf("gtid=%s anon=%d lc=%ld seq=%ld imm=%lu orig=%lu len=%lu isv=%u osv=%u mf=%d cid=%lu xa=%s", b.gtid.ToString().c_str(), b.anonymous, b.last_committed, b.sequence_number, b.immediate_commit_us, b.original_commit_us, b.transaction_length, b.immediate_server_version, b.original_server_version, b.mariadb_flags, b.commit_id, b.xa_xid.c_str());
        if constexpr (std::is_same_v<T, GtidSetEvent>) printf("set=%s", b.gtid_set.c_str());
        if constexpr (std::is_same_v<T, FormatDescriptionEvent>) printf("ver=%s alg=%d flavor=%d n=%zu", b.server_version.c_str(), (int)b.checksum, (int)b.flavor, b.post_header_lengths.size());
        if constexpr (std::is_same_v<T, QueryEvent>) { printf("db=%s q=%.80s", b.db.c_str(), b.query.c_str()); if (b.status.sql_mode) printf(" sql_mode=%lx", *b.status.sql_mode); if (b.status.charset_client) printf(" cs=%u/%u/%u", *b.status.charset_client, *b.status.collation_connection, *b.status.collation_server); if (b.status.ddl_xid) printf(" ddlxid=%lu", *b.status.ddl_xid); if (b.status.default_collation_for_utf8mb4) printf(" u8mb4=%u", *b.status.default_collation_for_utf8mb4); if (b.status.microseconds) printf(" us=%u", *b.status.microseconds); for (auto& d : b.status.updated_db_names) printf(" db:%s", d.c_str()); if (b.status.time_zone) printf(" tz=%s", b.status.time_zone->c_str()); if(b.status.catalog) printf(" cat=%s", b.status.catalog->c_str());}
        if constexpr (std::is_same_v<T, TableMapEvent>) { const TableMap& t = *b.table; printf("%lu %s.%s opt=%d pk=", t.table_id, t.db.c_str(), t.table.c_str(), t.has_optional_metadata); for (auto p : t.primary_key) printf("%u,", p); for (auto& c : t.columns) { printf("\n    [%s type=%d meta=%u null=%d uns=%d coll=%u vis=%d geo=%u dim=%u enum=", c.name.c_str(), (int)c.type, c.meta, c.nullable, c.is_unsigned, c.collation, c.visible, c.geometry_type, c.vector_dimensions); for (auto& v : c.enum_values) printf("%s|", v.c_str()); printf("]"); } }
        if constexpr (std::is_same_v<T, RowsEvent>) printf("kind=%d v=%d tid=%lu flags=%x extra=%zu cols=%lu before=%zu after=%zu rows=%zu partial=%d", (int)b.kind, b.version, b.table_id, b.flags, b.extra_data.size(), b.column_count, b.columns_before.size(), b.columns_after.size(), b.rows.size(), b.partial_json);
        if constexpr (std::is_same_v<T, XidEvent>) printf("xid=%lu", b.xid);
        if constexpr (std::is_same_v<T, RotateEvent>) printf("next=%s pos=%lu", b.next_file.c_str(), b.position);
        if constexpr (std::is_same_v<T, RowsQueryEvent>) printf("q=%.80s", b.query.c_str());
        if constexpr (std::is_same_v<T, UserVarEvent>) printf("name=%s null=%d", b.name.c_str(), b.is_null);
        if constexpr (std::is_same_v<T, BinlogCheckpointEvent>) printf("file=%s", b.file.c_str());
      }, e.body);
      printf("\n");
    }
  }
}
class PrintSink : public TransactionSink {
 public:
  std::string log;
  Status OnBegin(const TransactionInfo& t) override { log += "B(" + t.gtid.ToString() + "@" + t.begin.ToString() + ") "; return Status::Ok(); }
  Status OnRows(const TransactionInfo&, const Event&, const RowsEvent& r) override { log += "R "; return Status::Ok(); }
  Status OnDdl(const TransactionInfo&, const Event&, const DdlStatement& d) override { log += "D[" + d.sql.substr(0, 20) + "] "; return Status::Ok(); }
  Status OnCommit(const TransactionInfo& t) override { log += "C(" + t.end.ToString() + ")\n"; return Status::Ok(); }
  Status OnRollback(const TransactionInfo& t) override { log += "RB(" + t.end.ToString() + ")\n"; return Status::Ok(); }
};
TEST(FixtureFiles, Explore3) {
  std::vector<std::string> files;
  for (auto& e : std::filesystem::recursive_directory_iterator(REPLSYNC_FIXTURES_DIR "/binlog")) {
    if (e.is_regular_file() && e.path().filename() != "SOURCES.md") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (auto& f : files) {
    auto src = FileBinlogSource::Open({f});
    BinlogReader reader(std::move(src).value());
    PrintSink sink;
    TransactionAssembler asmb(&sink);
    Status err;
    while (true) {
      auto ev = reader.Next();
      if (!ev.ok()) { err = ev.status(); break; }
      if (*ev == nullptr) break;
      err = asmb.Feed(**ev);
      if (!err.ok()) break;
    }
    printf("=== %s %s in_txn=%d\n%s\n", f.c_str() + sizeof(REPLSYNC_FIXTURES_DIR), err.ToString().c_str(), asmb.in_transaction(), getenv("V") ? sink.log.c_str() : "");
  }
}
}  // namespace
}  // namespace replsync::capture
