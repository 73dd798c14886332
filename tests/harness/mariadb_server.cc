#include "tests/harness/mariadb_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <mariadb/mysql.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

extern char** environ;

namespace replsync::testing {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kReadyTimeout = std::chrono::seconds(60);
constexpr auto kStopGrace = std::chrono::seconds(30);
constexpr int kStartAttempts = 3;  // a port taken between FreeLoopbackPort and bind is retried

// The first executable among `names` in $PATH, /usr/sbin, /usr/bin, /usr/local/{s,}bin.
std::string FindProgram(std::initializer_list<const char*> names) {
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::string p(path);
    size_t start = 0;
    while (start <= p.size()) {
      size_t end = p.find(':', start);
      if (end == std::string::npos) end = p.size();
      if (end > start) dirs.push_back(p.substr(start, end - start));
      start = end + 1;
    }
  }
  for (const char* d : {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"}) {
    dirs.push_back(d);
  }
  for (const char* name : names) {
    for (const auto& dir : dirs) {
      std::string candidate = dir + "/" + name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

// The last `lines` lines of a text file ("" when it cannot be read).
std::string Tail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  if (!in) return "";
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += l + "\n";
  return out;
}

// The lines of a log that report errors (mariadb-install-db ends its output with a long
// generic help text that hides them), then its last lines.
std::string ErrorsAndTail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::string errors, line;
  while (std::getline(in, line)) {
    if (line.find("ERROR") != std::string::npos) errors += line + "\n";
  }
  return errors + Tail(path, lines);
}

// fork + exec of `argv` with stdout and stderr appended to `log_path` and TMPDIR set to
// `tmp_dir`: each server needs a temporary folder of its own, because mariadbd deletes every
// "#sql*" file it finds in its tmpdir at start, which breaks other servers (and
// mariadb-install-db runs) that share /tmp. The child dies with the thread that forked it
// (PR_SET_PDEATHSIG), so a test process that crashes leaves no server.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log_path,
                    const std::string& tmp_dir) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "TMPDIR=", 7) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back("TMPDIR=" + tmp_dir);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return Status::IoError("open " + log_path + ": " + std::strerror(errno));
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(log_fd);
    return Status::IoError("fork for " + argv[0] + ": " + std::strerror(err));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    // Do not hold the test's sockets (connections to other servers) open in the server.
    close_range(3, ~0U, 0);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(log_fd);
  return pid;
}

// Waits for `pid` to exit for up to `timeout`. Returns true when it has been reaped.
bool WaitExit(pid_t pid, std::chrono::milliseconds timeout, int* status_out = nullptr) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      if (status_out) *status_out = status;
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

std::string ShortSql(const std::string& sql) {
  constexpr size_t kMax = 200;
  return sql.size() <= kMax ? sql : sql.substr(0, kMax) + "...";
}

}  // namespace

// One client session as root over the server's unix socket.
struct MariadbServer::Conn {
  MYSQL* mysql = nullptr;
  ~Conn() {
    if (mysql != nullptr) mysql_close(mysql);
  }
};

Result<uint16_t> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IoError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return Status::IoError(std::string("bind 127.0.0.1:0: ") + std::strerror(err));
  }
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return Status::IoError(std::string("getsockname: ") + std::strerror(err));
  }
  close(fd);
  return static_cast<uint16_t>(ntohs(addr.sin_port));
}

MariadbServer::MariadbServer(MariadbServerOptions options) : options_(std::move(options)) {}

MariadbServer::~MariadbServer() {
  Stop();
  if (!options_.keep_files && std::getenv("REPLSYNC_KEEP_SERVERS") == nullptr &&
      !root_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(root_dir_, ec);
  }
}

