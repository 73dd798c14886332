# Shared set-up of the benchmarks that run replsyncd next to throw-away MariaDB servers.
# Source it after tools/lib/mariadb.sh with BENCH_NAME set (for messages) and REPLSYNC (the
# replsync binary). It provides:
#   daemons=()        pids to stop (SIGTERM, then wait) when the script exits
#   now, elapsed A B  wall-clock seconds ($EPOCHREALTIME) and their difference, 2 decimals
#   bench_keygen NAME... a CURVE key for each node, $MARIADB_WORK/NAME.key (`replsync keygen`);
#                     its public key in bench_public_key[NAME]
#   bench_peer NAME ENDPOINT  prints the [peers.NAME] table that names that node (its endpoint
#                     and public key) in the other node's configuration
# and installs an EXIT trap that stops the daemons and the servers, keeping the servers'
# folders and logs (and saying where) when the script failed. A script that defines
# bench_before_stop has it called first (to stop what it tracks itself, in its own order).
# shellcheck shell=bash
daemons=()
_bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((rc != 0)); then
    MARIADB_KEEP=1
    echo "${BENCH_NAME:-bench}: failed; folders and logs kept in $MARIADB_WORK" >&2
  fi
  if declare -F bench_before_stop >/dev/null; then bench_before_stop; fi
  local pid
  for pid in "${daemons[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${daemons[@]}"; do wait "$pid" 2>/dev/null || true; done
  mariadb_stop_all
  exit $rc
}
trap _bench_cleanup EXIT
trap 'exit 130' INT TERM
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

declare -A bench_public_key=()
bench_keygen() {
  local name
  for name in "$@"; do
    bench_public_key[$name]=$("${REPLSYNC:?}" keygen --out "$MARIADB_WORK/$name.key" | tail -n 1)
    [[ -n ${bench_public_key[$name]} ]] || { echo "${BENCH_NAME:-bench}: replsync keygen failed" >&2; return 1; }
  done
}
bench_peer() {  # name endpoint
  printf '[peers.%s]\nendpoint = "%s"\npublic_key = "%s"\n' "$1" "$2" "${bench_public_key[$1]:?}"
}
