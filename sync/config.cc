#include "sync/config.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "sync/text.h"

namespace replsync {

namespace {

// Checks a table's keys against the ones replsync knows.
Status CheckKeys(const toml::table& table, const std::string& section,
                 const std::set<std::string>& known, const std::string& origin) {
  for (const auto& [key, node] : table) {
    if (!known.count(std::string(key.str()))) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return Status::InvalidArgument(fmt::format("{}: unknown key [{}] {} (known keys: {})", origin,
                                                 section, key.str(), list));
    }
  }
  return Status::Ok();
}

template <typename T>
Status Read(const toml::table& table, const std::string& section, const char* key, T* out,
            const std::string& origin) {
  const toml::node* node = table.get(key);
  if (!node) return Status::Ok();
  if constexpr (std::is_same_v<T, bool>) {
    if (!node->is_boolean()) {
      return Status::InvalidArgument(
          fmt::format("{}: [{}] {} must be true or false", origin, section, key));
    }
    *out = node->value<bool>().value();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!node->is_string()) {
      return Status::InvalidArgument(
          fmt::format("{}: [{}] {} must be a string", origin, section, key));
    }
    *out = node->value<std::string>().value();
  } else if constexpr (std::is_integral_v<T>) {
    if (!node->is_integer()) {
      return Status::InvalidArgument(
          fmt::format("{}: [{}] {} must be an integer", origin, section, key));
    }
    int64_t v = node->value<int64_t>().value();
    if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return Status::InvalidArgument(
          fmt::format("{}: [{}] {} = {} is out of range ({}..{})", origin, section, key, v,
                      std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
    }
    *out = static_cast<T>(v);
  }
  return Status::Ok();
}

// Reads [section] ssl_mode, ssl_ca, ssl_cert, ssl_key into `tls` and checks that they agree.
// An array of non-empty strings (`example` shows one in the message).
Status ReadNames(const toml::table& table, const std::string& section, const char* key,
                 std::string_view example, std::vector<std::string>* out,
                 const std::string& origin) {
  const toml::node* node = table.get(key);
  if (!node) return Status::Ok();
  const toml::array* arr = node->as_array();
  if (!arr) {
    return Status::InvalidArgument(fmt::format("{}: [{}] {} must be an array of names, e.g. {}",
                                               origin, section, key, example));
  }
  for (const auto& item : *arr) {
    if (!item.is_string() || item.value<std::string>()->empty()) {
      return Status::InvalidArgument(
          fmt::format("{}: [{}] {} must hold only non-empty strings", origin, section, key));
    }
    out->push_back(*item.value<std::string>());
  }
  return Status::Ok();
}

Status ReadTls(const toml::table& table, const std::string& section, MysqlTls* tls,
               const std::string& origin) {
  RS_RETURN_IF_ERROR(Read(table, section, "ssl_ca", &tls->ca, origin));
  RS_RETURN_IF_ERROR(Read(table, section, "ssl_cert", &tls->cert, origin));
  RS_RETURN_IF_ERROR(Read(table, section, "ssl_key", &tls->key, origin));
  std::string mode = MysqlSslModeName(tls->mode);
  RS_RETURN_IF_ERROR(Read(table, section, "ssl_mode", &mode, origin));
  static const MysqlSslMode kModes[] = {MysqlSslMode::kDisabled, MysqlSslMode::kPreferred,
                                        MysqlSslMode::kRequired, MysqlSslMode::kVerifyCa,
                                        MysqlSslMode::kVerifyIdentity};
  bool known = false;
  for (MysqlSslMode m : kModes) {
    if (mode == MysqlSslModeName(m)) {
      tls->mode = m;
      known = true;
    }
  }
  if (!known) {
    return Status::InvalidArgument(fmt::format(
        "{}: [{}] ssl_mode = \"{}\": must be DISABLED, PREFERRED, REQUIRED, VERIFY_CA or "
        "VERIFY_IDENTITY",
        origin, section, mode));
  }
  if (tls->cert.empty() != tls->key.empty()) {
    return Status::InvalidArgument(fmt::format(
        "{}: [{}] ssl_cert and ssl_key go together: set both (the client's certificate and its "
        "key) or neither",
        origin, section));
  }
  if (tls->mode == MysqlSslMode::kDisabled &&
      (!tls->ca.empty() || !tls->cert.empty() || !tls->key.empty())) {
    return Status::InvalidArgument(fmt::format(
        "{}: [{}] ssl_mode = \"DISABLED\" with ssl_ca, ssl_cert or ssl_key set: remove the files "
        "or choose another ssl_mode",
        origin, section));
  }
  if ((tls->mode == MysqlSslMode::kVerifyCa || tls->mode == MysqlSslMode::kVerifyIdentity) &&
      tls->ca.empty()) {
    return Status::InvalidArgument(fmt::format(
        "{}: [{}] ssl_mode = \"{}\" needs ssl_ca (the CA certificate that signs the server's "
        "certificate)",
        origin, section, MysqlSslModeName(tls->mode)));
  }
  return Status::Ok();
}

const toml::table* Section(const toml::table& root, const char* name) {
  const toml::node* node = root.get(name);
  return node ? node->as_table() : nullptr;
}

}  // namespace

