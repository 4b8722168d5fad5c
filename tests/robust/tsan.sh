#!/usr/bin/env bash
# tsan.sh TEST... - `make tsan`: the concurrency tests under ThreadSanitizer.
# Runs every case of the named unit tests (build/tsan/tests/NAME), then an
# HTTP workload against build/tsan/engram: the API suite and the short
# crash loop (concurrent uploads, deletes, queries, ingest workers, group
# commit). Any ThreadSanitizer report fails. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
export TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
mkdir -p build/test-logs
passed=0
failed=0
for t in "$@"; do
    bin=build/tsan/tests/$t
    while read -r name; do
        [[ -n $name ]] || continue
        log=build/test-logs/tsan.$t.$name.log
        if timeout 600 "$bin" "$name" >"$log" 2>&1 && ! grep -q "ThreadSanitizer" "$log"; then
            passed=$((passed + 1)); echo "PASS tsan.$t.$name"
        else
            failed=$((failed + 1)); echo "FAIL tsan.$t.$name"; grep -A30 "WARNING: ThreadSanitizer" "$log" | head -40
        fi
    done < <("$bin" --list)
done
for suite in test_api test_crash test_idempotency; do
    log=build/test-logs/tsan.$suite.log
    timeout 900 python3 tests/integration/$suite.py --binary build/tsan/engram >"$log" 2>&1
    rc=$?
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log")
    if [[ $rc -ne 0 || $f -gt 0 ]] || grep -q "WARNING: ThreadSanitizer" "$log"; then
        failed=$((failed + 1)); echo "FAIL tsan.$suite ($p passed, $f failed, exit $rc)"
        grep -E "^FAIL|WARNING: ThreadSanitizer" "$log" | head -20
    else
        passed=$((passed + 1)); echo "PASS tsan.$suite ($p tests)"
    fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
