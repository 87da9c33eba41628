"""Files and folders that appear only complete: every output of the project is written here.

A file is written to a hidden temporary file in the same directory, flushed and fsynced, then
renamed over the target (``os.replace`` is atomic on POSIX). A process killed midway leaves at
most a ``.<name>.*.tmp`` file behind, never a target that looks complete but is not.

``durable=False`` skips the fsync and keeps the rename: the file is still whole or absent
whenever the writing process dies (what it wrote is in the kernel's page cache, which the rename
publishes), but an OS crash or power cut before the kernel writes it back may leave the target
missing, stale or empty. That is for outputs whose reader checks them anyway (a trial's
checkpoint and state, verified against the SHA-256 that ``trial.json`` records) and that are
written often enough for the disk sync to cost more than the rest of the write.

A folder (:func:`atomic_dir`) is filled in a hidden temporary sibling and then takes the
target's place in one step: a rename when the target does not exist yet, else an atomic
exchange of the two directories (Linux ``renameat2(RENAME_EXCHANGE)``), so a reader sees the
old folder or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_dir", "atomic_write", "sha256_file", "write_json"]

logger = logging.getLogger(__name__)


def atomic_write(path: str | Path, data: str | bytes | Callable[[IO[Any]], None], *,
                 durable: bool = True) -> Path:
    """Write ``data`` (text, bytes, or a function that writes to the open file) to ``path``.

    A callable gets a binary file. Parent directories are created. ``durable``: sync the file
    to disk before it takes the target's name (``False``: see the module's docstring). Returns
    ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, str):
                f.write(data.encode("utf-8"))
            elif isinstance(data, bytes):
                f.write(data)
            else:
                data(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, payload: Any, *, sort_keys: bool = True,
               durable: bool = True) -> Path:
    """Atomically write ``payload`` as indented JSON (non-JSON values as ``str``)."""
    text = json.dumps(payload, indent=2, sort_keys=sort_keys, default=str)
    return atomic_write(path, text + "\n", durable=durable)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Fill a folder that appears at ``path`` only complete.

    Yields an empty hidden temporary sibling of ``path``; write every file into it. When the
    block ends without an error, the temporary folder becomes ``path``: by one rename when
    ``path`` does not exist, else by one atomic exchange of the two folders, after the entries
    of ``path`` that the block did not write were hard-linked into the new one (other files
    survive; written names replace theirs). The old folder is then removed. On an error the
    temporary folder is removed and ``path`` is left as it was. Where the exchange is
    impossible (a mount point, a file system or kernel without ``renameat2``), the written
    entries are moved into ``path`` one rename each instead (logged).

    Raises:
        NotADirectoryError: ``path`` exists and is not a directory.
    """
    path = Path(path).absolute()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file, not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        _publish_dir(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish_dir(tmp: Path, path: Path) -> None:
    """Put the finished folder ``tmp`` at ``path`` (see :func:`atomic_dir`)."""
    if not path.exists():
        try:
            os.rename(tmp, path)
            return
        except OSError as e:  # someone made ``path`` meanwhile: exchange with it below
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    written = sorted(os.listdir(tmp))
    for entry in path.iterdir():
        if not os.path.lexists(tmp / entry.name):
            _link_tree(entry, tmp / entry.name)
    if _exchange(tmp, path):
        return  # ``tmp`` now names the old folder; the caller removes it
    logger.info("cannot exchange %s atomically; moving its entries one at a time", path)
    for name in written:
        src, dst = tmp / name, path / name
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(src, dst)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link ``src`` (a file, symlink or folder) to ``dst``; copy where links fail."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(str(src), str(dst))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@functools.cache
def _renameat2() -> Any:
    """libc's ``renameat2`` (glibc 2.28+), or ``None`` where the C library has none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols, libc among them
    except OSError:
        return None
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                       ctypes.c_uint]
        fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EBUSY, errno.EXDEV, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))
