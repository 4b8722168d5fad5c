#!/usr/bin/env python3
"""The docs are true: README examples run against the real binary, the
configuration page matches the settings table, and the CLI's help works."""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Suite, check, eq  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
suite = Suite("test_docs")


def readme_block(name):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(r"<!-- example: %s -->\s*```sh\n(.*?)```" % re.escape(name), text, re.S)
    check(m, "README has no example block %r" % name)
    return m.group(1)


@suite.test
def test_readme_quickstart_runs(s):
    script = readme_block("quickstart")
    with tempfile.TemporaryDirectory() as cwd:
        env = dict(os.environ, ENGRAM_URL="http://127.0.0.1:%d" % s.server.port)
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=120)
    eq(p.returncode, 0, "quickstart exit code (stderr: %s)" % p.stderr[-500:])
    check("group commit" in p.stdout, "quickstart did not find the uploaded note: %r" % p.stdout)


@suite.test
def test_readme_starts_with_two_commands(s):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    first = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    cmds = [l.split("#")[0].strip() for l in first.splitlines() if l.strip()]
    eq(cmds, ["tools/dev run", "tools/dev test"], "the README's first commands")
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    check("tools/dev test" in ci, ".ci/run does not run the README's test command")


@suite.test
def test_config_page_is_current(s):
    out = subprocess.run([s.binary, "config"], capture_output=True, text=True, timeout=30).stdout
    page = open(os.path.join(ROOT, "docs", "CONFIG.md"), encoding="utf-8").read()
    check(out.strip() and out.strip() in page,
          "docs/CONFIG.md differs from `engram config`: regenerate it")


@suite.test
def test_cli_help_and_errors(s):
    p = subprocess.run([s.binary, "serve", "--help"], capture_output=True, text=True, timeout=30)
    eq(p.returncode, 0, "serve --help exit code")
    for flag in ("--listen", "--data", "--open-registration", "--max-upload-mb", "ENGRAM_LISTEN"):
        check(flag in p.stdout, "serve --help lacks " + flag)
    p = subprocess.run([s.binary, "serve", "--no-such-flag"], capture_output=True, text=True, timeout=30)
    eq(p.returncode, 2, "unknown flag exit code")
    check("unknown option" in p.stderr, "unknown flag message: " + p.stderr)
    p = subprocess.run([s.binary, "serve", "--max-upload-mb", "0"], capture_output=True, text=True,
                       timeout=30)
    eq(p.returncode, 2, "out-of-range value exit code")
    p = subprocess.run([s.binary, "frobnicate"], capture_output=True, text=True, timeout=30)
    eq(p.returncode, 2, "unknown command exit code")
    p = subprocess.run([s.binary, "version"], capture_output=True, text=True, timeout=30)
    check(p.stdout.startswith("engram "), "version output: " + p.stdout)


@suite.test
def test_data_dir_version_mismatch_is_a_clear_error(s):
    with tempfile.TemporaryDirectory() as d:
        # Not an LMDB file at all where data.mdb should be.
        with open(os.path.join(d, "data.mdb"), "wb") as f:
            f.write(b"this is not a database" * 100)
        p = subprocess.run([s.binary, "serve", "--listen", "127.0.0.1:0", "--data", d],
                           capture_output=True, text=True, timeout=30)
        eq(p.returncode, 1, "exit code on a foreign data file")
        check("data" in p.stderr.lower(), "error names the problem: " + p.stderr[-300:])


def readme_code(name, lang):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    m = re.search(r"<!-- example: %s -->\s*```%s\n(.*?)```" % (re.escape(name), lang), text, re.S)
    check(m, "README has no %s example block %r" % (lang, name))
    return m.group(1)


def client_env(s):
    """A fresh server with a registered first user: the environment the
    Clients examples expect (ENGRAM_URL, ENGRAM_API_KEY)."""
    import json
    import urllib.request
    if "client_env" not in s.state:
        srv = s.new_server()
        srv.start()
        url = "http://127.0.0.1:%d" % srv.port
        req = urllib.request.Request(url + "/api/v1/auth/register", method="POST",
                                     data=json.dumps({"email": "docs@example.org",
                                                      "password": "a long password"}).encode(),
                                     headers={"Content-Type": "application/json"})
        key = json.load(urllib.request.urlopen(req, timeout=30))["api_key"]
        s.state["client_env"] = dict(os.environ, ENGRAM_URL=url, ENGRAM_API_KEY=key)
    return s.state["client_env"]


@suite.test
def test_readme_python_client_runs(s):
    env = dict(client_env(s), PYTHONPATH=os.path.join(ROOT, "sdk", "python"))
    with tempfile.TemporaryDirectory() as cwd:
        p = subprocess.run([sys.executable, "-c", readme_code("python", "python")], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=120)
    eq(p.returncode, 0, "python example exit code (stderr: %s)" % p.stderr[-500:])
    check(p.stdout.startswith("Refunds - Refunds are paid within five working days."),
          "python example output: %r" % p.stdout)


@suite.test
def test_readme_cli_runs(s):
    env = dict(client_env(s))
    env["PATH"] = os.path.dirname(os.path.abspath(s.binary)) + os.pathsep + env.get("PATH", "")
    check(os.path.basename(s.binary) == "engram", "the binary is called engram")
    with tempfile.TemporaryDirectory() as cwd:
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_code("cli", "sh")], cwd=cwd,
                           env=env, capture_output=True, text=True, timeout=120)
    eq(p.returncode, 0, "cli example exit code (stderr: %s)" % p.stderr[-500:])
    check("1 uploaded, 0 duplicates, 0 failed" in p.stdout, "ingest summary: %r" % p.stdout)
    check("1. [" in p.stdout and "travel.txt" in p.stdout, "search hit: %r" % p.stdout)
    check("\nSources:\n[1] travel.txt" in p.stdout, "ask lists its sources: %r" % p.stdout)


if __name__ == "__main__":
    suite.run()
