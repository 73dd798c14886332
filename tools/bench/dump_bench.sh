#!/usr/bin/env bash
# dump_bench.sh: how fast `replsync binlog dump` decodes a real binlog, next to mariadb-binlog.
#
# Starts a throw-away MariaDB server (tools/lib/mariadb.sh: ROW format, FULL image and metadata),
# loads it with sysbench oltp_write_only (prepare + run), rotates the binlog, stops the server,
# then times on the same file, each pinned to one core (taskset):
#   replsync binlog dump --file X --json   > /dev/null
#   replsync binlog dump --file X          > /dev/null   (text form)
#   mariadb-binlog -v --base64-output=decode-rows X > /dev/null
#   replsync binlog dump --file X --decode-only          (raw decode rate)
# with wall time and peak RSS from /usr/bin/time, and replsync's peak RSS on a small binlog to
# show that memory does not grow with the file. It also checks that replsync prints one JSON
# line per row change mariadb-binlog shows. Prints a table and the speed-up; exits non-zero when
# any step fails (or the speed-up is below BENCH_MIN_SPEEDUP when that is set).
#
# Usage: tools/bench/dump_bench.sh [--seconds N] [--tables N] [--table-size N] [--threads N]
#                                  [--binlog FILE]... [--small-binlog FILE] [--cpu N] [--repeat N]
# (--binlog: time existing binlog files, in order, instead of making them.)
# Environment: BUILD_DIR (default build; relative to the repository), BENCH_SECONDS (30),
#   BENCH_TABLES (4), BENCH_TABLE_SIZE (100000), BENCH_THREADS (4), BENCH_CPU (0),
#   BENCH_REPEAT (3: each timing runs this often; the best wall time counts),
#   BENCH_MIN_SPEEDUP (unset: report only), BENCH_SKIP_CHECK=1 (skip the row-count cross-check),
#   MARIADB_KEEP=1 (keep the server's directory).
# The default run (30 s of load) takes about 1-2 minutes and yields about 1.5 million row
# changes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
REPLSYNC="$BUILD_DIR/tools/replsync"

seconds=${BENCH_SECONDS:-30}
tables=${BENCH_TABLES:-4}
table_size=${BENCH_TABLE_SIZE:-100000}
threads=${BENCH_THREADS:-4}
cpu=${BENCH_CPU:-0}
repeat=${BENCH_REPEAT:-3}
large=()
small=""

die() { echo "dump_bench: $*" >&2; exit 1; }

while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --tables) tables=$2; shift 2 ;;
    --table-size) table_size=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --binlog) large+=("$2"); shift 2 ;;
    --small-binlog) small=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[[ -x $REPLSYNC ]] || die "$REPLSYNC not found; build it (ninja -C $BUILD_DIR replsync) or set BUILD_DIR"
MYSQLBINLOG=$(command -v mariadb-binlog || command -v mysqlbinlog) ||
  die "mariadb-binlog not found; run tools/setup.sh"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (package 'time')"
command -v taskset >/dev/null || die "taskset not found (package util-linux)"

