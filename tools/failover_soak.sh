#!/usr/bin/env bash
# The long failover soak (the CI suite runs one round):
#   tools/failover_soak.sh [ROUNDS]
# Builds replsync, then runs failover_test's rounds for ROUNDS rounds (default 20): in every
# round, under a writer that sends its inserts where /health/primary answers 200 (through an
# account read_only stops) and file changes, a `replsync switchover` to the other node, then an
# unplanned failover back (the primary's replsyncd killed with SIGKILL, `replsync promote` on the
# other node, the old primary restarted fenced and `replsync rejoin`ed). Every step must end with
# every acknowledged insert on both nodes, equal repositories and `replsync verify` exit 0; each
# round prints what its switchover, promotion and rejoin took. Logs of a failing run are kept
# (the path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" failover_test replsyncd replsync
REPLSYNC_FAILOVER_ROUNDS=${1:-20} "$build/tests/failover_test" --gtest_filter='*FailoverRounds*'
