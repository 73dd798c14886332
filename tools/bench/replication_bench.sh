#!/usr/bin/env bash
# replication_bench.sh: replsync next to MariaDB's own replica, side by side in one run.
#
# Starts three throw-away MariaDB servers on loopback (tools/lib/mariadb.sh: ROW format, FULL
# image and metadata, same options for all three):
#   primary   (server_id 1)  with replsyncd in the primary role (databases = ["sbtest"]),
#   secondary (server_id 2)  with replsyncd in the secondary role,
#   native    (server_id 3)  a MariaDB replica of the primary (CHANGE MASTER TO ...,
#                            MASTER_USE_GTID=slave_pos; slave_parallel_threads=0 unless
#                            --native-threads), started at the primary's current GTID.
# Then sysbench prepare on the primary (replicated to both) and three measurements:
#   1. catch-up: the replsync secondary daemon is stopped (SIGTERM) and the native replica
#      stopped (STOP SLAVE: both of its threads); sysbench oltp_write_only runs unthrottled for
#      --seconds on the primary (replsync's primary daemon keeps capturing into its journal, as
#      in production); then, one after the other so that they do not share the CPUs, the time
#      each replica needs to reach the primary's last GTID: native = START SLAVE until
#      @@gtid_slave_pos reaches it; replsync = start of the secondary replsyncd until its
#      applied GTID reaches it. Round 1 runs the native replica first, round 2 (--rounds 2)
#      replsync first, and so on.
#   2. steady state: both replicas running, sysbench at a fixed --rate for --seconds; every
#      0.5 s, how many transactions each replica is behind the primary (the sequence of the
#      primary's @@gtid_binlog_pos minus the replica's); mean, p95, max, and the time each needs
#      to drain after the load stops. Then the same unthrottled for --burst-seconds.
#   3. verification: CHECKSUM TABLE of every sbtest table on all three servers must be equal.
# The applied position of replsync is read from its replsync.applied row on the secondary
# (schemas/applied_position.md: written in the same transaction as the rows, so it is exact at
# every instant; the status file is only rewritten once a second); at the end the script
# checks that `replsync status --json` reports the same applied_gtid.
# Prints a table with times, rates, CPU seconds and ratios native/replsync (> 1: replsync is
# faster or lags less); exits non-zero when any step fails or the replicas differ from the
# primary (or the catch-up ratio is below BENCH_MIN_RATIO when that is set).
#
# Usage: tools/bench/replication_bench.sh [--seconds N] [--rate TPS] [--burst-seconds N]
#          [--rounds N] [--tables N] [--table-size N] [--threads N] [--native-threads N]
#          [--relaxed-durability]
# (--relaxed-durability: innodb_flush_log_at_trx_commit=2 on all three servers instead of the
#  default 1; --burst-seconds 0 skips the unthrottled steady-state run.)
# Environment: BUILD_DIR (default build; relative to the repository), BENCH_SECONDS (30),
#   BENCH_RATE (500), BENCH_BURST_SECONDS (15), BENCH_ROUNDS (1), BENCH_TABLES (4),
#   BENCH_TABLE_SIZE (100000), BENCH_THREADS (4), BENCH_NATIVE_THREADS (0),
#   BENCH_TIMEOUT (600: the longest wait for a replica, seconds), BENCH_MIN_RATIO (unset:
#   report only), BENCH_PERF (a folder: each catch-up is recorded system-wide with
#   `perf record -g` into FOLDER/native-ROUND.data and FOLDER/replsync-ROUND.data), MARIADB_KEEP=1 (keep the servers' folders and the logs; a failed run keeps
#   them anyway).
# The default run takes about 4-5 minutes on 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
REPLSYNC="$BUILD_DIR/tools/replsync"
REPLSYNCD="$BUILD_DIR/tools/replsyncd"

