"""test_full_disk.py - a full disk during ingestion (tests/robust/full_disk.py):
a 16 MiB tmpfs fills up under uploads; refusals are clean, acknowledged
documents stay readable and searchable, writes resume once space is back,
and after a restart everything acknowledged ends completed or failed with
`engram verify` clean. Needs root to mount the tmpfs: without it the test
FAILS saying so (it never passes without having run)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "robust"))

from harness import parse_args  # noqa: E402
import full_disk  # noqa: E402

if __name__ == "__main__":
    args = parse_args()
    seed = int(os.environ.get("TEST_SEED", "20261121")) % 100000
    res = full_disk.run(args.binary, seed=seed)
    print(res)
    if "error" in res:
        print("FAIL test_full_disk.ingest_until_enospc: " + res["error"])
        sys.exit(1)
    if res["problems"]:
        print("FAIL test_full_disk.ingest_until_enospc: seed %d: %s" % (seed, "; ".join(res["problems"])))
        sys.exit(1)
    print("PASS test_full_disk.ingest_until_enospc (seed %d, %d acknowledged, refusals %r)" %
          (seed, res["acknowledged"], res["refusals"]))
