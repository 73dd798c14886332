#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine (as root):
#   tools/demo.sh
# Installs what is missing, builds replsync, and runs a two-node pair on this machine: a primary
# and a secondary MariaDB on loopback, a CURVE key for each node made with `replsync keygen`
# (both configurations are shown: each node's [node] name, its [transport] secret_key_file and
# the other node's public key in [peers.<name>]), replsyncd on each (every ZeroMQ connection
# authenticated and encrypted with those keys), a primary that already holds data (every column
# type, a trigger, a view, a procedure, a table without a primary key, sysbench's tables, a
# repository) and an empty secondary made its exact, following copy by `replsync bootstrap` while
# sysbench writes, then a burst of changes on the primary (DDL, a large transaction and sysbench
# oltp_write_only) and in the primary's repository folder (new files and folders, a
# 48 MiB file changed in the middle, a rename, a symlink, a mode change, a delete),
# `replsync status` on both nodes, and proof that the two nodes match: CHECKSUM TABLE of every
# table on both, and both repository trees compared (content, type, mode, owner, mtime in ns,
# link targets), `replsync verify` comparing both nodes' rows and files at consistent points
# while sysbench and a file writer keep changing the primary, and differences planted on the
# secondary found by verify and fixed by `replsync repair`. Then what the pair is for: a failover
# (the secondary cut off, the primary takes writes and a file, its replsyncd is killed; `replsync
# promote` on the secondary, /health/primary moving with it), the old primary back fenced with
# its unshipped tail reported (`replsync rejoin --dry-run`), quarantined and undone by `replsync
# rejoin`, verify on the rejoined node, and a planned `replsync switchover` back to the first
# node. Everything is stopped at the end.
#
# Output: a few lines per step. What setup (apt-get) and the build (cmake, ninja) print goes to
# setup.log and build.log in the demo's work folder (/tmp/replsync-demo.XXXXXX, which also holds
# the servers, the repositories, the configurations and the daemons' logs); each log's path is
# printed before its step starts. When a step fails the demo shows the end of that step's log
# (or of the daemons' logs), says which step failed, and keeps the work folder; a successful run
# removes it.
# Environment: BUILD_DIR (default build), DEMO_SYSBENCH_SECONDS (default 10), MARIADB_KEEP=1
# keeps the work folder after a successful run too.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD_DIR:-build}
MARIADB_WORK=${MARIADB_WORK:-$(mktemp -d /tmp/replsync-demo.XXXXXX)}
source tools/lib/mariadb.sh
work=$MARIADB_WORK
pids=()      # replsyncd of the primary, then of the secondary
current_step="start"

step() {
  current_step=$*
  printf '\n\033[1m== %s\033[0m\n' "$*"
}

# Shows the last `lines` lines of `file` between two marker lines.
show_tail() {  # file lines
  [[ -s $1 ]] || return 0
  echo "---- last $2 lines of $1"
  tail -n "$2" "$1"
  echo "----"
}

cleanup() {
  local rc=$? pid
  if ((rc != 0)); then
    MARIADB_KEEP=1
    show_tail "$work/primary.log" 15
    show_tail "$work/secondary.log" 15
    printf '\n\033[1m== FAILED in step "%s" (exit status %d)\033[0m\n' "$current_step" "$rc"
    echo "kept for inspection: $work"
  fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  mariadb_stop_all
}
trap cleanup EXIT

# Runs a command with its output (stdout and stderr) appended to `log`. On failure it shows the
# end of the log and returns the command's exit status.
run_logged() {  # log command...
  local log=$1 rc=0
  shift
  "$@" >>"$log" 2>&1 </dev/null || rc=$?
  if ((rc != 0)); then
    echo "failed (exit status $rc): $*"
    show_tail "$log" 60
    echo "the whole output: $log"
  fi
  return "$rc"
}

step "Installing what is missing (tools/setup.sh)"
echo "apt-get output goes to $work/setup.log"
run_logged "$work/setup.log" tools/setup.sh
grep '^setup:' "$work/setup.log" || true

step "Building replsync and replsyncd in $build/"
echo "cmake and compiler output goes to $work/build.log"
started=$SECONDS
run_logged "$work/build.log" cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_logged "$work/build.log" ninja -C "$build" replsync replsyncd
if grep -q '^ninja: no work to do' "$work/build.log"; then
  echo "up to date"
else
  echo "built in $((SECONDS - started)) s"
