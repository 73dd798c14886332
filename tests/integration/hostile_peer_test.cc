// Hostile peers against the real daemons (issue 13; DESIGN.md guarantee 8, "Only configured
// peers"; schemas/wire.md "Security" and "Refused input").
//
// While a real primary and secondary replicate rows and files, intruders reach the primary's
// port with raw ZeroMQ DEALER sockets — without CURVE, with a key that is not in [peers], with
// the real secondary's public key but another secret, and with a wrong server key — and send
// everything a peer could forge: a Hello under the secondary's name holding 2^64-1, an Ack of
// 2^64-1, TreeRequests and a FileResync naming "..", absolute and empty paths, a 16 MiB frame and
// a zstd bomb. A peer that IS in [peers] ("mallory") sends the same and gets only refusals. Then:
// the intruders received nothing, no file outside the repository was opened (inotify on a secret
// file beside it) and its contents are nowhere in either node's state or the secondary's
// repository, every row and file arrived, and neither daemon reports an error.
// The smaller cases: each end's keys misconfigured (the secondary names another primary key; the
// primary does not list the secondary), impostors at the primary's address (one holding the real
// primary's key sends the bomb), and a daemon without a key file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>
#include <zstd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "replsync.pb.h"
#include "sync/wire/curve_keys.h"
#include "sync/wire/transport.h"
#include "tests/harness/node_pair_test.h"

namespace replsync::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint64_t kMaxSeq = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kMaxCredit = std::numeric_limits<uint32_t>::max();
// Larger than the primary's receive limit (kServerMaxReceiveBytes, 8 MiB).
constexpr size_t kOversizeBytes = 16u << 20;
// What the zstd bomb declares (and really yields).
constexpr uint64_t kBombBytes = 2ull << 30;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A zstd bomb: one frame that declares 2 GiB and really holds them, as 16384 RLE blocks of
// 128 KiB of 'A' (4 bytes each: 64 KiB in all). Built by hand from RFC 8878 so that making it
// costs nothing; the test checks with libzstd that it is what it claims.
std::string ZstdBomb() {
  std::string frame = {'\x28', '\xB5', '\x2F', '\xFD'};  // magic number, little-endian
  frame += '\xC0';  // frame header descriptor: 8-byte content size, not single-segment
  frame += '\x38';  // window descriptor: exponent 7, mantissa 0 = 2^17 (128 KiB)
  for (int i = 0; i < 8; ++i) frame += static_cast<char>((kBombBytes >> (8 * i)) & 0xFF);
  constexpr uint32_t kBlock = 128u << 10;
  const uint64_t blocks = kBombBytes / kBlock;
  for (uint64_t i = 0; i < blocks; ++i) {
    // Block header: last-block bit, block type 1 (RLE), block size; then the repeated byte.
    const uint32_t header = (i + 1 == blocks ? 1u : 0u) | (1u << 1) | (kBlock << 3);
    for (int b = 0; b < 3; ++b) frame += static_cast<char>((header >> (8 * b)) & 0xFF);
    frame += 'A';
  }
  return frame;
}

// Unique bytes that look random (hex of std::random_device's output): what the secret file
// beside the primary's repository holds.
std::string UniqueSecret(size_t size) {
  std::random_device device;
  std::mt19937_64 rng((static_cast<uint64_t>(device()) << 32) ^ device());
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  while (out.size() < size) out += kHex[rng() & 15];
  return out;
}

// Pieces of `secret` to look for: every 64-byte slice at a multiple of 256. Whatever stored a
// copy (a journal, a relay, a file) keeps most of them as they are (RocksDB's LZ4 and its WAL
// leave unique bytes literal).
std::vector<std::string> SecretSlices(const std::string& secret) {
  std::vector<std::string> slices;
  for (size_t at = 0; at + 64 <= secret.size(); at += 256) slices.push_back(secret.substr(at, 64));
  return slices;
}

// The files under `root` (a folder or one file) holding one of `needles`, with the first found.
std::vector<std::string> FilesContaining(const std::string& root,
                                         const std::vector<std::string>& needles,
                                         const std::string& skip = "") {
  std::vector<std::string> found;
  auto check = [&](const std::filesystem::path& path) {
    if (!skip.empty() && path == skip) return;
    const std::string text = ReadFile(path.string());
    for (const auto& needle : needles) {
      if (text.find(needle) != std::string::npos) {
        found.push_back(path.string() + " holds \"" + needle + "\"");
        return;
      }
    }
  };
  std::error_code ec;
  if (std::filesystem::is_regular_file(root, ec)) {
    check(root);
    return found;
  }
  // Files may come and go under a running daemon (RocksDB): skip what vanished.
  for (auto it = std::filesystem::recursive_directory_iterator(
           root, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec)) check(it->path());
  }
  return found;
}

// One line of /proc/PID/status ("VmPeak") in KiB; 0 when unreadable.
uint64_t ProcStatusKib(int64_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(key + ":"))
      return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return 0;
}

pb::Envelope Versioned() {
  pb::Envelope envelope;
  envelope.set_version(kProtocolVersion);
  return envelope;
}

std::string HelloFrame(const std::string& name, uint64_t durable, uint32_t credit,
                       bool tree_only = false) {
  pb::Envelope e = Versioned();
  pb::Hello* hello = e.mutable_hello();
  hello->set_node_name(name);
  hello->set_durable_seq(durable);
  hello->set_applied_seq(durable);
  hello->set_credit(credit);
  hello->set_tree_only(tree_only);
  return e.SerializeAsString();
}

