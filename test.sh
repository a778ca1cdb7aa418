#!/usr/bin/env bash
# Runs the whole test suite (unit tests and end-to-end checkpoint/restore cases) through CTest.
# Needs a build from ./setup.sh. Extra arguments go to ctest (e.g. -R e2e.memory).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x build/src/vos ]; then
  echo "test: no build found; run ./setup.sh first" >&2
  exit 1
fi
cmake --build build -j"$(nproc)" >/dev/null
cd build
ctest --output-on-failure --timeout 120 "$@"
