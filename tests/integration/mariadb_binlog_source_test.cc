// MariadbBinlogSource against real MariaDB servers: what it reads live must be, event for event
// and byte for byte, what the server wrote to its binlog files (read with FileBinlogSource), at
// the same offsets, across starts at a position or a GTID, rotations, dropped connections,
// server crashes, and with clear errors for purged binlogs and refused credentials.
#include "capture/binlog/mariadb_binlog_source.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capture/binlog/binlog_decoder.h"
#include "capture/binlog/binlog_event.h"
#include "capture/binlog/file_binlog_source.h"
#include "tests/harness/mariadb_server.h"

namespace replsync::capture {
namespace {

using testing::MariadbServer;

constexpr uint8_t kRotate = 4;
constexpr uint8_t kFormatDescription = 15;
constexpr uint8_t kXid = 16;
constexpr uint8_t kHeartbeat = 27;
constexpr uint8_t kMariadbGtid = 162;
constexpr uint8_t kBinlogCheckpoint = 161;

uint32_t Le32(std::string_view d, size_t at) {
  const auto* u = reinterpret_cast<const uint8_t*>(d.data() + at);
  return uint32_t{u[0]} | uint32_t{u[1]} << 8 | uint32_t{u[2]} << 16 | uint32_t{u[3]} << 24;
}

// One event as a source handed it out, copied.
struct Captured {
  std::string file;
  uint64_t offset = 0;
  uint64_t next_offset = 0;
  std::string bytes;

