"""``package``: a trial (or a sweep's best trial) as a self-describing MLflow pyfunc model.

The package is assembled in a hidden sibling folder and renamed onto ``out`` only when complete,
so a failure leaves nothing half-written and an existing package is replaced in one step.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aurora_mlops._best import BEST_FILE
from aurora_mlops._io import write_json
from aurora_mlops.packaging._contract import ModelContract, Precision, max_steps_for
from aurora_mlops.packaging._ensemble import ensemble_card, stage_members
from aurora_mlops.packaging._info import METADATA_KEY, PackageError, PackageInfo
from aurora_mlops.packaging._members import Member, ensemble_record, select_members
from aurora_mlops.packaging._pyfunc import CONTRACT_FILE, STATIC_FILE
from aurora_mlops.packaging._sources import (
    Sources,
    example_state,
    gather_sources,
    grid_and_statics,
    sweep_best,
)

__all__ = ["PackageResult", "package_model"]

log = logging.getLogger(__name__)

#: Rollout steps of the input example (small, so that the example runs in a test).
EXAMPLE_STEPS = 2
#: Largest initial state put into the input example (float32 values); bigger grids get none.
EXAMPLE_MAX_VALUES = 2_000_000


@dataclass(frozen=True)
class PackageResult:
    """What :func:`package_model` wrote.

    Attributes:
        path: The MLflow model directory.
        info: The package's description (also in ``MLmodel``'s metadata).
        model_uri: ``models:/...`` URI when it was also logged (``log_to``), else ``None``.
    """

    path: Path
    info: PackageInfo
    model_uri: str | None = None


def _contract(src: Sources, statics: dict[str, np.ndarray]) -> ModelContract:
    from aurora_mlops.variables import VARIABLES
    from aurora_mlops.variants import WAVE_VARS

    spec = src.trained.variant
    leads = sorted({float(r["lead_hours"]) for r in (src.metrics or {}).get("rows", [])})
    default = round(leads[-1] / spec.timestep_hours) if leads else 4
    units = {n: VARIABLES[("surf", n)].units for n in spec.surf_vars}
    units |= {n: VARIABLES[("atmos", n)].units for n in spec.atmos_vars}
    return ModelContract(
        variant=spec.name, surf_vars=spec.surf_vars, atmos_vars=spec.atmos_vars,
        static_vars=spec.static_vars,
        nan_allowed=tuple(n for n in spec.surf_vars if n in WAVE_VARS), units=units,
        history=src.trained.history, levels=tuple(int(x) for x in statics["level"]),
        grid=(len(statics["lat"]), len(statics["lon"])), timestep_hours=spec.timestep_hours,
        default_steps=max(1, default), max_steps=max_steps_for(spec.timestep_hours),
    )


def _scores(metrics: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for base, card in ((metrics or {}).get("scorecard", {}).get("model", {})).items():
        for metric, s in card.items():
            for key in ("wins", "targets", "fraction"):
                out[f"{metric}_{key}_vs_{base}"] = float(s[key])
    return out


def _info(src: Sources, contract: ModelContract,
          ensemble: dict[str, Any] | None = None) -> PackageInfo:
    from aurora_mlops._provenance import git_commit
    from aurora_mlops.config import image_ref

    spec, trial = src.trained.variant, src.trained.trial
    threshold = trial.get("event_threshold")
    return PackageInfo(
        variant=spec.name, domain=spec.description, resolution_deg=spec.resolution_deg,
        timestep_hours=spec.timestep_hours,
        horizon_hours=contract.max_steps * spec.timestep_hours, grid=contract.grid,
        profile=str(src.trained.profile), dataset=str(trial["data"]["path"]),
        event_thresholds={} if threshold is None else {"val_event": float(threshold)},
        checkpoint_sha256=ensemble["sha256"] if ensemble else src.sha256,
        git_commit=git_commit(), image=image_ref(),
        trial=src.trial_dir.name,
        katib_experiment=src.best.experiment if src.best else None,
        katib_trial=src.best.trial if src.best else None,
        sweep=str(src.sweep) if src.sweep else None,
        val_score=trial.get("metrics", {}).get("val_score"),
        scores=_scores(src.metrics), params=trial.get("params", {}),
        ensemble=[{k: m[k] for k in ("trial", "checkpoint_sha256", "val_score", "budget")}
                  for m in (ensemble or {}).get("members", [])],
    )


def _usage(variant: str) -> tuple[str, str]:
    """``(card text, usage_example.py)``: how to call the model in both request forms."""
    card = (
        "Arrays form (small grids; `serving_input_example.json` in the package is one):\n\n"
        "```bash\nmlflow models serve -m PACKAGE_DIR --env-manager local --port 5001\n"
        "curl -s -X POST http://127.0.0.1:5001/invocations -H 'Content-Type: "
        "application/json' \\\n  --data @PACKAGE_DIR/serving_input_example.json\n```\n\n"
        "References form (global grids): the initial condition in a netCDF/Zarr file, the "
        "forecast written in the WeatherBench2 layout that `aurora-mlops evaluate --forecast` "
        "scores:\n\n```bash\ncurl -s -X POST http://127.0.0.1:5001/invocations -H "
        "'Content-Type: application/json' \\\n  -d '{\"inputs\": {\"input_uri\": \"ic.nc\", "
        "\"output_uri\": \"forecast.zarr\"}, \"params\": {\"steps\": 4}}'\n```\n\n"
        "In Python: `mlflow.pyfunc.load_model(PACKAGE_DIR).predict(request, "
        "params={\"steps\": 4})`; see `artifacts/usage_example.py`.\n"
    )
    script = (
        f'"""Load this packaged {variant} model and forecast from the packaged example."""\n\n'
        "import json\nfrom pathlib import Path\n\nimport mlflow\n\n"
        "package = Path(__file__).resolve().parents[1]\n"
        "model = mlflow.pyfunc.load_model(str(package))\n"
        'example = json.loads((package / "serving_input_example.json").read_text())\n'
        'answer = model.predict(example["inputs"], params=example.get("params"))\n'
        'print({k: getattr(v, "shape", v) for k, v in answer.items()})\n'
    )
    return card, script


def _stage_code(tmp: Path) -> Path:
    """A copy of the ``aurora_mlops`` package (no caches) to ship as the model's code."""
    import aurora_mlops

    dst = tmp / "code" / "aurora_mlops"
    shutil.copytree(Path(aurora_mlops.__file__).parent, dst,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def _write_artifacts(
    src: Sources, info: PackageInfo, contract: ModelContract, statics: dict[str, np.ndarray],
    stage: Path, members: Any = None,
) -> dict[str, str]:
    """Every artifact of the package in ``stage``; returns MLflow's ``artifacts`` mapping."""
    from aurora_mlops._provenance import package_versions
    from aurora_mlops.packaging._card import card_context, render_card, scorecard_pictures

    trial = src.trained.trial
    files: dict[str, Path] = {}

    def put(name: str, payload: Any) -> None:
        files[name] = write_json(stage / name, payload)

    for name in ("model.ckpt", "trial.json", "config.json", "norm_stats.json"):
        if (src.trial_dir / name).is_file():
            files[name] = Path(shutil.copy2(src.trial_dir / name, stage / name))
    put("training_config.json", {"params": trial.get("params", {}), "profile": info.profile})
    put("data_config.json", {**trial.get("data", {}), "event_threshold":
                             trial.get("event_threshold")})
    put("best_params.json", {"params": trial.get("params", {}), "val_score": info.val_score,
                             "trial": info.trial, "sweep": info.sweep,
                             "best": src.best_record()})
    put("preprocessing.json", _preprocessing(src, contract, statics))
    put("artifacts_versions.json", {"packages": package_versions(),
                                    "git_commit": info.git_commit, "image": info.image})
    if members is not None:
        files.update(stage_members(members.members, members.selection, stage))
    files[CONTRACT_FILE] = _dump(stage, contract)
    np.savez(stage / STATIC_FILE, **statics)  # type: ignore[arg-type]
    files[STATIC_FILE] = stage / STATIC_FILE
    if src.metrics is not None:
        put("metrics.json", src.metrics)
        put("scorecard.json", src.metrics.get("scorecard", {}))
    for picture in scorecard_pictures(src):  # the card shows them
        files[picture.name] = Path(shutil.copy2(picture, stage / picture.name))
    if src.benchmark is not None:
        put("benchmark.json", src.benchmark)
    explanation = _explanation(src, stage)
    if explanation is not None:
        files[explanation["dir"].name] = explanation["dir"]
    card_text, script = _usage(info.variant)
    context = {**card_context(src, info, contract, card_text),
               "ensemble": ensemble_card(info, src.metrics), "explanation": explanation}
    markdown, html = render_card(context)
    for name, text in (("MODEL_CARD.md", markdown), ("model_card.html", html),
                       ("usage_example.py", script)):
        (stage / name).write_text(text, encoding="utf-8")
        files[name] = stage / name
    return {name.replace(".", "_"): str(path) for name, path in files.items()}


def _explanation(src: Sources, stage: Path) -> dict[str, Any] | None:
    """The explanation beside the evaluation (``explain --out EVAL_DIR/explanation``), copied
    into the package for the card to link; ``None`` without one."""
    from aurora_mlops.explain import EXPLANATION_DIR, explanation_beside

    found = explanation_beside(None if src.metrics_path is None else src.metrics_path.parent)
    if found is None:
        return None
    return {**found, "dir": Path(shutil.copytree(found["dir"], stage / EXPLANATION_DIR))}


def _dump(stage: Path, contract: ModelContract) -> Path:
    path = stage / CONTRACT_FILE
    path.write_text(contract.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def _preprocessing(src: Sources, contract: ModelContract,
                   statics: dict[str, np.ndarray]) -> dict[str, Any]:
    lat, lon = statics["lat"], statics["lon"]
    return {
        "variables": {
            "surface": {n: contract.units[n] for n in contract.surf_vars},
            "atmospheric": {n: contract.units[n] for n in contract.atmos_vars},
            "static": list(contract.static_vars),
        },
        "levels_hpa": list(contract.levels),
        "grid": {"lat_points": int(lat.size), "lon_points": int(lon.size),
                 "lat_first": float(lat[0]), "lat_last": float(lat[-1]),
                 "lon_first": float(lon[0]), "lon_last": float(lon[-1]),
                 "order": "lat descending, lon ascending in [0, 360)"},
        "history": {"steps": contract.history, "spacing_hours": contract.timestep_hours,
                    "order": "oldest first; init_time is the newest"},
        "normalisation": (
            "Requests are in physical units (see `units`); Aurora normalises inside the model "
            "with its own per-variable location and scale. norm_stats.json holds the training "
            "split's mean and standard deviation, which train-trial used for its loss and "
            "val_score."
        ),
        "nan_allowed": list(contract.nan_allowed),
    }


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` onto ``out``; an existing ``out`` is moved aside first, then removed."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def package_model(
    model: str | Path,
    *,
    variant: str,
    out: str | Path,
    eval_dir: str | Path | None = None,
    bench_dir: str | Path | None = None,
    data: str | Path | None = None,
    log_to: str | None = None,
    precision: Precision = "fp32",
    ensemble: int = 1,
) -> PackageResult:
    """Write the MLflow pyfunc model of a trial (or a local sweep's best trial) to ``out``.

    Args:
        model: ``train-trial`` output folder, or a local sweep's work folder (its best trial).
        variant: The variant the trial must have trained.
        out: The model directory to write (``out/MLmodel``); replaced if it exists.
        eval_dir: ``evaluate --model`` output of the same checkpoint (metrics, scorecard).
        bench_dir: ``benchmark`` output of the same checkpoint.
        data: Dataset for the static fields, the grid and the input example (default: the
            trial's training dataset).
        log_to: Also log the package to this MLflow tracking URI (see :func:`log_package`).
        precision: The rollout precision when a request does not give ``params.precision``.
        ensemble: Members of a top-k ensemble of the sweep ``model`` (see
            :func:`~._members.select_members`); ``1``: the best trial alone. ``eval_dir`` and
            ``bench_dir`` must then be of the same ensemble (``evaluate --ensemble K``).

    Raises:
        PackageError: An input is missing or describes another checkpoint.
        CheckpointError: The checkpoint is missing, corrupt or of another variant.
    """
    chosen = _ensemble_members(model, ensemble)
    record = ensemble_record(chosen.members, chosen.selection) if chosen else None
    src = _gather(model, variant, chosen, record, eval_dir=eval_dir, bench_dir=bench_dir,
                  data=data)
    statics, contract, example = _read_data(src)
    contract = contract.model_copy(update={"precision": precision})
    info = _info(src, contract, record)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    try:
        stage = work / "artifacts"
        stage.mkdir()
        artifacts = _write_artifacts(src, info, contract, statics, stage, chosen)
        _save_pyfunc(work, artifacts, info, contract, example, ensemble=chosen is not None)
        _replace_dir(work / "model", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("packaged %s at %s", info.variant, out)
    result = PackageResult(path=out, info=info.model_copy(update={"path": out}))
    if log_to:
        from aurora_mlops.packaging._log import log_package

        logged = log_package(out, log_to, tags={"trial": info.trial})
        result = PackageResult(path=out, info=result.info, model_uri=logged.model_uri)
    return result


@dataclass(frozen=True)
class _Chosen:
    members: list[Member]
    selection: str


def _ensemble_members(model: str | Path, k: int) -> _Chosen | None:
    """The members of ``--ensemble k`` of the sweep ``model`` (``None`` for ``k == 1``)."""
    if k == 1:
        return None
    model = Path(model)
    if (model / "model.ckpt").exists():
        raise PackageError(f"--ensemble {k} needs a sweep's work dir as --model, and {model} is "
                           "one trial: pass the --work-dir of `aurora-mlops tune`")
    chain = (model / "halving.json").is_file()
    selection = (f"the {k} best configurations of the successive-halving chain, each at the "
                 "furthest budget it reached, largest budget first, then lowest val_score"
                 if chain else f"the {k} Succeeded trials with the lowest val_score")
    return _Chosen(select_members(model, k), selection)


def _gather(model: str | Path, variant: str, chosen: _Chosen | None,
            record: dict[str, Any] | None, **inputs: Any) -> Sources:
    """The checked sources: the trial's, or for an ensemble its best member's with the sweep's
    ``best.json``, the evaluation and benchmark checked against the ensemble's digest."""
    if chosen is None or record is None:
        return gather_sources(model, variant, **inputs)
    sweep = Path(model)
    # Read before any checkpoint is loaded, so a broken file costs no wait.
    best = sweep_best(sweep) if (sweep / BEST_FILE).is_file() else None
    src = gather_sources(chosen.members[0].trial_dir, variant, identity=record["sha256"],
                         **inputs)
    return replace(src, sweep=sweep, best=best)


def _read_data(src: Sources) -> tuple[dict[str, np.ndarray], ModelContract, Any]:
    """The grid and static fields, the model contract and the input example (``None`` when
    the initial state is over :data:`EXAMPLE_MAX_VALUES`) from the trial's dataset."""
    from aurora_mlops.data import open_dataset

    ds = open_dataset(src.data)
    try:
        statics = grid_and_statics(ds, src.trained)
        contract = _contract(src, statics)
        n_values = sum(int(np.prod(contract.state_shape(v))) for v in contract.state_vars)
        example = example_state(ds, src.trained) if n_values <= EXAMPLE_MAX_VALUES else None
    finally:
        ds.close()
    return statics, contract, example


def _save_pyfunc(work: Path, artifacts: dict[str, str], info: PackageInfo,
                 contract: ModelContract, example: Any, *, ensemble: bool = False) -> None:
    """``mlflow.pyfunc.save_model`` into ``work/model``: models from code, pinned requirements."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ParamSchema, ParamSpec

    from aurora_mlops.packaging._requirements import pinned_requirements

    requirements, constraints = pinned_requirements()
    lock = work / "constraints.txt"
    lock.write_text("\n".join(constraints) + "\n", encoding="utf-8")
    specs = [ParamSpec("steps", "long", contract.default_steps),
             ParamSpec("precision", "string", contract.precision)]
    if ensemble:
        specs.append(ParamSpec("members", "boolean", False))
    signature = ModelSignature(inputs=None, params=ParamSchema(specs))
    mlflow.pyfunc.save_model(
        path=str(work / "model"),
        python_model=str(Path(__file__).with_name("model_code.py")),
        artifacts=artifacts,
        code_paths=[str(_stage_code(work))],
        signature=signature,
        input_example=(example, {"steps": EXAMPLE_STEPS}) if example else None,
        pip_requirements=[*requirements, f"-c {lock}"],
        metadata={METADATA_KEY: info.stored()},
    )
