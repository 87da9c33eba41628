"""The pip requirements of a packaged model, pinned exactly.

``mlflow models serve --env-manager virtualenv`` rebuilds the model's environment from
``requirements.txt``; an unpinned ``torch`` there would pull whatever is newest. So every
runtime dependency of aurora-mlops is pinned: from the project's lock file ``constraints.txt``
when this is a source checkout or the image (``/opt/aurora-mlops/constraints.txt``, see
``docker/Dockerfile``), else at the installed
version. The lock file itself goes in as pip constraints for the transitive dependencies.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

from aurora_mlops._provenance import PROJECT_DIST, project_root

__all__ = ["constraints_file", "pinned_requirements"]

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints_file() -> Path | None:
    """The project's lock file, if this installation has one."""
    candidates = [Path("/opt/aurora-mlops/constraints.txt")]  # where docker/Dockerfile puts it
    root = project_root()
    if root is not None:
        candidates.insert(0, root / "constraints.txt")
    return next((c for c in candidates if c.is_file()), None)


def _locked(path: Path | None) -> dict[str, str]:
    pins: dict[str, str] = {}
    if path is None:
        return pins
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, _, ver = line.partition("==")
            pins[_canonical(name.split("[", 1)[0])] = ver.split(";", 1)[0].strip()
    return pins


def pinned_requirements() -> tuple[list[str], Path | None]:
    """``(requirements, constraints)``: ``name==version`` for every runtime dependency of
    aurora-mlops, and the lock file to add as ``-c`` (``None`` when there is none)."""
    lock = constraints_file()
    pins = _locked(lock)
    out: list[str] = []
    for spec in requires(PROJECT_DIST) or []:
        if "extra ==" in spec:
            continue
        match = _NAME.match(spec)
        if not match:
            continue
        name = match.group(1)
        extras = spec[match.end():].split("]", 1)[0] + "]" if spec[match.end():].startswith(
            "[") else ""
        pinned = pins.get(_canonical(name))
        if pinned is None:
            try:
                pinned = version(name)
            except PackageNotFoundError:
                continue
        out.append(f"{name}{extras}=={pinned}")
    return sorted(set(out), key=str.lower), lock
