#!/usr/bin/env bash
# bootstrap_bench.sh: `replsync bootstrap` next to mariadb-dump, mydumper and rsync, side by side
# in one run (issue 14's measurement).
#
# Starts throw-away MariaDB servers on loopback (tools/lib/mariadb.sh: ROW format, FULL image and
# metadata; the same options for all): a primary holding sysbench's --tables x --table-size rows
# (sysbench prepare) and a repository of --files small files (1-64 KiB, in folders of 100) and
# --large-files files of --large-mib MiB; replsyncd runs on the primary (started after both are
# there, as when replsync is installed next to existing data). Then, idle and (unless
# --no-load) again under a steady sysbench oltp_write_only load of --rate tx/s, each copy into a
# server of its own that starts empty:
#   - replsync bootstrap: a fresh secondary (its own server, state, repository, key made with
#     `replsync keygen`, configurations as tools/lib/bench.sh writes them, [bootstrap] readers =
#     --threads, [node] bootstrap = "auto"); timed from the start of its replsyncd until
#     `replsync bootstrap --config secondary.toml`, which follows the daemon's bootstrap, exits
#     0. (With "manual", the daemon applies the primary's journal from its start until the
#     command comes, the file entries of the primary's first scan among them, and may then
#     refuse the bootstrap because of those files.) The copy has phases (round 0, rows, schema
#     objects, files); the daemon's log gives when each ended, so the database part (the start
#     to the files phase) and the files phase are also reported on their own;
#   - mariadb-dump --single-transaction --master-data=2 --databases sbtest | mariadb (one thread;
#     the loading session with sql_log_bin=0, as myloader's and replsync's loaders);
#   - mydumper --trx-consistency-only -t THREADS into a folder, then myloader -t THREADS (0.10 has
#     no streaming: the two run one after the other, the total counts);
#   - rsync -a of the primary's repository into an empty folder (and rsync -a followed by sync,
#     when its copy is on disk), next to replsync's files phase (durable when it ends); under
#     load it runs after the dump tools, while sysbench writes and replsync's secondary applies.
# Every copy starts alike: dirty pages written (sync) and the primary's tables and repository
# read into the page cache. Checks: CHECKSUM TABLE of every sbtest table on each copy equal to
# the primary's, and the repositories equal (type, mode, owner, mtime, link target, SHA-256).
# Under load, replsync's secondary is compared at a quiesced point: the load is stopped and the
# secondary has applied the primary's last transaction. The dump tools' copies under load hold
# the primary's data of a past point and do not follow it: they are not compared (only idle).
# Reported: seconds and MB/s (of the tables' size on the primary, data + indexes, or of the
# repository's bytes), the ratios mariadb-dump|mariadb / replsync (target >= 2.5),
# mydumper|myloader / replsync (target >= 1.0) on replsync's database part, replsync files /
# rsync -a (target <= 1.5), CPU seconds of each process during each copy (and of everything
# else on the machine), the peak RSS of both replsyncd (VmHWM, reset before each copy) and the
# longest time the primary had commits blocked (status lock_ms). Exits non-zero when a step
# fails or a copy differs.
#
# Usage: tools/bench/bootstrap_bench.sh [--tables N] [--table-size N] [--files N]
#          [--large-files N] [--large-mib N] [--rate TPS] [--threads N] [--load-threads N]
#          [--no-load]
# Environment: BUILD_DIR (default build; relative to the repository), BENCH_TABLES (4),
#   BENCH_TABLE_SIZE (1000000: about 1 GB), BENCH_FILES (20000), BENCH_LARGE_FILES (3),
#   BENCH_LARGE_MIB (64), BENCH_RATE (100), BENCH_THREADS (2: replsync's readers, mydumper's
#   and myloader's threads), BENCH_LOAD_THREADS (4: sysbench's), BENCH_TIMEOUT (3600: the
#   longest wait for one copy, seconds), MARIADB_KEEP=1 (keep the servers' folders and the
#   logs; a failed run keeps them anyway).
# At full size the run took 11.5 minutes on 2 busy cores and needs about 17 GB of disk;
# --table-size 100000 --files 2000 --large-files 1 --large-mib 32 takes about 3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
REPLSYNC="$BUILD_DIR/tools/replsync"
REPLSYNCD="$BUILD_DIR/tools/replsyncd"

