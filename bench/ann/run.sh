#!/bin/sh
# bench/ann/run.sh - `make bench-ann`: engram's HNSW beside hnswlib and the
# exact scan, on MNIST (../shared/data/mnist: first 9,000 base, last 1,000
# queries) and on a generated clustered Gaussian set (200,000 x 384, or
# 50,000 x 384 with --quick), L2, k=10, M=16, ef_construction=200, one
# thread. Each driver builds its index once; then ROUNDS query rounds
# alternate hnswlib, engram, hnswlib, engram, ... (each a fresh process: one
# untimed pass, then one timed pass per ef) and each system's fastest round
# at each ef counts, so both meet the same machine load. Times are CPU
# seconds of each driver process (see ann_common.h); the restart time is
# wall time. Prints one table.
set -eu
cd "$(dirname "$0")/../.."
N=200000
[ "${1:-}" = "--quick" ] && N=50000
ROUNDS=${ANN_ROUNDS:-5}
MNIST=../shared/data/mnist/t10k-images-idx3-ubyte.gz
work=$(mktemp -d "${TMPDIR:-/tmp}/engram-ann-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

run_set() {  # name dir
    name=$1 dir=$2
    exact=$(cat "$dir/exact.txt")
    build/bench/ann_hnswlib "$dir" build > "$dir/hnswlib.txt"
    build/bench/ann_engram "$dir" build > "$dir/engram.txt"
    i=0
    while [ $i -lt "$ROUNDS" ]; do
        build/bench/ann_hnswlib "$dir" query >> "$dir/hnswlib.txt"
        build/bench/ann_engram "$dir" query >> "$dir/engram.txt"
        i=$((i + 1))
    done
    build/bench/ann_engram "$dir" restart >> "$dir/engram.txt"
    awk -v name="$name" -v exact="$exact" -v rounds="$ROUNDS" '
        FNR == 1 { sys = (FILENAME ~ /hnswlib/) ? "hnswlib" : "engram" }
        $1 == "build" { build[sys] = $2; size[sys] = $3; next }
        $1 == "restart" { restart = $2; ropen = $3; rquery = $4; next }
        $1 == "cold" { cold_ef = $2; if ($3 > cold) cold = $3; next }
        {
            if (!((sys, $1) in r) && sys == "engram") efs[++n] = $1
            r[sys, $1] = $2
            if ($3 > q[sys, $1]) q[sys, $1] = $3
        }
        END {
            split(exact, e, "\t")
            printf "%-22s | %-8s | %4s | %9s | %8s | %s\n", name, "exact", "-", "1.000", e[4], "scan (" e[5] " kernel)"
            for (s = 0; s < 2; s++) {
                sy = s ? "engram" : "hnswlib"
                for (i = 1; i <= n; i++) {
                    ef = efs[i]
                    extra = (sy == "engram") ? sprintf("%.2fx hnswlib QPS", q["engram", ef] / q["hnswlib", ef]) : ""
                    printf "%-22s | %-8s | %4s | %9.4f | %8d | %s\n", name, sy, ef, r[sy, ef], q[sy, ef], extra
                }
            }
            printf "%-22s | build: hnswlib %.1f s, engram %.1f s (%.2fx); index: hnswlib %.1f MB, engram %.1f MB\n",
                name, build["hnswlib"], build["engram"], build["engram"] / build["hnswlib"],
                size["hnswlib"] / 1e6, size["engram"] / 1e6
            printf "%-22s | QPS: best of %d alternating rounds; engram untimed first pass (ef %s, pages not yet mapped by the process): %d QPS\n", name, rounds, cold_ef, cold
            printf "%-22s | engram first query after restart: %.1f ms (store_open %.1f ms, first query incl. block table %.1f ms)\n", name, restart, ropen, rquery
        }' "$dir/hnswlib.txt" "$dir/engram.txt"
}

echo "dataset                | system   |   ef | recall@10 |      QPS | notes"
mkdir -p "$work/mnist" "$work/clustered"
gzip -dc "$MNIST" > "$work/mnist/idx"
build/bench/ann_data mnist "$work/mnist/idx" "$work/mnist" > "$work/mnist/exact.txt"
run_set "mnist-9k-784" "$work/mnist"
build/bench/ann_data clustered "$N" 384 "$work/clustered" > "$work/clustered/exact.txt"
run_set "clustered-$((N / 1000))k-384" "$work/clustered"
