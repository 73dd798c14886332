#!/usr/bin/env bash
# verify_bench.sh: `replsync verify` next to pt-table-checksum (percona-toolkit), side by side
# in one run, on the same tables.
#
# Starts two throw-away MariaDB servers on loopback with replsyncd on each, fills sysbench's
# tables on the primary (--tables x --table-size rows; replicated to the secondary), waits until
# the secondary has them, and then times, one after the other on the idle pair:
#   - replsync verify --database-only --json (run on the secondary): holds the secondary's
#     applier at the primary's snapshot position, then compares every table of both servers in
#     primary-key chunks (both servers compute their checksums),
#   - pt-table-checksum --recursion-method=none on the primary: its chunked checksums (CRC32 of
#     CONCAT_WS of the columns, BIT_XOR per chunk) on the primary only. With a real MySQL replica
#     pt-table-checksum lets replication re-run each chunk's checksum on the replica as well, so
#     its time here is a lower bound of what it would take with one.
# Prints both times, rows per second, and the ratio replsync / pt-table-checksum (< 1: replsync is
# faster); both must find the tables consistent (replsync: exit 0; pt: no ERRORS).
#
# Usage: tools/bench/verify_bench.sh [--tables N] [--table-size N]
# Environment: BUILD_DIR (default build), BENCH_TABLES (4), BENCH_TABLE_SIZE (250000),
#   MARIADB_KEEP=1 keeps the folders. About 2 minutes with the defaults on 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
REPLSYNC="$BUILD_DIR/tools/replsync"
REPLSYNCD="$BUILD_DIR/tools/replsyncd"
tables=${BENCH_TABLES:-4}
table_size=${BENCH_TABLE_SIZE:-250000}

die() { echo "verify_bench: $*" >&2; exit 1; }
say() { echo "verify_bench: $*"; }
while (($#)); do
  case $1 in
    --tables) tables=$2; shift 2 ;;
    --table-size) table_size=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ -x $REPLSYNCD && -x $REPLSYNC ]] || die "build replsync and replsyncd first (ninja -C $BUILD_DIR replsync replsyncd)"
command -v pt-table-checksum >/dev/null || die "pt-table-checksum not found; run tools/setup.sh"
command -v sysbench >/dev/null || die "sysbench not found; run tools/setup.sh"

# shellcheck source=../lib/mariadb.sh
source "$ROOT/tools/lib/mariadb.sh"
work=$MARIADB_WORK
BENCH_NAME=verify_bench
# shellcheck source=../lib/bench.sh
source "$ROOT/tools/lib/bench.sh"

say "starting two MariaDB servers"
mariadb_start primary 1 --innodb-buffer-pool-size=1G
mariadb_start secondary 2 --innodb-buffer-pool-size=1G
primary_endpoint="tcp://127.0.0.1:$(_free_port)"
secondary_endpoint="tcp://127.0.0.1:$(_free_port)"  # never bound: the secondary's, as a primary
# Each node has its own CURVE key and the other in [peers].
bench_keygen primary secondary
# replsyncd refuses a configuration others may read (it holds passwords).
install -m 600 /dev/null "$work/primary.toml"
install -m 600 /dev/null "$work/secondary.toml"
cat >"$work/primary.toml" <<TOML
[node]
name = "primary"
role = "primary"
state_dir = "$work/primary-state"
[mysql]
socket = "$work/primary/mysqld.sock"
user = "root"
databases = ["sbtest"]
[transport]
listen = "$primary_endpoint"
secret_key_file = "$work/primary.key"
$(bench_peer secondary "$secondary_endpoint")
TOML
cat >"$work/secondary.toml" <<TOML
[node]
name = "secondary"
role = "secondary"
state_dir = "$work/secondary-state"
[mysql]
socket = "$work/secondary/mysqld.sock"
user = "root"
databases = ["sbtest"]
[transport]
primary = "$primary_endpoint"
secret_key_file = "$work/secondary.key"
$(bench_peer primary "$primary_endpoint")
[primary_mysql]
socket = "$work/primary/mysqld.sock"
user = "root"
TOML
"$REPLSYNCD" --config "$work/primary.toml" >"$work/primary.log" 2>&1 &
daemons+=($!)
"$REPLSYNCD" --config "$work/secondary.toml" >"$work/secondary.log" 2>&1 &
daemons+=($!)
for ((i = 0; i < 100; i++)); do
  grep -q '"capture_state":"running"' "$work/primary-state/status.json" 2>/dev/null && break
  sleep 0.1