  uint8_t type() const { return static_cast<uint8_t>(bytes[4]); }
  uint32_t log_pos() const { return Le32(bytes, 13); }
  uint16_t flags() const {
    return static_cast<uint16_t>(static_cast<uint8_t>(bytes[17]) | static_cast<uint8_t>(bytes[18])
                                                                       << 8);
  }
  // Sent by the server but not at this place in any file: artificial events and heartbeats.
  bool artificial() const {
    return (flags() & kFlagArtificial) != 0 || log_pos() == 0 || type() == kHeartbeat;
  }
  std::string Describe() const {
    return fmt::format("{} {}:{}-{} size {} flags 0x{:x} log_pos {}", EventTypeName(type()), file,
                       offset, next_offset, bytes.size(), flags(), log_pos());
  }
};

Captured Copy(const RawEvent& raw) {
  return Captured{std::string(raw.file), raw.offset, raw.next_offset, std::string(raw.data)};
}

std::atomic<uint32_t> next_replica_id{6000};

MariadbSourceOptions OptionsFor(MariadbServer& server) {
  MariadbSourceOptions o;
  o.host = server.host();
  o.port = server.port();
  o.user = server.user();
  o.password = server.password();
  o.replica_server_id = next_replica_id++;
  o.reconnect_min = std::chrono::milliseconds(50);
  o.reconnect_max = std::chrono::milliseconds(500);
  o.connect_timeout = std::chrono::seconds(5);
  return o;
}

// Calls Stop() on the source if the test takes longer than `limit`, so a bug cannot hang it.
class Watchdog {
 public:
  Watchdog(MariadbBinlogSource* source, std::chrono::seconds limit)
      : thread_([this, source, limit] {
          std::unique_lock<std::mutex> lock(mu_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            fired_ = true;
            source->Stop();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool fired() const { return fired_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> fired_{false};
  std::thread thread_;
};

// Everything a non-blocking source hands out until its end.
std::vector<Captured> ReadToEnd(BinlogSource& source) {
  std::vector<Captured> out;
  RawEvent raw;
  while (true) {
    auto r = source.Next(&raw);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !*r) break;
    out.push_back(Copy(raw));
  }
  return out;
}

// Every event of the server's binlog files, through FileBinlogSource.
std::vector<Captured> ReadFiles(MariadbServer& server) {
  auto files = server.BinlogFiles();
  EXPECT_TRUE(files.ok()) << files.status().ToString();
  if (!files.ok()) return {};
  auto source = FileBinlogSource::Open(*files);
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  if (!source.ok()) return {};
  return ReadToEnd(**source);
}

// The events of `all` at or after file:offset.
std::vector<Captured> From(const std::vector<Captured>& all, const std::string& file,
                           uint64_t offset) {
  std::vector<Captured> out;
  bool on = false;
  for (const auto& e : all) {
    if (e.file == file && e.offset >= offset) on = true;
    if (on) out.push_back(e);
  }
  return out;
}

// The first n events (all of them when there are fewer).
std::vector<Captured> Prefix(std::vector<Captured> events, size_t n) {
  if (events.size() > n) events.resize(n);
  return events;
}

std::vector<Captured> InFile(const std::vector<Captured>& live) {
  std::vector<Captured> out;
  for (const auto& e : live) {
    if (!e.artificial()) out.push_back(e);
  }
  return out;
}

// The server sends FORMAT_DESCRIPTION with LOG_EVENT_BINLOG_IN_USE_F (0x01) cleared: the
// active binlog file still has it set. Its CRC32 is computed with the flag cleared either way.
std::string Comparable(const Captured& e) {
  std::string b = e.bytes;
  if (e.type() == kFormatDescription) b[17] = static_cast<char>(b[17] & ~0x01);
  return b;
}

// Live in-file events must be the file events: same file, offsets and bytes, none missing.
void ExpectSameEvents(const std::vector<Captured>& live, const std::vector<Captured>& files) {
  if (live.size() != files.size()) {
    std::string listing;
    for (size_t i = 0; i < std::max(live.size(), files.size()); ++i) {
      listing +=
          fmt::format("{:3} live {:60} file {}\n", i, i < live.size() ? live[i].Describe() : "-",
                      i < files.size() ? files[i].Describe() : "-");
    }
    ADD_FAILURE() << "live has " << live.size() << " events, files " << files.size() << ":\n"
                  << listing;
    return;
  }
  for (size_t i = 0; i < live.size(); ++i) {
    SCOPED_TRACE(
        fmt::format("event {}: live {} / file {}", i, live[i].Describe(), files[i].Describe()));
    EXPECT_EQ(live[i].file, files[i].file);
    EXPECT_EQ(live[i].offset, files[i].offset);
    EXPECT_EQ(live[i].next_offset, files[i].next_offset);
    EXPECT_EQ(Comparable(live[i]), Comparable(files[i]));
  }
}

// The server writes a BINLOG_CHECKPOINT in the background once an older binlog's commits are
// durable, so one may land in the file after a non-blocking dump has ended. The live events
// must be the files' events exactly, and anything the files hold beyond them must be such a
// checkpoint (never a transaction the dump missed).
void ExpectSameEventsBarLateCheckpoints(const std::vector<Captured>& live,
                                        const std::vector<Captured>& files) {
  for (size_t i = live.size(); i < files.size(); ++i) {
    EXPECT_EQ(files[i].type(), kBinlogCheckpoint)
        << "event " << i << " in the files is missing from the dump: " << files[i].Describe();
  }
  ExpectSameEvents(live, Prefix(files, live.size()));
}

// Decodes every event (checksums verified); returns the decoded types.
std::vector<uint8_t> DecodeAll(const std::vector<Captured>& events) {
  BinlogDecoder decoder;
  std::vector<uint8_t> types;
  for (const auto& e : events) {
    RawEvent raw;
    raw.data = e.bytes;
    raw.file = e.file;
    raw.offset = e.offset;
    raw.next_offset = e.next_offset;
    Status st = decoder.Feed(raw);
    EXPECT_TRUE(st.ok()) << e.Describe() << ": " << st.ToString();
    if (!st.ok()) continue;
    Event ev;
    while (true) {
      auto r = decoder.Next(&ev);
      EXPECT_TRUE(r.ok()) << e.Describe() << ": " << r.status().ToString();
      if (!r.ok() || !*r) break;
      types.push_back(ev.header.type);
      EXPECT_EQ(ev.position.file, e.file);
      EXPECT_EQ(ev.position.offset, e.offset);
    }
  }
  return types;
}

// The GTID (as "d-s-n") of a MariaDB GTID event.
std::string GtidOf(const Captured& e) {
  BinlogDecoder decoder;
  RawEvent raw;
  raw.data = e.bytes;
  raw.file = e.file;
  raw.offset = e.offset;
  raw.next_offset = e.next_offset;
  if (!decoder.Feed(raw).ok()) return "";
  Event ev;
  auto r = decoder.Next(&ev);
  if (!r.ok() || !*r) return "";
  const auto* gtid = std::get_if<GtidEvent>(&ev.body);
  return gtid ? gtid->gtid.ToString() : "";
}

std::unique_ptr<MariadbServer> StartServer() {
  auto server = MariadbServer::Start();
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(*server) : nullptr;
}

// A few transactions of different shapes.
void MakeChanges(MariadbServer& server, const std::string& db, int n) {
  ASSERT_TRUE(server
                  .Execute(fmt::format(
                      "CREATE DATABASE IF NOT EXISTS {0}; "
                      "CREATE TABLE IF NOT EXISTS {0}.t (id INT PRIMARY KEY, v VARCHAR(100), "
                      "b BLOB) ENGINE=InnoDB",
                      db))
                  .ok());
  for (int i = 0; i < n; ++i) {
    Status st = server.Execute(
        fmt::format("INSERT INTO {0}.t VALUES ({1}, 'row {1}', REPEAT('x', {1})); "
                    "BEGIN; UPDATE {0}.t SET v = CONCAT(v, ' updated') WHERE id = {1}; "
                    "INSERT INTO {0}.t VALUES ({1} + 100000, NULL, NULL); COMMIT; "
                    "DELETE FROM {0}.t WHERE id = {1} + 100000",
                    db, i));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
}

// Position of the first event of `type_name` (SHOW BINLOG EVENTS naming) whose Info contains
// `info`, in `file`.
uint64_t FindEvent(MariadbServer& server, const std::string& file, const std::string& type_name,
                   const std::string& info) {
  auto rows = server.Query("SHOW BINLOG EVENTS IN '" + file + "'");
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  if (!rows.ok()) return 0;
  for (const auto& row : *rows) {
    // Log_name, Pos, Event_type, Server_id, End_log_pos, Info
    if (row[2] == type_name && row[5].find(info) != std::string::npos) return std::stoull(row[1]);
  }
  ADD_FAILURE() << "no " << type_name << " event with '" << info << "' in " << file;
  return 0;
}

TEST(MariadbBinlogSourceTest, NonBlockingDumpIsTheBinlogFilesEventByEvent) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  MakeChanges(*server, "a", 5);
  ASSERT_TRUE(server->Execute("FLUSH BINARY LOGS").ok());
  MakeChanges(*server, "b", 3);
  ASSERT_TRUE(server->Execute("FLUSH BINARY LOGS").ok());
  MakeChanges(*server, "c", 2);

  auto options = OptionsFor(*server);
  options.start = {"binlog.000001", 4};
  options.follow = false;
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Watchdog watchdog(source->get(), std::chrono::seconds(60));
  std::vector<Captured> live = ReadToEnd(**source);
  EXPECT_FALSE(watchdog.fired());
  // The end stays the end.
  RawEvent raw;
  auto again = (*source)->Next(&raw);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);

  std::vector<Captured> files = ReadFiles(*server);
  ASSERT_FALSE(files.empty());
  ASSERT_FALSE(live.empty());

  // The dump opens with an artificial ROTATE to the start; it does not move the position.
  EXPECT_EQ(live[0].type(), kRotate);
  EXPECT_TRUE(live[0].artificial());
  EXPECT_EQ(live[0].file, "binlog.000001");
  EXPECT_EQ(live[0].offset, 4u);
  EXPECT_EQ(live[0].next_offset, 4u);

  std::vector<Captured> in_file = InFile(live);
  ExpectSameEventsBarLateCheckpoints(in_file, files);
  // Every file was crossed: 3 files, each opened by a FORMAT_DESCRIPTION at offset 4.
  int descriptions = 0;
  for (const auto& e : in_file) {
    if (e.type() == kFormatDescription) {
      ++descriptions;
      EXPECT_EQ(e.offset, 4u);
    }
  }
  EXPECT_EQ(descriptions, 3);
  EXPECT_EQ(in_file.back().file, "binlog.000003");

  // The position is the end of the last file.
  auto size = std::filesystem::file_size(server->data_dir() + "/binlog.000003");
  EXPECT_EQ((*source)->position(), (BinlogPosition{"binlog.000003", size}));

  // Offsets agree with the server's own listing.
  auto rows = server->Query("SHOW BINLOG EVENTS IN 'binlog.000002'");
  ASSERT_TRUE(rows.ok());
  std::vector<Captured> second;
  for (const auto& e : in_file) {
    if (e.file == "binlog.000002") second.push_back(e);
  }
  ASSERT_EQ(second.size(), rows->size());
  for (size_t i = 0; i < second.size(); ++i) {
    EXPECT_EQ(second[i].offset, std::stoull((*rows)[i][1])) << second[i].Describe();
    EXPECT_EQ(second[i].next_offset, std::stoull((*rows)[i][4])) << second[i].Describe();
  }

  // The decoder takes the live stream as it is, artificial events included, CRC32 verified.
  std::vector<uint8_t> types = DecodeAll(live);
  EXPECT_EQ(types.size(), live.size());
}

TEST(MariadbBinlogSourceTest, StartAtFilePositionGivesTheEventsFromThere) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  MakeChanges(*server, "a", 4);
  // Start at the third transaction's GTID event.
  uint64_t start = FindEvent(*server, "binlog.000001", "Gtid", "BEGIN GTID 0-1-4");
  ASSERT_GT(start, 4u);

  auto options = OptionsFor(*server);
  options.start = {"binlog.000001", start};
  options.follow = false;
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Watchdog watchdog(source->get(), std::chrono::seconds(60));
  std::vector<Captured> live = ReadToEnd(**source);

  // An artificial ROTATE, then the FORMAT_DESCRIPTION (log_pos cleared: not in the file here),
  // neither moving the position; then the file's events from `start` on.
  ASSERT_GE(live.size(), 3u);
  EXPECT_EQ(live[0].type(), kRotate);
  EXPECT_EQ(live[0].offset, start);
  EXPECT_EQ(live[1].type(), kFormatDescription);
  EXPECT_TRUE(live[1].artificial()) << live[1].Describe();
  EXPECT_EQ(live[1].offset, start);
  EXPECT_EQ(live[1].next_offset, start);
  std::vector<Captured> in_file = InFile(live);
  ASSERT_FALSE(in_file.empty());
  EXPECT_EQ(in_file[0].offset, start);
  EXPECT_EQ(GtidOf(in_file[0]), "0-1-4");
  ExpectSameEventsBarLateCheckpoints(in_file, From(ReadFiles(*server), "binlog.000001", start));
  std::vector<uint8_t> types = DecodeAll(live);
  EXPECT_EQ(types.size(), live.size());
}

TEST(MariadbBinlogSourceTest, StartAtGtidBeginsWithTheNextTransaction) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  MakeChanges(*server, "a", 3);
  ASSERT_TRUE(server->Execute("FLUSH BINARY LOGS").ok());
  ASSERT_TRUE(server->Execute("INSERT INTO a.t VALUES (500, 'after flush', NULL)").ok());
  auto gtid_rows = server->Query("SELECT @@gtid_binlog_pos");
  ASSERT_TRUE(gtid_rows.ok());
  // 1 CREATE DATABASE, 1 CREATE TABLE, 3 x 3 transactions, then the insert in binlog.000002.
  ASSERT_EQ((*gtid_rows)[0][0], "0-1-12");

