#!/usr/bin/env bash
# The long fault-injection run (the CI suite runs one short round):
#   tools/fault_test.sh [ROUNDS] [LOAD_SECONDS]
# Builds replsync, then runs the end-to-end fault-injection test for ROUNDS rounds (default 10)
# with LOAD_SECONDS of sysbench per phase (default 10): in every round, under sysbench load on
# the primary, kill -9 of each replsyncd, SIGTERM of each, the secondary away while the primary
# keeps changing, a crash (kill -9) and restart of the primary's MariaDB, then of the
# secondary's; after each round every replicated table must have the same CHECKSUM TABLE on both
# nodes. Then the file churn test for ROUNDS rounds: bursts of small files, large files changed
# in the middle, renames of files and folders, deletes, chmod/chown/touch, symlinks, slow writers
# and odd names on the primary's repository, with kill -9 of each replsyncd and an outage of
# the secondary in every round; the trees must end equal and a sampler on the secondary must
# never see a half-written file. Each test ends with `replsync verify`, which must find both
# nodes equal. Logs of a failing run are kept (the path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" replication_test file_replication_test replsyncd replsync
REPLSYNC_FAULT_ROUNDS=${1:-10} REPLSYNC_LOAD_SECONDS=${2:-10} \
  "$build/tests/replication_test" --gtest_filter='*Survives*'
REPLSYNC_CHURN_ROUNDS=${1:-10} "$build/tests/file_replication_test" --gtest_filter='*Churn*'
