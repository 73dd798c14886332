#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#   tools/test.sh
# Installs what is missing (tools/setup.sh), builds, and runs every test with CTest: unit tests,
# integration tests against real MariaDB servers the tests start on loopback, a replay of the
# decoder fuzz target over the recorded binlogs, and a bounded libFuzzer run (clang +
# AddressSanitizer) of the decoder.
# Environment: BUILD_DIR (default build), FUZZ_SECONDS (default 60), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh

build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
fuzz_seconds=${FUZZ_SECONDS:-60}

if [[ ! -d ../shared/fixtures/binlog ]]; then
  echo "test.sh: ../shared/fixtures/binlog is missing; the recorded binlogs must sit beside the checkout" >&2
  exit 1
fi

# The libFuzzer binary: a separate clang build of the capture library with AddressSanitizer.
cmake -S . -B "$build-fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DREPLSYNC_FUZZ=ON \
  -DREPLSYNC_WERROR=OFF >/dev/null
ninja -C "$build-fuzz" -j "$jobs" binlog_decoder_fuzz

# Warnings are errors here (the project's own check); a plain cmake build leaves them warnings.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPLSYNC_WERROR=ON \
  -DREPLSYNC_FUZZ_BINARY="$PWD/$build-fuzz/tests/fuzz/binlog_decoder_fuzz" \
  -DREPLSYNC_FUZZ_SECONDS="$fuzz_seconds" >/dev/null
ninja -C "$build" -j "$jobs"

ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 900
