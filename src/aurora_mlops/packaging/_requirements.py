"""The pip requirements of a packaged model: what inference needs, pinned exactly.

``mlflow models serve --env-manager virtualenv`` and a serving image rebuild the model's
environment from ``requirements.txt``; an unpinned ``torch`` there would pull whatever is
newest, and the whole project's dependencies (Kubeflow clients, plotting, the tracking
server's Postgres driver) would make it heavy for nothing. So the list is
:data:`SERVING_DISTRIBUTIONS`, pinned from the project's lock file ``constraints.txt`` (a
source checkout, or ``/opt/aurora-mlops/constraints.txt`` in the image, see
``docker/Dockerfile``) or else at the installed version, and the package's own constraints
file pins their dependencies' closure, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

from aurora_mlops._provenance import project_root

__all__ = ["SERVING_DISTRIBUTIONS", "constraints_file", "pinned_requirements"]

#: What loading a package and answering both request forms imports, among the project's
#: dependencies (measured by loading a package and predicting with arrays, a netCDF and a
#: Zarr reference; ``tests/packaging/test_package_env.py`` runs a model with only these and
#: their dependencies importable). Not here: the Kubeflow and Kubernetes clients, optuna,
#: matplotlib, rich, GRIB and object-storage readers, the tracking server's extras.
SERVING_DISTRIBUTIONS = (
    "fsspec", "microsoft-aurora", "mlflow", "netCDF4", "numpy", "pandas", "psutil", "pyarrow",
    "pydantic", "pydantic-settings", "pyyaml", "scipy", "torch", "torchvision", "xarray",
    "zarr",
)



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


def closure(names: Iterable[str]) -> set[str]:
    """The canonical names of ``names`` and every installed distribution they require
    (extras left out, environment markers evaluated here)."""
    from packaging.requirements import InvalidRequirement, Requirement

    seen: set[str] = set()
    todo = [_canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            specs = requires(name) or []
        except PackageNotFoundError:
            continue
        seen.add(name)
        for spec in specs:
            try:
                req = Requirement(spec)
            except InvalidRequirement:
                continue
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_canonical(req.name))
    return seen


def _pin(name: str, pins: dict[str, str]) -> str | None:
    pinned = pins.get(_canonical(name))
    if pinned is None:
        try:
            pinned = version(name)
        except PackageNotFoundError:
            return None
    return f"{name}=={pinned}"


def pinned_requirements() -> tuple[list[str], list[str]]:
    """``(requirements, constraints)``: ``name==version`` for each of
    :data:`SERVING_DISTRIBUTIONS`, and the pins of their whole dependency closure (the lines
    of the package's own ``constraints.txt``)."""
    pins = _locked(constraints_file())
    wanted = [r for n in SERVING_DISTRIBUTIONS if (r := _pin(n, pins))]
    deps = closure(SERVING_DISTRIBUTIONS) - {_canonical(n) for n in SERVING_DISTRIBUTIONS}
    constraints = [r for n in sorted(deps) if (r := _pin(n, pins))]
    return sorted(wanted, key=str.lower), constraints
