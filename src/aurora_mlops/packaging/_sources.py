"""What a package is made of: the trial, its sweep, its evaluation and benchmark, its data.

Every input is checked against the trial's checkpoint before anything is written: an evaluation
or benchmark of another checkpoint is refused, naming both digests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aurora_mlops._best import BEST_FILE, BestTrial, read_best
from aurora_mlops.errors import ConfigError
from aurora_mlops.packaging._info import PackageError

__all__ = ["Sources", "example_state", "gather_sources", "grid_and_statics", "sweep_best"]


@dataclass(frozen=True)
class Sources:
    """The checked inputs of one package.

    Attributes:
        trained: The loaded trial (:class:`~aurora_mlops.training.TrainedModel`).
        trial_dir: The trial's folder.
        sweep: The local sweep folder given as ``--model``, if any.
        best: That sweep's ``best.json`` as its reader read it, if any.
        metrics: The evaluation's ``metrics.json``, if given.
        metrics_path: Its path.
        benchmark: The benchmark's ``benchmark.json``, if given.
        benchmark_path: Its path.
        data: The dataset the statics and the input example come from.
    """

    trained: Any
    trial_dir: Path
    sweep: Path | None
    best: BestTrial | None
    metrics: dict[str, Any] | None
    metrics_path: Path | None
    benchmark: dict[str, Any] | None
    benchmark_path: Path | None
    data: Path

    @property
    def sha256(self) -> str:
        """SHA-256 of the trial's checkpoint."""
        return str(self.trained.trial["checkpoint"]["sha256"])

    def best_record(self) -> dict[str, Any] | None:
        """What the sweep's ``best.json`` says, as its reader read it (paths as strings)."""
        if self.best is None:
            return None
        b = self.best
        return {"file": str(b.path), "experiment": b.experiment, "trial": b.trial,
                "parameters": dict(b.parameters), "metrics": dict(b.metrics),
                "checkpoint": None if b.checkpoint is None else str(b.checkpoint),
                "reason": b.reason, "spec": b.spec}