seconds=${BENCH_SECONDS:-30}
rate=${BENCH_RATE:-500}
burst_seconds=${BENCH_BURST_SECONDS:-15}
rounds=${BENCH_ROUNDS:-1}
tables=${BENCH_TABLES:-4}
table_size=${BENCH_TABLE_SIZE:-100000}
threads=${BENCH_THREADS:-4}
native_threads=${BENCH_NATIVE_THREADS:-0}
workers=${BENCH_WORKERS:-4}
use_tcp=""
timeout=${BENCH_TIMEOUT:-600}
relaxed=""

die() { echo "replication_bench: $*" >&2; exit 1; }
say() { echo "replication_bench: $*"; }

while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --burst-seconds) burst_seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --tables) tables=$2; shift 2 ;;
    --table-size) table_size=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --native-threads) native_threads=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --tcp) use_tcp=1; shift ;;
    --relaxed-durability) relaxed=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[[ -x $REPLSYNCD && -x $REPLSYNC ]] ||
  die "$REPLSYNCD or $REPLSYNC not found; build them (ninja -C $BUILD_DIR replsync replsyncd) or set BUILD_DIR"
command -v sysbench >/dev/null || die "sysbench not found; run tools/setup.sh"
command -v python3 >/dev/null || die "python3 not found; run tools/setup.sh"
((rounds >= 1)) || die "--rounds must be at least 1"

load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
awk -v l="${load_at_start%% *}" 'BEGIN { exit !(l > 1.5) }' &&
  say "warning: load average $load_at_start before the start; other work on the machine skews the numbers"
# shellcheck source=../lib/mariadb.sh
source "$ROOT/tools/lib/mariadb.sh"
work=$MARIADB_WORK

# --- processes and clean-up -----------------------------------------------------------------
primary_daemon=""
secondary_daemon=""
sysbench_pid=""
# Called by tools/lib/bench.sh's exit trap before it stops the servers.
bench_before_stop() {
  [[ -n $sysbench_pid ]] && kill -TERM "$sysbench_pid" 2>/dev/null
  local pid
  for pid in $secondary_daemon $primary_daemon; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $secondary_daemon $primary_daemon $sysbench_pid; do wait "$pid" 2>/dev/null || true; done
  # The replica first, so that it does not retry against a stopped primary.
  if [[ " ${MARIADB_NAMES[*]} " == *" native "* ]]; then mariadb_stop native; fi
}
BENCH_NAME=replication_bench
# shellcheck source=../lib/bench.sh
source "$ROOT/tools/lib/bench.sh"
ticks_per_s=$(getconf CLK_TCK)
# CPU seconds (user + system) a process has used so far; 0 when it is gone.
cpu_of() {
  local f
  [[ -n $1 && -r /proc/$1/stat ]] || { echo 0; return; }
  f=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  # After "pid (comm) ", utime and stime are the 12th and 13th fields.
  awk -v t="$ticks_per_s" '{ printf "%.2f", ($12 + $13) / t }' <<<"$f"
}
server_pid() { cat "$work/$1/mysqld.pid" 2>/dev/null || echo ""; }

# --- servers --------------------------------------------------------------------------------
server_args=(--max-connections=200 --innodb-buffer-pool-size=512M --innodb-log-file-size=512M
             --skip-slave-start)
[[ -n $relaxed ]] && server_args+=(--innodb-flush-log-at-trx-commit=2)
say "starting three MariaDB servers in $work"
mariadb_start primary 1 "${server_args[@]}"
mariadb_start secondary 2 "${server_args[@]}"
mariadb_start native 3 "${server_args[@]}" --slave-parallel-threads="$native_threads"
version=$(mariadb_sql primary "SELECT VERSION()")

