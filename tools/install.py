"""Install the project and its lock file (``constraints.txt``) into the running interpreter's venv.

``make install`` runs it with ``.venv/bin/python``. It installs with uv (from PyPI, pinned
below), which unpacks the ~6 GB of wheels and byte-compiles them on every core: 125 s with pip
on a fresh 2-core machine, about 50 s with uv. (Without ``--compile-bytecode`` uv takes 20 s,
but where ``PYTHONDONTWRITEBYTECODE`` is set, as on these machines, every process would then
compile torch's modules again on import.) uv is given the package
sources that pip is configured with here (``pip config list``: ``index-url``,
``extra-index-url`` and ``find-links`` from pip.conf or ``PIP_*`` variables; on these machines
the local indexes that hold the torch build the lock pins), and, like pip, it takes the best
match across all of them (``--index-strategy unsafe-best-match``; every version is pinned by
the lock anyway). If uv cannot be installed or fails, pip installs as before.

Usage: .venv/bin/python tools/install.py
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = "uv==0.13.9"
TARGET = ["-c", "constraints.txt", "-e", ".[dev]"]


def pip_sources() -> tuple[list[str], dict[str, str]]:
    """uv's flags for the indexes and wheel folders in pip's configuration, and its
    environment (pip's ``cert``, for uv's TLS)."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], cwd=ROOT,
                            capture_output=True, text=True).stdout
    flags: list[str] = []
    env = dict(os.environ)
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        values = shlex.split(value.strip().strip("'\""))
        if name == "index-url" and values:
            flags += ["--index-url", values[0]]
        elif name in ("extra-index-url", "find-links"):
            for v in values:
                if v not in flags:
                    flags += [f"--{name}", v]
        elif name == "cert" and values:
            env["SSL_CERT_FILE"] = values[0]
    return flags, env


def _run(argv: list[str], env: dict[str, str] | None = None) -> bool:
    return subprocess.run(argv, cwd=ROOT, env=env).returncode == 0


def main() -> int:
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    if _run([*pip, "--upgrade", "pip>=24", UV]):
        uv = Path(sys.executable).with_name("uv")
        sources, env = pip_sources()
        if _run([str(uv), "pip", "install", "-q", "--python", sys.executable,
                 "--compile-bytecode", "--index-strategy", "unsafe-best-match", *sources,
                 *TARGET], env):
            return 0
        print("tools/install.py: uv failed; installing with pip instead", file=sys.stderr)
    return 0 if _run([*pip, *TARGET]) else 1


if __name__ == "__main__":
    sys.exit(main())
