"""aurora_mlops._io: a folder written with atomic_dir appears whole, keeps other files, and an
error leaves the old folder as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aurora_mlops import _io
from aurora_mlops._io import atomic_dir


def test_new_folder_appears_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("a")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.txt").write_text("b")
        assert not out.exists()  # nothing at the target until the block ends
    assert (out / "a.txt").read_text() == "a" and (out / "sub" / "b.txt").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_io._umask())


def test_existing_folder_is_exchanged_keeping_other_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "keep").mkdir(parents=True)
    (out / "keep" / "k.txt").write_text("not ours")
    (out / "a.txt").write_text("old")
    inode = out.stat().st_ino
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
        assert (out / "a.txt").read_text() == "old"
    assert (out / "a.txt").read_text() == "new"
    assert (out / "keep" / "k.txt").read_text() == "not ours"
    assert out.stat().st_ino != inode  # the folder itself was replaced, not its files one by one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_error_leaves_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("new")
        raise RuntimeError("disk full")
    assert (out / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "fresh"):
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_without_exchange_entries_move_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_io, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "old.txt").write_text("old")
    (out / "other.txt").write_text("x")
    with atomic_dir(out) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "new.txt").write_text("new")
    assert sorted(os.listdir(out / "sub")) == ["new.txt"]
    assert (out / "other.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"), atomic_dir(tmp_path / "out"):
        pass


_DIE_WHILE_WRITING = """
import os, signal, sys
from aurora_mlops._io import atomic_write

def write(f):
    f.write(b"new, first half;")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # the writer dies before the second half

atomic_write(sys.argv[1], write, durable=sys.argv[2] == "durable")
"""


@pytest.mark.parametrize("durable", ["durable", "not-durable"])
@pytest.mark.parametrize("existing", [True, False], ids=["replacing", "new"])
def test_a_writer_killed_midway_leaves_no_partial_file(
    durable: str, existing: bool, tmp_path: Path
) -> None:
    target = tmp_path / "model.ckpt"
    if existing:
        target.write_bytes(b"old, whole")
    proc = subprocess.run([sys.executable, "-c", _DIE_WHILE_WRITING, str(target), durable],
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    if existing:
        assert target.read_bytes() == b"old, whole"
    else:
        assert not target.exists()
    # Only the hidden temporary file of the dead writer is left beside it.
    others = [p.name for p in tmp_path.iterdir() if p != target]
    assert len(others) == 1 and others[0].startswith(".model.ckpt.") and \
        others[0].endswith(".tmp"), others


def test_only_durable_writes_wait_for_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    _io.atomic_write(tmp_path / "a.txt", "durable by default")
    _io.write_json(tmp_path / "a.json", {"durable": True})
    assert len(synced) == 2
    _io.atomic_write(tmp_path / "b.bin", lambda f: f.write(b"\x00\x01"), durable=False)
    _io.write_json(tmp_path / "b.json", {"durable": False}, durable=False)
    assert len(synced) == 2
    # Written whole and published under the name all the same, with a plain open()'s mode.
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert json.loads((tmp_path / "b.json").read_text()) == {"durable": False}
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "durable by default"
    assert oct((tmp_path / "b.bin").stat().st_mode & 0o777) == oct(0o666 & ~_io._umask())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.txt", "b.bin", "b.json"]
