"""aurora_mlops._io: a folder written with atomic_dir appears whole, keeps other files, and an
error leaves the old folder as it was."""

from __future__ import annotations

import os
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
