#!/usr/bin/env bash
# lmdb_facts.sh BINARY REPORT - runs the LMDB durability facts on a fresh
# 8 MiB tmpfs per mode (needs root for mount; without it: a clear failure,
# never a silent pass). Writes the JSON lines to REPORT.
set -u
bin=$1
report=$2
mkdir -p "$(dirname "$report")"
: >"$report"
mnt=$(mktemp -d /tmp/engram-lmdbfacts-XXXXXX)
status=0
for mode in writemap plain; do
    if ! mount -t tmpfs -o size=8m tmpfs "$mnt" 2>/dev/null; then
        echo "FAIL lmdb_facts: cannot mount a tmpfs (needs root or CAP_SYS_ADMIN); facts not measured" >&2
        rmdir "$mnt"
        exit 1
    fi
    head -c 1048576 /dev/zero >"$mnt/filler"
    "$bin" "$mode" "$mnt/db" | tee -a "$report"
    [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
    umount "$mnt"
done
rmdir "$mnt"
exit $status
