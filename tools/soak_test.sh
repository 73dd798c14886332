#!/usr/bin/env bash
# The long mixed-load soak (the CI suite runs 75 s of it):
#   tools/soak_test.sh [SECONDS]
# Builds replsync, then runs the soak test for SECONDS of load (default 1800, 30 minutes): all at
# once, sysbench oltp_write_only on the primary's replicated database, a writer saving a small
# file every ~20 ms in the primary's repository, file churn (creates, renames, deletes, chmods,
# folder moves), and `replsync verify` on the secondary every few seconds, while a sampler reads
# both nodes' status every 200 ms. It fails as soon as a status shows an error state, on any
# verify that does not exit 0, when the secondary shows a half-written file, and unless rows
# (CHECKSUM TABLE), trees and a last verify are equal once the load has stopped. Logs of a
# failing run are kept (the path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" soak_test replsyncd replsync
REPLSYNC_SOAK_SECONDS=${1:-1800} "$build/tests/soak_test"