  auto options = OptionsFor(*server);
  options.start_gtid = "0-1-6";
  options.follow = false;
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Watchdog watchdog(source->get(), std::chrono::seconds(60));
  std::vector<Captured> live = ReadToEnd(**source);
  std::vector<Captured> in_file = InFile(live);

  // The first transaction is the one after 0-1-6.
  const Captured* first_gtid = nullptr;
  for (const auto& e : in_file) {
    if (e.type() == kMariadbGtid) {
      first_gtid = &e;
      break;
    }
  }
  ASSERT_NE(first_gtid, nullptr);
  EXPECT_EQ(GtidOf(*first_gtid), "0-1-7");
  EXPECT_EQ(first_gtid->offset, FindEvent(*server, "binlog.000001", "Gtid", "GTID 0-1-7"));
  // From there on, the stream is the files'.
  std::vector<Captured> after;
  bool on = false;
  for (const auto& e : in_file) {
    if (&e == first_gtid) on = true;
    if (on) after.push_back(e);
  }
  ExpectSameEventsBarLateCheckpoints(after,
                                     From(ReadFiles(*server), "binlog.000001", first_gtid->offset));
  EXPECT_EQ((*source)->position().file, "binlog.000002");
  std::vector<uint8_t> types = DecodeAll(live);
  EXPECT_EQ(types.size(), live.size());
}

TEST(MariadbBinlogSourceTest, LargeEventsAndTransactionsArriveWhole) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  // A 40 MB row event spans several 16 MB protocol packets (MyISAM: InnoDB limits a
  // transaction's BLOBs to 10% of its redo log); 200 000 rows make ~1 700 events.
  Status st = server->Execute(
      "CREATE DATABASE l; "
      "CREATE TABLE l.blobs (id INT PRIMARY KEY, b LONGBLOB) ENGINE=MyISAM; "
      "CREATE TABLE l.rows (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT); "
      "INSERT INTO l.blobs VALUES (1, REPEAT(x'00FF7F', 13333334)); "
      "INSERT INTO l.rows SELECT seq, CONCAT('value ', seq), seq * 7 "
      "FROM l.seq_1_to_200000");
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto options = OptionsFor(*server);
  options.start = {"binlog.000001", 4};
  options.follow = false;
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Watchdog watchdog(source->get(), std::chrono::seconds(120));
  auto began = std::chrono::steady_clock::now();
  std::vector<Captured> live = ReadToEnd(**source);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  uint64_t bytes = 0;
  size_t largest = 0;
  for (const auto& e : live) {
    bytes += e.bytes.size();
    largest = std::max(largest, e.bytes.size());
  }
  std::printf("read %zu events, %.1f MB in %.3f s (%.0f MB/s, %.0f events/s)\n", live.size(),
              bytes / 1e6, seconds, bytes / 1e6 / seconds, live.size() / seconds);
  EXPECT_GT(largest, 40000000u);
  ExpectSameEventsBarLateCheckpoints(InFile(live), ReadFiles(*server));
}

TEST(MariadbBinlogSourceTest, FollowSeesChangesMadeAfterTheDumpStarted) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  MakeChanges(*server, "a", 2);
  auto options = OptionsFor(*server);  // no start: the server's current position
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Watchdog watchdog(source->get(), std::chrono::seconds(60));
  BinlogPosition start = (*source)->position();
  EXPECT_EQ(start.file, "binlog.000001");
  EXPECT_EQ(start.offset, std::filesystem::file_size(server->data_dir() + "/binlog.000001"));

