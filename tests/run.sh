#!/usr/bin/env bash
# Runs every test: each unit test case in its own process with a timeout
# (ASan/UBSan build; a leak or a sanitizer report fails the case), then the
# integration suites against the real binary. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
passed=0
failed=0
failures=()
log_dir=build/test-logs
mkdir -p "$log_dir"
only="${1:-}"

for bin in build/asan/tests/test_*; do
    [[ -x $bin ]] || continue
    suite=$(basename "$bin")
    [[ -n $only && $suite != *"$only"* ]] && continue
    while read -r name; do
        [[ -n $name ]] || continue
        log="$log_dir/$suite.$name.log"
        if timeout 300 "$bin" "$name" >"$log" 2>&1; then
            passed=$((passed + 1))
            echo "PASS $suite.$name"
        else
            failed=$((failed + 1))
            failures+=("$suite.$name")
            echo "FAIL $suite.$name"
            sed 's/^/    /' "$log" | head -40
        fi
    done < <("$bin" --list)
done

for bin in build/asan/fuzz/fuzz_*; do
    [[ -x $bin ]] || continue
    name=$(basename "$bin")
    [[ -n $only && $name != *"$only"* ]] && continue
    corpus="tests/fuzz/corpus/${name#fuzz_}"
    log="$log_dir/$name.replay.log"
    if [[ -d $corpus ]] && timeout 300 "$bin" "$corpus" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "PASS $name.corpus_replay"
    else
        failed=$((failed + 1))
        failures+=("$name.corpus_replay")
        echo "FAIL $name.corpus_replay"
        sed 's/^/    /' "$log" | head -40
    fi
done

for suite in tests/integration/test_*.py; do
    [[ -f $suite ]] || continue
    name=$(basename "$suite" .py)
    [[ -n $only && $name != *"$only"* ]] && continue
    log="$log_dir/$name.log"
    timeout 900 python3 "$suite" --binary build/asan/engram >"$log" 2>&1
    rc=$?
    p=$(grep -c '^PASS ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    grep -E '^(PASS|FAIL) ' "$log"
    if [[ $rc -ne 0 && $f -eq 0 ]]; then
        f=1
        echo "FAIL $name (suite exited $rc)"
    fi
    if [[ $f -gt 0 ]]; then
        failures+=("$name")
        tail -60 "$log" | sed 's/^/    /'
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done

# Other suites (SDKs, browser, ...) are executables in tests/extra/ that
# print "PASS name" / "FAIL name: reason" lines like the Python suites.
for suite in tests/extra/*; do
    [[ -x $suite && -f $suite ]] || continue
    name=$(basename "$suite")
    name=${name%.*}
    [[ -n $only && $name != *"$only"* ]] && continue
    log="$log_dir/extra-$name.log"
    timeout 900 "$suite" >"$log" 2>&1
    rc=$?
    p=$(grep -c '^PASS ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    grep -E '^(PASS|FAIL) ' "$log"
    if [[ $rc -ne 0 && $f -eq 0 ]]; then
        f=1
        echo "FAIL $name (suite exited $rc)"
    fi
    if [[ $f -gt 0 ]]; then
        failures+=("$name")
        tail -60 "$log" | sed 's/^/    /'
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done

if ((${#failures[@]})); then
    echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