tables=${BENCH_TABLES:-4}
table_size=${BENCH_TABLE_SIZE:-1000000}
files=${BENCH_FILES:-20000}
large_files=${BENCH_LARGE_FILES:-3}
large_mib=${BENCH_LARGE_MIB:-64}
rate=${BENCH_RATE:-100}
threads=${BENCH_THREADS:-2}
load_threads=${BENCH_LOAD_THREADS:-4}
timeout=${BENCH_TIMEOUT:-3600}
with_load=1

die() { echo "bootstrap_bench: $*" >&2; exit 1; }
say() { echo "bootstrap_bench: $*"; }

while (($#)); do
  case $1 in
    --tables) tables=$2; shift 2 ;;
    --table-size) table_size=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --large-files) large_files=$2; shift 2 ;;
    --large-mib) large_mib=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --load-threads) load_threads=$2; shift 2 ;;
    --no-load) with_load=""; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[[ -x $REPLSYNCD && -x $REPLSYNC ]] ||
  die "$REPLSYNCD or $REPLSYNC not found; build them (ninja -C $BUILD_DIR replsync replsyncd) or set BUILD_DIR"
for tool in sysbench rsync python3 mydumper myloader; do
  command -v "$tool" >/dev/null || die "$tool not found; run tools/setup.sh"
done
MARIADB_DUMP=$(command -v mariadb-dump || command -v mysqldump) || die "mariadb-dump not found; run tools/setup.sh"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (package 'time'); run tools/setup.sh"
((threads >= 1 && threads <= 8)) || die "--threads must be 1..8 (replsync's [bootstrap] readers)"

load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
awk -v l="${load_at_start%% *}" 'BEGIN { exit !(l > 1.5) }' &&
  say "warning: load average $load_at_start before the start; other work on the machine skews the numbers"
# shellcheck source=../lib/mariadb.sh
source "$ROOT/tools/lib/mariadb.sh"
work=$MARIADB_WORK