fi
warnings=$(grep -c ': warning:' "$work/build.log" || true)
if ((warnings > 0)); then
  echo "$warnings compiler warnings; the first ones:"
  grep ': warning:' "$work/build.log" | head -n 5
fi
replsync="$PWD/$build/tools/replsync"
replsyncd="$PWD/$build/tools/replsyncd"

# Fails when a replsyncd has exited (the failure report shows the end of its log).
check_daemons() {
  local i names=(primary secondary)
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "replsyncd of the ${names[$i]} has exited"
      return 1
    fi
  done
}

# Waits up to 2 minutes until the secondary's applied position (replsync.applied, written in the
# same transaction as the rows) is the primary's last GTID. Sets target, applied and waited.
wait_caught_up() {
  target=$(mariadb_sql primary "SELECT @@gtid_binlog_pos")
  local i
  for ((i = 0; i < 600; i++)); do
    applied=$(mariadb_sql secondary "SELECT gtid FROM replsync.applied" 2>/dev/null || true)
    [[ "$applied" == "$target" ]] && break
    check_daemons
    sleep 0.2
  done
  waited="$((i / 5)).$((i % 5 * 2))"
}

step "Starting the primary's and the secondary's MariaDB on loopback"
mariadb_start primary 1
mariadb_start secondary 2
echo "primary   mariadbd on 127.0.0.1:$MARIADB_PORT_primary"
echo "secondary mariadbd on 127.0.0.1:$MARIADB_PORT_secondary"

step "Making each node's CURVE key (replsync keygen)"
# Each node proves itself with its own key on every ZeroMQ connection: the primary serves only
# the keys in its [peers], the secondary accepts only the primary's key. The secret key stays on
# its node (mode 0600); the public key, the last line keygen prints, goes into the other node's
# [peers.<name>] public_key.
declare -A public_key
for node in primary secondary; do
  echo "\$ replsync keygen --out $MARIADB_WORK/$node.key"
  "$replsync" keygen --out "$MARIADB_WORK/$node.key" | tee "$MARIADB_WORK/$node.keygen" | sed 's/^/  /'
  public_key[$node]=$(tail -n 1 "$MARIADB_WORK/$node.keygen")
done
# `keygen --public` prints a key file's public key again (the same as keygen printed).
shown=$("$replsync" keygen --public "$MARIADB_WORK/primary.key")
echo "\$ replsync keygen --public $MARIADB_WORK/primary.key"
echo "  $shown"
if [[ "$shown" != "${public_key[primary]}" ]]; then
  echo "keygen --public printed another public key than keygen --out did"
  exit 1
fi
echo "the secret key files (each stays on its node):"
stat -c '  %A %n' "$MARIADB_WORK/primary.key" "$MARIADB_WORK/secondary.key"

# Where each node listens when it is the primary: the secondary's endpoint is used only after a
# failover, but each configuration names both, so the same files work in either role.
declare -A endpoint=(
  [primary]="tcp://127.0.0.1:$(_free_port)"
  [secondary]="tcp://127.0.0.1:$(_free_port)"
)
declare -A mysql_port=([primary]=$MARIADB_PORT_primary [secondary]=$MARIADB_PORT_secondary)
declare -A health_port=([primary]=$(_free_port) [secondary]=$(_free_port))
write_config() {  # name role port other
  # replsyncd refuses a configuration others may read (it holds passwords).
  install -m 600 /dev/null "$MARIADB_WORK/$1.toml"
  cat >"$MARIADB_WORK/$1.toml" <<TOML
[node]
name = "$1"
role = "$2"
state_dir = "$MARIADB_WORK/$1-state"

[mysql]
host = "127.0.0.1"
port = $3
user = "root"
password = ""
databases = ["smarten", "sbtest"]

[repository]
path = "$MARIADB_WORK/$1-repository"

[transport]
listen = "${endpoint[$1]}"
primary = "${endpoint[$4]}"
secret_key_file = "$MARIADB_WORK/$1.key"

[peers.$4]
endpoint = "${endpoint[$4]}"
public_key = "${public_key[$4]}"

# The other node's database, for \`replsync verify\` while this node is the secondary.
[primary_mysql]
host = "127.0.0.1"
port = ${mysql_port[$4]}
user = "root"
password = ""

[health]
listen = "127.0.0.1:${health_port[$1]}"
TOML
}
write_config primary primary "$MARIADB_PORT_primary" secondary
write_config secondary secondary "$MARIADB_PORT_secondary" primary