  // Changes after the dump started, including a rotation.
  std::thread writer([&] {
    MakeChanges(*server, "f", 1);
    ASSERT_TRUE(server->Execute("FLUSH BINARY LOGS").ok());
    ASSERT_TRUE(server->Execute("INSERT INTO f.t VALUES (77, 'after rotate', NULL)").ok());
  });
  std::vector<Captured> live;
  RawEvent raw;
  // Until the XID of the insert after the rotation.
  while (true) {
    auto r = (*source)->Next(&raw);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(*r);
    live.push_back(Copy(raw));
    if (live.back().type() == kXid && live.back().file == "binlog.000002") break;
  }
  writer.join();
  EXPECT_FALSE(watchdog.fired());
  // The source registered itself as a replica.
  auto hosts = server->Query("SHOW SLAVE HOSTS");
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  ASSERT_EQ(hosts->size(), 1u);
  EXPECT_EQ((*hosts)[0][0], std::to_string(options.replica_server_id));
  EXPECT_EQ((*hosts)[0][1].rfind("replsync", 0), 0u) << (*hosts)[0][1];
  std::vector<Captured> in_file = InFile(live);
  ASSERT_FALSE(in_file.empty());
  EXPECT_EQ(in_file[0].offset, start.offset);
  // (The server may write more after the XID, e.g. a BINLOG_CHECKPOINT.)
  ExpectSameEvents(in_file,
                   Prefix(From(ReadFiles(*server), start.file, start.offset), in_file.size()));
  EXPECT_EQ((*source)->position(), (BinlogPosition{"binlog.000002", in_file.back().next_offset}));
}

