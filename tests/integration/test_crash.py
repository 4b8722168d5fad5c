"""test_crash.py - the short crash loop of `make test`: 10 SIGKILLs at random
moments of a mixed upload/delete/query workload, each followed by a restart;
then every acknowledged document is present and completed or failed, every
acknowledged delete is gone, and `engram verify` is clean. The long version
(>= 100 kills) is `make crash-loop`; both are tests/robust/crash_loop.py.
The seed is printed; CRASH_SEED in the environment replays one.
"""

import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "robust"))

from harness import parse_args  # noqa: E402
import crash_loop  # noqa: E402


def main():
    args = parse_args()
    seed = int(os.environ.get("CRASH_SEED", str(int(time.time()) % 100000)))
    try:
        s = crash_loop.run(args.binary, 10, seed, max_pause=1.2, settle_timeout=90)
        ok = not s["problems"] and s["acknowledged_uploads"] > 0
        why = "; ".join(s["problems"][:5]) or "nothing acknowledged"
    except Exception as e:  # noqa: BLE001 - report, don't crash the runner
        traceback.print_exc()
        ok, why = False, repr(e)
    if ok:
        print("PASS test_crash.ten_kills_nothing_acknowledged_lost (seed %d)" % seed)
    else:
        print("FAIL test_crash.ten_kills_nothing_acknowledged_lost: seed %d: %s" % (seed, why))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
