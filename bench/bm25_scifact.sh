#!/usr/bin/env bash
# bm25_scifact.sh - engram's BM25 beside SQLite FTS5 on BEIR SciFact, in one
# run: same corpus, same 300 test queries, same metric code (src/eval/beir.c)
# and the same per-query timing (monotonic clock around the search call and
# the fold into documents; one thread, in-process, warm).
#
#   bench/bm25_scifact.sh [DATA_DIR] [extra engram eval options...]
#
# DATA_DIR defaults to ../shared/data/scifact relative to the project root.
# Builds build/engram (make) and build/bench/fts5_scifact (cc against the
# release objects + -lsqlite3), runs both, prints one table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
data=${1:-"$root/../shared/data/scifact"}
shift || true
if [[ ! -f $data/corpus.jsonl ]]; then
    echo "bm25_scifact: no BEIR data at $data (expected corpus.jsonl, queries.jsonl, qrels/test.tsv)" >&2
    exit 1
fi

make --no-print-directory build/engram >&2
libs=$(make --no-print-directory -s print-libs)
objs=$(find build/rel -name '*.o' ! -name main.o | sort)
mkdir -p build/bench
# shellcheck disable=SC2086
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Isrc -o build/bench/fts5_scifact \
    bench/fts5_scifact.c $objs -lsqlite3 $libs

echo "engram eval --beir $data $*" >&2
ours=$(./build/engram eval --beir "$data" --json "$@")
echo "fts5_scifact $data" >&2
theirs=$(./build/bench/fts5_scifact "$data" --json)

python3 - "$ours" "$theirs" <<'PY'
import json, sys
rows = [json.loads(a) for a in sys.argv[1:3]]
names = ["engram BM25 (k1=%g b=%g)" % (rows[0]["k1"], rows[0]["b"]),
         "SQLite %s FTS5 porter" % rows[1].get("sqlite", "")]
print("%-28s | %-7s | %-10s | %-6s | %-7s | %-7s" % ("system", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p99 ms"))
print("-" * 28 + "-|-" + "-" * 7 + "-|-" + "-" * 10 + "-|-" + "-" * 6 + "-|-" + "-" * 7 + "-|-" + "-" * 7)
for n, r in zip(names, rows):
    print("%-28s | %-7.4f | %-10.4f | %-6.4f | %-7.3f | %-7.3f" % (n, r["ndcg@10"], r["recall@100"], r["mrr@10"], r["p50_ms"], r["p99_ms"]))
ratio = rows[0]["p50_ms"] / rows[1]["p50_ms"] if rows[1]["p50_ms"] > 0 else float("nan")
print("\np50 ratio engram / FTS5: %.3f (%d queries, %d documents, %d chunks)"
      % (ratio, rows[0]["queries"], rows[0]["documents"], rows[0]["chunks"]))
PY