TEST(MariadbBinlogSourceTest, HeartbeatsComeWhileIdleAndKeepThePosition) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  MakeChanges(*server, "a", 1);
  auto options = OptionsFor(*server);
  options.heartbeat = std::chrono::milliseconds(200);
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Watchdog watchdog(source->get(), std::chrono::seconds(30));
  BinlogPosition start = (*source)->position();
  RawEvent raw;
  int heartbeats = 0;
  auto began = std::chrono::steady_clock::now();
  while (heartbeats < 3) {
    auto r = (*source)->Next(&raw);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    Captured e = Copy(raw);
    if (e.type() == kHeartbeat) {
      ++heartbeats;
      EXPECT_EQ(e.file, start.file);
      EXPECT_EQ(e.offset, start.offset);
      EXPECT_EQ(e.next_offset, start.offset);
    }
  }
  auto elapsed = std::chrono::steady_clock::now() - began;
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_EQ((*source)->position(), start);
}

TEST(MariadbBinlogSourceTest, KilledDumpConnectionResumesWithNoGapOrDuplicate) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  // 20 MB of row events: more than the socket buffers hold, so the server is still sending when
  // the dump is killed and the source must resume in the middle of the file.
  ASSERT_TRUE(server
                  ->Execute("CREATE DATABASE a; "
                            "CREATE TABLE a.big (id INT PRIMARY KEY, b MEDIUMBLOB)")
                  .ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(server
                    ->Execute(fmt::format(
                        "INSERT INTO a.big VALUES ({}, REPEAT(CHAR({}), 1000000))", i, 65 + i))
                    .ok());
  }
  auto options = OptionsFor(*server);
  options.start = {"binlog.000001", 4};
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Watchdog watchdog(source->get(), std::chrono::seconds(60));

  std::vector<Captured> live;
  RawEvent raw;
  auto read_until_xids = [&](int xids) {
    int seen = 0;
    while (seen < xids) {
      auto r = (*source)->Next(&raw);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_TRUE(*r);
      live.push_back(Copy(raw));
      if (live.back().type() == kXid) ++seen;
    }
  };
  // Kills the one binlog dump connection (waiting for it to be there).
  auto kill_dump = [&] {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (true) {
      auto ids = server->Query(
          "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'");
      ASSERT_TRUE(ids.ok()) << ids.status().ToString();
      if (ids->size() == 1) {
        ASSERT_TRUE(server->Execute("KILL " + (*ids)[0][0]).ok());
        return;
      }
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << ids->size() << " binlog dump connections";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };
  read_until_xids(2);
  kill_dump();  // while the server is busy sending
  read_until_xids(18);
  uint64_t end_of_big = (*source)->position().offset;
  MakeChanges(*server, "b", 1);
  read_until_xids(3);
  kill_dump();  // while the dump waits for new events
  MakeChanges(*server, "c", 1);
  read_until_xids(3);

  std::vector<Captured> in_file = InFile(live);
  ExpectSameEvents(in_file, Prefix(ReadFiles(*server), in_file.size()));
  // Each reconnect starts with a FORMAT_DESCRIPTION that is not in the file at that place (at
  // the resume position, which it does not move).
  std::vector<uint64_t> resumed_at;
  for (size_t i = 1; i < live.size(); ++i) {
    if (live[i].type() == kFormatDescription && live[i].artificial()) {
      resumed_at.push_back(live[i].offset);
      EXPECT_EQ(live[i].next_offset, live[i].offset);
      EXPECT_EQ(live[i - 1].type(), kRotate);  // after the artificial ROTATE
    }
  }
  ASSERT_EQ(resumed_at.size(), 2u);
  EXPECT_GT(resumed_at[0], 4u);
  EXPECT_LT(resumed_at[0], end_of_big);
  EXPECT_GT(resumed_at[1], end_of_big);
  std::vector<uint8_t> types = DecodeAll(live);
  EXPECT_EQ(types.size(), live.size());
}

