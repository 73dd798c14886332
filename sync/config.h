// NodeConfig: one node's TOML configuration file (see conf/*.toml and DESIGN.md, Contracts).
//
// Unknown sections or keys are errors (a typo must not silently fall back to a default); every
// error names the file, the key and what is expected.
// Thread-safety: value type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sync/status.h"

namespace replsync {

enum class NodeRole { kPrimary, kSecondary };

// How a MySQL connection uses TLS; the names are the MariaDB/MySQL clients' --ssl-mode values.
enum class MysqlSslMode {
  kDisabled,        // plain TCP; no ssl_* file may be set
  kPreferred,       // TLS when a ssl_* file is set and the server offers it, plain otherwise
  kRequired,        // TLS or no connection; the server's certificate is checked against
                    // ssl_ca when one is set
  kVerifyCa,        // TLS, and the server's certificate must be signed by ssl_ca (required)
  kVerifyIdentity,  // as VERIFY_CA, and the certificate must name the host connected to
};
// "DISABLED", "PREFERRED", ... as written in the configuration.
const char* MysqlSslModeName(MysqlSslMode mode);

// The TLS keys of [mysql] and [primary_mysql] (conf/*.toml): PEM files the client reads.
struct MysqlTls {
  MysqlSslMode mode = MysqlSslMode::kPreferred;
  std::string ca;    // the CA certificate(s) that sign the server's certificate
  std::string cert;  // this client's certificate, for servers that require X509
  std::string key;   // its private key
  bool operator==(const MysqlTls&) const = default;
};

struct NodeConfig {
  std::string source_path;  // the file it was read from, for messages

  struct Node {
    NodeRole role = NodeRole::kPrimary;
    std::string state_dir = "/var/lib/replsync";
    std::string name;  // how this node is named to its peers; default: the host name
    // Secondary: start `replsync bootstrap` by itself when this node is fresh (an empty database
    // and repository, nothing applied yet): "auto"; "manual" (default) waits for the command.
    bool bootstrap_auto = false;
  } node;

  struct Journal {
    // The primary's journal cap: when full, capture pauses (loudly) until secondaries catch up.
    uint64_t max_megabytes = 10240;
  } journal;

  struct Mysql {
    std::string host = "127.0.0.1";
    uint16_t port = 3306;
    std::string user = "replsync";
    std::string password;
    std::vector<std::string> databases;  // empty: all but the system schemas
    // server_id replsync presents to the server when it reads the binlog as a replica.
    uint32_t replica_server_id = 5250;
    uint32_t heartbeat_ms = 1000;
    uint32_t connect_timeout_s = 10;
    // Unix socket of this node's server; when set, replsync connects through it instead of
    // host:port (cheaper than TCP for a server on the same machine).
    std::string socket;
    MysqlTls tls;  // ssl_mode, ssl_ca, ssl_cert, ssl_key
  } mysql;

  // Secondary: the primary's database server as this node reaches it, for `replsync verify`
  // and `repair` (host, port, user, password, socket as in [mysql]; the account needs SELECT on
  // the replicated databases, RELOAD-free: a consistent snapshot needs no lock on MariaDB, and
  // rights to create and write the replsync_verify schema). Unset: verify cannot run.
  struct PrimaryMysql {
    bool set = false;
    std::string host = "127.0.0.1";
    uint16_t port = 3306;
    std::string user = "replsync";
    std::string password;
    std::string socket;
    MysqlTls tls;  // ssl_mode, ssl_ca, ssl_cert, ssl_key
  } primary_mysql;

  struct Apply {
    // The secondary's worker sessions applying independent transactions in parallel (commit
    // order kept); 1 applies one transaction at a time. 1..64.
    uint32_t workers = 4;
  } apply;
  // [bootstrap]: how a secondary copies the primary's data (schemas/bootstrap.md).
  struct Bootstrap {
    uint32_t readers = 2;            // snapshots read (and chunks loaded) at once, 1..8
    uint32_t chunk_megabytes = 8;    // row data per chunk, 1..64
    uint32_t snapshot_seconds = 10;  // how long a round's snapshots are held, 1..3600
    // The primary's other running queries (Threads_running) above which reading waits, as
    // verify's --max-running; 0 = no throttle.
    uint32_t max_running = 25;
    uint32_t max_rate_megabytes = 0;  // row data read per second on the primary; 0 = no limit
    bool users = true;                // copy the accounts with privileges on the databases
    std::vector<std::string> exclude_users;  // user names never copied (besides root & co)
  } bootstrap;

