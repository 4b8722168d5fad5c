"""engram_build.py - a PEP 517 build backend that needs nothing but Python.

Why: `pip install sdk/python` must work offline. pip builds a project in an
isolated environment holding only its build requirements, and a setuptools
or flit backend would have to come from PyPI. This backend is in the source
tree (pyproject's backend-path), requires nothing, and writes a pure-Python
wheel itself: the engram_client package, a .dist-info with METADATA, WHEEL
and RECORD (sha256 of every file), as the wheel specification (PEP 427)
describes. build_editable writes a wheel holding a .pth file pointing at
this directory (PEP 660). The metadata is the [project] table's, kept here
in one place with the version read from engram_client/__init__.py.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "engram_client"
DIST = "engram-client"
TAG = "py3-none-any"


def _version():
    with open(os.path.join(ROOT, NAME, "__init__.py"), encoding="utf-8") as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def _metadata():
    readme = ""
    path = os.path.join(ROOT, "README.md")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            readme = f.read()
    head = ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n"
            "Summary: Python client for the engram retrieval server (standard library only)\n"
            "License: MIT\nRequires-Python: >=3.9\n"
            "Description-Content-Type: text/markdown\n\n" % (DIST, _version()))
    return (head + readme).encode("utf-8")


def _package_files():
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, NAME)):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            if fn.endswith((".py", ".typed")):
                full = os.path.join(dirpath, fn)
                out.append((os.path.relpath(full, ROOT).replace(os.sep, "/"), full))
    return out


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def _write_wheel(directory, entries):
    version = _version()
    info = "%s-%s.dist-info" % (NAME, version)
    wheel_name = "%s-%s-%s.whl" % (NAME, version, TAG)
    entries = list(entries) + [
        (info + "/METADATA", _metadata()),
        (info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: engram_build\n"
                           "Root-Is-Purelib: true\nTag: %s\n" % TAG).encode()),
    ]
    records = [_record_line(a, d) for a, d in entries] + [info + "/RECORD,,"]
    entries.append((info + "/RECORD", ("\n".join(records) + "\n").encode()))
    with zipfile.ZipFile(os.path.join(directory, wheel_name), "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in entries:
            z.writestr(zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return wheel_name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    entries = []
    for arcname, full in _package_files():
        with open(full, "rb") as f:
            entries.append((arcname, f.read()))
    return _write_wheel(wheel_directory, entries)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, [(NAME + ".pth", (ROOT + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (NAME, _version())
    name = base + ".tar.gz"
    files = [("pyproject.toml", os.path.join(ROOT, "pyproject.toml")),
             ("README.md", os.path.join(ROOT, "README.md")),
             ("_build/engram_build.py", os.path.abspath(__file__))] + _package_files()
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as t:
        for arcname, full in files:
            if os.path.exists(full):
                t.add(full, arcname=base + "/" + arcname, recursive=False)
        pkg_info = io.BytesIO(_metadata())
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size = len(pkg_info.getvalue())
        t.addfile(ti, pkg_info)
    return name