TEST(MariadbBinlogSourceTest, ServerCrashAndRestartIsFollowedThrough) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  MakeChanges(*server, "a", 2);
  auto options = OptionsFor(*server);
  options.start = {"binlog.000001", 4};
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Watchdog watchdog(source->get(), std::chrono::seconds(90));
  std::vector<Captured> live;
  RawEvent raw;
  int xids = 0;
  while (xids < 2 * 3) {
    auto r = (*source)->Next(&raw);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    live.push_back(Copy(raw));
    if (live.back().type() == kXid) ++xids;
  }
  server->Kill();
  ASSERT_TRUE(server->Restart().ok());
  MakeChanges(*server, "b", 1);
  // binlog.000001 has no ROTATE (crash); the server moves on to binlog.000002 by itself.
  while (true) {
    auto r = (*source)->Next(&raw);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    live.push_back(Copy(raw));
    if (live.back().type() == kXid && live.back().file == "binlog.000002") {
      if (++xids == 2 * 3 + 3) break;
    }
  }
  std::vector<Captured> in_file = InFile(live);
  ExpectSameEvents(in_file, Prefix(ReadFiles(*server), in_file.size()));
  EXPECT_EQ(in_file.back().file, "binlog.000002");
}

TEST(MariadbBinlogSourceTest, PurgedBinlogIsNotFoundWithWhatTheServerHas) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  MakeChanges(*server, "a", 1);
  ASSERT_TRUE(server->Execute("FLUSH BINARY LOGS; FLUSH BINARY LOGS").ok());
  // A binlog is purged only once the binlog checkpoint has moved past it; retry until it has.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (true) {
    ASSERT_TRUE(server->Execute("PURGE BINARY LOGS TO 'binlog.000003'").ok());
    auto files = server->BinlogFiles();
    ASSERT_TRUE(files.ok());
    if (std::filesystem::path(files->front()).filename() == "binlog.000003") break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "binlog.000001 was never purged";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  auto options = OptionsFor(*server);
  options.start = {"binlog.000001", 4};
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_FALSE(source.ok());
  const Status& st = source.status();
  EXPECT_EQ(st.code(), Status::Code::kNotFound) << st.ToString();
  EXPECT_FALSE(st.retryable());
  EXPECT_NE(st.message().find("binlog.000001:4"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("binlog.000003 to binlog.000003"), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("re-bootstrap"), std::string::npos) << st.ToString();

  // The same for a GTID whose binlog is gone.
  options = OptionsFor(*server);
  options.start_gtid = "0-1-1";
  source = MariadbBinlogSource::Open(options);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), Status::Code::kNotFound) << source.status().ToString();
  EXPECT_NE(source.status().message().find("GTID 0-1-1"), std::string::npos)
      << source.status().ToString();
}