step "Both configurations: each node's own key and the other node's public key"
# The sections that say who is who: [node] name, [transport] secret_key_file, [peers.<other>].
for node in primary secondary; do
  echo "$node.toml:"
  awk '/^\[/ { show = /^\[(node|transport|peers\.)/ } show && NF { print "  " $0 }' \
    "$MARIADB_WORK/$node.toml"
done
prepo="$MARIADB_WORK/primary-repository"
srepo="$MARIADB_WORK/secondary-repository"
mkdir -p "$prepo/reports/2024" "$srepo"
# What the repository already holds when replsync starts: its first scan ships it.
for i in $(seq 1 200); do
  head -c $((RANDOM % 20000 + 100)) /dev/urandom >"$prepo/reports/2024/report-$i.xml"
done
head -c $((48 << 20)) /dev/urandom >"$prepo/cube.dat"

step "What the primary already holds before replsync runs"
# A primary that has been in use: a database with every column type, a trigger, a table without
# a primary key, a view and a procedure, and sysbench's tables. The secondary starts empty.
start=$(mariadb_sql primary "SHOW MASTER STATUS" | awk '{print $1":"$2}')
mariadb_sql primary "
CREATE DATABASE smarten;
USE smarten;
CREATE TABLE reports (
  id BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
  owner CHAR(20) CHARACTER SET latin1,
  budget DECIMAL(12,2),
  ratio DOUBLE,
  created DATETIME(6),
  updated TIMESTAMP(3) NULL,
  due DATE,
  duration TIME(2),
  kind ENUM('chart','table','pivot'),
  tags SET('sales','finance','hr'),
  flags BIT(8),
  year_made YEAR,
  body BLOB,
  meta JSON
);
CREATE TABLE audit (report_id BIGINT UNSIGNED, action VARCHAR(10), at DATETIME(6));
CREATE TRIGGER reports_audit AFTER INSERT ON reports FOR EACH ROW
  INSERT INTO audit VALUES (NEW.id, 'insert', NOW(6));
CREATE TABLE log_lines (line TEXT);
SET time_zone = '+05:30';
INSERT INTO reports (name, owner, budget, ratio, created, updated, due, duration, kind, tags, flags, year_made, body, meta)
VALUES ('Quarterly sales 📈', 'José', 12345.67, 0.25, '2024-02-29 12:34:56.123400', '2024-03-01 08:00:00.500', '2024-03-31', '-12:30:00.25', 'chart', 'sales,finance', b'10100101', 2024, x'00FF00', '{\"dims\": [\"region\"]}'),
       ('Headcount', NULL, -999.99, NULL, '1999-12-31 23:59:59', NULL, '0000-00-00', '838:59:59', 'pivot', '', b'0', 1901, '', NULL);
CREATE VIEW report_names AS SELECT id, name FROM reports;
CREATE PROCEDURE add_report(IN n VARCHAR(100)) INSERT INTO reports (name) VALUES (n);
"
seconds=${DEMO_SYSBENCH_SECONDS:-10}
mariadb_sql primary "CREATE DATABASE sbtest"
sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$MARIADB_PORT_primary" \
  --mysql-user=root --tables=2 --table-size=10000 prepare >/dev/null
echo "smarten: $(mariadb_sql primary "SELECT COUNT(*) FROM smarten.reports") reports; sbtest: $(mariadb_sql primary "SELECT COUNT(*) FROM sbtest.sbtest1") + $(mariadb_sql primary "SELECT COUNT(*) FROM sbtest.sbtest2") rows"

step "Starting replsyncd on both nodes"
"$replsyncd" --config "$MARIADB_WORK/primary.toml" >"$MARIADB_WORK/primary.log" 2>&1 &
pids+=($!)
"$replsyncd" --config "$MARIADB_WORK/secondary.toml" >"$MARIADB_WORK/secondary.log" 2>&1 &
pids+=($!)
sleep 1
tail -n 5 "$MARIADB_WORK/primary.log" "$MARIADB_WORK/secondary.log"
check_daemons

step "Bootstrapping the empty secondary while the primary keeps working (replsync bootstrap)"
# The secondary's replsyncd copies the primary's databases, tables, rows, views, routines,
# triggers and repository over the replication link, at consistent points, and joins the
# change stream with no gap; sysbench keeps writing meanwhile.
sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$MARIADB_PORT_primary" \
  --mysql-user=root --tables=2 --table-size=10000 --threads=2 --rate=100 --time=8 run >/dev/null &