# --- positions ------------------------------------------------------------------------------
# The sequence number of domain 0 in a GTID list read from stdin ("0-1-42,1-5-7" -> 42); 0 when
# the list has no entry for domain 0 (or is empty). Every transaction of the primary is in
# domain 0 with server_id 1.
seq_of() {
  awk -F, '{ for (i = 1; i <= NF; i++) { split($i, g, "-"); gsub(/ /, "", g[1]);
             if (g[1] == "0") { s = g[3]; f = 1 } } }
           END { print (f ? s : 0) }'
}
primary_gtid() { mariadb_sql primary "SELECT @@gtid_binlog_pos"; }
native_gtid() { mariadb_sql native "SELECT @@gtid_slave_pos"; }
replsync_gtid() { mariadb_sql secondary "SELECT gtid FROM replsync.applied" 2>/dev/null | head -n 1 || true; }
primary_seq() { primary_gtid | seq_of; }
native_seq() { native_gtid | seq_of; }
replsync_seq() { replsync_gtid | seq_of; }
# All three at the same moment (three clients in parallel): sets P, N, R.
sample_seqs() {
  primary_gtid >"$work/q.p" 2>/dev/null &
  local a=$!
  native_gtid >"$work/q.n" 2>/dev/null &
  local b=$!
  replsync_gtid >"$work/q.r" &
  local c=$!
  wait "$a" "$b" "$c" || true
  P=$(seq_of <"$work/q.p")
  N=$(seq_of <"$work/q.n")
  R=$(seq_of <"$work/q.r")
}

native_check() {  # dies when a replication thread of the native replica stopped on an error
  local st
  st=$(mariadb --no-defaults -uroot --socket="$work/native/mysqld.sock" -e "SHOW SLAVE STATUS\G")
  if grep -qE "Last_(IO|SQL)_Errno: [1-9]" <<<"$st"; then
    grep -E "Slave_(IO|SQL)_Running:|Last_(IO|SQL)_Error" <<<"$st" >&2
    die "the native replica stopped on an error"
  fi
}

# --- replsyncd ------------------------------------------------------------------------------
# Each node has its own CURVE key and the other in [peers]; the secondary's endpoint (where it
# would listen as the primary) is never bound here.
bench_keygen primary secondary
declare -A endpoint=([primary]="tcp://127.0.0.1:$(_free_port)" [secondary]="tcp://127.0.0.1:$(_free_port)")
write_config() {  # name role port other
  # replsyncd refuses a configuration others may read (it holds passwords).
  install -m 600 /dev/null "$work/$1.toml"
  cat >"$work/$1.toml" <<TOML
[node]
name = "$1"
role = "$2"
state_dir = "$work/$1-state"

[mysql]
host = "127.0.0.1"
port = $3
${use_tcp:+#}socket = "$work/$1/mysqld.sock"
user = "root"
password = ""
databases = ["sbtest"]

[repository]
path = "$work/$1-repository"

[transport]
listen = "${endpoint[$1]}"
primary = "${endpoint[$4]}"
secret_key_file = "$work/$1.key"

$(bench_peer "$4" "${endpoint[$4]}")

[apply]
workers = $workers

[log]
level = "info"
TOML
  mkdir -p "$work/$1-repository"
}
write_config primary primary "$MARIADB_PORT_primary" secondary
write_config secondary secondary "$MARIADB_PORT_secondary" primary

wait_status() {  # name pid needle: waits until the daemon's status file shows needle
  local i
  for ((i = 0; i < 600; i++)); do
    if grep -q "$3" "$work/$1-state/status.json" 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { tail -20 "$work/$1.log" >&2; die "replsyncd ($1) exited"; }
    sleep 0.05
  done
  tail -20 "$work/$1.log" >&2
  die "replsyncd ($1) did not report $3"
}
start_primary_daemon() {
  "$REPLSYNCD" --config "$work/primary.toml" >>"$work/primary.log" 2>&1 &
  primary_daemon=$!
  wait_status primary "$primary_daemon" "\"pid\":$primary_daemon,"
  wait_status primary "$primary_daemon" '"capture_state":"running"'
}
start_secondary_daemon() {  # returns at once; the caller waits for what it needs
  "$REPLSYNCD" --config "$work/secondary.toml" >>"$work/secondary.log" 2>&1 &
  secondary_daemon=$!
}
stop_secondary_daemon() {
  kill -TERM "$secondary_daemon"
  local rc=0
  wait "$secondary_daemon" || rc=$?
  secondary_daemon=""
  ((rc == 0)) || { tail -20 "$work/secondary.log" >&2; die "replsyncd (secondary) exited with $rc on SIGTERM"; }
}
status_field() {  # node python-subscript: a field of `replsync status --json` ("" on failure)
  "$REPLSYNC" status --config "$work/$1.toml" --json 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)$2)" 2>/dev/null || true
}
replsync_check() {  # dies when the secondary daemon is gone
  [[ -n $secondary_daemon ]] && kill -0 "$secondary_daemon" 2>/dev/null && return 0
  tail -20 "$work/secondary.log" >&2
  die "replsyncd (secondary) exited"
}