  struct Repository {
    std::string path;
    // A changed path is read once it had no event for quiet_ms; a file modified and not closed
    // again waits for its close, or open_write_quiet_ms without any change.
    uint32_t quiet_ms = 200;
    uint32_t open_write_quiet_ms = 10000;
    // Secondary: apply the setuid/setgid bits of replicated files (off: they are cleared).
    bool keep_setid = false;
  } repository;

  struct Transport {
    std::string listen;   // primary: where secondaries connect
    std::string primary;  // secondary: the primary to follow
    // This node's CURVE secret key (`replsync keygen --out FILE`, mode 0600): it proves the node
    // to its peers on every ZeroMQ socket. Required unless `insecure`.
    std::string secret_key_file;
    // No CURVE at all: anyone who reaches the port is served (as the [peers] name its Hello
    // gives) and the stream travels in clear. Only for a trusted network; warned at every start
    // and shown in status.
    bool insecure = false;
  } transport;

  // [peers.<name>]: every other node of the group. A primary serves only these (by key); a
  // secondary accepts as its primary only the peer whose endpoint is its [transport] primary.
  struct Peer {
    std::string name;        // the table's name: how this node knows the peer
    std::string endpoint;    // where the peer listens when it is the primary ("tcp://host:port")
    std::string public_key;  // its CURVE public key (Z85, 40 characters; the last line that
                             // `replsync keygen` printed on that node)
    bool operator==(const Peer&) const = default;
  };
  std::vector<Peer> peers;  // sorted by name
  // The peer of that name; nullptr when there is none.
  const Peer* FindPeer(const std::string& name) const;

  struct Log {
    std::string level = "info";  // trace, debug, info, warn, error
  } log;

  // [health]: the HTTP endpoint the failover switch asks (README "Health endpoint").
  struct Health {
    std::string listen;  // "host:port" as written; "" (default): no endpoint
    std::string host;    // `listen` parsed (brackets of an IPv6 address removed)
    uint16_t port = 0;
    // /health/secondary: the applier's lag in seconds above which the secondary is not fit
    // (a request's ?max_lag_seconds=N overrides it). 0..86400.
    uint32_t max_lag_seconds = 10;
    // /health/secondary: how recently the primary must have been heard from. 1..86400.
    uint32_t peer_timeout_seconds = 10;
  } health;

  // Reads and checks a configuration file. The file holds passwords: one that group or others
  // may read (mode & 077) is refused, and the message says `chmod 600 FILE`.
  // Errors: NotFound (no such file), InvalidArgument (readable by group or others; TOML syntax,
  // unknown or mistyped key, a value out of range), IoError (cannot be read), each naming the
  // file and the key.
  static Result<NodeConfig> Load(const std::string& path);
  // The same from TOML text; `origin` names it in messages.
  static Result<NodeConfig> Parse(std::string_view toml, const std::string& origin);
};

const char* RoleName(NodeRole role);

// Node and peer names: 1 to 64 letters, digits, '.', '_' or '-' (host names fit); "" when `name`
// is one, else what is wrong with it.
std::string NodeNameProblem(std::string_view name);

// Splits "host:port" (an IPv6 host in brackets: "[::1]:7701") into `host` (brackets removed)
// and `port` (1..65535). "" when it is one, else what is wrong with it.
std::string ParseHostPort(std::string_view text, std::string* host, uint16_t* port);

// Schemas never replicated when [mysql] databases is empty: the server's own and "replsync"
// (the secondary's applied-position table).
bool IsSystemSchema(std::string_view db);

// The schema of verify's marker table (schemas/verify.md): replicated whatever [mysql]
// databases says, so that a verify can see its marker arrive on the secondary.
inline constexpr std::string_view kVerifySchema = "replsync_verify";

}  // namespace replsync
