"""Files that appear only complete: every output of the project is written through here.

A file is written to a hidden temporary file in the same directory, flushed and fsynced, then
renamed over the target (``os.replace`` is atomic on POSIX). A process killed midway leaves at
most a ``.<name>.*.tmp`` file behind, never a target that looks complete but is not.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "sha256_file", "write_json"]


def atomic_write(path: str | Path, data: str | bytes | Callable[[IO[Any]], None]) -> Path:
    """Write ``data`` (text, bytes, or a function that writes to the open file) to ``path``.

    A callable gets a binary file. Parent directories are created. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        if isinstance(data, str):
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        else:
            with os.fdopen(fd, "wb") as fb:
                if isinstance(data, bytes):
                    fb.write(data)
                else:
                    data(fb)
                fb.flush()
                os.fsync(fb.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, payload: Any, *, sort_keys: bool = True) -> Path:
    """Atomically write ``payload`` as indented JSON (non-JSON values as ``str``)."""
    text = json.dumps(payload, indent=2, sort_keys=sort_keys, default=str)
    return atomic_write(path, text + "\n")


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
