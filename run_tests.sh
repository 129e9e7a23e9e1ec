#!/usr/bin/env bash
# The project's test command: C++ unit tests (GoogleTest, via CTest), then the
# Python tests (compiler, runtime, CLI, end to end against PyTorch).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
[ -d build ] || { echo "run ./setup.sh first" >&2; exit 2; }
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
/usr/bin/python3 -m pytest -q tests/python "$@"
