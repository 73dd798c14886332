// MariadbServer: a real MariaDB server on loopback in a temporary folder, for tests and the demo.
//
// Start() runs `mariadb-install-db` into a fresh data directory and launches `mariadbd
// --user=root` on a free loopback port with log-bin, binlog-format=ROW, binlog-row-image=FULL,
// binlog-row-metadata=FULL, then waits until it answers. The destructor always stops it (SIGTERM,
// then SIGKILL after a grace period) and removes the folder unless keep_files is set, so a failing
// test never leaves a server behind.
// Thread-safety: not thread-safe; Query may be used from one thread at a time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sync/status.h"

namespace replsync::testing {

struct MariadbServerOptions {
  uint32_t server_id = 1;
  std::string base_dir;                 // parent of the data folder; "" = $TMPDIR or /tmp
  std::vector<std::string> extra_args;  // more mariadbd options, e.g. "--binlog-row-image=MINIMAL"
  // Keep the folder after Stop (for debugging; REPLSYNC_KEEP_SERVERS=1 keeps every server's, its
  // binlog included, to read a failed run's history with mysqlbinlog).
  bool keep_files = false;
  // TLS: a CA and a server certificate (for 127.0.0.1 and localhost) are made with `openssl` at
  // start (tls_ca_path() and friends), and mariadbd runs with --ssl-ca/--ssl-cert/--ssl-key.
  bool tls = false;
  // With tls: --require-secure-transport, so that a plain TCP connection is refused (the Unix
  // socket the harness itself uses stays allowed).
  bool require_secure_transport = false;
};

class MariadbServer {
 public:
  // Installs a data directory, starts the server and waits (up to 60 s) until it accepts
  // connections. Errors name the step and include the server's error log tail.
  static Result<std::unique_ptr<MariadbServer>> Start(MariadbServerOptions options = {});
  ~MariadbServer();

  // Stops the server (clean shutdown; kill after 30 s). Idempotent.
  void Stop();
  // Kills the server with SIGKILL, as a crash would. Restart() brings it back on the same port.
  void Kill();
  Status Restart();

  // Runs one or more statements as root (multi-statement allowed); results are discarded.
  Status Execute(const std::string& sql);
  // Runs a query and returns every row, each column as text ("NULL" is std::nullopt → "\\N").
  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql);

  const std::string& host() const { return host_; }
  uint16_t port() const { return port_; }
  const std::string& user() const { return user_; }          // "root"
  const std::string& password() const { return password_; }  // "" (root via TCP, no password)
  const std::string& data_dir() const { return data_dir_; }
  const std::string& socket_path() const { return socket_; }
  std::string tmp_dir() const { return root_dir_ + "/tmp"; }  // the server's own TMPDIR
  pid_t pid() const { return pid_; }
  // With options.tls: the CA that signed the server's certificate, and a CA that signed nothing
  // of this server's (for tests of certificate checks).
  std::string tls_ca_path() const { return root_dir_ + "/tls/ca.pem"; }
  std::string tls_untrusted_ca_path() const { return root_dir_ + "/tls/other-ca.pem"; }

  // Paths of the binlog files the server has written so far, in order.
  Result<std::vector<std::string>> BinlogFiles();

 private:
  explicit MariadbServer(MariadbServerOptions options);
  Status Launch();
  // Makes the CAs and the server's certificate in <root>/tls with openssl.
  Status MakeTlsFiles();
  Status WaitReady();

  MariadbServerOptions options_;
  std::string root_dir_;
  std::string data_dir_;
  std::string socket_;
  std::string host_ = "127.0.0.1";
  std::string user_ = "root";
  std::string password_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  struct Conn;
  std::unique_ptr<Conn> conn_;
};

// Picks a free TCP port on 127.0.0.1 (bind to port 0, read it back, close).
Result<uint16_t> FreeLoopbackPort();

}  // namespace replsync::testing