load=$!
echo "\$ replsync bootstrap --config $MARIADB_WORK/secondary.toml"
"$replsync" bootstrap --config "$MARIADB_WORK/secondary.toml" | sed 's/^/  /'
wait "$load"
check_daemons

step "A burst of changes on the primary"
mariadb_sql primary "
USE smarten;
BEGIN;
UPDATE reports SET budget = budget * 2, tags = 'hr' WHERE id = 2;
INSERT INTO log_lines VALUES ('no primary key'), ('no primary key');
DELETE FROM log_lines LIMIT 1;
COMMIT;
ALTER TABLE reports ADD COLUMN archived TINYINT(1) NOT NULL DEFAULT 0;
INSERT INTO log_lines SELECT CONCAT('line ', seq) FROM seq_1_to_50000;
"
echo "sysbench oltp_write_only for ${seconds}s..."
sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$MARIADB_PORT_primary" \
  --mysql-user=root --tables=2 --table-size=10000 --threads=4 --time="$seconds" run |
  grep -E "transactions:|queries:"

step "Changes in the primary's repository folder"
mkdir -p "$prepo/dashboards/Übersicht"
echo '{"title": "Sales"}' >"$prepo/dashboards/Übersicht/sales dashboard.json"
ln -s ../reports/2024/report-1.xml "$prepo/dashboards/latest report"
mv "$prepo/reports/2024/report-2.xml" "$prepo/reports/2024/report-2-final.xml"
chmod 600 "$prepo/reports/2024/report-3.xml"
rm "$prepo/reports/2024/report-4.xml"
# 100 bytes inserted in the middle of the 48 MiB file: about one chunk travels.
python3 - "$prepo/cube.dat" <<'PY'
import os, sys
path = sys.argv[1]
data = open(path, 'rb').read()
mid = len(data) // 2
open(path + '.tmp', 'wb').write(data[:mid] + os.urandom(100) + data[mid:])
os.replace(path + '.tmp', path)
PY
echo "files: 200 reports and a 48 MiB cube shipped by the first scan; then a new folder, a symlink,"
echo "a rename, a chmod, a delete and 100 bytes inserted in the middle of the cube"