def _json(path: Path, made_by: str) -> dict[str, Any]:
    if not path.is_file():
        raise PackageError(f"{path.parent} holds no {path.name}: pass the --out of `{made_by}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise PackageError(f"{path} is not readable JSON ({e}): re-run `{made_by}`") from e
    if not isinstance(data, dict):
        raise PackageError(f"{path} is not a JSON object: re-run `{made_by}`")
    return data


def sweep_best(folder: Path) -> BestTrial:
    """The sweep's ``best.json`` through its one reader.

    Raises:
        PackageError: The file is unreadable or a field has the wrong type (the reader's
            sentence, naming the file and the field).
    """
    try:
        return read_best(folder)
    except ConfigError as e:  # package_model promises a PackageError for a bad input
        raise PackageError(str(e)) from e


def _same_checkpoint(found: str | None, expected: str, path: Path, made_by: str) -> None:
    if not found:
        raise PackageError(
            f"{path} does not say which checkpoint it measured: re-run `{made_by}` on this trial"
        )
    if found != expected:
        raise PackageError(
            f"{path} measured checkpoint sha256 {found}, but the packaged checkpoint is "
            f"{expected}: re-run `{made_by}` on this trial"
        )


def gather_sources(
    model: str | Path,
    variant: str,
    *,
    eval_dir: str | Path | None = None,
    bench_dir: str | Path | None = None,
    data: str | Path | None = None,
    identity: str | None = None,
) -> Sources:
    """Load the trial (or a sweep's best trial) and check every other input against it.

    ``identity``: the digest the evaluation and benchmark must name instead of the trial's
    checkpoint's (a top-k ensemble's, see :func:`~._members.ensemble_sha256`); a benchmark of
    the trial itself (the ensemble's best member, one model's figures) is accepted too.

    Raises:
        PackageError: An input is missing, unreadable, or describes another checkpoint.
        CheckpointError: The checkpoint is missing, corrupt or of another variant.
    """
    from aurora_mlops.training import load_trained

    model = Path(model)
    sweep = model if model.is_dir() and (model / BEST_FILE).is_file() and \
        not (model / "model.ckpt").exists() else None
    best = sweep_best(sweep) if sweep is not None else None
    trained = load_trained(model, variant)
    expected = str(trained.trial.get("checkpoint", {}).get("sha256") or "")
    if not expected:
        raise PackageError(f"{trained.checkpoint.parent / 'trial.json'} records no checkpoint "
                           "sha256: re-run the trial with this version of aurora-mlops")
    own, expected = expected, identity or expected
    found: dict[str, tuple[Path | None, dict[str, Any] | None]] = {}
    for key, folder, name, made_by in (
        ("eval", eval_dir, "metrics.json", "aurora-mlops evaluate --model"),
        ("bench", bench_dir, "benchmark.json", "aurora-mlops benchmark --model"),
    ):
        if folder is None:
            found[key] = (None, None)
            continue
        path = Path(folder) / name
        payload = _json(path, made_by)
        record = payload.get("checkpoint" if key == "eval" else "model") or {}
        named = record.get("sha256" if key == "eval" else "checkpoint_sha256")
        want = own if key == "bench" and named == own else expected
        _same_checkpoint(named, want, path, made_by)
        found[key] = (path, payload)
    (metrics_path, metrics), (bench_path, bench) = found["eval"], found["bench"]
    data_path = Path(data) if data is not None else Path(trained.trial["data"]["path"])
    if not data_path.exists():
        raise PackageError(
            f"{data_path}: the trial's dataset is not here (its static fields and grid go into "
            "the package): pass --data PATH"
        )
    return Sources(
        trained=trained, trial_dir=trained.checkpoint.parent, sweep=sweep, best=best,
        metrics=metrics, metrics_path=metrics_path, benchmark=bench, benchmark_path=bench_path,
        data=data_path,
    )


def grid_and_statics(ds: Any, trained: Any) -> dict[str, np.ndarray]:
    """``lat``, ``lon``, ``level`` and the variant's static fields from the dataset.

    Raises:
        PackageError: The dataset lacks a static field or a pressure level the trial used.
    """
    from aurora_mlops.variables import static_store_name

    spec = trained.variant
    out: dict[str, np.ndarray] = {
        "lat": np.asarray(ds["lat"].values, dtype=np.float64),
        "lon": np.asarray(ds["lon"].values, dtype=np.float64),
        "level": np.asarray(trained.levels, dtype=np.int64),
    }
    if spec.atmos_vars:
        have = [int(x) for x in ds["level"].values] if "level" in ds.coords else []
        missing = [lv for lv in trained.levels if lv not in have]
        if missing:
            raise PackageError(f"the dataset has no pressure level(s) {missing} the trial used")
    for name in spec.static_vars:
        store = static_store_name(name)
        if store not in ds:
            raise PackageError(f"the dataset has no static field {store!r} of {spec.name}")
        out[name] = np.asarray(ds[store].values, dtype=np.float32)
    return out


def example_state(ds: Any, trained: Any) -> dict[str, Any]:
    """An arrays-form request: the first test-split initial state of the dataset."""
    from aurora_mlops.data import split_times

    spec = trained.variant
    start = split_times(int(ds.sizes["time"])).test[0]
    init = start + trained.history - 1
    part = ds.isel(time=slice(start, init + 1))
    if spec.atmos_vars:
        part = part.sel(level=list(trained.levels))
    request: dict[str, Any] = {"init_time": str(ds["time"].values[init])[:16]}
    for name in spec.surf_vars:
        request[name] = np.asarray(part[name].transpose("time", "lat", "lon").values,
                                   dtype=np.float32).tolist()
    for name in spec.atmos_vars:
        request[name] = np.asarray(
            part[name].transpose("time", "level", "lat", "lon").values, dtype=np.float32
        ).tolist()
    return request