Result<std::unique_ptr<MariadbServer>> MariadbServer::Start(MariadbServerOptions options) {
  std::unique_ptr<MariadbServer> server(new MariadbServer(std::move(options)));
  const auto& opts = server->options_;
  std::string base = opts.base_dir;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
  }
  std::string templ = base + "/replsync-mariadb-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return Status::IoError("create temporary folder in " + base + ": " + std::strerror(errno));
  }
  server->root_dir_ = buf.data();
  server->data_dir_ = server->root_dir_ + "/data";
  server->socket_ = server->root_dir_ + "/mysqld.sock";
  if (mkdir(server->tmp_dir().c_str(), 0700) != 0) {
    return Status::IoError("create " + server->tmp_dir() + ": " + std::strerror(errno));
  }

  std::string install_db = FindProgram({"mariadb-install-db", "mysql_install_db"});
  if (install_db.empty()) {
    return Status::NotFound("mariadb-install-db not found (install the mariadb-server package)");
  }
  std::string install_log = server->root_dir_ + "/install.log";
  RS_ASSIGN_OR_RETURN(
      pid_t install_pid,
      Spawn({install_db, "--no-defaults", "--user=root", "--datadir=" + server->data_dir_,
             "--auth-root-authentication-method=normal", "--skip-test-db"},
            install_log, server->tmp_dir()));
  int status = 0;
  if (!WaitExit(install_pid, std::chrono::seconds(120), &status)) {
    kill(install_pid, SIGKILL);
    WaitExit(install_pid, std::chrono::seconds(5));
    return Status::Internal("mariadb-install-db into " + server->data_dir_ +
                            " did not finish in 120 s:\n" + Tail(install_log, 20));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Internal("mariadb-install-db into " + server->data_dir_ + " " +
                            DescribeExit(status) + ":\n" + ErrorsAndTail(install_log, 20));
  }

  if (opts.tls) RS_RETURN_IF_ERROR(server->MakeTlsFiles());

  Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    RS_ASSIGN_OR_RETURN(server->port_, FreeLoopbackPort());
    last = server->Launch();
    if (last.ok()) last = server->WaitReady();
    if (last.ok()) break;
    server->Stop();
    std::string log = Tail(server->root_dir_ + "/error.log", 50);
    if (log.find("Address already in use") == std::string::npos) break;
  }
  if (!last.ok()) return last;

  // Root over TCP on 127.0.0.1 without a password (mariadb-install-db creates the account on
  // most versions; make sure). Kept out of the binlog so tests see only their own changes.
  RS_RETURN_IF_ERROR(
      server->Execute("SET sql_log_bin = 0; "
                      "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; "
                      "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; "
                      "SET sql_log_bin = 1"));
  // Check the TCP path the code under test uses.
  MYSQL* tcp = mysql_init(nullptr);
  unsigned int timeout = 10;
  mysql_optionsv(tcp, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  if (opts.tls) {
    const std::string ca = server->tls_ca_path();
    my_bool enforce = 1;
    mysql_optionsv(tcp, MYSQL_OPT_SSL_CA, ca.c_str());
    mysql_optionsv(tcp, MYSQL_OPT_SSL_ENFORCE, &enforce);
  }
  if (mysql_real_connect(tcp, server->host_.c_str(), server->user_.c_str(),
                         server->password_.c_str(), nullptr, server->port_, nullptr,
                         0) == nullptr) {
    Status s = Status::Network("connect to mariadb at " + server->host_ + ":" +
                               std::to_string(server->port_) + " as root: " + mysql_error(tcp));
    mysql_close(tcp);
    return s;
  }
  mysql_close(tcp);
  return server;
}

