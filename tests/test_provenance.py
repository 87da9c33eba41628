"""The git commit a result records: the settings' first, then this project's checkout only."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora_mlops import _provenance
from aurora_mlops.config import get_settings


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    _provenance.git_commit.cache_clear()
    get_settings.cache_clear()
    yield
    _provenance.git_commit.cache_clear()
    get_settings.cache_clear()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_settings_commit_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AURORA_MLOPS_GIT_COMMIT", "0123abc")
    assert _provenance.git_commit() == "0123abc"


def test_this_checkout_gives_its_own_head(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AURORA_MLOPS_GIT_COMMIT", raising=False)
    root = _provenance.project_root()
    assert root is not None and (root / ".git").exists()
    assert _provenance.git_commit() == _git(root, "rev-parse", "HEAD")


def test_installed_inside_someone_elses_repository_says_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package under another project's git checkout must not record that project's commit."""
    monkeypatch.delenv("AURORA_MLOPS_GIT_COMMIT", raising=False)
    foreign = tmp_path / "their-project"
    package = foreign / "venv" / "site-packages" / "aurora_mlops"
    package.mkdir(parents=True)
    (foreign / "pyproject.toml").write_text('[project]\nname = "their-project"\n')
    _git(foreign, "init", "-q")
    _git(foreign, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty",
         "-m", "theirs")
    assert _git(foreign, "rev-parse", "HEAD")  # a commit that must not leak
    monkeypatch.setattr(_provenance, "__file__", str(package / "_provenance.py"))
    assert _provenance.project_root() is None
    assert _provenance.git_commit() == "unknown"
    # Even two levels up from the package (site-packages' parent) is not this project.
    monkeypatch.setattr(_provenance, "__file__", str(foreign / "src" / "x" / "_provenance.py"))
    assert _provenance.git_commit.cache_clear() is None
    assert _provenance.git_commit() == "unknown"
