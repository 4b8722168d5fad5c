#!/usr/bin/env python3
"""The engram binary's client commands (ingest, search, ask, collections,
docs) driven as a shell user would, against a real server: output, exit
codes, and the errors that tell the user what to do."""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Suite, check, eq, register_admin, run_cli, short, uniq  # noqa: E402

suite = Suite("test_cli")


def cli(s, args, key=None, url=None, env_key=True, timeout=120):
    """Runs the binary with ENGRAM_URL/ENGRAM_API_KEY in the environment."""
    old = dict(os.environ)
    os.environ["ENGRAM_URL"] = url or "http://127.0.0.1:%d" % s.server.port
    if env_key and (key or s.state.get("key")):
        os.environ["ENGRAM_API_KEY"] = key or s.state["key"]
    else:
        os.environ.pop("ENGRAM_API_KEY", None)
    try:
        return run_cli(s.binary, args, timeout=timeout)
    finally:
        os.environ.clear()
        os.environ.update(old)


def make_tree(d):
    os.makedirs(os.path.join(d, "sub", "deeper"))
    os.makedirs(os.path.join(d, ".git"))
    files = {
        "quokka.txt": "The quokka is a small marsupial that lives on Rottnest island.\n",
        "sub/storage.md": "# Storage\n\nEvery write goes through one writer that batches commits.\n",
        "sub/deeper/narwhal.txt": "The narwhal has a long spiral tusk.\n",
        ".git/ignored.txt": "hidden files are skipped\n",
    }
    for rel, text in files.items():
        with open(os.path.join(d, rel), "w") as f:
            f.write(text)
    with open(os.path.join(d, "sub", "blob.bin"), "wb") as f:
        f.write(b"\x00\x01\x02\x03binary\x00" * 64)


@suite.test
def test_ingest_folder_summary(s):
    s.state["key"] = register_admin(s.client)["key"]
    s.state["coll"] = uniq("clinotes")
    d = tempfile.mkdtemp(prefix="engram-cli-")
    s.state["dir"] = d
    make_tree(d)
    rc, out, err = cli(s, ["ingest", "--collection", s.state["coll"], "--wait", d])
    eq(rc, 1, "exit code with one failed file (stderr %s)" % short(err))
    check("created collection %s" % s.state["coll"] in out, "collection created: %r" % out)
    check("3 uploaded, 0 duplicates, 1 failed" in out, "summary line: %r" % out)
    check("blob.bin" in out and "binary" in out.split("failures:")[-1],
          "the failure and its reason are listed: %r" % out)
    check("ignored.txt" not in out, "dot folders are skipped: %r" % out)
    check("processed: 3 completed, 0 failed" in out, "--wait reports processing: %r" % out)


@suite.test
def test_ingest_again_counts_duplicates(s):
    d = s.state["dir"]
    rc, out, err = cli(s, ["ingest", "--collection", s.state["coll"],
                           os.path.join(d, "quokka.txt"), os.path.join(d, "sub", "storage.md")])
    eq(rc, 0, "exit code (stderr %s)" % short(err))
    check("0 uploaded, 2 duplicates, 0 failed" in out, "summary: %r" % out)
    check("created collection" not in out, "the existing collection is reused: %r" % out)


@suite.test
def test_search_plain_and_json(s):
    rc, out, err = cli(s, ["search", "quokka island", "--collection", s.state["coll"]])
    eq(rc, 0, "exit code (stderr %s)" % short(err))
    first = out.splitlines()[0]
    check(first.startswith("1. [") and "quokka.txt" in first, "first hit: %r" % out)
    check("Rottnest island" in out, "snippet printed: %r" % out)
    rc, out, err = cli(s, ["search", "batched commits", "--top-k", "1", "--mode", "keyword",
                           "--json"])
    eq(rc, 0, "exit code --json (stderr %s)" % short(err))
    js = json.loads(out)
    eq(js["mode"], "keyword", "mode passed through")
    eq(len(js["results"]), 1, "--top-k 1")
    check("batches commits" in js["results"][0]["content"], "json hit: %r" % js["results"][0])
    rc, out, err = cli(s, ["search", "x", "--collection", "no-such-collection"])
    eq(rc, 1, "unknown collection exit code")
    check('no collection named "no-such-collection"' in err, "message: %r" % err)
    rc, out, err = cli(s, ["search", "x", "--top-k", "0"])
    eq(rc, 2, "--top-k 0 is a usage error")


@suite.test
def test_collections_and_docs(s):
    rc, out, err = cli(s, ["collections"])
    eq(rc, 0, "collections exit (stderr %s)" % short(err))
    line = [l for l in out.splitlines() if l.startswith(s.state["coll"] + " ")]
    check(line and line[0].split()[-2:] == ["3", "3"], "name, 3 docs, 3 chunks: %r" % out)
    rc, out, err = cli(s, ["docs", "--collection", s.state["coll"]])
    eq(rc, 0, "docs exit (stderr %s)" % short(err))
    for name in ("quokka.txt", "storage.md", "narwhal.txt"):
        row = [l for l in out.splitlines() if l.endswith(name)]
        check(row and " completed " in row[0], "%s listed as completed: %r" % (name, out))
    rc, out, err = cli(s, ["docs", "--json"])
    eq(rc, 0, "docs --json exit")
    eq(sorted(d["filename"] for d in json.loads(out)),
       ["narwhal.txt", "quokka.txt", "storage.md"], "docs --json filenames")


@suite.test
def test_ask_streams_answer_and_sources(s):
    rc, out, err = cli(s, ["ask", "Where does the quokka live?", "--collection", s.state["coll"]])
    if rc != 0 and "no such route" in err:
        # A build without /chat: the server's own error is what the user sees.
        check(err.startswith("engram ask: no such route (HTTP 404 NOT_FOUND)"), "error: %r" % err)
        return
    eq(rc, 0, "ask exit (stderr %s)" % short(err))
    answer, _, sources = out.partition("\nSources:\n")
    check(answer.strip(), "an answer was printed: %r" % out)
    check(sources.startswith("[1] "), "numbered sources: %r" % out)
    check("quokka.txt" in sources, "the quokka document is a source: %r" % out)


@suite.test
def test_errors_say_what_to_do(s):
    rc, out, err = cli(s, ["collections"], key="eg_" + "A" * 40)
    eq(rc, 1, "wrong key exit")
    check("401" in err and "check ENGRAM_API_KEY" in err, "401 message: %r" % err)
    rc, out, err = cli(s, ["collections"], env_key=False)
    eq(rc, 2, "no key exit")
    check("ENGRAM_API_KEY" in err, "no key message: %r" % err)
    rc, out, err = cli(s, ["docs"], url="http://127.0.0.1:1")
    eq(rc, 1, "unreachable exit")
    check("cannot reach the engram server at http://127.0.0.1:1" in err, "message: %r" % err)
    # Flags win over the environment.
    rc, out, err = cli(s, ["collections", "--url", "http://127.0.0.1:%d/" % s.server.port],
                       url="http://127.0.0.1:1")
    eq(rc, 0, "--url over ENGRAM_URL (stderr %s)" % short(err))
    rc, out, err = cli(s, ["ingest", "--collection", "x"])
    eq(rc, 2, "ingest without paths is a usage error")
    rc, out, err = cli(s, ["ingest", "--collection", "x", "/no/such/path"])
    eq(rc, 1, "a missing path")
    check("/no/such/path" in err, "names the path: %r" % err)
    shutil.rmtree(s.state["dir"], ignore_errors=True)


if __name__ == "__main__":
    suite.run()
