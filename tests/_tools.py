"""Command-line tools the tests drive (hadolint, actionlint, kubectl, chromium ...).

Where a tool is missing a test skips on a developer's machine, but under CI (``CI=true``, as
GitHub Actions and our ``.ci/run`` machines set it) a missing tool fails the test: a check that
silently stops running is worse than one that fails.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def require_tool(name: str, install: str) -> str:
    """The path of ``name`` (the venv's first, then ``PATH``), or skip/fail saying ``install``."""
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed: {install}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI=true, so this check must run")
    pytest.skip(message)