work=$(mktemp -d /tmp/replsync-dump-bench.XXXXXX)
cleanup() {
  local rc=$?
  if declare -F mariadb_stop_all >/dev/null; then mariadb_stop_all; fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- make the binlogs -----------------------------------------------------------------------
if ((${#large[@]} == 0)); then
  command -v sysbench >/dev/null || die "sysbench not found; run tools/setup.sh"
  # shellcheck source=../lib/mariadb.sh
  source "$ROOT/tools/lib/mariadb.sh"
  echo "dump_bench: starting MariaDB"
  mariadb_start bench 1 --innodb-flush-log-at-trx-commit=0 --sync-binlog=0 \
    --innodb-doublewrite=0 --max-binlog-size=1073741824 --max-connections=200
  dir=$MARIADB_DIR_bench
  mariadb_sql bench "CREATE DATABASE sbtest"
  sb=(sysbench oltp_write_only --db-driver=mysql --mysql-socket="$dir/mysqld.sock" --mysql-user=root
      --mysql-db=sbtest --tables="$tables" --table-size="$table_size" --threads="$threads")
  echo "dump_bench: sysbench prepare ($tables tables x $table_size rows)"
  "${sb[@]}" prepare >"$work/prepare.log" 2>&1 || { tail -20 "$work/prepare.log" >&2; die "sysbench prepare failed"; }
  echo "dump_bench: sysbench run (${seconds}s, $threads threads)"
  "${sb[@]}" --time="$seconds" --report-interval=0 run >"$work/run.log" 2>&1 ||
    { tail -20 "$work/run.log" >&2; die "sysbench run failed"; }
  grep -E "transactions:" "$work/run.log" | sed 's/^ */dump_bench: sysbench /' || true
  mariadb_sql bench "FLUSH BINARY LOGS"
  # Every binlog but the new current one (the load may have filled more than one file).
  mapfile -t names < <(mariadb_sql bench "SHOW BINARY LOGS" | awk '{print $1}')
  for ((i = 0; i < ${#names[@]} - 1; i++)); do large+=("$dir/data/${names[i]}"); done
  # A small binlog: a few hundred transactions of the same load.
  "${sb[@]}" --time=0 --events=300 --report-interval=0 run >"$work/small.log" 2>&1 ||
    { tail -20 "$work/small.log" >&2; die "sysbench run (small) failed"; }
  small="$dir/data/${names[${#names[@]} - 1]}"
  mariadb_sql bench "FLUSH BINARY LOGS"
  mariadb_stop bench  # frees the CPU for the timings; the files stay until the end
fi
for f in "${large[@]}"; do [[ -f $f ]] || die "binlog $f not found"; done

# --- timings --------------------------------------------------------------------------------
# run_timed NAME CMD...: runs CMD $repeat times on one core with stdout to /dev/null; records
# the best wall time (s) and the largest peak RSS (KiB).
# The best CPU time (user + system) is kept as well: on a shared machine it is the steadier
# measure of the work done.
declare -A wall cpu_s rss
less_than() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
run_timed() {
  local name=$1; shift
  local i w u s m c
  wall[$name]=""
  cpu_s[$name]=""
  rss[$name]=0
  for ((i = 0; i < repeat; i++)); do
    if ! /usr/bin/time -f "%e %U %S %M" -o "$work/time.$name" taskset -c "$cpu" "$@" >/dev/null \
        2>"$work/err.$name"; then
      cat "$work/err.$name" >&2
      die "'$*' failed"
    fi
    read -r w u s m <"$work/time.$name"
    c=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')
    if [[ -z ${wall[$name]} ]] || less_than "$w" "${wall[$name]}"; then wall[$name]=$w; fi
    if [[ -z ${cpu_s[$name]} ]] || less_than "$c" "${cpu_s[$name]}"; then cpu_s[$name]=$c; fi
    if ((m > rss[$name])); then rss[$name]=$m; fi
  done
}

size_mib=$(stat -c %s "${large[@]}" | awk '{ b += $1 } END { printf "%.1f", b / 1048576 }')
echo "dump_bench: binlog ${large[*]} ($size_mib MiB)"

summary=$(taskset -c "$cpu" "$REPLSYNC" binlog dump --file "${large[@]}" --decode-only) ||
  die "replsync --decode-only failed"
summary_field() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" <<<"$summary"; }
rows=$(summary_field rows)
row_events=$(summary_field row_events)
events=$(summary_field events)
decode_s=$(summary_field seconds)
decode_rate=$(summary_field rows_per_sec)
((rows > 0)) || die "no rows decoded: $summary"

run_timed json "$REPLSYNC" binlog dump --file "${large[@]}" --json
run_timed text "$REPLSYNC" binlog dump --file "${large[@]}"
run_timed mysqlbinlog "$MYSQLBINLOG" -v --base64-output=decode-rows "${large[@]}"
run_timed decode "$REPLSYNC" binlog dump --file "${large[@]}" --decode-only
if [[ -n $small && -f $small ]]; then
  run_timed small "$REPLSYNC" binlog dump --file "$small" --json
fi

# --- cross-check: one JSON line per row change mariadb-binlog reports -------------------------
if [[ -z ${BENCH_SKIP_CHECK:-} ]]; then
  json_lines=$("$REPLSYNC" binlog dump --file "${large[@]}" --json | grep -c '"type":"\(insert\|update\|delete\)"' || true)
  mb_rows=$("$MYSQLBINLOG" -v --base64-output=decode-rows "${large[@]}" |
    grep -cE '^### (INSERT INTO|UPDATE|DELETE FROM) ' || true)
  if [[ $json_lines != "$rows" || $json_lines != "$mb_rows" ]]; then
    die "row counts differ: replsync --json $json_lines lines, --decode-only $rows rows, mariadb-binlog $mb_rows rows"
  fi
  check="row counts agree: $rows (replsync --json, --decode-only, mariadb-binlog)"
else
  check="row-count cross-check skipped"
fi

# --- report ---------------------------------------------------------------------------------
rate() { awk -v r="$rows" -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", r / s; else print "-" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo
echo "binlog: ${#large[@]} file(s) from $(basename "${large[0]}"), $size_mib MiB, $events events, $row_events row events, $rows row changes"
echo "one core (taskset -c $cpu); best of $repeat runs; wall and CPU (user+sys) time and peak RSS from /usr/bin/time"
row() {
  printf '%-50s %8s %8s %13s %12s\n' "$1" "${wall[$2]}" "${cpu_s[$2]}" "$(mib "${rss[$2]}")" "$(rate "${wall[$2]}")"
}
printf '%-50s %8s %8s %13s %12s\n' "command" "wall s" "cpu s" "peak RSS MiB" "rows/s"
row "replsync binlog dump --json" json
row "replsync binlog dump (text)" text
row "$(basename "$MYSQLBINLOG") -v --base64-output=decode-rows" mysqlbinlog
row "replsync binlog dump --decode-only" decode
echo "raw decode rate (--decode-only's own clock): $decode_rate rows/s over ${decode_s}s"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }'; }
speedup=$(ratio "${wall[mysqlbinlog]}" "${wall[json]}")
echo "speed-up vs $(basename "$MYSQLBINLOG") (wall): --json ${speedup}x, text $(ratio "${wall[mysqlbinlog]}" "${wall[text]}")x (target >= 5x)"
echo "speed-up vs $(basename "$MYSQLBINLOG") (cpu):  --json $(ratio "${cpu_s[mysqlbinlog]}" "${cpu_s[json]}")x, text $(ratio "${cpu_s[mysqlbinlog]}" "${cpu_s[text]}")x"
if [[ -n ${rss[small]:-} ]]; then
  echo "memory: peak RSS --json $(mib "${rss[small]}") MiB on $(basename "$small") ($(stat -c %s "$small") bytes) vs $(mib "${rss[json]}") MiB on the large binlog ($size_mib MiB)"
fi
echo "$check"
if [[ -n ${BENCH_MIN_SPEEDUP:-} ]]; then
  awk -v s="$speedup" -v m="$BENCH_MIN_SPEEDUP" 'BEGIN { exit !(s >= m) }' ||
    die "speed-up ${speedup}x is below BENCH_MIN_SPEEDUP=${BENCH_MIN_SPEEDUP}x"
fi