// Paths that leave the repository, or name none.
const std::vector<std::string> kTreeRequestPaths = {"../secret.txt", "/etc/passwd", "",
                                                    "a/../../x"};
const std::vector<std::string> kFileResyncPaths = {"../secret.txt", "", "/etc/shadow"};

// Everything a peer could forge, one frame each, in the order sent; the comments say what a
// configured peer gets for each (the intruders get nothing at all). The bomb travels last, in
// an Entries envelope and bare.
std::vector<std::string> HostileFrames(const std::string& bomb) {
  std::vector<std::string> frames;
  auto add = [&](const pb::Envelope& e) { frames.push_back(e.SerializeAsString()); };
  pb::Envelope ack = Versioned();
  ack.mutable_ack()->set_durable_seq(kMaxSeq);
  ack.mutable_ack()->set_applied_seq(kMaxSeq);
  // No credit: a configured peer that says Hello{durable 0} and acknowledges with credit
  // would be sent the journal, as it may.
  ack.mutable_ack()->set_credit(0);
  pb::Envelope resync = Versioned();
  for (const auto& path : kFileResyncPaths) resync.mutable_file_resync()->add_paths(path);
  pb::Envelope open = Versioned();
  open.mutable_tree_request()->set_request_id(1);
  open.mutable_tree_request()->set_open(true);
  open.mutable_tree_request()->set_deep(true);
  for (const auto& path : kTreeRequestPaths) open.mutable_tree_request()->add_resync_paths(path);
  pb::Envelope list = Versioned();
  list.mutable_tree_request()->set_request_id(2);
  list.mutable_tree_request()->set_session("1");
  for (const char* dir : {"..", "/etc", "a/../../x"}) list.mutable_tree_request()->add_dirs(dir);

  add(ack);     // 1: Error "say Hello" (no session)
  add(resync);  // 2: Error "say Hello" (no session)
  add(open);    // 3: TreeReply error: a Hello{tree_only} first
  // 4: the secondary's name with 2^64-1: fatal Error (beyond the journal's end).
  frames.push_back(HelloFrame("secondary", kMaxSeq, kMaxCredit));
  frames.push_back(HelloFrame("secondary", 0, 0, /*tree_only=*/true));  // 5: nothing
  add(open);                                                            // 6: TreeReply error: '..'
  add(list);                                                            // 7: TreeReply error: '..'
  frames.push_back(HelloFrame("secondary", 0, 0));  // 8: a session without credit: nothing
  add(resync);                                      // 9: Error "FileResync refused"
  pb::Envelope root = Versioned();
  root.mutable_file_resync()->add_paths("");
  add(root);  // 10: Error "FileResync refused" (the whole repository, once)
  add(ack);   // 11: nothing (clamped to what was sent: nothing)
  pb::Envelope heartbeat = Versioned();
  heartbeat.mutable_heartbeat()->set_last_seq(kMaxSeq);
  add(heartbeat);  // 12: nothing (clamped)
  pb::Envelope entries = Versioned();
  entries.mutable_entries()->add_seqs(1);
  entries.mutable_entries()->add_entries(bomb);
  entries.mutable_entries()->add_compressed(true);
  entries.mutable_entries()->set_primary_last_seq(1);
  add(entries);            // 13: nothing (a primary never decompresses what peers send)
  frames.push_back(bomb);  // 14: a bad frame, dropped
  pb::Envelope future = Versioned();
  future.set_version(999);
  future.mutable_hello()->set_node_name("secondary");
  add(future);  // 15: a bad frame, dropped
  return frames;
}

// A FileResync envelope of 16 MiB: one path longer than the primary accepts in a message.
std::string OversizeFrame() {
  pb::Envelope e = Versioned();
  e.mutable_file_resync()->add_paths(std::string(kOversizeBytes, 'a'));
  return e.SerializeAsString();
}

// A raw ZeroMQ socket the test drives as a hostile peer (DEALER, or a ROUTER posing as the
// primary), with a monitor of its connections: what it received and which events it saw.
// cppzmq throws on errors; a throw fails the test.
class RawPeer {
 public:
  struct Keys {
    std::string public_key;  // empty secret_key: no CURVE at all
    std::string secret_key;
    std::string server_key;  // a client's; a server (ROUTER) has none
  };

