"""A local sweep's work dir: its guards (one runner, data present), data link, trial outputs.

The work dir stands in for the two volumes a rendered trial mounts: ``/mnt/data/X`` becomes
``data/X`` (``WORKDIR/data`` links ``--data-dir``) and ``/mnt/artifacts/X`` becomes ``X``
(trial outputs under ``WORKDIR/trials``), relative to the trials' working directory, the work
dir (:func:`localize`). Other absolute paths are left as they are.

The work-dir lock is an advisory ``flock`` on ``WORKDIR/.tune.lock``: the kernel drops it when
the holder dies, even by ``kill -9``, so a stale lock file never blocks a resume. The file only
says who holds the lock (pid, host, start time), for the message a second runner gets.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning.katib._experiment import Experiment

__all__ = [
    "LOCAL_MOUNTS",
    "LOCK_NAME",
    "check_trial_data",
    "link_data",
    "localize",
    "localize_path",
    "lock_work_dir",
    "spec_path",
    "trial_checkpoint",
    "trial_data_paths",
]

#: The lock file inside a sweep's work dir.
LOCK_NAME = ".tune.lock"

#: Trial flags whose value is an input path that must exist before the first trial starts.
DATA_FLAGS = ("--data",)
#: The mount paths of rendered trials and the folder of the work dir that stands in for each
#: (``aurora_mlops.tuning.katib._trial_spec``: the datasets and the artifacts volumes).
LOCAL_MOUNTS = (("/mnt/data", "data"), ("/mnt/artifacts", ""))


def localize_path(value: str) -> str:
    """``value`` with a trial volume's mount path replaced by its stand-in in the work dir."""
    for mount, local in LOCAL_MOUNTS:
        if value == mount or value.startswith(mount + "/"):
            rest = value[len(mount):].lstrip("/")
            return "/".join(part for part in (local, rest) if part) or "."
    return value


def localize(argv: Sequence[str]) -> list[str]:
    """A trial command with every volume path (``PATH`` or ``--flag=PATH``) localized."""
    out = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if eq and flag.startswith("-"):
            out.append(f"{flag}={localize_path(value)}")
        else:
            out.append(localize_path(arg))
    return out


def _holder(handle: IO[str]) -> str:
    """Who holds the lock, as its file says (best effort)."""
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        info = {}
    if not info:
        return "another process"
    return (f"process {info.get('pid')} on {info.get('host')} (started "
            f"{info.get('started')})")


@contextlib.contextmanager
def lock_work_dir(work: Path) -> Iterator[None]:
    """Hold ``WORKDIR/.tune.lock`` for the ``with`` block.

    Raises:
        ConfigError: Another live runner holds the work dir (named by its pid and host).
    """
    path = work / LOCK_NAME
    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"{work} is in use by another `tune` run, {_holder(handle)}: wait for it to "
                "finish, stop it, or pass another --work-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        handle.flush()
        yield
    finally:
        handle.close()  # closing the file releases the lock


def trial_data_paths(argv: Sequence[str]) -> list[tuple[str, str]]:
    """``(flag, value)`` for every data flag in a trial command (``--data X`` or ``--data=X``)."""
    found = []
    for i, arg in enumerate(argv):
        for flag in DATA_FLAGS:
            if arg == flag and i + 1 < len(argv):
                found.append((flag, argv[i + 1]))
            elif arg.startswith(flag + "="):
                found.append((flag, arg.split("=", 1)[1]))
    return found


def check_trial_data(argv: Sequence[str], work: Path, *, spec: str) -> None:
    """Refuse a sweep whose trial command reads data that is not there.

    Args:
        argv: A trial command (placeholders substituted); it runs with ``work`` as its cwd.
        work: The sweep's work dir.
        spec: Where the command comes from, for the message.

    Raises:
        ConfigError: A data path does not exist; names the flag to pass (``--data-dir``).
    """
    for flag, value in trial_data_paths(argv):
        if "$" in value:  # not a path this runner can know (an environment variable)
            continue
        path = Path(value) if Path(value).is_absolute() else work / value
        if path.exists():
            continue
        rel = Path(value)
        if not rel.is_absolute() and len(rel.parts) > 1 and rel.parts[0] == "data":
            hint = (f"pass --data-dir with the folder that holds {Path(*rel.parts[1:])} (it is "
                    f"linked as {work / rel.parts[0]})")
        else:
            hint = f"fix {flag} in {spec}, or put the data at {path}"
        raise ConfigError(f"the trial command's {flag} {value} does not exist ({path}): {hint}")


def spec_path(exp: Experiment) -> str | None:
    """The Experiment YAML's absolute path (``tune analyze`` reads it), if it came from a file."""
    path = Path(exp.source)
    return str(path.resolve()) if path.is_file() else None



def link_data(work: Path, data_dir: Path) -> None:
    """Make ``WORKDIR/data`` the user's data directory (a symlink, or a copy where not allowed)."""
    target = work / "data"
    src = data_dir.resolve()
    if not src.exists():
        raise ConfigError(f"--data-dir {data_dir} does not exist")
    if target.is_symlink():
        if target.resolve() == src:
            return
        target.unlink()
    elif target.exists():
        if target.resolve() == src:
            return
        raise ConfigError(f"{target} already exists and is not a link to {src}; remove it or "
                          "drop --data-dir")
    try:
        target.symlink_to(src, target_is_directory=src.is_dir())
    except OSError:
        if src.is_dir():
            shutil.copytree(src, target)
        else:
            shutil.copy2(src, target)


def trial_checkpoint(exp: Experiment, work: Path, name: str) -> Path | None:
    """The checkpoint trial ``name`` wrote in its ``--output`` dir (``trial.json`` names it)."""
    out = exp.trial_output_dir(name)
    if out is None:
        return None
    d = (work / localize_path(out)).resolve()
    tj = d / "trial.json"
    if tj.is_file():
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return d / json.loads(tj.read_text())["checkpoint"]["path"]
    ckpt = d / "model.ckpt"
    return ckpt if ckpt.is_file() else None
