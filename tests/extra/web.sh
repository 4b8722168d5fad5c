#!/usr/bin/env bash
# The web page (web/, served at /) in headless Chromium against the real
# ASan binary.
#
# 1. src/api/web_asset*.c must be what tools/embed-web makes of web/ now
#    (the page compiled into the binary cannot drift from its sources).
# 2. npm ci in tests/web (playwright-core, pinned by package-lock.json; only
#    when node_modules is missing or older than the lock file).
# 3. engram serve on a free port with a temporary data directory; the first
#    user is registered through the API.
# 4. tests/web/run.mjs drives Debian's /usr/bin/chromium (PASS/FAIL lines):
#    sign in -> collection -> upload -> completed -> search -> chat -> ...
#    Screenshots go to build/test-artifacts/web/*.png.
# 5. The server is stopped with SIGTERM: it must exit 0 with no sanitizer
#    report.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$(pwd)
bin=${ENGRAM_BINARY:-build/asan/engram}
[[ $bin == /* ]] || bin=$root/$bin
mkdir -p build/test-logs build/test-artifacts/web

if out=$(tools/embed-web --check 2>&1); then
    echo "PASS web.assets_match_sources"
else
    echo "FAIL web.assets_match_sources: $out"
fi

chrome=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chrome ]]; then
    echo "FAIL web.setup: $chrome is missing (Debian package chromium, tools/deps/web.test; tools/dev deps)"
    exit 1
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "FAIL web.setup: node and npm are needed (tools/deps/sdk.test)"
    exit 1
fi
if [[ ! -d tests/web/node_modules/playwright-core || tests/web/package-lock.json -nt tests/web/node_modules/.package-lock.json ]]; then
    if ! (cd tests/web && npm ci --no-audit --no-fund --loglevel=error) >build/test-logs/web.npm.log 2>&1; then
        echo "FAIL web.npm_ci: see build/test-logs/web.npm.log"
        tail -20 build/test-logs/web.npm.log
        exit 1
    fi
fi

data=$(mktemp -d "${TMPDIR:-/tmp}/engram-web-XXXXXX")
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
cleanup() {
    kill -TERM $pid 2>/dev/null
    wait $pid
}
if [[ -z $port ]]; then
    echo "FAIL web.setup: the server did not start; log:"
    tail -30 "$log"
    kill $pid 2>/dev/null
    rm -rf "$data" "$log"
    exit 1
fi

url="http://127.0.0.1:$port"
email="web-$RANDOM@example.com"
password="correct horse $RANDOM"
code=$(curl -s -o "$data.reg" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$url/api/v1/auth/register")
if [[ $code != 201 ]]; then
    echo "FAIL web.setup: registering the first user answered $code: $(head -c 300 "$data.reg")"
    cleanup
    rm -rf "$data" "$log" "$data.reg"
    exit 1
fi
rm -f "$data.reg"

rm -f build/test-artifacts/web/*.png
ENGRAM_TEST_URL=$url ENGRAM_TEST_EMAIL=$email ENGRAM_TEST_PASSWORD=$password \
    ENGRAM_ARTIFACTS=$root/build/test-artifacts/web CHROMIUM=$chrome \
    timeout 240 node tests/web/run.mjs
rc=$?
[[ $rc -eq 124 ]] && echo "FAIL web.run: the browser test did not finish in 240 s"

kill -TERM $pid
wait $pid
src=$?
if [[ $src -ne 0 ]] || grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
    echo "FAIL web.server_shutdown: exit $src or a sanitizer report; log tail:"
    tail -40 "$log"
    rc=1
fi
rm -rf "$data" "$log"
exit $rc