# --- processes and clean-up -----------------------------------------------------------------
primary_daemon=""
declare -A secondary_daemon=()
sysbench_pid=""
# Called by tools/lib/bench.sh's exit trap before it stops the servers.
bench_before_stop() {
  [[ -n $sysbench_pid ]] && kill -TERM "$sysbench_pid" 2>/dev/null
  local pid
  for pid in "${secondary_daemon[@]}" $primary_daemon; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${secondary_daemon[@]}" $primary_daemon $sysbench_pid; do wait "$pid" 2>/dev/null || true; done
}
BENCH_NAME=bootstrap_bench
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
# CPU seconds the whole machine has been busy (every CPU, all but idle and iowait).
machine_busy() {
  awk -v t="$ticks_per_s" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / t }' /proc/stat
}
server_pid() { cat "$work/$1/mysqld.pid" 2>/dev/null || echo ""; }
# Peak RSS (VmHWM) of a process in MiB; reset_hwm starts a new peak at its current RSS.
hwm_mib() { awk '/^VmHWM:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
reset_hwm() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mb_per_s() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", n / 1e6 / s; else print "-" }'; }
# Seconds since the epoch of the first (log_time) or last (log_time_last) replsyncd log line
# matching a pattern, from its time stamp ("2024-05-01 12:00:00.123 ..."); "" when none.
log_time() {
  local line
  line=$(grep -m1 -- "$2" "$1" || true)
  [[ -n $line ]] || { echo ""; return; }
  date -d "$(cut -c1-23 <<<"$line")" +%s.%N
}
log_time_last() {
  local line
  line=$(grep -- "$2" "$1" | tail -n 1 || true)
  [[ -n $line ]] || { echo ""; return; }
  date -d "$(cut -c1-23 <<<"$line")" +%s.%N
}

# --- servers --------------------------------------------------------------------------------
server_args=(--max-connections=200 --innodb-buffer-pool-size=512M --innodb-log-file-size=512M
             --skip-slave-start)
next_server_id=1
start_server() {  # name
  mariadb_start "$1" "$next_server_id" "${server_args[@]}"
  next_server_id=$((next_server_id + 1))
}
say "starting the primary's MariaDB in $work"
start_server primary
version=$(mariadb_sql primary "SELECT VERSION()")
primary_sock="$work/primary/mysqld.sock"

sb=(sysbench oltp_write_only --db-driver=mysql --mysql-socket="$primary_sock" --mysql-user=root
    --mysql-db=sbtest --tables="$tables" --table-size="$table_size")
say "sysbench prepare ($tables tables x $table_size rows) on the primary"
mariadb_sql primary "CREATE DATABASE sbtest"
t0=$(now)
"${sb[@]}" --threads="$tables" prepare >"$work/prepare.log" 2>&1 ||
  { tail -20 "$work/prepare.log" >&2; die "sysbench prepare failed"; }
say "  prepared in $(elapsed "$t0" "$(now)")s"
mariadb_sql primary "ANALYZE TABLE $(seq -s, -f 'sbtest.sbtest%g' 1 "$tables")" >/dev/null
db_bytes=$(mariadb_sql primary "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES
  WHERE TABLE_SCHEMA = 'sbtest'")
table_list=$(mariadb_sql primary "SELECT CONCAT('sbtest.', TABLE_NAME) FROM information_schema.TABLES
  WHERE TABLE_SCHEMA = 'sbtest' AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1" | paste -sd, -)
[[ -n $table_list ]] || die "no sbtest tables on the primary"
checksums() { mariadb_sql "$1" "CHECKSUM TABLE ${table_list//,/, }" | awk -F'\t' '{ print $1, $2 }'; }

src="$work/primary-repository"
say "writing the repository: $files files of 1-64 KiB, $large_files x $large_mib MiB"
python3 - "$src" "$files" "$large_files" "$large_mib" <<'PY'
import os, random, sys
root, n_small, n_large, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(14)
for i in range(n_small):
    d = os.path.join(root, "reports", "folder-%04d" % (i // 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "report-%06d.xml" % i), "wb") as f:
        f.write(rng.randbytes(rng.randint(1024, 65536)))
os.makedirs(os.path.join(root, "cubes"), exist_ok=True)
for i in range(n_large):
    with open(os.path.join(root, "cubes", "cube-%d.dat" % i), "wb") as f:
        for _ in range(mib):
            f.write(rng.randbytes(1 << 20))
PY
repo_bytes=$(du -sb --apparent-size "$src" | cut -f1)
repo_paths=$(find "$src" -mindepth 1 | wc -l)
sleep 0.5  # older than replsync's quiet period

tree() {
  (cd "$1" && find . -mindepth 1 -printf '%y %m %U:%G %s %T@ %p -> %l\n' | sed 's/ -> $//' | sort &&
    find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}
tree "$src" >"$work/tree.primary"
# Every copy starts alike: nothing dirty waiting to be written, the primary's tables and
# repository in the page cache.
settle() {
  sync
  cat "$work/primary/data/sbtest/"*.ibd >/dev/null
  find "$src" -type f -exec cat {} + >/dev/null
}

# --- replsyncd ------------------------------------------------------------------------------
# Each node has its own CURVE key; the primary's [peers] names both secondaries ("idle" for the
# copy of the idle primary, "load" for the one under load), each secondary's the primary. A
# secondary's own endpoint (where it would listen as the primary) is never bound here.
nodes=(idle)
[[ -n $with_load ]] && nodes+=(load)
bench_keygen primary "${nodes[@]}"
declare -A endpoint=([primary]="tcp://127.0.0.1:$(_free_port)")
for n in "${nodes[@]}"; do endpoint[$n]="tcp://127.0.0.1:$(_free_port)"; done
write_config() {  # name role other...
  local name=$1 role=$2 peer
  shift 2
  # replsyncd refuses a configuration others may read (it holds passwords).
  install -m 600 /dev/null "$work/$name.toml"
  {
    cat <<TOML
[node]
name = "$name"
role = "$role"
$([[ $role == secondary ]] && echo 'bootstrap = "auto"')
state_dir = "$work/$name-state"

[mysql]
socket = "$work/$name/mysqld.sock"
user = "root"
password = ""
databases = ["sbtest"]

[repository]
path = "$work/$name-repository"

[transport]
listen = "${endpoint[$name]}"
primary = "${endpoint[primary]}"
secret_key_file = "$work/$name.key"

[bootstrap]
readers = $threads

[log]
level = "info"

TOML
    for peer in "$@"; do bench_peer "$peer" "${endpoint[$peer]}"; echo; done
  } >>"$work/$name.toml"
  mkdir -p "$work/$name-repository"
}
wait_status() {  # name pid needle: waits until the daemon's status file shows needle
  local i
  for ((i = 0; i < 6000; i++)); do
    if grep -q "$3" "$work/$1-state/status.json" 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { tail -20 "$work/$1.log" >&2; die "replsyncd ($1) exited"; }
    sleep 0.1
  done
  tail -20 "$work/$1.log" >&2
  die "replsyncd ($1) did not report $3"
}
status_field() {  # node python-subscript: a field of `replsync status --json` ("" on failure)
  "$REPLSYNC" status --config "$work/$1.toml" --json 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)$2)" 2>/dev/null || true
}

write_config primary primary "${nodes[@]}"
say "starting replsyncd on the primary; waiting for its first scan of the repository"
t0=$(now)
"$REPLSYNCD" --config "$work/primary.toml" >>"$work/primary.log" 2>&1 &
primary_daemon=$!
wait_status primary "$primary_daemon" "\"pid\":$primary_daemon,"
wait_status primary "$primary_daemon" '"capture_state":"running"'
wait_status primary "$primary_daemon" '"rescans":1'
wait_status primary "$primary_daemon" '"state":"watching"'
say "  scanned in $(elapsed "$t0" "$(now)")s"

# --- positions ------------------------------------------------------------------------------
seq_of() {  # the sequence number of domain 0 in a GTID list on stdin; 0 when none
  awk -F, '{ for (i = 1; i <= NF; i++) { split($i, g, "-"); gsub(/ /, "", g[1]);
             if (g[1] == "0") { s = g[3]; f = 1 } } }
           END { print (f ? s : 0) }'
}
primary_seq() { mariadb_sql primary "SELECT @@gtid_binlog_pos" | seq_of; }
replsync_seq() { { mariadb_sql "$1" "SELECT gtid FROM replsync.applied" 2>/dev/null || true; } | head -n 1 | seq_of; }
# Waits until the secondary NAME has applied the primary's current last transaction.
wait_caught_up() {
  local target i
  target=$(primary_seq)
  for ((i = 0; i < timeout * 10; i++)); do
    (($(replsync_seq "$1") >= target)) && return 0
    if ((i % 20 == 0)); then
      kill -0 "${secondary_daemon[$1]}" 2>/dev/null || { tail -20 "$work/$1.log" >&2; die "replsyncd ($1) exited"; }
    fi
    sleep 0.1
  done
  die "replsync ($1) did not reach the primary's 0-1-$target in ${timeout}s (it has 0-1-$(replsync_seq "$1"))"
}

# --- the copies -----------------------------------------------------------------------------
# Results by key "<load>.<method>": seconds, CPU seconds (primary server, target server, the
# tools or daemons, everything else on the machine), check.
declare -A secs cpu_p cpu_t cpu_x cpu_o cpu_x_parts check flushes
# FLUSH statements the primary ran (FLUSH TABLES WITH READ LOCK blocks its commits).
com_flush() { mariadb_sql primary "SHOW GLOBAL STATUS LIKE 'Com_flush'" | awk '{ print $2 }'; }
declare -A phases files_copied db_secs files_secs hwm_p hwm_s lock_ms rounds rows_done bytes_done
# measure_start / measure_end KEY PIDS...: CPU of the primary's server and the target's and of
# everything on the machine around a copy; the caller adds its tools' CPU.
measure_start() {  # target-server
  m_p0=$(cpu_of "$(server_pid primary)")
  m_t0=$(cpu_of "$(server_pid "$1")")
  m_all0=$(machine_busy)
  m_flush0=$(com_flush)
  m_start=$(now)
}
measure_end() {  # key target-server tools-cpu tools-description
  local key=$1
  secs[$key]=$(elapsed "$m_start" "$(now)")
  cpu_p[$key]=$(sub "$(cpu_of "$(server_pid primary)")" "$m_p0")
  cpu_t[$key]=$(sub "$(cpu_of "$(server_pid "$2")")" "$m_t0")
  cpu_x[$key]=$3
  cpu_x_parts[$key]=$4
  flushes[$key]=$(($(com_flush) - m_flush0))
  local all
  all=$(sub "$(machine_busy)" "$m_all0")
  cpu_o[$key]=$(awk -v a="$all" -v b="${cpu_p[$key]}" -v c="${cpu_t[$key]}" -v d="$3" \
    'BEGIN { o = a - b - c - d; printf "%.2f", (o > 0 ? o : 0) }')
}
# /usr/bin/time's "%U %S" as CPU seconds.
time_cpu() { awk '{ printf "%.2f", $1 + $2 }' "$1"; }

compare_tables() {  # key target-server
  if [[ $(checksums primary) == "$(checksums "$2")" ]]; then
    check[$1]="equal"
  else
    check[$1]="DIFFERENT"
    paste <(checksums primary) <(checksums "$2") >&2
  fi
}

copy_replsync() {  # phase(idle|load)
  local node=$1 key="$1.replsync"
  start_server "$node"
  write_config "$node" secondary primary
  settle
  reset_hwm "$primary_daemon"
  local d0 t0
  d0=$(cpu_of "$primary_daemon")
  measure_start "$node"
  t0=$m_start
  # [node] bootstrap = "auto": the fresh secondary holds its applier from its start and
  # bootstraps by itself; `replsync bootstrap` follows it to its end (exit 0). ("manual" would
  # apply the primary's journal from its start until the command comes, file entries of the
  # primary's first scan among them, and then refuse the bootstrap because of those files.)
  "$REPLSYNCD" --config "$work/$node.toml" >>"$work/$node.log" 2>&1 &
  secondary_daemon[$node]=$!
  local pid=${secondary_daemon[$node]}
  wait_status "$node" "$pid" '"phase":"'
  "$REPLSYNC" bootstrap --config "$work/$node.toml" >"$work/bootstrap.$node.log" 2>&1 ||
    { tail -n 20 "$work/bootstrap.$node.log" "$work/$node.log" >&2; die "replsync bootstrap ($node) failed"; }
  local dp ds
  dp=$(sub "$(cpu_of "$primary_daemon")" "$d0")
  ds=$(cpu_of "$pid")
  measure_end "$key" "$node" "$(add "$dp" "$ds")" "replsyncd primary $dp, secondary $ds"
  hwm_p[$1]=$(hwm_mib "$primary_daemon")
  hwm_s[$1]=$(hwm_mib "$pid")
  # The files phase: from the schema objects' end (the applier strict again) to "done".
  local objects_end done_at
  objects_end=$(log_time "$work/$node.log" "the applier is strict again")
  done_at=$(log_time "$work/$node.log" "done; the secondary follows the stream")
  [[ -n $objects_end && -n $done_at ]] || die "replsyncd ($node) logged no files phase (see $work/$node.log)"
  db_secs[$1]=$(sub "$objects_end" "$t0")
  files_secs[$1]=$(sub "$done_at" "$objects_end")
  # Where the database part went: round 0 (snapshots, definitions, the tables created), the
  # rows, the schema objects (the applier brought to a point first).
  local created rows_end
  created=$(log_time "$work/$node.log" "tables created at")
  rows_end=$(log_time_last "$work/$node.log" "bootstrap: .* copied")
  [[ -n $created && -n $rows_end ]] || die "replsyncd ($node) logged no copy (see $work/$node.log)"
  phases[$1]="round 0 $(sub "$created" "$t0") s, rows $(sub "$rows_end" "$created") s, objects $(sub "$objects_end" "$rows_end") s"
  sleep 1.2  # a fresh status file
  lock_ms[$1]=$(status_field "$node" '["secondary"]["bootstrap"]["lock_ms"]')
  rounds[$1]=$(status_field "$node" '["secondary"]["bootstrap"]["round"]')
  rows_done[$1]=$(status_field "$node" '["secondary"]["bootstrap"]["rows_done"]')
  bytes_done[$1]=$(status_field "$node" '["secondary"]["bootstrap"]["bytes_done"]')
  files_copied[$1]=$(status_field "$node" '["secondary"]["bootstrap"]["files_total"]')
  say "  replsync bootstrap: ${secs[$key]}s (database ${db_secs[$1]}s, files ${files_secs[$1]}s), lock_ms ${lock_ms[$1]}, ${rounds[$1]} rounds"
}

check_replsync() {  # phase: compares the replsync copy (at a quiesced point under load)
  local node=$1 key="$1.replsync"
  wait_caught_up "$node"
  compare_tables "$key" "$node"
  tree "$work/$node-repository" >"$work/tree.$node"
  if cmp -s "$work/tree.primary" "$work/tree.$node"; then
    check[$key]+=", files equal"
  else
    check[$key]+=", files DIFFERENT"
    diff "$work/tree.primary" "$work/tree.$node" | head -6 >&2 || true
  fi
}

copy_dump() {  # phase
  local target="$1_dump" key="$1.dump"
  start_server "$target"
  settle
  measure_start "$target"
  if ! /usr/bin/time -f "%U %S" -o "$work/time.$target.dump" "$MARIADB_DUMP" --no-defaults -uroot \
      --socket="$primary_sock" --single-transaction --master-data=2 --databases sbtest \
      2>"$work/$target.dump.err" |
    /usr/bin/time -f "%U %S" -o "$work/time.$target.load" mariadb --no-defaults -uroot \
      --socket="$work/$target/mysqld.sock" --init-command="SET SESSION sql_log_bin = 0" \
      2>"$work/$target.load.err"; then
    cat "$work/$target.dump.err" "$work/$target.load.err" >&2
    die "mariadb-dump | mariadb ($1) failed"
  fi
  local cd cl
  cd=$(time_cpu "$work/time.$target.dump")
  cl=$(time_cpu "$work/time.$target.load")
  measure_end "$key" "$target" "$(add "$cd" "$cl")" "mariadb-dump $cd, mariadb $cl"
  say "  mariadb-dump | mariadb: ${secs[$key]}s"
}

copy_mydumper() {  # phase
  local target="$1_mydumper" key="$1.mydumper" dir="$work/$1-mydumper-files"
  start_server "$target"
  rm -rf "$dir"
  settle
  measure_start "$target"
  /usr/bin/time -f "%U %S" -o "$work/time.$target.dump" mydumper -S "$primary_sock" -u root \
    -B sbtest -t "$threads" --trx-consistency-only -v 1 -o "$dir" >"$work/$target.dump.log" 2>&1 ||
    { cat "$work/$target.dump.log" >&2; die "mydumper ($1) failed"; }
  local mid
  mid=$(now)
  /usr/bin/time -f "%U %S" -o "$work/time.$target.load" myloader -S "$work/$target/mysqld.sock" \
    -u root -t "$threads" -v 1 -d "$dir" >"$work/$target.load.log" 2>&1 ||
    { cat "$work/$target.load.log" >&2; die "myloader ($1) failed"; }
  local cd cl
  cd=$(time_cpu "$work/time.$target.dump")
  cl=$(time_cpu "$work/time.$target.load")
  measure_end "$key" "$target" "$(add "$cd" "$cl")" \
    "mydumper $cd ($(elapsed "$m_start" "$mid") s), myloader $cl; $(du -sm "$dir" | cut -f1) MiB of files"
  say "  mydumper | myloader: ${secs[$key]}s"
}

# --- idle -----------------------------------------------------------------------------------
say "idle primary: replsync bootstrap"
copy_replsync idle
check_replsync idle
kill -TERM "${secondary_daemon[idle]}"; wait "${secondary_daemon[idle]}" || true
unset 'secondary_daemon[idle]'
mariadb_stop idle  # frees its memory and CPU for the next copies
say "idle primary: mariadb-dump | mariadb"
copy_dump idle
compare_tables idle.dump idle_dump
mariadb_stop idle_dump
say "idle primary: mydumper | myloader"
copy_mydumper idle
compare_tables idle.mydumper idle_mydumper
mariadb_stop idle_mydumper

# rsync -a of the repository into an empty folder, then sync: rsync_s[$1], rsync_sync_s[$1].
declare -A rsync_s rsync_sync_s
rsync_check=equal
copy_rsync() {
  settle
  local t0 t1 t2
  t0=$(now); rsync -a "$src/" "$work/rsync-copy/"; t1=$(now); sync; t2=$(now)
  rsync_s[$1]=$(elapsed "$t0" "$t1")
  rsync_sync_s[$1]=$(elapsed "$t0" "$t2")
  tree "$work/rsync-copy" | cmp -s "$work/tree.primary" - || rsync_check=DIFFERENT
  rm -rf "$work/rsync-copy"
}
say "rsync -a of the repository"
copy_rsync idle

# --- under load -----------------------------------------------------------------------------
if [[ -n $with_load ]]; then
  say "under load: sysbench oltp_write_only --rate=$rate ($load_threads threads) on the primary"
  load_seq0=$(primary_seq)
  load_t0=$(now)
  "${sb[@]}" --threads="$load_threads" --rate="$rate" --time=$((timeout * 4)) --report-interval=0 run \
    >"$work/sysbench.log" 2>&1 &
  sysbench_pid=$!
  sleep 5
  kill -0 "$sysbench_pid" 2>/dev/null || { tail -20 "$work/sysbench.log" >&2; die "sysbench run failed"; }
  say "under load: replsync bootstrap"
  copy_replsync load
  say "under load: mariadb-dump | mariadb"
  copy_dump load
  check[load.dump]="not compared (a past point)"
  mariadb_stop load_dump
  say "under load: mydumper | myloader"
  copy_mydumper load
  check[load.mydumper]="not compared (a past point)"
  mariadb_stop load_mydumper
  say "under load: rsync -a of the repository"
  copy_rsync load
  kill -0 "$sysbench_pid" 2>/dev/null || { tail -20 "$work/sysbench.log" >&2; die "sysbench stopped during the copies"; }
  kill -TERM "$sysbench_pid"
  wait "$sysbench_pid" 2>/dev/null || true
  sysbench_pid=""
  load_tps=$(awk -v n="$(($(primary_seq) - load_seq0))" -v s="$(elapsed "$load_t0" "$(now)")" \
    'BEGIN { printf "%.0f", n / s }')
  say "load stopped ($load_tps tx/s on average); waiting for replsync to apply the primary's last transaction"
  check_replsync load
fi

# --- report ---------------------------------------------------------------------------------
mb=$(awk -v b="$db_bytes" 'BEGIN { printf "%.0f", b / 1e6 }')
echo
echo "== bootstrap_bench: replsync bootstrap vs mariadb-dump, mydumper $(mydumper -V 2>&1 | awk '{print $2}' | tr -d ,) and rsync; MariaDB $version, $(nproc) CPUs,"
echo "   load average $load_at_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "1. Database: sysbench $tables tables x $table_size rows ($mb MB of data + indexes on the primary) copied into an"
echo "   empty server; $threads threads (replsync [bootstrap] readers, mydumper/myloader -t); mariadb-dump: one"
printf '%-10s %-34s %8s %7s %8s %8s %8s %8s  %s\n' load method seconds "MB/s" "CPU prim" "target" tools others check
row() {  # load label key [seconds]
  local s=${4:-${secs[$2]}}
  printf '%-10s %-34s %8s %7s %8s %8s %8s %8s  %s\n' "$1" "$3" "$s" "$(mb_per_s "$db_bytes" "$s")" \
    "${cpu_p[$2]}" "${cpu_t[$2]}" "${cpu_x[$2]}" "${cpu_o[$2]}" "${check[$2]}"
}
for phase in "${nodes[@]}"; do
  if [[ $phase == idle ]]; then label=idle; else label="$rate tx/s"; fi
  row "$label" "$phase.replsync" "replsync bootstrap (database part)" "${db_secs[$phase]}"
  row "" "$phase.replsync" "replsync bootstrap (with the files)"
  row "" "$phase.dump" "mariadb-dump | mariadb"
  row "" "$phase.mydumper" "mydumper, then myloader"
done
for phase in "${nodes[@]}"; do
  echo "   $phase: ratio mariadb-dump|mariadb / replsync $(ratio "${secs[$phase.dump]}" "${db_secs[$phase]}") (target >= 2.5)," \
    "mydumper|myloader / replsync $(ratio "${secs[$phase.mydumper]}" "${db_secs[$phase]}") (target >= 1.0);" \
    "with the files phase: $(ratio "${secs[$phase.dump]}" "${secs[$phase.replsync]}"), $(ratio "${secs[$phase.mydumper]}" "${secs[$phase.replsync]}")"
done
echo "   replsync's database part: from the secondary replsyncd's start until its schema objects were copied (the"
echo "   daemon's log), i.e. the whole bootstrap less its files phase; it loaded ${rows_done[idle]} rows, $(awk -v b="${bytes_done[idle]}" 'BEGIN { printf "%.0f", b / 1e6 }') MB of row text (idle)."
echo "   CPU seconds during each copy (replsync: the whole bootstrap, its files phase included): the primary's mariadbd,"
echo "   the target's, the tools (replsyncd both, or the"
echo "   dump and load clients), everything else on the machine (other work: it competed for the CPUs):"
for phase in "${nodes[@]}"; do
  for m in replsync dump mydumper; do
    echo "     $phase $m: ${cpu_x_parts[$phase.$m]}; FLUSH statements on the primary: ${flushes[$phase.$m]}"
  done
  echo "     $phase replsync's database part: ${phases[$phase]}"
done
[[ -n $with_load ]] && echo "   Under load: sysbench ran at $load_tps tx/s on average through all three copies (replsync's secondary kept" &&
  echo "   applying it during the other two); the dump tools' copies are of their start point and do not follow."
echo "2. Repository: $repo_paths paths, $((repo_bytes / 1000000)) MB ($files files of 1-64 KiB, $large_files x $large_mib MiB) into an empty folder"
for phase in "${nodes[@]}"; do
  printf '   %-44s %8s s %8s MB/s\n' "rsync -a ($phase, not durable)" "${rsync_s[$phase]}" \
    "$(mb_per_s "$repo_bytes" "${rsync_s[$phase]}")" "rsync -a, then sync ($phase, durable)" \
    "${rsync_sync_s[$phase]}" "$(mb_per_s "$repo_bytes" "${rsync_sync_s[$phase]}")"
done
for phase in "${nodes[@]}"; do
  printf '   %-44s %8s s %8s MB/s  (%s differences found; a missing folder is one)\n' \
    "replsync files phase ($phase, durable)" "${files_secs[$phase]}" \
    "$(mb_per_s "$repo_bytes" "${files_secs[$phase]}")" "${files_copied[$phase]}"
done
for phase in "${nodes[@]}"; do
  echo "   $phase: ratio replsync files / rsync -a $(ratio "${files_secs[$phase]}" "${rsync_s[$phase]}") (target <= 1.5); / rsync -a + sync $(ratio "${files_secs[$phase]}" "${rsync_sync_s[$phase]}")"
done
echo "   rsync's copy: $rsync_check"
echo "3. replsyncd and the primary"
for phase in "${nodes[@]}"; do
  echo "   $phase: peak RSS (VmHWM during the bootstrap) primary ${hwm_p[$phase]} MiB, secondary ${hwm_s[$phase]} MiB;" \
    "commits blocked on the primary (lock_ms, the longest) ${lock_ms[$phase]} ms; ${rounds[$phase]} rounds"
done
echo "Logs: $work (kept with MARIADB_KEEP=1)."

fail=""
for k in "${!check[@]}"; do
  [[ ${check[$k]} == *DIFFERENT* ]] && fail+=" $k: ${check[$k]};"
done
[[ $rsync_check == equal ]] || fail+=" rsync's copy differs;"
[[ -z $fail ]] || die "verification failed:$fail"
echo "Verified: every checked copy holds exactly the primary's rows (CHECKSUM TABLE of all $(wc -l <<<"$(checksums primary)") tables) and replsync's the repository."
