"""Where a result came from: the project's git commit, the image, and package versions.

The commit comes from the settings (``AURORA_MLOPS_GIT_COMMIT``, baked into the image) or from
this project's own checkout (an editable install); a package installed inside somebody else's
repository must not record their commit, so anything else is ``unknown``.
"""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["PROJECT_DIST", "git_commit", "package_versions", "project_root"]

#: The distribution name of this project.
PROJECT_DIST = "aurora-mlops"

#: Packages whose versions every packaged model records.
_RECORDED = (
    "aurora-mlops", "microsoft-aurora", "torch", "torchvision", "timm", "mlflow", "numpy",
    "xarray", "pandas", "zarr", "netCDF4", "pydantic", "kfp",
)


def project_root() -> Path | None:
    """The root of this project's source checkout (``pyproject.toml`` naming aurora-mlops
    two levels above the package), or ``None`` for an installed wheel."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if f'name = "{PROJECT_DIST}"' in text else None


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the code that runs: settings first, then this project's checkout."""
    from aurora_mlops.config import get_settings

    configured = get_settings().git_commit
    if configured:
        return configured
    root = project_root()
    if root is None or not (root / ".git").exists():
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=root,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def package_versions() -> dict[str, str]:
    """Versions of the packages a model's behaviour depends on, and Python's."""
    found: dict[str, str] = {"python": platform.python_version()}
    for name in _RECORDED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found