say "starting replsyncd (primary, then secondary)"
start_primary_daemon
start_secondary_daemon
wait_status secondary "$secondary_daemon" "\"pid\":$secondary_daemon,"

say "starting the native replica at the primary's GTID $(primary_gtid)"
mariadb_sql native "SET GLOBAL gtid_slave_pos = '$(primary_gtid)';
  CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$MARIADB_PORT_primary, MASTER_USER='root',
    MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
  START SLAVE"
for ((i = 0; i < 100; i++)); do
  [[ $(mariadb_sql native "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS
        WHERE VARIABLE_NAME = 'SLAVE_RUNNING'") == ON ]] && break
  sleep 0.1
done
native_check

# Waits (up to $timeout s) until both replicas have applied the primary's current position.
wait_synced() {
  local target i
  target=$(primary_seq)
  for ((i = 0; i < timeout * 10; i++)); do
    if (($(native_seq) >= target && $(replsync_seq) >= target)); then return 0; fi
    if ((i % 20 == 0)); then native_check; replsync_check; fi
    sleep 0.1
  done
  die "the replicas did not reach the primary's 0-1-$target in ${timeout}s (native $(native_seq), replsync $(replsync_seq))"
}

# --- sysbench -------------------------------------------------------------------------------
sb=(sysbench oltp_write_only --db-driver=mysql --mysql-socket="$work/primary/mysqld.sock"
    --mysql-user=root --mysql-db=sbtest --tables="$tables" --table-size="$table_size")
sb_tps() { sed -n 's/.*transactions: *\([0-9]*\) *(\([0-9.]*\) per sec.*/\2/p' "$1"; }

say "sysbench prepare ($tables tables x $table_size rows) on the primary"
mariadb_sql primary "CREATE DATABASE sbtest"
"${sb[@]}" --threads="$tables" prepare >"$work/prepare.log" 2>&1 ||
  { tail -20 "$work/prepare.log" >&2; die "sysbench prepare failed"; }
t0=$(now)
wait_synced
say "both replicas have the prepared tables (0-1-$(primary_seq)), $(elapsed "$t0" "$(now)")s after prepare ended"

# --- 1. catch-up ----------------------------------------------------------------------------
# catch_up_native / catch_up_replsync TARGET: start the replica, wait until it has applied
# 0-1-TARGET; set T (seconds) and C (CPU seconds of every process involved).
# CPU seconds so far of: primary mariadbd, secondary mariadbd, native mariadbd, primary
# replsyncd, secondary replsyncd (0 for a process not running).
cpu_snapshot() {
  local p out=()
  for p in "$(server_pid primary)" "$(server_pid secondary)" "$(server_pid native)" \
           "$primary_daemon" "$secondary_daemon"; do
    out+=("$(cpu_of "$p")")
  done
  echo "${out[*]}"
}
# cpu_delta BEFORE AFTER: sets C (total CPU seconds) and C_PARTS (per process, as listed above).
cpu_delta() {
  read -r C C_PARTS < <(awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " ");
    for (i = 1; i <= n; i++) { d = y[i] - x[i]; t += d; p = p sprintf(" %.2f", d) }
    printf "%.2f%s\n", t, p }')
}
perf_pid=""
perf_start() {  # name: records the whole machine into $BENCH_PERF/name.data when BENCH_PERF is set
  [[ -n ${BENCH_PERF:-} ]] || return 0
  mkdir -p "$BENCH_PERF"
  perf record -F 499 -g -a -o "$BENCH_PERF/$1.data" >"$BENCH_PERF/$1.log" 2>&1 &
  perf_pid=$!
  sleep 0.5
}
perf_stop() {
  [[ -n $perf_pid ]] || return 0
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" 2>/dev/null || true
  perf_pid=""
}
catch_up_native() {
  local target=$1 c0 t0 i
  perf_start "native-$round"
  c0=$(cpu_snapshot)
  t0=$(now)
  mariadb_sql native "START SLAVE"
  for ((i = 0; ; i++)); do
    (($(native_seq) >= target)) && break
    if ((i % 20 == 0)); then native_check; fi
    ((i < timeout * 10)) || die "the native replica did not catch up in ${timeout}s"
    sleep 0.1
  done
  T=$(elapsed "$t0" "$(now)")
  cpu_delta "$c0" "$(cpu_snapshot)"
  perf_stop
}
catch_up_replsync() {
  local target=$1 c0 t0 i
  perf_start "replsync-$round"
  c0=$(cpu_snapshot)
  t0=$(now)
  start_secondary_daemon
  for ((i = 0; ; i++)); do
    (($(replsync_seq) >= target)) && break
    if ((i % 20 == 0)); then replsync_check; fi
    ((i < timeout * 10)) || die "replsync did not catch up in ${timeout}s"
    sleep 0.1
  done
  T=$(elapsed "$t0" "$(now)")
  # The new daemon's CPU is all spent in this catch-up; the snapshot counted it as 0 at the start.
  cpu_delta "$c0" "$(cpu_snapshot)"
  perf_stop
}

cpu_parts() {  # "a b c d e" -> a readable split
  read -r a b c d e <<<"$1"
  echo "mariadbd primary $a, secondary $b, native $c; replsyncd primary $d, secondary $e"
}
declare -a cu_order cu_backlog cu_native_s cu_native_cpu cu_replsync_s cu_replsync_cpu cu_load_tps
declare -a cu_native_parts cu_replsync_parts
for ((round = 1; round <= rounds; round++)); do
  if ((round % 2 == 1)); then order=native; else order=replsync; fi
  say "catch-up round $round: stopping both replicas, ${seconds}s of unthrottled load ($threads threads)"
  stop_secondary_daemon
  mariadb_sql native "STOP SLAVE"
  start_seq=$(primary_seq)
  n0=$(native_seq)
  r0=$(replsync_seq)
  ((n0 == start_seq && r0 == start_seq)) || die "replicas not in step before the load ($n0, $r0, $start_seq)"
  "${sb[@]}" --threads="$threads" --time="$seconds" --report-interval=0 run >"$work/catchup$round.log" 2>&1 ||
    { tail -20 "$work/catchup$round.log" >&2; die "sysbench run failed"; }
  target=$(primary_seq)
  # The replsync primary must have captured all of it before we time the secondary.
  for ((i = 0; ; i++)); do
    captured=$(status_field primary '["primary"]["gtid"]')
    [[ $captured == "0-1-$target" ]] && break
    ((i < timeout * 10)) || die "replsyncd (primary) captured up to '$captured', not 0-1-$target"
    sleep 0.1
  done
  cu_load_tps[round]=$(sb_tps "$work/catchup$round.log")
  cu_backlog[round]=$((target - start_seq))
  cu_order[round]="$order first"
  say "  backlog: ${cu_backlog[round]} transactions (0-1-$((start_seq + 1)) .. 0-1-$target), load ran at ${cu_load_tps[round]} tps"
  for who in $order $([[ $order == native ]] && echo replsync || echo native); do
    if [[ $who == native ]]; then
      catch_up_native "$target"
      cu_native_s[round]=$T; cu_native_cpu[round]=$C; cu_native_parts[round]=$C_PARTS
    else
      catch_up_replsync "$target"
      cu_replsync_s[round]=$T; cu_replsync_cpu[round]=$C; cu_replsync_parts[round]=$C_PARTS
    fi
    say "  $who caught up in ${T}s (${C} CPU s: $(cpu_parts "$C_PARTS"))"
  done
done

# --- 2. steady state ------------------------------------------------------------------------
# steady NAME RATE SECONDS: sysbench at RATE tps (0: unthrottled) while sampling every 0.5 s;
# then the drain after the load. Sets the st_* arrays for NAME.
declare -A st_tps st_samples st_n_mean st_n_p95 st_n_max st_r_mean st_r_p95 st_r_max st_n_drain st_r_drain
steady() {
  local name=$1 r=$2 secs=$3 next t_end final n_done="" r_done="" i
  local samples="$work/samples.$name"
  : >"$samples"
  "${sb[@]}" --threads="$threads" --rate="$r" --time="$secs" --report-interval=0 run \
    >"$work/steady.$name.log" 2>&1 &
  sysbench_pid=$!
  next=$(now)
  while kill -0 "$sysbench_pid" 2>/dev/null; do
    sample_seqs
    echo "$P $N $R" >>"$samples"
    next=$(awk -v a="$next" 'BEGIN { printf "%.6f", a + 0.5 }')
    local pause
    pause=$(awk -v a="$next" -v b="$(now)" 'BEGIN { d = a - b; printf "%.3f", (d > 0 ? d : 0) }')
    sleep "$pause"
  done
  local rc=0
  wait "$sysbench_pid" || rc=$?
  sysbench_pid=""
  ((rc == 0)) || { tail -20 "$work/steady.$name.log" >&2; die "sysbench run failed"; }
  t_end=$(now)
  final=$(primary_seq)
  for ((i = 0; ; i++)); do
    [[ -z $n_done ]] && (($(native_seq) >= final)) && n_done=$(elapsed "$t_end" "$(now)")
    [[ -z $r_done ]] && (($(replsync_seq) >= final)) && r_done=$(elapsed "$t_end" "$(now)")
    [[ -n $n_done && -n $r_done ]] && break
    if ((i % 20 == 0)); then native_check; replsync_check; fi
    ((i < timeout * 10)) || die "the replicas did not drain in ${timeout}s"
    sleep 0.1
  done
  st_tps[$name]=$(sb_tps "$work/steady.$name.log")
  st_n_drain[$name]=$n_done
  st_r_drain[$name]=$r_done
  # behind = primary - replica per sample; mean, p95 (nearest rank), max.
  read -r "st_samples[$name]" "st_n_mean[$name]" "st_n_p95[$name]" "st_n_max[$name]" < <(
    awk '{ d = $1 - $2; print (d > 0 ? d : 0) }' "$samples" | sort -n |
      awk '{ v[NR] = $1; s += $1 } END { k = int(NR * 0.95 + 0.999999); if (k < 1) k = 1;
             printf "%d %.1f %d %d\n", NR, (NR ? s / NR : 0), v[k], v[NR] }')
  read -r _ "st_r_mean[$name]" "st_r_p95[$name]" "st_r_max[$name]" < <(
    awk '{ d = $1 - $3; print (d > 0 ? d : 0) }' "$samples" | sort -n |
      awk '{ v[NR] = $1; s += $1 } END { k = int(NR * 0.95 + 0.999999); if (k < 1) k = 1;
             printf "%d %.1f %d %d\n", NR, (NR ? s / NR : 0), v[k], v[NR] }')
}

wait_synced
say "steady state: ${seconds}s at $rate tps ($threads threads), both replicas running"
steady rate "$rate" "$seconds"
say "  native mean ${st_n_mean[rate]} behind, replsync mean ${st_r_mean[rate]} behind"
if ((burst_seconds > 0)); then
  say "steady state: ${burst_seconds}s unthrottled ($threads threads)"
  steady burst 0 "$burst_seconds"
  say "  native mean ${st_n_mean[burst]} behind, replsync mean ${st_r_mean[burst]} behind"
fi

# --- 3. verification ------------------------------------------------------------------------
wait_synced
say "CHECKSUM TABLE of every sbtest table on the three servers"
table_list=$(mariadb_sql primary "SELECT CONCAT('sbtest.', table_name) FROM information_schema.tables
  WHERE table_schema = 'sbtest' AND table_type = 'BASE TABLE' ORDER BY 1" | paste -sd, -)
[[ -n $table_list ]] || die "no sbtest tables on the primary"
checksums() { mariadb_sql "$1" "CHECKSUM TABLE ${table_list//,/, }" | awk -F'\t' '{ print $1, $2 }'; }
sum_p=$(checksums primary)
sum_s=$(checksums secondary)
sum_n=$(checksums native)
final_gtid=$(primary_gtid)
sleep 1.5  # the status file is rewritten once a second
status_gtid=$(status_field secondary '["secondary"]["applied_gtid"]')

# --- report ---------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else if (a > 0) print "inf"; else print "-" }'; }
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
echo
echo "== replication_bench: replsync vs MariaDB's replica ($version), $(nproc) CPUs, load average $load_at_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "   sysbench oltp_write_only, $tables tables x $table_size rows, $threads threads; native replica slave_parallel_threads=$native_threads;"
echo "   innodb_flush_log_at_trx_commit=$([[ -n $relaxed ]] && echo 2 || echo 1) on all servers; GTIDs compared: primary @@gtid_binlog_pos,"
echo "   native @@gtid_slave_pos, replsync replsync.applied.gtid"
echo
echo "1. Catch-up after ${seconds}s of unthrottled load with both replicas stopped (one replica at a time)"
printf '%-6s %-15s %9s %9s %10s %8s %10s %11s %8s %12s %8s\n' round order "backlog" "load tps" \
  "native s" "tx/s" "replsync s" "tx/s" "ratio" "CPU s n/r" "CPU ratio"
ratios=()
for ((round = 1; round <= rounds; round++)); do
  r=$(ratio "${cu_native_s[round]}" "${cu_replsync_s[round]}")
  ratios+=("$r")
  printf '%-6s %-15s %9s %9s %10s %8s %10s %11s %8s %12s %8s\n' "$round" "${cu_order[round]}" \
    "${cu_backlog[round]}" "${cu_load_tps[round]}" \
    "${cu_native_s[round]}" "$(per_s "${cu_backlog[round]}" "${cu_native_s[round]}")" \
    "${cu_replsync_s[round]}" "$(per_s "${cu_backlog[round]}" "${cu_replsync_s[round]}")" "$r" \
    "${cu_native_cpu[round]}/${cu_replsync_cpu[round]}" \
    "$(ratio "${cu_native_cpu[round]}" "${cu_replsync_cpu[round]}")"
done
echo "   ratio = native time / replsync time (> 1: replsync catches up faster; target >= 1.0)."
echo "   Native: from START SLAVE (both threads: it also fetches the backlog from the primary's"
echo "   binlog) to @@gtid_slave_pos = target. replsync: from starting the secondary replsyncd"
echo "   (process start, connect, receive from the primary's journal, apply) to replsync.applied ="
echo "   target. CPU s: CPU used by all five processes (3 servers, 2 daemons) during that catch-up:"
for ((round = 1; round <= rounds; round++)); do
  echo "   round $round native:   $(cpu_parts "${cu_native_parts[round]}")"
  echo "   round $round replsync: $(cpu_parts "${cu_replsync_parts[round]}")"
done
echo
echo "2. Steady state: transactions behind the primary, sampled every 0.5 s; drain = seconds from"
echo "   the end of the load until the replica has the primary's last transaction"
printf '%-26s %9s %8s %-9s %9s %6s %6s %8s\n' load "tps done" samples replica "mean" p95 max "drain s"
for name in rate burst; do
  [[ -n ${st_tps[$name]:-} ]] || continue
  if [[ $name == rate ]]; then label="${seconds}s at --rate=$rate"; else label="${burst_seconds}s unthrottled"; fi
  printf '%-26s %9s %8s %-9s %9s %6s %6s %8s\n' "$label" "${st_tps[$name]}" "${st_samples[$name]}" native \
    "${st_n_mean[$name]}" "${st_n_p95[$name]}" "${st_n_max[$name]}" "${st_n_drain[$name]}"
  printf '%-26s %9s %8s %-9s %9s %6s %6s %8s\n' "" "" "" replsync \
    "${st_r_mean[$name]}" "${st_r_p95[$name]}" "${st_r_max[$name]}" "${st_r_drain[$name]}"
  printf '%-26s %9s %8s %-9s %9s %6s %6s %8s\n' "" "" "" "n/r ratio" \
    "$(ratio "${st_n_mean[$name]}" "${st_r_mean[$name]}")" "$(ratio "${st_n_p95[$name]}" "${st_r_p95[$name]}")" \
    "$(ratio "${st_n_max[$name]}" "${st_r_max[$name]}")" "$(ratio "${st_n_drain[$name]}" "${st_r_drain[$name]}")"
done
echo "   (ratio native/replsync > 1: replsync is less behind; '-' both 0, 'inf' replsync 0)"
echo
echo "What limits these numbers: $(nproc) CPUs shared by three MariaDB servers, sysbench, both"
echo "replsyncd and the sampling clients; during a catch-up the other replica is idle. Both"
echo "replicas commit every transaction durably in their own InnoDB with their applied position"
echo "(mysql.gtid_slave_pos / replsync.applied); sampling has 0.5 s resolution (catch-up and drain"
echo "0.1 s). Logs: $work (kept with MARIADB_KEEP=1)."
echo

fail=""
printf '%-22s %-14s %-14s %-14s\n' table primary "replsync" native
while read -r t sp && read -r _ ss <&3 && read -r _ sn <&4; do
  printf '%-22s %-14s %-14s %-14s %s\n' "$t" "$sp" "$ss" "$sn" \
    "$([[ $sp == "$ss" && $sp == "$sn" ]] && echo equal || echo DIFFERENT)"
done <<<"$sum_p" 3<<<"$sum_s" 4<<<"$sum_n"
[[ $sum_p == "$sum_s" ]] || fail+=" replsync secondary differs from the primary;"
[[ $sum_p == "$sum_n" ]] || fail+=" native replica differs from the primary;"
[[ $status_gtid == "$final_gtid" ]] ||
  fail+=" replsync status applied_gtid $status_gtid is not the primary's $final_gtid;"
echo "primary @@gtid_binlog_pos $final_gtid; native @@gtid_slave_pos $(native_gtid);" \
  "replsync applied_gtid (status) $status_gtid"
[[ -z $fail ]] || die "verification failed:$fail"
echo "Verified: both replicas hold exactly the primary's rows (CHECKSUM TABLE of all $(wc -l <<<"$sum_p") tables)."
if [[ -n ${BENCH_MIN_RATIO:-} ]]; then
  for r in "${ratios[@]}"; do
    awk -v s="$r" -v m="$BENCH_MIN_RATIO" 'BEGIN { exit !(s == "inf" || s >= m) }' ||
      die "catch-up ratio $r is below BENCH_MIN_RATIO=$BENCH_MIN_RATIO"
  done
fi
