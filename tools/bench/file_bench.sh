#!/usr/bin/env bash
# file_bench.sh: replsync's file replication next to rsync, side by side in one run.
#
# Starts two throw-away MariaDB servers on loopback (the secondary's applied position lives in
# its database) and measures:
#   1. initial copy: a repository of --small-files small files (1..16 KiB, in 100 folders) and
#      --large-files large ones (--large-mib MiB each) is copied to an empty folder
#        - by `rsync -a SRC/ DST/` (no fsync: its data may still be in the page cache),
#        - by `rsync -a --fsync SRC/ DST/` (every file fsynced, for reference),
#        - by replsync: from starting both replsyncd (empty journal, relay and manifest) until
#          the secondary's replsync.applied.seq reaches the primary's last journal sequence
#          after its first scan; durable at that point (journal and relay fsynced, one syncfs
#          per applied batch before the position moves).
#      Each copy starts alike: `sync`, the page cache dropped, the source read back into it.
#      Also reported: `rsync -a` followed by `sync` (when its copy is on disk).
#      Ratio = replsync / rsync -a (target: at most 1.5).
#   2. small change: --insert-bytes random bytes inserted in the middle of a 48 MiB file the
#      destination already has (written as temp file + rename, as applications do)
#        - rsync -a --no-whole-file -I --stats: bytes sent + bytes received,
#        - replsync: bytes of entries the primary sent for it (status bytes_sent, compressed
#          as on the wire) plus what the secondary sent back (Acks and Heartbeats are counted
#          as 0: they are a few dozen bytes), and the content bytes shipped as data.
#      Ratio = replsync / rsync (target: at most 0.5).
#   The trees are compared (type, mode, owner, mtime in ns, link target, SHA-256) at the end.
#   3. verify: `replsync verify --files-only` (and --deep) on the equal trees next to
#      `rsync -an --delete -i` (and -c, checksums) from the primary's folder to the secondary's,
#      then once more after a mode change and a content change planted on the secondary.
#
# Usage: tools/bench/file_bench.sh [--small-files N] [--large-files N] [--large-mib N]
#          [--insert-bytes N]
# Environment: BUILD_DIR (default build), BENCH_SMALL_FILES (5000), BENCH_LARGE_FILES (4),
#   BENCH_LARGE_MIB (32), BENCH_INSERT_BYTES (100), BENCH_PERF (a folder: the replsync initial
#   copy is recorded system-wide with `perf record -g` into FOLDER/initial-copy.data),
#   MARIADB_KEEP=1 keeps the folders.
# Takes about a minute on 2 cores.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
[[ $BUILD_DIR == /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
REPLSYNC="$BUILD_DIR/tools/replsync"
REPLSYNCD="$BUILD_DIR/tools/replsyncd"
small_files=${BENCH_SMALL_FILES:-5000}
large_files=${BENCH_LARGE_FILES:-4}
large_mib=${BENCH_LARGE_MIB:-32}
insert_bytes=${BENCH_INSERT_BYTES:-100}

die() { echo "file_bench: $*" >&2; exit 1; }
say() { echo "file_bench: $*"; }
while (($#)); do
  case $1 in
    --small-files) small_files=$2; shift 2 ;;
    --large-files) large_files=$2; shift 2 ;;
    --large-mib) large_mib=$2; shift 2 ;;
    --insert-bytes) insert_bytes=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ -x $REPLSYNCD && -x $REPLSYNC ]] ||
  die "$REPLSYNCD or $REPLSYNC not found; build them (ninja -C $BUILD_DIR replsync replsyncd) or set BUILD_DIR"
command -v rsync >/dev/null || die "rsync not found; run tools/setup.sh"

# shellcheck source=../lib/mariadb.sh
source "$ROOT/tools/lib/mariadb.sh"
work=$MARIADB_WORK
BENCH_NAME=file_bench
# shellcheck source=../lib/bench.sh
source "$ROOT/tools/lib/bench.sh"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

