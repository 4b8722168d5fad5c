#!/bin/sh
# The Python client (sdk/python) against the real ASan binary: prints
# PASS/FAIL lines (SKIP for routes this build does not serve yet).
cd "$(dirname "$0")/../.." || exit 1
exec python3 sdk/python/tests/test_sdk.py --binary "${ENGRAM_BINARY:-build/asan/engram}" "$@"