Status MariadbServer::Launch() {
  std::string mariadbd = FindProgram({"mariadbd", "mysqld"});
  if (mariadbd.empty()) {
    return Status::NotFound("mariadbd not found (install the mariadb-server package)");
  }
  std::vector<std::string> argv = {
      mariadbd,
      "--no-defaults",
      "--user=root",
      "--datadir=" + data_dir_,
      "--socket=" + socket_,
      "--tmpdir=" + tmp_dir(),
      "--port=" + std::to_string(port_),
      "--bind-address=127.0.0.1",
      "--server-id=" + std::to_string(options_.server_id),
      "--log-bin=" + data_dir_ + "/binlog",
      "--binlog-format=ROW",
      "--binlog-row-image=FULL",
      "--binlog-row-metadata=FULL",
      "--log-error=" + root_dir_ + "/error.log",
      "--pid-file=" + root_dir_ + "/mysqld.pid",
      // No reverse DNS lookups on connect: 127.0.0.1 matches root@127.0.0.1 directly.
      "--skip-name-resolve",
      "--innodb-buffer-pool-size=64M",
      // The redo log keeps its default size (96 MiB): InnoDB refuses a transaction whose BLOBs
      // exceed 10% of it.
      "--innodb-buffer-pool-dump-at-shutdown=0",
      "--innodb-buffer-pool-load-at-startup=0",
      "--max-allowed-packet=64M",
      "--max-connections=200",
  };
  // Durability stays at its defaults (innodb_flush_log_at_trx_commit=1, sync_binlog=0 as in a
  // default installation) so that Kill() tests recovery for real.
  if (options_.tls) {
    argv.push_back("--ssl-ca=" + tls_ca_path());
    argv.push_back("--ssl-cert=" + root_dir_ + "/tls/server-cert.pem");
    argv.push_back("--ssl-key=" + root_dir_ + "/tls/server-key.pem");
    if (options_.require_secure_transport) argv.push_back("--require-secure-transport=ON");
  }
  for (const auto& a : options_.extra_args) argv.push_back(a);
  RS_ASSIGN_OR_RETURN(pid_, Spawn(argv, root_dir_ + "/mariadbd.out", tmp_dir()));
  return Status::Ok();
}

Status MariadbServer::MakeTlsFiles() {
  const std::string dir = root_dir_ + "/tls";
  if (mkdir(dir.c_str(), 0700) != 0) {
    return Status::IoError("create " + dir + ": " + std::strerror(errno));
  }
  std::string openssl = FindProgram({"openssl"});
  if (openssl.empty()) return Status::NotFound("openssl not found (install the openssl package)");
  {
    std::ofstream ext(dir + "/server.ext");
    ext << "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
           "basicConstraints = CA:FALSE\n"
           "keyUsage = digitalSignature, keyEncipherment\n"
           "extendedKeyUsage = serverAuth\n";
  }
  const std::string log = dir + "/openssl.log";
  const std::vector<std::vector<std::string>> steps = {
      {openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-subj",
       "/CN=replsync test CA", "-keyout", dir + "/ca-key.pem", "-out", dir + "/ca.pem"},
      {openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3", "-subj",
       "/CN=replsync untrusted CA", "-keyout", dir + "/other-ca-key.pem", "-out",
       dir + "/other-ca.pem"},
      {openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
       dir + "/server-key.pem", "-out", dir + "/server.csr"},
      {openssl, "x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.pem", "-CAkey",
       dir + "/ca-key.pem", "-CAcreateserial", "-days", "3", "-extfile", dir + "/server.ext",
       "-out", dir + "/server-cert.pem"},
  };
  for (const auto& argv : steps) {
    RS_ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, log, tmp_dir()));
    int status = 0;
    if (!WaitExit(pid, std::chrono::seconds(60), &status)) {
      kill(pid, SIGKILL);
      WaitExit(pid, std::chrono::seconds(5));
      return Status::Internal("openssl " + argv[1] + " did not finish in 60 s");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return Status::Internal("openssl " + argv[1] + " in " + dir + " " + DescribeExit(status) +
                              ":\n" + Tail(log, 20));
    }
  }
  return Status::Ok();
}

