#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine (as root):
#   tools/demo.sh
# Installs what is missing, builds replsync, starts a local MariaDB (the primary's metadata
# database) on loopback, fills it with changes of every kind, and reads them back live from the
# server's replication stream with `replsync binlog dump`, as JSON lines and as text.
# Environment: BUILD_DIR (default build), MARIADB_KEEP=1 keeps the server's folder.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" replsync replsyncd

source tools/lib/mariadb.sh
trap mariadb_stop_all EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting a MariaDB primary on loopback"
mariadb_start primary 1
port=$MARIADB_PORT_primary
echo "mariadbd on 127.0.0.1:$port, data in $MARIADB_DIR_primary"
start=$(mariadb_sql primary "SHOW MASTER STATUS" | awk '{print $1":"$2}')

conf="$MARIADB_WORK/primary.toml"
cat >"$conf" <<TOML
[node]
role = "primary"
state_dir = "$MARIADB_WORK/state"

[mysql]
host = "127.0.0.1"
port = $port
user = "root"
password = ""
databases = ["smarten"]

[repository]
path = "$MARIADB_WORK/repository"

[transport]
listen = "tcp://127.0.0.1:7700"
TOML

step "Making changes: DDL, inserts of every column type, updates, deletes, a transaction"
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
SET time_zone = '+05:30';
INSERT INTO reports (name, owner, budget, ratio, created, updated, due, duration, kind, tags, flags, year_made, body, meta)
VALUES ('Quarterly sales 📈', 'José', 12345.67, 0.25, '2024-02-29 12:34:56.123400', '2024-03-01 08:00:00.500', '2024-03-31', '-12:30:00.25', 'chart', 'sales,finance', b'10100101', 2024, x'00FF00', '{\"dims\": [\"region\"]}'),
       ('Headcount', NULL, -999.99, NULL, '1999-12-31 23:59:59', NULL, '0000-00-00', '838:59:59', 'pivot', '', b'0', 1901, '', NULL);
BEGIN;
UPDATE reports SET budget = budget * 2, tags = 'hr' WHERE id = 2;
INSERT INTO reports (name) VALUES ('Draft');
COMMIT;
ALTER TABLE reports ADD COLUMN archived TINYINT(1) NOT NULL DEFAULT 0;
DELETE FROM reports WHERE name = 'Draft';
"
mariadb_sql primary "SELECT id, name, budget, created, duration, kind, tags FROM smarten.reports"

step "replsync binlog dump --config $conf --from $start --json (live, from the replication stream)"
"$build/tools/replsync" binlog dump --config "$conf" --from "$start" --json

step "The same, as text"
"$build/tools/replsync" binlog dump --config "$conf" --from "$start"

step "Done: every change above came back from the binlog, decoded exactly"