say "starting two MariaDB servers"
mariadb_start primary 1
mariadb_start secondary 2
# Each node has its own CURVE key and the other in [peers]; the secondary's endpoint (where it
# would listen as the primary) is never bound here.
bench_keygen primary secondary
declare -A endpoint=([primary]="tcp://127.0.0.1:$(_free_port)" [secondary]="tcp://127.0.0.1:$(_free_port)")
write_config() {  # name role other
  # replsyncd refuses a configuration others may read (it holds passwords).
  install -m 600 /dev/null "$work/$1.toml"
  cat >"$work/$1.toml" <<TOML
[node]
name = "$1"
role = "$2"
state_dir = "$work/$1-state"
[mysql]
socket = "$work/$1/mysqld.sock"
user = "root"
password = ""
databases = ["bench"]
[repository]
path = "$work/$1-repository"
[transport]
listen = "${endpoint[$1]}"
primary = "${endpoint[$3]}"
secret_key_file = "$work/$1.key"
$(bench_peer "$3" "${endpoint[$3]}")
[log]
level = "info"
TOML
}
write_config primary primary secondary
write_config secondary secondary primary
src="$work/primary-repository"

say "writing the repository: $small_files small files, $large_files x $large_mib MiB"
python3 - "$src" "$small_files" "$large_files" "$large_mib" <<'PY'
import os, random, sys
root, n_small, n_large, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(1)
for i in range(n_small):
    d = os.path.join(root, "folder-%03d" % (i % 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "report-%05d.xml" % i), "wb") as f:
        f.write(rng.randbytes(rng.randint(1024, 16384)))
os.makedirs(os.path.join(root, "cubes"), exist_ok=True)
for i in range(n_large):
    with open(os.path.join(root, "cubes", "cube-%d.dat" % i), "wb") as f:
        for _ in range(mib):
            f.write(rng.randbytes(1 << 20))
with open(os.path.join(root, "cubes", "model-48m.dat"), "wb") as f:
    for _ in range(48):
        f.write(rng.randbytes(1 << 20))
PY
total_bytes=$(du -sb --apparent-size "$src" | cut -f1)
paths=$(find "$src" -mindepth 1 | wc -l)
sleep 0.5  # older than replsync's quiet period
# Every copy starts alike: nothing dirty waiting to be written, the source in the page cache
# (dropped and read again, so earlier copies' pages do not crowd it out).
settle() {
  sync
  echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true
  find "$src" -type f -exec cat {} + >/dev/null
}