  RawPeer(zmq::context_t& context, zmq::socket_type type, const Keys& keys)
      : socket_(context, type) {
    static std::atomic<int> counter{0};
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::reconnect_ivl, 100);
    if (!keys.secret_key.empty()) {
      if (type == zmq::socket_type::router) {
        socket_.set(zmq::sockopt::curve_server, 1);
      } else {
        socket_.set(zmq::sockopt::curve_serverkey, keys.server_key);
        socket_.set(zmq::sockopt::curve_publickey, keys.public_key);
      }
      socket_.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    }
    const std::string monitor = "inproc://hostile-peer-monitor-" + std::to_string(++counter);
    if (zmq_socket_monitor(socket_.handle(), monitor.c_str(), ZMQ_EVENT_ALL) != 0) {
      throw zmq::error_t();
    }
    monitor_ = zmq::socket_t(context, zmq::socket_type::pair);
    monitor_.set(zmq::sockopt::linger, 0);
    monitor_.connect(monitor);
  }

  // The monitor is stopped before the sockets close: a monitored socket closed while its
  // monitor's peer is gone can leave the context's I/O thread stuck (libzmq 4.3), and the
  // sockets made next would never connect.
  ~RawPeer() {
    zmq_socket_monitor(socket_.handle(), nullptr, 0);
    DrainEvents();
    socket_.close();
    monitor_.close();
  }
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;

  void Connect(const std::string& endpoint) { socket_.connect(endpoint); }
  // Binds `endpoint`, retrying for a few seconds while the port is still held (a socket closed
  // just before releases it asynchronously).
  void Bind(const std::string& endpoint) {
    for (int i = 0;; ++i) {
      try {
        socket_.bind(endpoint);
        return;
      } catch (const zmq::error_t& e) {
        if (e.num() != EADDRINUSE || i == 50) throw;
        std::this_thread::sleep_for(milliseconds(100));
      }
    }
  }

  // Queues one frame (DEALER) without waiting; false when it could not even be queued.
  bool Send(const std::string& frame) {
    zmq::message_t message(frame.data(), frame.size());
    return socket_.send(message, zmq::send_flags::dontwait).has_value();
  }
  // ROUTER: sends `frame` to the peer with routing id `id`.
  void SendTo(const std::string& id, const std::string& frame) {
    zmq::message_t head(id.data(), id.size());
    zmq::message_t body(frame.data(), frame.size());
    (void)socket_.send(head, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)socket_.send(body, zmq::send_flags::dontwait);
  }

  // Receives for `duration` (messages as lists of frames; monitor events), calling
  // `on_message` for each message.
  template <typename F>
  void Listen(milliseconds duration, F&& on_message) {
    const auto deadline = std::chrono::steady_clock::now() + duration;
    while (true) {
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      zmq::pollitem_t items[2] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                  {monitor_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, left);
      if (items[0].revents & ZMQ_POLLIN) {
        std::vector<std::string> parts;
        bool more = true;
        while (more) {
          zmq::message_t part;
          if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
          parts.push_back(part.to_string());
          more = part.more();
        }
        received_.push_back(parts);
        on_message(parts);
      }
      if (items[1].revents & ZMQ_POLLIN) DrainEvents();
    }
  }
  void Listen(milliseconds duration) {
    Listen(duration, [](const std::vector<std::string>&) {});
  }

  const std::vector<std::vector<std::string>>& received() const { return received_; }
  bool Saw(uint16_t event) const { return events_.count(event) > 0; }
  std::string Events() const {
    std::string out;
    for (uint16_t e : events_) out += fmt::format("{}0x{:x}", out.empty() ? "" : " ", e);
    return out;
  }

 private:
  void DrainEvents() {
    for (;;) {
      zmq::message_t head;
      if (!monitor_.recv(head, zmq::recv_flags::dontwait)) return;
      if (head.size() >= 6) {
        uint16_t event = 0;
        std::memcpy(&event, head.data(), sizeof(event));
        events_.insert(event);
      }
      bool more = head.more();
      while (more) {
        zmq::message_t part;
        if (!monitor_.recv(part, zmq::recv_flags::dontwait)) break;
        more = part.more();
      }
    }
  }

  zmq::socket_t socket_;
  zmq::socket_t monitor_;
  std::vector<std::vector<std::string>> received_;
  std::set<uint16_t> events_;
};