TEST(MariadbBinlogSourceTest, BadPasswordIsANonRetryableServerError) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto options = OptionsFor(*server);
  options.password = "wrong";
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), Status::Code::kServer) << source.status().ToString();
  EXPECT_FALSE(source.status().retryable());
  EXPECT_NE(source.status().message().find("1045"), std::string::npos)
      << source.status().ToString();
}

TEST(MariadbBinlogSourceTest, MissingReplicationPrivilegeIsNamed) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(server->Execute("CREATE USER 'plain'@'127.0.0.1' IDENTIFIED BY 'pw'").ok());
  auto options = OptionsFor(*server);
  options.user = "plain";
  options.password = "pw";
  options.start = {"binlog.000001", 4};
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), Status::Code::kServer) << source.status().ToString();
  EXPECT_FALSE(source.status().retryable());
  EXPECT_NE(source.status().message().find("REPLICATION SLAVE"), std::string::npos)
      << source.status().ToString();

  options.start = {};  // needs SHOW MASTER STATUS
  source = MariadbBinlogSource::Open(options);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), Status::Code::kServer) << source.status().ToString();
  EXPECT_NE(source.status().message().find("BINLOG MONITOR"), std::string::npos)
      << source.status().ToString();

  // With the privileges, the same user can read.
  ASSERT_TRUE(server
                  ->Execute("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO "
                            "'plain'@'127.0.0.1'")
                  .ok());
  options.follow = false;
  source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
}