const char* RoleName(NodeRole role) { return role == NodeRole::kPrimary ? "primary" : "secondary"; }

const char* MysqlSslModeName(MysqlSslMode mode) {
  switch (mode) {
    case MysqlSslMode::kDisabled:
      return "DISABLED";
    case MysqlSslMode::kPreferred:
      return "PREFERRED";
    case MysqlSslMode::kRequired:
      return "REQUIRED";
    case MysqlSslMode::kVerifyCa:
      return "VERIFY_CA";
    case MysqlSslMode::kVerifyIdentity:
      return "VERIFY_IDENTITY";
  }
  return "?";
}

std::string NodeNameProblem(std::string_view name) {
  if (name.empty() || name.size() > 64) return "must be 1 to 64 characters long";
  for (char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
    if (!ok) return "may hold only letters, digits, '.', '_' and '-'";
  }
  return "";
}

std::string ParseHostPort(std::string_view text, std::string* host, uint16_t* port) {
  if (text.find("://") != std::string_view::npos) {
    return "write host:port without a scheme";
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return "must be host:port";
  std::string_view h = text.substr(0, colon);
  const std::string_view p = text.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string_view::npos) {
    return "an IPv6 address goes in brackets, e.g. \"[::]:7701\"";
  }
  if (h.empty()) return "the host is missing (0.0.0.0 for every IPv4 address)";
  if (h.find_first_of("[] \t/") != std::string_view::npos)
    return "the host is not a name or an address";
  uint64_t value = 0;
  if (!ParseU64(p, &value) || value < 1 || value > 65535) return "the port must be 1..65535";
  *host = std::string(h);
  *port = static_cast<uint16_t>(value);
  return "";
}

bool IsSystemSchema(std::string_view db) {
  // "replsync" holds the secondary's own bookkeeping (replsync.applied): never replicated.
  return db == "mysql" || db == "information_schema" || db == "performance_schema" || db == "sys" ||
         db == "replsync";
}

