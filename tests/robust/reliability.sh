#!/usr/bin/env bash
# reliability.sh - `make reliability`: runs the slow tiers and writes
# docs/RELIABILITY.md from their figures (build/robust/*.json).
#   make fuzz (FUZZ_SECONDS each, default 60)   libFuzzer over every target
#   test_faults (ASan)                          allocation failure, map full
#   lmdb-facts, full-disk                       (root: tmpfs mounts)
#   crash-loop                                  >= 100 SIGKILLs (CRASH_KILLS)
#   load                                        wrk 64/256 + 500 slowloris (LOAD_SECONDS)
#   tsan                                        ThreadSanitizer
# Each tier's outcome (pass/fail) is recorded; the report is written even
# when one fails, and the script then exits non-zero.
set -u
cd "$(dirname "$0")/../.."
out=build/robust
mkdir -p "$out"
status=0
tier() {  # name command...
    local name=$1; shift
    echo "== $name"
    local t0=$SECONDS
    if "$@" >"$out/$name.log" 2>&1; then r=pass; else r=FAIL; status=1; fi
    echo "{\"tier\":\"$name\",\"result\":\"$r\",\"seconds\":$((SECONDS - t0))}" >"$out/$name.tier.json"
    echo "   $r ($((SECONDS - t0)) s)"
}
tier fuzz make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
tier faults bash -c 'make build/asan/tests/test_faults && tests/run.sh test_faults'
tier lmdb-facts make lmdb-facts
tier full-disk make full-disk
tier crash-loop make crash-loop CRASH_KILLS="${CRASH_KILLS:-120}"
tier load make load LOAD_SECONDS="${LOAD_SECONDS:-60}"
tier tsan make tsan
python3 tests/robust/report.py "$out" docs/RELIABILITY.md || status=1
echo "docs/RELIABILITY.md written"
exit $status