tree() {
  (cd "$1" && find . -mindepth 1 -printf '%y %m %U:%G %s %T@ %p -> %l\n' | sed 's/ -> $//' | sort &&
    find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

# --- 1. initial copy ---------------------------------------------------------------------
say "rsync -a"
settle
t0=$(now); rsync -a "$src/" "$work/rsync-a/"; t1=$(now); sync; t2=$(now)
rsync_s=$(elapsed "$t0" "$t1")
rsync_sync_s=$(elapsed "$t0" "$t2")
say "rsync -a --fsync"
settle
t0=$(now); rsync -a --fsync "$src/" "$work/rsync-fsync/"; t1=$(now)
rsync_fsync_s=$(elapsed "$t0" "$t1")
settle

say "replsync: both daemons from an empty state"
perf_pid=""
if [[ -n ${BENCH_PERF:-} ]]; then
  mkdir -p "$BENCH_PERF"
  perf record -a -g -o "$BENCH_PERF/initial-copy.data" >/dev/null 2>&1 &
  perf_pid=$!
  sleep 0.5
fi
t0=$(now)
"$REPLSYNCD" --config "$work/primary.toml" >"$work/primary.log" 2>&1 &
daemons+=($!)
"$REPLSYNCD" --config "$work/secondary.toml" >"$work/secondary.log" 2>&1 &
daemons+=($!)
# Applied position samples (time seq), every 50 ms, until the target is known and reached.
samples="$work/applied.samples"
: >"$samples"
target=""
for ((i = 0; i < 12000; i++)); do
  seq=$(mariadb_sql secondary "SELECT seq FROM replsync.applied WHERE channel='default'" 2>/dev/null || true)
  [[ -n $seq ]] && echo "$(now) $seq" >>"$samples"
  # The target: the primary's last journal sequence once its first scan is done, the same in
  # two consecutive status files (written every second).
  if [[ -z $target ]] && grep -q '"state":"watching"' "$work/primary-state/status.json" 2>/dev/null &&
    grep -q '"rescans":1' "$work/primary-state/status.json"; then
    status_time=$(stat -c %Y.%y "$work/primary-state/status.json")
    last=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["primary"]["journal"]["last_seq"])' \
      "$work/primary-state/status.json")
    if [[ -n ${candidate:-} && $status_time != "$candidate_time" ]]; then
      [[ $last == "$candidate" ]] && target=$last
    fi
    if [[ $status_time != "${candidate_time:-}" ]]; then candidate=$last; candidate_time=$status_time; fi
  fi
  if [[ -n $target && -n $seq ]] && ((seq >= target)); then break; fi
  sleep 0.05
done
[[ -n $target ]] || die "the primary did not finish its first scan"
done_at=$(awk -v t="$target" '$2 >= t { print $1; exit }' "$samples")
[[ -n $done_at ]] || die "the secondary did not reach seq $target"
replsync_s=$(elapsed "$t0" "$done_at")
if [[ -n $perf_pid ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
copy_equal=no
tree "$src" >"$work/tree.primary"
tree "$work/secondary-repository" >"$work/tree.secondary"
if cmp -s "$work/tree.primary" "$work/tree.secondary"; then
  copy_equal=yes
else
  diff "$work/tree.primary" "$work/tree.secondary" | head -6 >&2 || true
fi

# --- 2. small change in a 48 MiB file -----------------------------------------------------
status_value() {  # role json-path
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$work/$1-state/status.json" "$2"
}
sleep 1.2
sent_before=$(status_value primary primary.bytes_sent)
literal_before=$(status_value primary primary.files.literal_bytes)
python3 - "$src/cubes/model-48m.dat" "$insert_bytes" <<'PY'
import os, sys
path, n = sys.argv[1], int(sys.argv[2])
data = open(path, 'rb').read()
mid = len(data) // 2
with open(path + '.tmp', 'wb') as f:
    f.write(data[:mid] + os.urandom(n) + data[mid:])
os.replace(path + '.tmp', path)
PY
for ((i = 0; i < 600; i++)); do
  [[ "$(sha256sum <"$src/cubes/model-48m.dat")" == "$(sha256sum <"$work/secondary-repository/cubes/model-48m.dat" 2>/dev/null)" ]] && break
  sleep 0.1
done
sleep 1.5  # a fresh status file
sent_after=$(status_value primary primary.bytes_sent)
literal_after=$(status_value primary primary.files.literal_bytes)
replsync_bytes=$((sent_after - sent_before))
replsync_literal=$((literal_after - literal_before))
stats=$(rsync -a --no-whole-file -I --stats "$src/cubes/model-48m.dat" "$work/rsync-a/cubes/")
rsync_sent=$(awk -F': ' '/^Total bytes sent/ { gsub(/,/, "", $2); print $2 }' <<<"$stats")
rsync_received=$(awk -F': ' '/^Total bytes received/ { gsub(/,/, "", $2); print $2 }' <<<"$stats")
rsync_bytes=$((rsync_sent + rsync_received))
change_equal=no
[[ "$(tree "$src")" == "$(tree "$work/secondary-repository")" ]] && change_equal=yes

echo
echo "== file_bench: replsync vs rsync $(rsync --version | head -1 | awk '{print $3}'), $(nproc) CPUs"
echo "   repository: $paths paths, $((total_bytes >> 20)) MiB ($small_files files of 1-16 KiB, $large_files x $large_mib MiB, one 48 MiB)"
echo "1. Initial copy to an empty folder"
printf '   %-34s %8s s\n' "rsync -a (not durable)" "$rsync_s" "rsync -a, then sync (durable)" \
  "$rsync_sync_s" "rsync -a --fsync (durable)" "$rsync_fsync_s" "replsync (durable)" "$replsync_s"
echo "   ratio replsync / rsync -a: $(ratio "$replsync_s" "$rsync_s")  (target <= 1.5); / rsync -a + sync: $(ratio "$replsync_s" "$rsync_sync_s"); / rsync --fsync: $(ratio "$replsync_s" "$rsync_fsync_s")"
echo "   trees equal: $copy_equal"
echo "2. $insert_bytes bytes inserted in the middle of a 48 MiB file"
printf '   %-34s %10s bytes (sent %s + received %s)\n' "rsync --no-whole-file -I" "$rsync_bytes" "$rsync_sent" "$rsync_received"
printf '   %-34s %10s bytes (content shipped as data: %s)\n' "replsync (entries on the wire)" "$replsync_bytes" "$replsync_literal"
echo "   ratio replsync / rsync: $(ratio "$replsync_bytes" "$rsync_bytes")  (target <= 0.5); trees equal: $change_equal"
[[ $copy_equal == yes && $change_equal == yes ]] || die "the secondary's tree differs from the primary's"

# --- 3. verify: both trees equal, then two planted differences ------------------------------
dst="$work/secondary-repository"
verify_run() {  # label flags... ; prints seconds, keeps the JSON in $work/verify.json
  local t0 t1 rc=0
  t0=$(now)
  "$REPLSYNC" verify --config "$work/secondary.toml" --files-only --json "$@" >"$work/verify.json" || rc=$?
  t1=$(now)
  ((rc <= 1)) || die "replsync verify $* exited $rc: $(cat "$work/verify.json")"
  elapsed "$t0" "$t1"
}
rsync_check() {  # flags... ; prints seconds, keeps the itemized differences in $work/rsync.items
  local t0 t1
  t0=$(now)
  rsync -an --delete -i "$@" "$src/" "$dst/" >"$work/rsync.items"
  t1=$(now)
  elapsed "$t0" "$t1"
}
json_value() { python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d if not isinstance(d, list) else len(d))' "$work/verify.json" "$1"; }
settle
# Both programs and the folders' metadata once into the caches (settle dropped them), untimed.
verify_run >/dev/null
rsync_check >/dev/null
verify_equal_s=$(verify_run); verify_equal_diffs=$(json_value files); verify_equal_nodes=$(json_value files_summary.listed_nodes)
rsync_equal_s=$(rsync_check); rsync_equal_items=$(wc -l <"$work/rsync.items")
verify_deep_s=$(verify_run --deep); verify_deep_diffs=$(json_value files)
settle
rsync_deep_s=$(rsync_check -c); rsync_deep_items=$(wc -l <"$work/rsync.items")
chmod 600 "$dst/folder-007/report-00007.xml"
echo changed >"$dst/folder-042/report-00042.xml"
verify_planted_s=$(verify_run); verify_planted_diffs=$(json_value files); verify_planted_nodes=$(json_value files_summary.listed_nodes)
rsync_planted_s=$(rsync_check); rsync_planted_items=$(wc -l <"$work/rsync.items")
echo "3. Verify: the two trees compared (replsync verify --files-only on the secondary, the primary's"
echo "   daemon answering; rsync -an --delete -i from the primary's folder to the secondary's)"
printf '   %-44s %8s s  %s\n' \
  "equal trees: replsync verify" "$verify_equal_s" "$verify_equal_diffs differences, $verify_equal_nodes nodes listed by the primary" \
  "equal trees: rsync -an (size + mtime)" "$rsync_equal_s" "$rsync_equal_items differences" \
  "equal trees: replsync verify --deep" "$verify_deep_s" "$verify_deep_diffs differences (every file hashed on both nodes)" \
  "equal trees: rsync -anc (checksums)" "$rsync_deep_s" "$rsync_deep_items differences" \
  "a mode and a content change: replsync verify" "$verify_planted_s" "$verify_planted_diffs differences, $verify_planted_nodes nodes listed" \
  "a mode and a content change: rsync -an" "$rsync_planted_s" "$rsync_planted_items differences"
echo "   ratio replsync verify / rsync -an: $(ratio "$verify_equal_s" "$rsync_equal_s"); --deep / rsync -anc: $(ratio "$verify_deep_s" "$rsync_deep_s")"
[[ $verify_equal_diffs == 0 && $verify_deep_diffs == 0 && $verify_planted_diffs == 2 ]] ||
  die "verify reported $verify_equal_diffs / $verify_deep_diffs / $verify_planted_diffs differences (expected 0 / 0 / 2)"
