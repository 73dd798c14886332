# Shell helpers to run throw-away MariaDB servers on loopback (demo and benchmarks).
# Source this file; every server started is stopped by mariadb_stop_all (install it in a trap).
#
#   mariadb_start NAME SERVER_ID [extra mariadbd args...]   -> sets MARIADB_PORT_<NAME>, MARIADB_DIR_<NAME>
#   mariadb_sql NAME "SQL"                                    -> runs SQL as root over TCP
#   mariadb_stop NAME / mariadb_stop_all

MARIADB_WORK=${MARIADB_WORK:-$(mktemp -d /tmp/replsync-mariadb.XXXXXX)}
declare -a MARIADB_NAMES=()

_mariadb_bin() {
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
    [[ -x /usr/sbin/$name ]] && { echo "/usr/sbin/$name"; return 0; }
  done
  echo "mariadb.sh: none of $* found; run tools/setup.sh" >&2
  return 1
}

_free_port() {
  python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

mariadb_start() {
  local name=$1 server_id=$2; shift 2
  local dir="$MARIADB_WORK/$name" port
  port=$(_free_port)
  local install_db mariadbd
  install_db=$(_mariadb_bin mariadb-install-db mysql_install_db) || return 1
  mariadbd=$(_mariadb_bin mariadbd mysqld) || return 1
  # Each server gets its own tmpdir: mariadbd deletes every "#sql*" file in its tmpdir at start,
  # which breaks other servers sharing /tmp.
  mkdir -p "$dir/tmp"
  TMPDIR="$dir/tmp" "$install_db" --no-defaults --user=root --datadir="$dir/data" --auth-root-authentication-method=normal \
    --skip-test-db >"$dir/install.log" 2>&1 || { echo "mariadb-install-db failed for $name:" >&2; tail -20 "$dir/install.log" >&2; return 1; }
  TMPDIR="$dir/tmp" "$mariadbd" --no-defaults --user=root --datadir="$dir/data" \
    --socket="$dir/mysqld.sock" --tmpdir="$dir/tmp" \
    --port="$port" --bind-address=127.0.0.1 --server-id="$server_id" --log-bin="$dir/data/binlog" \
    --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
    --log-error="$dir/error.log" --pid-file="$dir/mysqld.pid" --skip-name-resolve \
    --innodb-buffer-pool-size=256M "$@" >/dev/null 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/launcher.pid"
  local i
  for ((i = 0; i < 600; i++)); do
    if mariadb --no-defaults -uroot --socket="$dir/mysqld.sock" -e "SELECT 1" >/dev/null 2>&1; then
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "mariadbd for $name exited during start:" >&2; tail -20 "$dir/error.log" >&2; return 1
    fi
    sleep 0.1
  done
  mariadb --no-defaults -uroot --socket="$dir/mysqld.sock" -e \
    "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;" \
    || { echo "mariadbd for $name did not become ready:" >&2; tail -20 "$dir/error.log" >&2; return 1; }
  MARIADB_NAMES+=("$name")
  printf -v "MARIADB_PORT_${name}" '%s' "$port"
  printf -v "MARIADB_DIR_${name}" '%s' "$dir"
}

mariadb_sql() {
  local name=$1; shift
  local dir="$MARIADB_WORK/$name"
  mariadb --no-defaults --default-character-set=utf8mb4 -uroot --socket="$dir/mysqld.sock" \
    --batch --skip-column-names -e "$*"
}

mariadb_stop() {
  local name=$1 dir="$MARIADB_WORK/$1"
  [[ -f $dir/mysqld.pid ]] || return 0
  local pid
  pid=$(cat "$dir/mysqld.pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  local i
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

mariadb_stop_all() {
  local name
  for name in "${MARIADB_NAMES[@]}"; do mariadb_stop "$name"; done
  MARIADB_NAMES=()
  [[ -n ${MARIADB_KEEP:-} ]] || rm -rf "$MARIADB_WORK"
}