TEST(MariadbBinlogSourceTest, UnreachableServerIsARetryableNetworkError) {
  auto port = testing::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  MariadbSourceOptions options;
  options.host = "127.0.0.1";
  options.port = *port;
  options.user = "root";
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), Status::Code::kNetwork) << source.status().ToString();
  EXPECT_TRUE(source.status().retryable());
}

TEST(MariadbBinlogSourceTest, StopUnblocksAWaitingNext) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto options = OptionsFor(*server);
  options.heartbeat = std::chrono::milliseconds(0);  // nothing will arrive while idle
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  RawEvent raw;
  // The artificial ROTATE and the FORMAT_DESCRIPTION come at once.
  for (int i = 0; i < 2; ++i) {
    auto r = (*source)->Next(&raw);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    (*source)->Stop();
  });
  auto began = std::chrono::steady_clock::now();
  Result<bool> r = false;
  // Events still due (e.g. GTID_LIST, BINLOG_CHECKPOINT) may come first.
  do {
    r = (*source)->Next(&raw);
  } while (r.ok());
  auto elapsed = std::chrono::steady_clock::now() - began;
  stopper.join();
  EXPECT_EQ(r.status().code(), Status::Code::kAborted) << r.status().ToString();
  EXPECT_LT(elapsed, std::chrono::seconds(3));
  // Stopped stays stopped.
  r = (*source)->Next(&raw);
  EXPECT_EQ(r.status().code(), Status::Code::kAborted);
}

TEST(MariadbBinlogSourceTest, StopDuringReconnectBackoffAborts) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto options = OptionsFor(*server);
  options.reconnect_min = std::chrono::milliseconds(5000);
  options.reconnect_max = std::chrono::milliseconds(5000);
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  server->Kill();
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    (*source)->Stop();
  });
  auto began = std::chrono::steady_clock::now();
  RawEvent raw;
  Result<bool> r = false;
  do {
    r = (*source)->Next(&raw);
  } while (r.ok());
  auto elapsed = std::chrono::steady_clock::now() - began;
  stopper.join();
  EXPECT_EQ(r.status().code(), Status::Code::kAborted) << r.status().ToString();
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(MariadbBinlogSourceTest, ReconnectGivesUpAfterTheConfiguredAttempts) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto options = OptionsFor(*server);
  options.reconnect_attempts = 3;
  options.reconnect_min = std::chrono::milliseconds(20);
  options.reconnect_max = std::chrono::milliseconds(40);
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Watchdog watchdog(source->get(), std::chrono::seconds(30));
  server->Kill();
  RawEvent raw;
  Result<bool> r = false;
  do {
    r = (*source)->Next(&raw);
  } while (r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNetwork) << r.status().ToString();
  EXPECT_NE(r.status().message().find("gave up after 3"), std::string::npos)
      << r.status().ToString();
  EXPECT_FALSE(watchdog.fired());
}

TEST(MariadbBinlogSourceTest, StartPositionAndGtidTogetherAreInvalid) {
  MariadbSourceOptions options;
  options.start = {"binlog.000001", 4};
  options.start_gtid = "0-1-1";
  auto source = MariadbBinlogSource::Open(options);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace replsync::capture
