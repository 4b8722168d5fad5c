#!/usr/bin/env bash
# The TypeScript client (sdk/typescript) against the real ASan binary.
#
# Installs the pinned compiler (npm ci, only when node_modules is missing or
# older than package-lock.json), builds dist/ with tsc, starts `engram serve`
# on a free port with a temporary data directory, runs test/run.mjs against
# it (PASS/FAIL lines; SKIP for routes this build does not serve yet), then
# stops the server with SIGTERM: it must exit 0 with no sanitizer report.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
bin=${ENGRAM_BINARY:-build/asan/engram}
[[ $bin == /* ]] || bin=$root/$bin
sdk=sdk/typescript

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "FAIL sdk_typescript.setup: node and npm are needed (tools/deps/sdk.test)"
    exit 1
fi
mkdir -p build/test-logs
if [[ ! -x $sdk/node_modules/.bin/tsc || $sdk/package-lock.json -nt $sdk/node_modules/.package-lock.json ]]; then
    if ! (cd $sdk && npm ci --no-audit --no-fund --loglevel=error) >build/test-logs/sdk_typescript.npm.log 2>&1; then
        echo "FAIL sdk_typescript.npm_ci: see build/test-logs/sdk_typescript.npm.log"
        tail -20 build/test-logs/sdk_typescript.npm.log
        exit 1
    fi
fi
if out=$(cd $sdk && npm run --silent build 2>&1); then
    echo "PASS sdk_typescript.tsc_build"
else
    echo "FAIL sdk_typescript.tsc_build: tsc reported errors"
    echo "$out" | head -40
    exit 1
fi

data=$(mktemp -d "${TMPDIR:-/tmp}/engram-ts-XXXXXX")
log=$data.log
: >"$log"
args=(serve --listen 127.0.0.1:0 --data "$data" --log-level info)
"$bin" serve --help 2>/dev/null | grep -q -- '--rate-limit' && args+=(--rate-limit 0)
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} "$bin" "${args[@]}" >"$log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 200); do
    port=$(grep -oE 'listening on https?://127\.0\.0\.1:[0-9]+' "$log" | head -1 | grep -oE '[0-9]+$')
    [[ -n $port ]] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
if [[ -z $port ]]; then
    echo "FAIL sdk_typescript.setup: the server did not start; log:"
    tail -30 "$log"
    kill $pid 2>/dev/null
    rm -rf "$data" "$log"
    exit 1
fi

(cd $sdk && ENGRAM_TEST_URL="http://127.0.0.1:$port" timeout 600 node test/run.mjs "$@")
rc=$?

kill -TERM $pid
wait $pid
src=$?
if [[ $src -ne 0 ]] || grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
    echo "FAIL sdk_typescript.server_shutdown: exit $src or a sanitizer report; log tail:"
    tail -40 "$log"
    rc=1
fi
[[ -n ${KEEP_LOG:-} ]] && cp "$log" /tmp/sdk_ts_server.log; rm -rf "$data" "$log"
exit $rc