step "Waiting for the secondary to catch up"
tables=$(mariadb_sql primary "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables
  WHERE table_schema IN ('smarten', 'sbtest') AND table_type = 'BASE TABLE' ORDER BY 1" | paste -sd, -)
checksums() { mariadb_sql "$1" "CHECKSUM TABLE ${tables//,/, }" 2>/dev/null; }
wait_caught_up
echo "primary at GTID $target; secondary applied up to ${applied:-nothing} after $waited s"
sleep 1.2  # let both daemons write a fresh status file

# The transport's security as `replsync status --json` reports it (schemas/status.md), in the
# columns of `replsync status`.
security_status() {  # node
  "$replsync" status --config "$MARIADB_WORK/$1.toml" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
yes = lambda b: "yes" if b else "no"
print("  transport    %s" % s.get("transport"))
if "primary" in s:
    p = s["primary"]
    print("  refused      %d connections%s" % (p.get("refused_peers", 0),
          ("; the last: " + p["last_refused_peer"]) if p.get("last_refused_peer") else ""))
    for peer in p.get("peers", []):
        print("  peer         %s: connected %s, ever connected %s" %
              (peer["name"], yes(peer["connected"]), yes(peer.get("ever_connected"))))
if "secondary" in s:
    print("  refusal      %s" % (s["secondary"].get("primary_refusal") or "none (the primary accepts this node)"))
'
}
step "replsync status --config primary.toml"
"$replsync" status --config "$MARIADB_WORK/primary.toml" || true
security_status primary || true
step "replsync status --config secondary.toml"
"$replsync" status --config "$MARIADB_WORK/secondary.toml" || true
security_status secondary || true

step "The primary's first rows as its binlog holds them (replsync binlog dump --json)"
# awk reads the dump to its end: a reader that stopped early (grep -m, head) would kill the dump
# with SIGPIPE, and pipefail would stop the demo.
"$replsync" binlog dump --config "$MARIADB_WORK/primary.toml" --from "$start" --json |
  awk '/"table":"reports"/ && n++ < 4' | cut -c1-400

step "replsync verify --config secondary.toml (sysbench and a file writer keep changing the primary)"
sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$MARIADB_PORT_primary" \
  --mysql-user=root --tables=2 --table-size=10000 --threads=2 --rate=200 --time=8 run >/dev/null &
load_pid=$!
mkdir -p "$prepo/drafts"
(for ((i = 0; i < 300; i++)); do
  echo "draft $i" >"$prepo/drafts/draft-$((i % 20)).txt"
  sleep 0.02
done) &
writer_pid=$!
sleep 1
verify_rc=0
"$replsync" verify --config "$MARIADB_WORK/secondary.toml" || verify_rc=$?
wait "$load_pid" || true
wait "$writer_pid" || true
echo "verify exit code: $verify_rc (0: consistent)"

# Let the secondary apply the last of that load before the checksums below.
wait_caught_up
[[ "$applied" == "$target" ]] ||
  echo "the secondary applied up to ${applied:-nothing}, the primary is at $target"

step "Differences planted on the secondary behind replsync's back: verify finds them, repair fixes them"
mariadb_sql secondary "SET SESSION sql_log_bin=0; DELETE FROM sbtest.sbtest1 WHERE id = 7; UPDATE sbtest.sbtest2 SET c = 'tampered' WHERE id = 9"
echo "tampered" >"$srepo/reports/2024/report-5.xml"
chmod 640 "$srepo/dashboards/Übersicht/sales dashboard.json"
planted_rc=0
"$replsync" verify --config "$MARIADB_WORK/secondary.toml" || planted_rc=$?
echo "verify exit code: $planted_rc (1: differences found)"
repair_rc=0
"$replsync" repair --config "$MARIADB_WORK/secondary.toml" || repair_rc=$?
echo "repair exit code: $repair_rc (0: repaired)"
after_rc=0
"$replsync" verify --config "$MARIADB_WORK/secondary.toml" || after_rc=$?
echo "verify exit code: $after_rc (0: consistent)"
((planted_rc == 1 && repair_rc == 0 && after_rc == 0)) || verify_rc=1

step "CHECKSUM TABLE on both nodes"
paste <(checksums primary) <(checksums secondary) | awk -F'\t' '{ printf "%-28s primary %-12s secondary %-12s %s\n", $1, $2, $4, ($2 == $4 ? "equal" : "DIFFERENT") }'
rows_equal=0
[[ "$(checksums primary)" == "$(checksums secondary)" ]] && rows_equal=1

step "Both repository trees: type, mode, owner, size, mtime (ns), link target, SHA-256"
# Every path with its metadata and content hash; the secondary's copy must be identical.
tree() {
  (cd "$1" && find . -mindepth 1 -printf '%y %m %U:%G %s %T@ %p -> %l\n' | sed 's/ -> $//' | sort &&
    find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}
files_equal=0
for ((i = 0; i < 300; i++)); do
  if [[ "$(tree "$prepo")" == "$(tree "$srepo")" ]]; then files_equal=1; break; fi
  sleep 0.2
done
echo "primary:   $(find "$prepo" -mindepth 1 | wc -l) paths, $(du -sh --apparent-size "$prepo" | cut -f1)"
echo "secondary: $(find "$srepo" -mindepth 1 | wc -l) paths, $(du -sh --apparent-size "$srepo" | cut -f1)"
if ((files_equal)); then
  echo "trees equal"
else
  diff <(tree "$prepo") <(tree "$srepo") | head -20
fi
if ((rows_equal && files_equal && verify_rc == 0)); then
  echo "the secondary holds exactly the primary's rows and files"
else
  step "The nodes differ"
  exit 1
fi

# ---- Failover: what the pair is for ----
# The HTTP code of a node's /health/<path> (what the failover switch asks).
health() {  # node path
  python3 -c '
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("no answer")
' "http://127.0.0.1:${health_port[$1]}/health/$2"
}
show_health() {
  echo "/health/primary: primary $(health primary primary), secondary $(health secondary primary)"
}
now() { date +%s.%N; }
seconds_since() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(now)"; }
start_daemon() {  # node (index in pids)
  "$replsyncd" --config "$MARIADB_WORK/$1.toml" >>"$MARIADB_WORK/$1.log" 2>&1 &
  if [[ $1 == primary ]]; then pids[0]=$!; else pids[1]=$!; fi
}

step "Failover: the secondary is cut off, the primary keeps taking writes, then the primary dies"
show_health
kill -TERM "${pids[1]}"; wait "${pids[1]}" || true
mariadb_sql primary "
INSERT INTO smarten.log_lines VALUES ('written while the secondary was away'), ('this one too');
UPDATE smarten.reports SET name = CONCAT(name, ' (edited on the old primary)') WHERE id = 1;"
echo "accepted while the secondary was away" >"$prepo/reports/late-report.xml"
sleep 2  # the repository watcher journals the new file
kill -KILL "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
echo "the secondary's replsyncd stopped; 2 transactions and a file written on the primary; the"
echo "primary's replsyncd killed with SIGKILL (its node is gone, as far as the pair can tell)"
show_health

step "replsync promote --config secondary.toml"
start_daemon secondary
sleep 1
t0=$(now)
"$replsync" promote --config "$MARIADB_WORK/secondary.toml" >"$work/promote.txt"
sed 's/^/  /' "$work/promote.txt"
for ((i = 0; i < 100; i++)); do [[ $(health secondary primary) == 200 ]] && break; sleep 0.1; done
echo "the promoted node answers 200 on /health/primary $(seconds_since "$t0") s after promote began"
mariadb_sql secondary "INSERT INTO smarten.log_lines VALUES ('written on the new primary')"
echo "a write on the new primary: accepted"
show_health

step "The old primary comes back: fenced (read-only, 503), it reports its unshipped tail"
start_daemon primary
for ((i = 0; i < 150; i++)); do
  "$replsync" status --config "$MARIADB_WORK/primary.toml" --json 2>/dev/null | grep -q '"fenced":true' && break
  sleep 0.2
done
echo "old primary: read_only=$(mariadb_sql primary 'SELECT @@read_only'), /health/primary $(health primary primary)"
echo "\$ replsync rejoin --dry-run --config primary.toml"
tail_rc=0
"$replsync" rejoin --dry-run --config "$MARIADB_WORK/primary.toml" >"$work/tail.txt" || tail_rc=$?
sed 's/^/  /' "$work/tail.txt"
echo "exit code $tail_rc (1: a tail)"

step "replsync rejoin --config primary.toml: the tail quarantined, the old primary follows"
t0=$(now)
"$replsync" rejoin --config "$MARIADB_WORK/primary.toml" >"$work/rejoin.txt"
grep -E "quarantined|now a secondary|^done" "$work/rejoin.txt" | sed 's/^/  /'
echo "rejoined in $(seconds_since "$t0") s; the quarantine:"
ls -l "$MARIADB_WORK/primary-state/quarantine/"*/ | sed 's/^/  /'
mariadb_sql secondary "INSERT INTO smarten.log_lines VALUES ('after the rejoin')"
rejoin_rc=0
"$replsync" verify --config "$MARIADB_WORK/primary.toml" >"$work/verify-rejoined.txt" || rejoin_rc=$?
tail -n 3 "$work/verify-rejoined.txt" | sed 's/^/  /'
echo "verify on the rejoined old primary: exit $rejoin_rc (0: consistent)"
show_health

step "replsync switchover --config secondary.toml: back to the first node, nothing lost"
sysbench oltp_write_only --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$MARIADB_PORT_secondary" \
  --mysql-user=root --tables=2 --table-size=10000 --threads=2 --rate=100 --time=3 run >/dev/null
"$replsync" switchover --config "$MARIADB_WORK/secondary.toml" >"$work/switchover.txt"
grep -E "switched over|^done" "$work/switchover.txt" | sed 's/^/  /'
for ((i = 0; i < 100; i++)); do [[ $(health primary primary) == 200 ]] && break; sleep 0.1; done
show_health
mariadb_sql primary "INSERT INTO smarten.log_lines VALUES ('after the switchover')"
final_rc=0
"$replsync" verify --config "$MARIADB_WORK/secondary.toml" >"$work/verify-final.txt" || final_rc=$?
tail -n 3 "$work/verify-final.txt" | sed 's/^/  /'
echo "verify: exit $final_rc (0: consistent)"
if [[ $(health primary primary) == 200 && $(health secondary primary) == 503 ]] &&
  ((tail_rc == 1 && rejoin_rc == 0 && final_rc == 0)); then
  step "Done: the secondary holds exactly the primary's rows and files, through a failover, a rejoin and a switchover"
else
  step "The failover part failed"
  exit 1
fi