// Rows and files written on the primary by a thread of its own until Stop(): one row per
// transaction into hostile_db.t, a file every fifth row. Only the thread uses the server.
class Load {
 public:
  Load(MariadbServer& server, std::string repository, int first)
      : server_(server), repository_(std::move(repository)), next_(first) {}
  ~Load() { Stop(); }
  void Start() {
    thread_ = std::thread([this] {
      while (!stop_) {
        const int n = next_++;
        Status st =
            server_.Execute(fmt::format("INSERT INTO hostile_db.t VALUES ({}, 'row {}')", n, n));
        if (!st.ok()) {
          error_ = st.ToString();
          return;
        }
        ++rows_;
        if (n % 5 == 0) {
          std::ofstream(fmt::format("{}/load/f{}.txt", repository_, n)) << "file " << n << "\n";
        }
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
  }
  // Stops the thread; the number of the next row it would have written.
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return next_;
  }
  int rows() const { return rows_; }
  const std::string& error() const { return error_; }

 private:
  MariadbServer& server_;
  std::string repository_;
  std::atomic<int> next_;
  std::atomic<int> rows_{0};
  std::atomic<bool> stop_{false};
  std::string error_;  // read after Stop()
  std::thread thread_;
};

class HostilePeerTest : public NodePairTest {
 protected:
  HostilePeerTest() : NodePairTest({"hostile_db"}, "hostile") {}

  std::string ConfigPath(const std::string& node) const { return dir_ + "/" + node + ".toml"; }
  std::string LogText(const std::string& node) const {
    return ReadFile(dir_ + "/" + node + ".log");
  }

  // Rewrites the node's configuration with every `from` replaced by `to`; the text must hold it.
  void ReplaceInConfig(const std::string& node, const std::string& from, const std::string& to) {
    std::string text = ReadFile(ConfigPath(node));
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from << " not in " << ConfigPath(node);
    for (; at != std::string::npos; at = text.find(from, at + to.size())) {
      text.replace(at, from.size(), to);
    }
    ASSERT_TRUE(WriteConfigFile(ConfigPath(node), text));
  }

  CurveKeyPair FreshKeys() {
    auto pair = GenerateCurveKeyPair();
    EXPECT_TRUE(pair.ok()) << pair.status().ToString();
    return pair.ok() ? *pair : CurveKeyPair{};
  }

  // The "primary" object of the primary's status file as it is now (empty while unreadable).
  NodeStatus::Primary PrimaryStatus() {
    std::optional<NodeStatus> status = ReadStatus("primary");
    return status && status->primary ? *status->primary : NodeStatus::Primary{};
  }
  static const NodeStatus::Peer* FindPeer(const NodeStatus::Primary& p, const std::string& name) {
    for (const auto& peer : p.peers) {
      if (peer.name == name) return &peer;
    }
    return nullptr;
  }

  uint64_t CountRows(MariadbServer& server) {
    auto rows = server.Query("SELECT COUNT(*) FROM hostile_db.t");
    return rows.ok() && !rows->empty() ? std::stoull((*rows)[0][0]) : 0;
  }

  zmq::context_t context_{1};
};

TEST_F(HostilePeerTest, IntrudersGetNothingAndThePairKeepsReplicating) {
  // The zstd bomb is what it claims: a 64 KiB frame that declares 2 GiB and decodes.
  const std::string bomb = ZstdBomb();
  ASSERT_EQ(ZSTD_getFrameContentSize(bomb.data(), bomb.size()), kBombBytes);
  ASSERT_EQ(ZSTD_findFrameCompressedSize(bomb.data(), bomb.size()), bomb.size());
  {
    std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    std::string out(1 << 20, '\0');
    ZSTD_inBuffer in{bomb.data(), bomb.size(), 0};
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    ASSERT_FALSE(ZSTD_isError(ZSTD_decompressStream(dctx.get(), &o, &in)));
    ASSERT_EQ(o.pos, out.size());
    ASSERT_EQ(out, std::string(out.size(), 'A'));
  }
  const std::vector<std::string> frames = HostileFrames(bomb);

  // The secret beside the primary's repository ("../secret.txt" from its root), watched for any
  // open from now on.
  const std::string secret_path =
      std::filesystem::path(RepositoryPath("primary")).parent_path().string() + "/secret.txt";
  const std::string secret = UniqueSecret(4096);
  ASSERT_TRUE(WriteConfigFile(secret_path, secret));  // 0600, as a secret would be
  const std::vector<std::string> slices = SecretSlices(secret);
  // The search finds the secret where it is (the check can fail).
  ASSERT_EQ(FilesContaining(secret_path, slices).size(), 1u);
  struct Fd {
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } inotify{inotify_init1(IN_NONBLOCK | IN_CLOEXEC)};
  ASSERT_GE(inotify.fd, 0);
  ASSERT_GE(inotify_add_watch(inotify.fd, secret_path.c_str(), IN_OPEN | IN_ACCESS), 0);

  // "mallory": a peer the primary lists in [peers], and that misbehaves.
  const CurveKeyPair mallory = FreshKeys();
  auto mallory_port = FreeLoopbackPort();
  ASSERT_TRUE(mallory_port.ok());
  {
    std::string text = ReadFile(ConfigPath("primary"));
    text +=
        fmt::format("\n[peers.mallory]\nendpoint = \"tcp://127.0.0.1:{}\"\npublic_key = \"{}\"\n",
                    *mallory_port, mallory.public_key);
    ASSERT_TRUE(WriteConfigFile(ConfigPath("primary"), text));
  }

  // The real pair replicates before, during and after the attack.
  std::filesystem::create_directories(RepositoryPath("primary") + "/load");
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Sql(*primary_, "CREATE DATABASE hostile_db");
  Sql(*primary_, "CREATE TABLE hostile_db.t (id INT PRIMARY KEY, v VARCHAR(64))");
  int next_row = 1;
  for (; next_row <= 20; ++next_row) {
    Sql(*primary_,
        fmt::format("INSERT INTO hostile_db.t VALUES ({}, 'before {}')", next_row, next_row));
  }
  std::ofstream(RepositoryPath("primary") + "/before.txt") << "before the attack\n";
  WaitSame("SELECT COUNT(*) FROM hostile_db.t");
  WaitForStatus("secondary", "applied everything the primary has", [](const NodeStatus& s) {
    return s.secondary && s.secondary->connected &&
           s.secondary->applied_seq == s.secondary->primary_last_seq;
  });
  const std::optional<NodeStatus> before = ReadStatus("secondary");
  ASSERT_TRUE(before && before->secondary);
  const uint64_t reconnects_before = before->secondary->reconnects;
  const uint64_t resyncs_before =
      PrimaryStatus().files ? PrimaryStatus().files->resyncs_requested : 0;

  Load load(*primary_, RepositoryPath("primary"), next_row);
  load.Start();

  // The intruders, one after another, each refused in another way than the one before (so the
  // primary's last refusal names each), the last by the ZAP handler. Each queues every hostile
  // frame, and a 16 MiB one on a second socket, then listens: nothing may come back, and the
  // primary must have seen and refused it.
  struct Intruder {
    std::string what;
    RawPeer::Keys keys;
    // One of these is in the primary's last_refused_peer afterwards. (Without CURVE, the
    // primary sees a mechanism mismatch, or the connection closed while it still answers the
    // greeting: libzmq reports whichever comes first.)
    std::vector<std::string> refusals;
  };
  const CurveKeyPair unknown = FreshKeys();
  const CurveKeyPair other = FreshKeys();
  const CurveKeyPair stranger = FreshKeys();
  const std::vector<Intruder> intruders = {
      {"the secondary's public key with another secret",
       {keys_["secondary"].public_key, other.secret_key, keys_["primary"].public_key},
       {"its CURVE handshake failed"}},
      {"no CURVE at all", {}, {"does not speak CURVE", "its handshake did not complete"}},
      {"a key of its own and a wrong server key",
       {stranger.public_key, stranger.secret_key, keys_["secondary"].public_key},
       {"its CURVE handshake failed"}},
      {"a key that is not in [peers]",
       {unknown.public_key, unknown.secret_key, keys_["primary"].public_key},
       {unknown.public_key + " is not in [peers]"}},
  };
  for (const Intruder& intruder : intruders) {
    SCOPED_TRACE("intruder with " + intruder.what);
    const uint64_t refused_before = PrimaryStatus().refused_peers;
    RawPeer peer(context_, zmq::socket_type::dealer, intruder.keys);
    RawPeer big(context_, zmq::socket_type::dealer, intruder.keys);
    peer.Connect(transport_);
    big.Connect(transport_);
    // ZeroMQ holds them until a handshake succeeds, and drops them with a refused connection
    // (a send after that finds no connection: not an error here).
    for (const auto& frame : frames) (void)peer.Send(frame);
    (void)big.Send(OversizeFrame());
    peer.Listen(milliseconds(1200));
    big.Listen(milliseconds(100));
    EXPECT_TRUE(peer.received().empty()) << peer.received().size() << " message(s) received";
    EXPECT_TRUE(big.received().empty()) << big.received().size() << " message(s) received";
    // It did reach the port, and no handshake succeeded.
    EXPECT_TRUE(peer.Saw(ZMQ_EVENT_CONNECTED)) << peer.Events();
    EXPECT_FALSE(peer.Saw(ZMQ_EVENT_HANDSHAKE_SUCCEEDED)) << peer.Events();
    EXPECT_FALSE(big.Saw(ZMQ_EVENT_HANDSHAKE_SUCCEEDED)) << big.Events();
    if (intruder.keys.public_key == unknown.public_key) {
      EXPECT_TRUE(peer.Saw(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)) << peer.Events();
    }
    WaitForStatus(
        "primary", "a refusal: " + intruder.refusals[0],
        [&](const NodeStatus& s) {
          if (!s.primary || s.primary->refused_peers <= refused_before) return false;
          for (const auto& text : intruder.refusals) {
            if (s.primary->last_refused_peer.find(text) != std::string::npos) return true;
          }
          return false;
        },
        seconds(10));
  }

  // mallory: its key proves it, so it gets answers — refusals only, never an entry, a listing
  // or a byte of the secret — and what it claims moves nothing.
  std::vector<pb::Envelope> errors, replies, other_messages;
  {
    RawPeer peer(context_, zmq::socket_type::dealer,
                 {mallory.public_key, mallory.secret_key, keys_["primary"].public_key});
    RawPeer big(context_, zmq::socket_type::dealer,
                {mallory.public_key, mallory.secret_key, keys_["primary"].public_key});
    peer.Connect(transport_);
    big.Connect(transport_);
    for (const auto& frame : frames) EXPECT_TRUE(peer.Send(frame));
    EXPECT_TRUE(big.Send(OversizeFrame()));
    peer.Listen(milliseconds(2000), [&](const std::vector<std::string>& parts) {
      pb::Envelope e;
      ASSERT_EQ(parts.size(), 1u);
      ASSERT_TRUE(e.ParseFromString(parts[0]));
      if (e.has_error()) {
        errors.push_back(e);
      } else if (e.has_tree_reply()) {
        replies.push_back(e);
      } else if (!e.has_heartbeat()) {
        other_messages.push_back(e);
      }
    });
    big.Listen(milliseconds(200));
    EXPECT_TRUE(peer.Saw(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
        << "mallory's key is in [peers] " << peer.Events();
    // The 16 MiB frame made the primary drop that connection, and nothing came back on it.
    EXPECT_TRUE(big.Saw(ZMQ_EVENT_HANDSHAKE_SUCCEEDED)) << big.Events();
    EXPECT_TRUE(big.Saw(ZMQ_EVENT_DISCONNECTED)) << big.Events();
    EXPECT_TRUE(big.received().empty());
    for (const auto& message : peer.received()) {
      for (const auto& part : message) {
        for (const auto& slice : slices) EXPECT_EQ(part.find(slice), std::string::npos);
      }
    }
  }
  const int last_row = load.Stop();
  ASSERT_TRUE(load.error().empty()) << load.error();
  EXPECT_GT(load.rows(), 20) << "the load hardly ran while the intruders did";

  auto texts = [](const std::vector<pb::Envelope>& list) {
    std::string out;
    for (const auto& e : list) {
      out += "  " + (e.has_error() ? e.error().message() : e.tree_reply().error()) + "\n";
    }
    return out;
  };
  EXPECT_TRUE(other_messages.empty()) << other_messages.size() << " message(s) of another kind, "
                                      << "the first: " << other_messages.front().DebugString();
  ASSERT_EQ(errors.size(), 5u) << texts(errors);
  EXPECT_NE(errors[0].error().message().find("say Hello"), std::string::npos) << texts(errors);
  EXPECT_NE(errors[1].error().message().find("say Hello"), std::string::npos) << texts(errors);
  EXPECT_TRUE(errors[2].error().fatal()) << texts(errors);
  EXPECT_NE(errors[2].error().message().find("journal ends at"), std::string::npos)
      << texts(errors);
  EXPECT_NE(errors[3].error().message().find("FileResync refused: path \"../secret.txt\" has a "
                                             "'..' component"),
            std::string::npos)
      << texts(errors);
  EXPECT_NE(errors[4].error().message().find("is empty"), std::string::npos) << texts(errors);
  for (size_t i = 0; i < errors.size(); ++i) EXPECT_EQ(errors[i].error().fatal(), i == 2);
  ASSERT_EQ(replies.size(), 3u) << texts(replies);
  EXPECT_NE(replies[0].tree_reply().error().find("Hello{tree_only}"), std::string::npos)
      << texts(replies);
  EXPECT_NE(replies[1].tree_reply().error().find("\"../secret.txt\" has a '..' component"),
            std::string::npos)
      << texts(replies);
  EXPECT_NE(replies[2].tree_reply().error().find("\"..\" has a '..' component"), std::string::npos)
      << texts(replies);
  for (const auto& reply : replies) {
    EXPECT_TRUE(reply.tree_reply().session().empty());
    EXPECT_TRUE(reply.tree_reply().root_hash().empty());
    EXPECT_EQ(reply.tree_reply().listings_size(), 0);
  }

  // After the attack: more rows and a file, and everything arrives.
  for (int i = 0; i < 20; ++i) {
    Sql(*primary_, fmt::format("INSERT INTO hostile_db.t VALUES ({}, 'after')", last_row + i));
  }
  std::ofstream(RepositoryPath("primary") + "/after.txt") << "after the attack\n";
  const uint64_t inserted = 20 + static_cast<uint64_t>(load.rows()) + 20;
  ASSERT_EQ(CountRows(*primary_), inserted);
  ExpectTablesConverge(seconds(60));
  ExpectTreesConverge(seconds(60));
  EXPECT_EQ(CountRows(*secondary_), inserted) << "the journal lost rows";
  WaitForStatus("secondary", "applied everything", [](const NodeStatus& s) {
    return s.secondary && s.secondary->applied_seq == s.secondary->primary_last_seq;
  });

  // The real secondary kept applying, with no error and no new connection.
  const std::optional<NodeStatus> secondary = ReadStatus("secondary");
  ASSERT_TRUE(secondary && secondary->secondary);
  EXPECT_EQ(secondary->state, "running") << StatusText("secondary");
  EXPECT_EQ(secondary->error, "") << StatusText("secondary");
  EXPECT_EQ(secondary->transport, "curve");
  EXPECT_EQ(secondary->secondary->receiver_state, "connected");
  EXPECT_NE(secondary->secondary->applier_state, "error");
  EXPECT_EQ(secondary->secondary->primary_refusal, "");
  EXPECT_EQ(secondary->secondary->entries_refused, 0u);
  EXPECT_EQ(secondary->secondary->reconnects, reconnects_before)
      << "the attack disturbed the real secondary's session";

  // The primary: capture and file capture running, the intruders counted, the last refusal
  // named, mallory's claims moved no position and touched no other peer.
  const std::optional<NodeStatus> primary = ReadStatus("primary");
  ASSERT_TRUE(primary && primary->primary);
  const NodeStatus::Primary& p = *primary->primary;
  EXPECT_EQ(primary->error, "") << StatusText("primary");
  EXPECT_EQ(p.capture_state, "running");
  ASSERT_TRUE(p.files.has_value());
  EXPECT_EQ(p.files->state, "watching") << StatusText("primary");
  EXPECT_EQ(p.files->resyncs_requested, resyncs_before) << "a forged FileResync was carried out";
  EXPECT_GE(p.refused_peers, intruders.size());
  EXPECT_NE(p.last_refused_peer.find("is not in [peers]"), std::string::npos)
      << p.last_refused_peer;
  EXPECT_GT(p.last_refused_peer_at, 0);
  EXPECT_GE(p.refused_requests, 7u);  // resync x3, tree x3, the Ack of 2^64-1
  EXPECT_GE(p.bad_frames, 2u);        // the bare bomb, the envelope of version 999
  const NodeStatus::Peer* real = FindPeer(p, "secondary");
  ASSERT_NE(real, nullptr);
  EXPECT_TRUE(real->connected);
  EXPECT_EQ(real->last_error, "");
  EXPECT_LE(real->durable_seq, p.journal.last_seq);
  const NodeStatus::Peer* forged = FindPeer(p, "mallory");
  ASSERT_NE(forged, nullptr);
  EXPECT_EQ(forged->durable_seq, 0u) << "an Ack of 2^64-1 moved mallory's position";
  EXPECT_EQ(forged->applied_seq, 0u);
  EXPECT_EQ(forged->sent_seq, 0u);
  const std::string primary_log = LogText("primary");
  EXPECT_NE(primary_log.find("is not in [peers]"), std::string::npos);
  EXPECT_NE(primary_log.find("refused a connection"), std::string::npos);
  EXPECT_NE(primary_log.find("path \"../secret.txt\" has a '..' component"), std::string::npos);

  // No file outside the repository was opened: not the secret (nobody opened it since the
  // watch began), and nothing came into being beside the repositories.
  char events[4096];
  const ssize_t n = ::read(inotify.fd, events, sizeof(events));
  EXPECT_EQ(n, -1) << "the secret beside the primary's repository was opened or read";
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(ReadFile(secret_path), secret);
  for (const char* name : {"x", "etc", "passwd", "shadow"}) {
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/" + name)) << dir_ << "/" << name;
  }
  // Its bytes are nowhere: not in either node's state (journal, relay, manifests, status), not
  // in the secondary's repository, not in the logs.
  for (const std::string where : {"primary-state", "secondary-state", "secondary-repository",
                                  "primary-repository", "primary.log", "secondary.log"}) {
    const auto found = FilesContaining(dir_ + "/" + where, slices);
    EXPECT_TRUE(found.empty()) << found.front();
  }
}

TEST_F(HostilePeerTest, SecondaryWithAnotherPrimaryKeyRefusesThePrimary) {
  const CurveKeyPair wrong = FreshKeys();
  ASSERT_NO_FATAL_FAILURE(
      ReplaceInConfig("secondary", keys_["primary"].public_key, wrong.public_key));
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  Sql(*primary_, "CREATE DATABASE hostile_db");
  WaitForStatus(
      "secondary", "primary_refusal: not the configured primary", [](const NodeStatus& s) {
        return s.secondary &&
               s.secondary->primary_refusal.find("not the configured primary") != std::string::npos;
      });
  const std::optional<NodeStatus> status = ReadStatus("secondary");
  ASSERT_TRUE(status && status->secondary);
  EXPECT_FALSE(status->secondary->connected);
  EXPECT_EQ(status->state, "waiting");
  EXPECT_EQ(status->secondary->received_seq, 0u) << "it took entries from a primary it refuses";
  EXPECT_NE(LogText("secondary").find("not the configured primary"), std::string::npos)
      << Tail("secondary");
  // The primary could not read its handshake either, and says so.
  WaitForStatus("primary", "a refused handshake",
                [](const NodeStatus& s) { return s.primary && s.primary->refused_peers > 0; });
  EXPECT_NE(LogText("primary").find("refused a connection"), std::string::npos) << Tail("primary");
  auto databases = secondary_->Query("SHOW DATABASES LIKE 'hostile_db'");
  ASSERT_TRUE(databases.ok());
  EXPECT_TRUE(databases->empty());
}

TEST_F(HostilePeerTest, PrimaryThatDoesNotListTheSecondaryRefusesItsKeyUntilItDoes) {
  const CurveKeyPair other = FreshKeys();
  ASSERT_NO_FATAL_FAILURE(
      ReplaceInConfig("primary", keys_["secondary"].public_key, other.public_key));
  ASSERT_NO_FATAL_FAILURE(StartBoth());
  const std::string refused = "refused this node's key " + keys_["secondary"].public_key;
  WaitForStatus("secondary", "primary_refusal: " + refused, [&](const NodeStatus& s) {
    return s.secondary && s.secondary->primary_refusal.find(refused) != std::string::npos;
  });
  EXPECT_NE(LogText("secondary").find(refused + ": add it to the primary's [peers]"),
            std::string::npos)
      << Tail("secondary");
  WaitForStatus("primary", "refused the secondary's key", [&](const NodeStatus& s) {
    return s.primary && s.primary->refused_peers > 0 &&
           s.primary->last_refused_peer.find(keys_["secondary"].public_key +
                                             " is not in [peers]") != std::string::npos;
  });
  EXPECT_NE(LogText("primary").find("is not in [peers]"), std::string::npos) << Tail("primary");
  const std::optional<NodeStatus> status = ReadStatus("secondary");
  ASSERT_TRUE(status && status->secondary);
  EXPECT_EQ(status->secondary->received_seq, 0u);

  // The operator adds the key: the secondary, still running, gets in and catches up.
  StopDaemon(primary_daemon_, SIGTERM);
  ASSERT_NO_FATAL_FAILURE(
      ReplaceInConfig("primary", other.public_key, keys_["secondary"].public_key));
  ASSERT_NO_FATAL_FAILURE(StartPrimaryDaemon());
  Sql(*primary_, "CREATE DATABASE hostile_db");
  Sql(*primary_, "CREATE TABLE hostile_db.t (id INT PRIMARY KEY, v VARCHAR(64))");
  Sql(*primary_, "INSERT INTO hostile_db.t VALUES (1, 'let in')");
  ExpectTablesConverge(seconds(30));
  WaitForStatus("secondary", "no refusal", [](const NodeStatus& s) {
    return s.secondary && s.secondary->connected && s.secondary->primary_refusal.empty();
  });
  EXPECT_NE(LogText("secondary").find("the primary accepts this node now"), std::string::npos)
      << Tail("secondary");
}

TEST_F(HostilePeerTest, ImpostorsAtThePrimarysAddressGetNothingAndBombsAreRefused) {
  // No primary daemon: whoever listens at its address is an impostor.
  ASSERT_NO_FATAL_FAILURE(StartSecondaryDaemon());
  const int64_t pid = secondary_daemon_->pid();
  const uint64_t vm_peak_before = ProcStatusKib(pid, "VmPeak");
  ASSERT_GT(vm_peak_before, 0u);

  // An impostor without the primary's key: the secondary comes, refuses it (and says why), and
  // sends it nothing, not even its Hello (its name, its positions). (The one without CURVE
  // comes last: after a mechanism mismatch libzmq gives the connection up, and the secondary
  // tries again only after its silence timeout.)
  auto impostor = [&](const std::string& what, const RawPeer::Keys& keys,
                      const std::string& refusal) {
    SCOPED_TRACE("impostor with " + what);
    zmq::context_t context(1);
    {
      RawPeer router(context, zmq::socket_type::router, keys);
      router.Bind(transport_);
      WaitForStatus("secondary", "primary_refusal: " + refusal, [&](const NodeStatus& s) {
        return s.secondary && s.secondary->primary_refusal.find(refusal) != std::string::npos;
      });
      router.Listen(milliseconds(500));
      EXPECT_TRUE(router.received().empty()) << router.received().size() << " message(s)";
      EXPECT_FALSE(router.Saw(ZMQ_EVENT_HANDSHAKE_SUCCEEDED)) << router.Events();
      EXPECT_TRUE(router.Saw(ZMQ_EVENT_ACCEPTED)) << "the secondary never came " << router.Events();
    }
    context.close();  // the port is free again
  };
  const CurveKeyPair fake = FreshKeys();
  impostor("a key of its own", {fake.public_key, fake.secret_key, ""},
           "not the configured primary");

  // One that holds the real primary's key (a stolen key, or a primary gone bad): the secondary
  // speaks to it, and refuses the bomb it answers with before allocating what it declares.
  {
    zmq::context_t context(1);
    {
      RawPeer rogue(context, zmq::socket_type::router,
                    {keys_["primary"].public_key, keys_["primary"].secret_key, ""});
      rogue.Bind(transport_);
      const std::string bomb = ZstdBomb();
      int hellos = 0;
      const auto deadline = std::chrono::steady_clock::now() + seconds(20);
      while (std::chrono::steady_clock::now() < deadline) {
        rogue.Listen(milliseconds(200), [&](const std::vector<std::string>& parts) {
          pb::Envelope in;
          if (parts.size() != 2 || !in.ParseFromString(parts[1]) || !in.has_hello()) return;
          ++hellos;
          pb::Envelope out = Versioned();
          pb::Entries* entries = out.mutable_entries();
          entries->add_seqs(in.hello().durable_seq() + 1);
          entries->add_entries(bomb);
          entries->add_compressed(true);
          entries->set_primary_last_seq(in.hello().durable_seq() + 1);
          rogue.SendTo(parts[0], out.SerializeAsString());
        });
        std::optional<NodeStatus> s = ReadStatus("secondary");
        if (s && s->secondary && s->secondary->entries_refused > 0) break;
      }
      ASSERT_GT(hellos, 0) << "the secondary never said Hello to a server with the primary's key\n"
                           << Tail("secondary");
      WaitForStatus("secondary", "entries_refused", [](const NodeStatus& s) {
        return s.secondary && s.secondary->entries_refused > 0;
      });
    }
    context.close();
  }
  const std::optional<NodeStatus> status = ReadStatus("secondary");
  ASSERT_TRUE(status && status->secondary);
  EXPECT_EQ(status->secondary->received_seq, 0u) << "the bomb went into the relay";
  EXPECT_NE(status->state, "error") << StatusText("secondary");
  EXPECT_NE(status->secondary->receiver_state, "error");
  EXPECT_TRUE(secondary_daemon_->running()) << Tail("secondary");
  EXPECT_NE(LogText("secondary").find("refused an entry from the primary"), std::string::npos)
      << Tail("secondary");
  EXPECT_NE(LogText("secondary").find("its zstd frame declares 2147483648 bytes"),
            std::string::npos)
      << Tail("secondary");
  // What the frame declares (2 GiB) was never reserved.
  const uint64_t vm_peak_after = ProcStatusKib(pid, "VmPeak");
  EXPECT_LT(vm_peak_after, vm_peak_before + (1u << 20))
      << "VmPeak grew by " << (vm_peak_after - vm_peak_before) << " KiB";

  impostor("no CURVE", {}, "does not speak CURVE");
  EXPECT_TRUE(secondary_daemon_->running()) << Tail("secondary");
}

TEST_F(HostilePeerTest, DaemonWithoutAKeyFileRefusesToStartAndSaysHowToMakeOne) {
  const std::string line = "secret_key_file = \"" + KeyPath("primary") + "\"";
  ASSERT_NO_FATAL_FAILURE(ReplaceInConfig("primary", line, ""));
  auto daemon = ChildProcess::Start(
      {REPLSYNC_BINARY_DIR "/tools/replsyncd", "--config", ConfigPath("primary")},
      dir_ + "/keyless.log");
  ASSERT_TRUE(daemon.ok());
  auto status = (*daemon)->Wait(seconds(20));
  ASSERT_TRUE(status.has_value()) << "replsyncd ran without a key";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << DescribeExitStatus(*status);
  const std::string log = (*daemon)->LogTail();
  EXPECT_NE(log.find("replsync keygen"), std::string::npos) << log;
  EXPECT_NE(log.find("secret_key_file"), std::string::npos) << log;
}

}  // namespace
}  // namespace replsync::testing