Status MariadbServer::WaitReady() {
  auto deadline = Clock::now() + kReadyTimeout;
  std::string last_error;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return Status::Internal("mariadbd in " + data_dir_ + " " + DescribeExit(status) +
                              " during start; error log:\n" + Tail(root_dir_ + "/error.log", 20));
    }
    auto conn = std::make_unique<Conn>();
    conn->mysql = mysql_init(nullptr);
    unsigned int timeout = 5;
    mysql_optionsv(conn->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    if (mysql_real_connect(conn->mysql, nullptr, user_.c_str(), password_.c_str(), nullptr, 0,
                           socket_.c_str(), CLIENT_MULTI_STATEMENTS) != nullptr) {
      conn_ = std::move(conn);
      return Status::Ok();
    }
    last_error = mysql_error(conn->mysql);
    if (Clock::now() >= deadline) {
      return Status::Network("mariadbd in " + data_dir_ + " did not accept connections in " +
                             std::to_string(kReadyTimeout.count()) + " s (" + last_error +
                             "); error log:\n" + Tail(root_dir_ + "/error.log", 20));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

void MariadbServer::Stop() {
  conn_.reset();
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (!WaitExit(pid_, kStopGrace)) {
    kill(pid_, SIGKILL);
    WaitExit(pid_, std::chrono::seconds(30));
  }
  pid_ = -1;
}

void MariadbServer::Kill() {
  conn_.reset();
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  WaitExit(pid_, std::chrono::seconds(30));
  pid_ = -1;
}

Status MariadbServer::Restart() {
  Stop();
  RS_RETURN_IF_ERROR(Launch());
  Status s = WaitReady();
  if (!s.ok()) Stop();
  return s;
}

namespace {

// Runs `sql` (possibly several statements) and hands every result set's rows to `rows` when it
// is not null. Consumes all results so the session stays usable.
Status RunSql(MYSQL* mysql, const std::string& sql, const std::string& where,
              std::vector<std::vector<std::string>>* rows) {
  auto error = [&](const std::string& what) {
    return Status::Server(what + " on " + where + ": error " + std::to_string(mysql_errno(mysql)) +
                          " (" + mysql_sqlstate(mysql) + "): " + mysql_error(mysql) + " [" +
                          ShortSql(sql) + "]");
  };
  if (mysql_real_query(mysql, sql.data(), sql.size()) != 0) return error("query");
  while (true) {
    MYSQL_RES* res = mysql_store_result(mysql);
    if (res != nullptr) {
      unsigned int fields = mysql_num_fields(res);
      MYSQL_ROW row;
      while ((row = mysql_fetch_row(res)) != nullptr) {
        if (rows == nullptr) continue;
        unsigned long* lengths = mysql_fetch_lengths(res);
        std::vector<std::string> out;
        out.reserve(fields);
        for (unsigned int i = 0; i < fields; ++i) {
          if (row[i] == nullptr) {
            out.emplace_back("\\N");
          } else {
            out.emplace_back(row[i], lengths[i]);
          }
        }
        rows->push_back(std::move(out));
      }
      mysql_free_result(res);
    } else if (mysql_field_count(mysql) != 0) {
      return error("read result");
    }
    int next = mysql_next_result(mysql);
    if (next > 0) return error("statement");
    if (next < 0) break;
  }
  return Status::Ok();
}

}  // namespace

Status MariadbServer::Execute(const std::string& sql) {
  if (pid_ <= 0) return Status::Network("mariadb in " + data_dir_ + " is not running");
  if (!conn_) RS_RETURN_IF_ERROR(WaitReady());
  Status s = RunSql(conn_->mysql, sql, "mariadb " + socket_, nullptr);
  // A lost session (server restarted, session killed) is reopened on the next call.
  if (!s.ok() && mysql_errno(conn_->mysql) >= 2000) conn_.reset();
  return s;
}

Result<std::vector<std::vector<std::string>>> MariadbServer::Query(const std::string& sql) {
  if (pid_ <= 0) return Status::Network("mariadb in " + data_dir_ + " is not running");
  if (!conn_) RS_RETURN_IF_ERROR(WaitReady());
  std::vector<std::vector<std::string>> rows;
  Status s = RunSql(conn_->mysql, sql, "mariadb " + socket_, &rows);
  if (!s.ok()) {
    if (mysql_errno(conn_->mysql) >= 2000) conn_.reset();
    return s;
  }
  return rows;
}

Result<std::vector<std::string>> MariadbServer::BinlogFiles() {
  RS_ASSIGN_OR_RETURN(auto rows, Query("SHOW BINARY LOGS"));
  std::vector<std::string> paths;
  for (const auto& row : rows) {
    if (row.empty()) continue;
    paths.push_back(data_dir_ + "/" + row[0]);
  }
  return paths;
}

}  // namespace replsync::testing