Result<NodeConfig> NodeConfig::Load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Status::NotFound(fmt::format(
        "configuration file {}: does not exist (see conf/primary.toml for an example)", path));
  }
  // The file holds database passwords: refuse it before reading it when others may read it too.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status::IoError(
        fmt::format("read configuration file {}: stat: {}", path, strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return Status::InvalidArgument(
        fmt::format("configuration file {}: mode {:04o} lets group or others read it, and it holds "
                    "passwords; run: chmod 600 {}",
                    path, st.st_mode & 07777, path));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return Status::IoError(fmt::format("read configuration file {}: {}", path, strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return Status::IoError(fmt::format("read configuration file {}: {}", path, strerror(errno)));
  }
  return Parse(text.str(), path);
}

Result<NodeConfig> NodeConfig::Parse(std::string_view toml_text, const std::string& origin) {
  toml::table root;
  try {
    root = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& err) {
    return Status::InvalidArgument(fmt::format("{}:{}:{}: {}", origin, err.source().begin.line,
                                               err.source().begin.column, err.description()));
  }
  NodeConfig c;
  c.source_path = origin;
  RS_RETURN_IF_ERROR(CheckKeys(root, "",
                               {"node", "mysql", "primary_mysql", "apply", "bootstrap",
                                "repository", "transport", "peers", "journal", "log", "health"},
                               origin));
  for (const auto& [key, node] : root) {
    if (!node.is_table()) {
      return Status::InvalidArgument(
          fmt::format("{}: '{}' must be a section ([{}])", origin, key.str(), key.str()));
    }
  }

  if (const toml::table* t = Section(root, "node")) {
    RS_RETURN_IF_ERROR(CheckKeys(*t, "node", {"role", "state_dir", "name", "bootstrap"}, origin));
    RS_RETURN_IF_ERROR(Read(*t, "node", "name", &c.node.name, origin));
    std::string bootstrap = "manual";
    RS_RETURN_IF_ERROR(Read(*t, "node", "bootstrap", &bootstrap, origin));
    if (bootstrap != "manual" && bootstrap != "auto") {
      return Status::InvalidArgument(fmt::format(
          "{}: [node] bootstrap = \"{}\": must be \"manual\" (wait for `replsync bootstrap`) or "
          "\"auto\" (a fresh secondary bootstraps by itself)",
          origin, bootstrap));
    }
    c.node.bootstrap_auto = bootstrap == "auto";
    std::string role = "primary";
    RS_RETURN_IF_ERROR(Read(*t, "node", "role", &role, origin));
    if (role == "primary") {
      c.node.role = NodeRole::kPrimary;
    } else if (role == "secondary") {
      c.node.role = NodeRole::kSecondary;
    } else {
      return Status::InvalidArgument(fmt::format(
          "{}: [node] role = \"{}\": must be \"primary\" or \"secondary\"", origin, role));
    }
    RS_RETURN_IF_ERROR(Read(*t, "node", "state_dir", &c.node.state_dir, origin));
  } else {
    return Status::InvalidArgument(
        fmt::format("{}: missing [node] section (role and state_dir)", origin));
  }

  if (const toml::table* t = Section(root, "mysql")) {
    RS_RETURN_IF_ERROR(CheckKeys(
        *t, "mysql",
        {"host", "port", "user", "password", "databases", "replica_server_id", "heartbeat_ms",
         "connect_timeout_s", "socket", "ssl_mode", "ssl_ca", "ssl_cert", "ssl_key"},
        origin));
    RS_RETURN_IF_ERROR(Read(*t, "mysql", "host", &c.mysql.host, origin));
    RS_RETURN_IF_ERROR(Read(*t, "mysql", "port", &c.mysql.port, origin));
    RS_RETURN_IF_ERROR(Read(*t, "mysql", "user", &c.mysql.user, origin));
    RS_RETURN_IF_ERROR(Read(*t, "mysql", "password", &c.mysql.password, origin));
    RS_RETURN_IF_ERROR(Read(*t, "mysql", "replica_server_id", &c.mysql.replica_server_id, origin));
    RS_RETURN_IF_ERROR(Read(*t, "mysql", "heartbeat_ms", &c.mysql.heartbeat_ms, origin));
    RS_RETURN_IF_ERROR(Read(*t, "mysql", "connect_timeout_s", &c.mysql.connect_timeout_s, origin));
    RS_RETURN_IF_ERROR(Read(*t, "mysql", "socket", &c.mysql.socket, origin));
    RS_RETURN_IF_ERROR(ReadTls(*t, "mysql", &c.mysql.tls, origin));
    RS_RETURN_IF_ERROR(
        ReadNames(*t, "mysql", "databases", "[\"smarten\"]", &c.mysql.databases, origin));
    if (c.mysql.port == 0) {
      return Status::InvalidArgument(fmt::format("{}: [mysql] port must not be 0", origin));
    }
    if (c.mysql.replica_server_id == 0) {
      return Status::InvalidArgument(fmt::format(
          "{}: [mysql] replica_server_id must not be 0 (the server refuses a replica with id 0)",
          origin));
    }
  }

  if (const toml::table* t = Section(root, "primary_mysql")) {
    RS_RETURN_IF_ERROR(CheckKeys(
        *t, "primary_mysql",
        {"host", "port", "user", "password", "socket", "ssl_mode", "ssl_ca", "ssl_cert", "ssl_key"},
        origin));
    c.primary_mysql.set = true;
    RS_RETURN_IF_ERROR(Read(*t, "primary_mysql", "host", &c.primary_mysql.host, origin));
    RS_RETURN_IF_ERROR(Read(*t, "primary_mysql", "port", &c.primary_mysql.port, origin));
    RS_RETURN_IF_ERROR(Read(*t, "primary_mysql", "user", &c.primary_mysql.user, origin));
    RS_RETURN_IF_ERROR(Read(*t, "primary_mysql", "password", &c.primary_mysql.password, origin));
    RS_RETURN_IF_ERROR(Read(*t, "primary_mysql", "socket", &c.primary_mysql.socket, origin));
    RS_RETURN_IF_ERROR(ReadTls(*t, "primary_mysql", &c.primary_mysql.tls, origin));
    if (c.primary_mysql.port == 0) {
      return Status::InvalidArgument(fmt::format("{}: [primary_mysql] port must not be 0", origin));
    }
  }
  if (const toml::table* t = Section(root, "bootstrap")) {
    RS_RETURN_IF_ERROR(CheckKeys(*t, "bootstrap",
                                 {"readers", "chunk_megabytes", "snapshot_seconds", "max_running",
                                  "max_rate_megabytes", "users", "exclude_users"},
                                 origin));
    auto& b = c.bootstrap;
    RS_RETURN_IF_ERROR(Read(*t, "bootstrap", "readers", &b.readers, origin));
    RS_RETURN_IF_ERROR(Read(*t, "bootstrap", "chunk_megabytes", &b.chunk_megabytes, origin));
    RS_RETURN_IF_ERROR(Read(*t, "bootstrap", "snapshot_seconds", &b.snapshot_seconds, origin));
    RS_RETURN_IF_ERROR(Read(*t, "bootstrap", "max_running", &b.max_running, origin));
    RS_RETURN_IF_ERROR(Read(*t, "bootstrap", "max_rate_megabytes", &b.max_rate_megabytes, origin));
    RS_RETURN_IF_ERROR(Read(*t, "bootstrap", "users", &b.users, origin));
    RS_RETURN_IF_ERROR(
        ReadNames(*t, "bootstrap", "exclude_users", "[\"report\"]", &b.exclude_users, origin));
    struct Range {
      const char* key;
      uint32_t value, min, max;
      const char* meaning;
    };
    for (const Range& r :
         {Range{"readers", b.readers, 1, 8, "snapshots read and chunks loaded at once"},
          Range{"chunk_megabytes", b.chunk_megabytes, 1, 64, "row data per chunk"},
          Range{"snapshot_seconds", b.snapshot_seconds, 1, 3600,
                "how long each round of snapshots is held on the primary"}}) {
      if (r.value < r.min || r.value > r.max) {
        return Status::InvalidArgument(fmt::format("{}: [bootstrap] {} = {}: must be {}..{} ({})",
                                                   origin, r.key, r.value, r.min, r.max,
                                                   r.meaning));
      }
    }
  }
  if (const toml::table* t = Section(root, "apply")) {
    RS_RETURN_IF_ERROR(CheckKeys(*t, "apply", {"workers"}, origin));
    RS_RETURN_IF_ERROR(Read(*t, "apply", "workers", &c.apply.workers, origin));
    if (c.apply.workers < 1 || c.apply.workers > 64) {
      return Status::InvalidArgument(fmt::format(
          "{}: [apply] workers = {}: must be 1..64 (1 applies one transaction at a time)", origin,
          c.apply.workers));
    }
  }
  if (const toml::table* t = Section(root, "repository")) {
    RS_RETURN_IF_ERROR(CheckKeys(
        *t, "repository", {"path", "quiet_ms", "open_write_quiet_ms", "keep_setid"}, origin));
    RS_RETURN_IF_ERROR(Read(*t, "repository", "path", &c.repository.path, origin));
    RS_RETURN_IF_ERROR(Read(*t, "repository", "keep_setid", &c.repository.keep_setid, origin));
    RS_RETURN_IF_ERROR(Read(*t, "repository", "quiet_ms", &c.repository.quiet_ms, origin));
    RS_RETURN_IF_ERROR(
        Read(*t, "repository", "open_write_quiet_ms", &c.repository.open_write_quiet_ms, origin));
    if (c.repository.quiet_ms < 10 || c.repository.quiet_ms > 60000) {
      return Status::InvalidArgument(fmt::format(
          "{}: [repository] quiet_ms = {}: must be 10..60000 (how long a changed path must be "
          "left alone before it is read)",
          origin, c.repository.quiet_ms));
    }
    if (c.repository.open_write_quiet_ms < c.repository.quiet_ms ||
        c.repository.open_write_quiet_ms > 3600000) {
      return Status::InvalidArgument(fmt::format(
          "{}: [repository] open_write_quiet_ms = {}: must be quiet_ms..3600000 (how long a file "
          "still open for writing may go unchanged before it is shipped anyway)",
          origin, c.repository.open_write_quiet_ms));
    }
  }
  if (const toml::table* t = Section(root, "transport")) {
    RS_RETURN_IF_ERROR(
        CheckKeys(*t, "transport", {"listen", "primary", "secret_key_file", "insecure"}, origin));
    RS_RETURN_IF_ERROR(Read(*t, "transport", "listen", &c.transport.listen, origin));
    RS_RETURN_IF_ERROR(Read(*t, "transport", "primary", &c.transport.primary, origin));
    RS_RETURN_IF_ERROR(
        Read(*t, "transport", "secret_key_file", &c.transport.secret_key_file, origin));
    RS_RETURN_IF_ERROR(Read(*t, "transport", "insecure", &c.transport.insecure, origin));
  }
  if (const toml::table* t = Section(root, "peers")) {
    for (const auto& [key, node] : *t) {
      NodeConfig::Peer peer;
      peer.name = std::string(key.str());
      const std::string section = "peers." + peer.name;
      const toml::table* table = node.as_table();
      if (table == nullptr) {
        return Status::InvalidArgument(
            fmt::format("{}: peers.{} must be a table ([peers.{}] with endpoint and public_key)",
                        origin, peer.name, peer.name));
      }
      if (std::string problem = NodeNameProblem(peer.name); !problem.empty()) {
        return Status::InvalidArgument(
            fmt::format("{}: [{}]: the peer's name {}", origin, section, problem));
      }
      RS_RETURN_IF_ERROR(CheckKeys(*table, section, {"endpoint", "public_key"}, origin));
      RS_RETURN_IF_ERROR(Read(*table, section, "endpoint", &peer.endpoint, origin));
      RS_RETURN_IF_ERROR(Read(*table, section, "public_key", &peer.public_key, origin));
      if (peer.endpoint.empty()) {
        return Status::InvalidArgument(fmt::format(
            "{}: [{}] endpoint is missing: where that node listens when it is the primary, e.g. "
            "\"tcp://10.0.0.2:7700\"",
            origin, section));
      }
      for (const NodeConfig::Peer& other : c.peers) {
        if (other.endpoint == peer.endpoint) {
          return Status::InvalidArgument(
              fmt::format("{}: [{}] and [peers.{}] have the same endpoint {}", origin, section,
                          other.name, peer.endpoint));
        }
        if (!peer.public_key.empty() && other.public_key == peer.public_key) {
          return Status::InvalidArgument(fmt::format(
              "{}: [{}] and [peers.{}] have the same public_key: each node has its own key "
              "(`replsync keygen` on each)",
              origin, section, other.name));
        }
      }
      c.peers.push_back(std::move(peer));
    }
    std::sort(c.peers.begin(), c.peers.end(),
              [](const NodeConfig::Peer& a, const NodeConfig::Peer& b) { return a.name < b.name; });
  }
  if (const toml::table* t = Section(root, "journal")) {
    RS_RETURN_IF_ERROR(CheckKeys(*t, "journal", {"max_megabytes"}, origin));
    RS_RETURN_IF_ERROR(Read(*t, "journal", "max_megabytes", &c.journal.max_megabytes, origin));
    if (c.journal.max_megabytes == 0) {
      return Status::InvalidArgument(
          fmt::format("{}: [journal] max_megabytes must be at least 1", origin));
    }
  }
  if (const toml::table* t = Section(root, "health")) {
    RS_RETURN_IF_ERROR(
        CheckKeys(*t, "health", {"listen", "max_lag_seconds", "peer_timeout_seconds"}, origin));
    auto& h = c.health;
    RS_RETURN_IF_ERROR(Read(*t, "health", "listen", &h.listen, origin));
    RS_RETURN_IF_ERROR(Read(*t, "health", "max_lag_seconds", &h.max_lag_seconds, origin));
    RS_RETURN_IF_ERROR(Read(*t, "health", "peer_timeout_seconds", &h.peer_timeout_seconds, origin));
    if (!h.listen.empty()) {
      if (std::string problem = ParseHostPort(h.listen, &h.host, &h.port); !problem.empty()) {
        return Status::InvalidArgument(fmt::format(
            "{}: [health] listen = \"{}\": {} (e.g. \"0.0.0.0:7701\"; leave it out for no "
            "endpoint)",
            origin, h.listen, problem));
      }
    }
    if (h.max_lag_seconds > 86400) {
      return Status::InvalidArgument(
          fmt::format("{}: [health] max_lag_seconds = {}: must be 0..86400 (the lag above which "
                      "/health/secondary answers 503)",
                      origin, h.max_lag_seconds));
    }
    if (h.peer_timeout_seconds < 1 || h.peer_timeout_seconds > 86400) {
      return Status::InvalidArgument(fmt::format(
          "{}: [health] peer_timeout_seconds = {}: must be 1..86400 (how recently a secondary "
          "must have heard from its primary for /health/secondary to answer 200)",
          origin, h.peer_timeout_seconds));
    }
  }
  if (c.node.name.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') {
      c.node.name = host;
    } else {
      c.node.name = "replsync";
    }
  }
  if (std::string problem = NodeNameProblem(c.node.name); !problem.empty()) {
    return Status::InvalidArgument(
        fmt::format("{}: [node] name = \"{}\": {} (it defaults to the host name; set one)", origin,
                    c.node.name, problem));
  }
  for (const NodeConfig::Peer& peer : c.peers) {
    if (peer.name == c.node.name) {
      return Status::InvalidArgument(fmt::format(
          "{}: [peers.{}] is this node's own name ([node] name): [peers] lists the OTHER nodes",
          origin, peer.name));
    }
  }
  if (const toml::table* t = Section(root, "log")) {
    RS_RETURN_IF_ERROR(CheckKeys(*t, "log", {"level"}, origin));
    RS_RETURN_IF_ERROR(Read(*t, "log", "level", &c.log.level, origin));
    static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
    if (!kLevels.count(c.log.level)) {
      return Status::InvalidArgument(
          fmt::format("{}: [log] level = \"{}\": must be trace, debug, info, warn or error", origin,
                      c.log.level));
    }
  }
  return c;
}

const NodeConfig::Peer* NodeConfig::FindPeer(const std::string& name) const {
  for (const Peer& peer : peers) {
    if (peer.name == name) return &peer;
  }
  return nullptr;
}

}  // namespace replsync
