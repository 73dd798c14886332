#!/usr/bin/env bash
# Installs every Debian 12 package replsync needs to build, test and run its demo.
# Idempotent: packages already present are left alone; apt-get runs only when something is missing.
# Usage (as root): tools/setup.sh
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config ninja-build clang-14 libfuzzer-14-dev
  # replication stream (MARIADB_RPL) and SQL (Connector/C++)
  libmariadb-dev libmysqlcppconn-dev
  # transport, state, manifests
  libzmq3-dev cppzmq-dev librocksdb-dev libsqlite3-dev
  # content hashes (SHA-256) of replicated files
  libssl-dev
  # configuration, command line, logging, JSON, compression, hashing
  libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev rapidjson-dev
  libprotobuf-dev protobuf-compiler
  libzstd-dev zlib1g-dev libxxhash-dev libisal-dev
  # the health endpoint's HTTP server
  libcpp-httplib-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev mariadb-server mariadb-client sysbench time rsync percona-toolkit mydumper
  # the TLS tests make a CA and a server certificate at test time
  openssl
  # the failover switch in front of a pair (conf/haproxy.cfg, failover_test)
  haproxy
  # the same with Apache's mod_proxy_hcheck (conf/apache-replsync.conf, apache_switch_test)
  apache2
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages: ${missing[*]}" >&2
  echo "setup: run this script as root (or install them with apt-get) and try again" >&2
  exit 1
fi

echo "setup: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The Debian package starts a system MariaDB; replsync's tests and demo start their own servers.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mariadb 2>/dev/null; then
  systemctl stop mariadb || true
fi
echo "setup: done"