done

say "sysbench prepare: $tables tables x $table_size rows"
mariadb_sql primary "CREATE DATABASE sbtest"
sysbench oltp_write_only --db-driver=mysql --mysql-socket="$work/primary/mysqld.sock" \
  --mysql-user=root --tables="$tables" --table-size="$table_size" prepare >/dev/null
target=$(mariadb_sql primary "SELECT @@gtid_binlog_pos")
for ((i = 0; i < 3000; i++)); do
  [[ "$(mariadb_sql secondary "SELECT gtid FROM replsync.applied" 2>/dev/null)" == "$target" ]] && break
  sleep 0.2
done
[[ "$(mariadb_sql secondary "SELECT gtid FROM replsync.applied")" == "$target" ]] ||
  die "the secondary did not catch up with the prepared tables"
rows=$((tables * table_size))
# Warm both servers' buffer pools alike.
for t in $(seq 1 "$tables"); do
  mariadb_sql primary "SELECT COUNT(*) FROM sbtest.sbtest$t" >/dev/null
  mariadb_sql secondary "SELECT COUNT(*) FROM sbtest.sbtest$t" >/dev/null
done

say "replsync verify"
t0=$(now)
set +e
"$REPLSYNC" verify --config "$work/secondary.toml" --database-only --json >"$work/verify.json" 2>"$work/verify.err"
verify_rc=$?
set -e
t1=$(now)
replsync_s=$(elapsed "$t0" "$t1")
((verify_rc == 0)) || die "replsync verify exited $verify_rc: $(cat "$work/verify.err") $(head -c 600 "$work/verify.json")"

say "pt-table-checksum"
t0=$(now)
set +e
pt-table-checksum "h=localhost,S=$work/primary/mysqld.sock,u=root" --databases sbtest \
  --recursion-method=none --no-check-binlog-format --no-version-check \
  >"$work/pt.out" 2>"$work/pt.err"
pt_rc=$?
set -e
t1=$(now)
pt_s=$(elapsed "$t0" "$t1")
# Exit status bits: 1 error, 16 differences (none can show without replicas), 32 skipped chunks.
((pt_rc == 0)) || die "pt-table-checksum exited $pt_rc: $(tail -5 "$work/pt.err") $(tail -5 "$work/pt.out")"
pt_errors=$(awk 'NR > 1 { e += $3 } END { print e + 0 }' "$work/pt.out")

echo
echo "== verify_bench: replsync verify vs pt-table-checksum $(pt-table-checksum --version | awk '{print $2}'), $(nproc) CPUs"
echo "   $tables sysbench tables x $table_size rows = $rows rows on each server"
printf '   %-52s %8s s  %10s rows/s\n' \
  "replsync verify (primary + secondary, full compare)" "$replsync_s" \
  "$(awk -v r="$rows" -v s="$replsync_s" 'BEGIN { printf "%.0f", r / s }')" \
  "pt-table-checksum (primary only, no replica)" "$pt_s" \
  "$(awk -v r="$rows" -v s="$pt_s" 'BEGIN { printf "%.0f", r / s }')"
echo "   ratio replsync / pt-table-checksum: $(awk -v a="$replsync_s" -v b="$pt_s" 'BEGIN { printf "%.2f", a / b }') (target < 1: faster); pt errors: $pt_errors; replsync: $(grep -o '"consistent":[a-z]*' "$work/verify.json")"
