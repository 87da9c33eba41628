"""The two ``evaluate`` workflows, which write the files.

:func:`evaluate_forecasts` (``evaluate --forecast``) scores forecasts with
:func:`~._evaluate.score_forecasts` and writes ``metrics.json``, ``metrics.parquet``, plots and
reports. :func:`evaluate_checkpoint` (``evaluate --model``) loads a trial, rolls it and the
weights it started from out over a dataset's test split, and evaluates both with the baselines;
``aurora-mlops evaluate --model`` and the pipeline's evaluate step both call it in their own
process. An ensemble's members are chosen by :mod:`aurora_mlops.packaging`, a layer above this
one, so their rollout comes in as a function (``members``, see :class:`MemberRollout`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import xarray as xr

from aurora_mlops.errors import ConfigError
from aurora_mlops.evaluation._baselines import BASELINES, compute_climatology
from aurora_mlops.evaluation._evaluate import score_forecasts
from aurora_mlops.evaluation._model import (
    DEFAULT_LEAD_STEPS,
    forecast_from_checkpoint,
    untuned_forecast,
)
from aurora_mlops.evaluation._result import EvaluationResult

__all__ = [
    "MemberForecasts",
    "MemberRollout",
    "evaluate_checkpoint",
    "evaluate_forecasts",
    "training_climatology",
]

logger = logging.getLogger(__name__)


class MemberForecasts(Protocol):
    """An ensemble's forecasts (``aurora_mlops.packaging.EnsembleForecasts``)."""

    @property
    def forecasts(self) -> Mapping[str, Any]:
        """``{"model": the members stacked on ``member``, ...references}``."""

    @property
    def checkpoint(self) -> Mapping[str, Any]:
        """The record ``metrics.json`` keeps of what made ``model``."""

    @property
    def best(self) -> Any:
        """The best member, loaded: the untuned baseline starts from its weights."""


class MemberRollout(Protocol):
    """Rolls an ensemble's members out over ``data`` into Zarr stores in ``scratch``."""

    def __call__(self, data: xr.Dataset, variant: str, *, scratch: Path, lead_steps: int,
                 max_inits: int | None) -> MemberForecasts: ...


def evaluate_forecasts(
    forecasts: Mapping[str, xr.Dataset | str | Path],
    truth: xr.Dataset | str | Path,
    *,
    variant: str,
    out_dir: str | Path,
    climatology: xr.Dataset | None = None,
    baselines: Sequence[str] = BASELINES,
    chunk_inits: int | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Score forecasts and write ``metrics.json``, ``metrics.parquet``, plots and reports.

    See :func:`~._evaluate.score_forecasts` for the arguments; ``checkpoint`` (``path``,
    ``sha256``, ``trial``) says which checkpoint made the ``model`` forecast. Every file is first
    written into a temporary folder next to ``out_dir``, which takes ``out_dir``'s place in one
    step only when all are complete (:func:`aurora_mlops._io.atomic_dir`), so a failure leaves
    nothing half-written.

    Returns:
        The result, with ``files`` listing what was written.
    """
    from aurora_mlops._io import atomic_dir
    from aurora_mlops.evaluation._page import write_page

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = score_forecasts(
        forecasts, truth, variant=variant, climatology=climatology, baselines=baselines,
        chunk_inits=chunk_inits, scratch_dir=out.parent,
    )
    if checkpoint is not None:
        result = dataclasses.replace(result, checkpoint=dict(checkpoint))
    with atomic_dir(out) as tmp:
        (tmp / "metrics.json").write_text(
            json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        result.table.to_parquet(tmp / "metrics.parquet", engine="pyarrow", index=False)
        # `explain --out OUT/explanation` (aurora_mlops.explain.EXPLANATION_DIR) put it there.
        explained = (out / "explanation" / "explanation.html").is_file()
        write_page(result, tmp, explanation="explanation/explanation.html" if explained else None)
        written = [out / p.name for p in sorted(tmp.iterdir())]
    logger.info("wrote %d files to %s", len(written), out)
    return EvaluationResult(**{**result.__dict__, "files": written})


def evaluate_checkpoint(
    model: str | Path,
    data: str | Path,
    *,
    variant: str,
    out_dir: str | Path,
    lead_steps: int = DEFAULT_LEAD_STEPS,
    max_inits: int | None = None,
    untuned: str | None = None,
    truth: str | Path | None = None,
    climatology_from: str | Path | None = None,
    baselines: Sequence[str] = BASELINES,
    members: MemberRollout | None = None,
) -> EvaluationResult:
    """Roll a trial out over ``data``'s test split and score it like any forecast file.

    The forecasts are streamed into Zarr stores in a scratch folder next to ``out_dir`` (memory
    flat in the length of the test split), removed after scoring. The untuned model (the
    trial's architecture with the weights it started from) is scored as the reference
    ``untuned`` when there are such weights.

    Args:
        model: A ``train-trial`` output folder or its ``model.ckpt``.
        data: The dataset whose test split is rolled out.
        variant: Variant name.
        out_dir: Where the files of :func:`evaluate_forecasts` go.
        lead_steps: Rollout steps (lead times) per initialisation.
        max_inits: At most this many initialisations, evenly spaced over the test split.
        untuned: Weights of the untuned model (a local checkpoint or ``hub``); default: those
            the trial started from, if any.
        truth: What the forecasts are scored against (default: ``data``).
        climatology_from: A dataset whose training split gives the climatology (see
            :func:`training_climatology`); default: the truth before the first initialisation.
        baselines: Baselines to score (``persistence``, ``climatology``).
        members: An ensemble's rollout (``packaging.ensemble_forecasts`` with its sweep and
            size bound), scored as ``model`` instead of the checkpoint ``model``.

    Returns:
        The result; ``files`` lists what was written.

    Raises:
        ConfigError: ``lead_steps`` or ``max_inits`` below 1.
    """
    from aurora_mlops.data import open_dataset

    if lead_steps < 1:
        raise ConfigError(f"--lead-steps (lead_steps) must be at least 1, got {lead_steps}")
    if max_inits is not None and max_inits < 1:
        raise ConfigError(f"--max-inits (max_inits) must be at least 1, got {max_inits}")
    out = Path(out_dir).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.forecasts-", dir=out.parent))
    try:
        # Load the trial and open the data once; both rollouts share them.
        ds = open_dataset(data)
        rollout: dict[str, Any] = {"lead_steps": lead_steps, "max_inits": max_inits}
        forecasts, trained, record = _model_forecasts(model, ds, variant, scratch, rollout,
                                                      members)
        reference = untuned_forecast(trained, ds, variant, init=untuned,
                                     store=scratch / "untuned.zarr", **rollout)
        if reference is not None:
            forecasts["untuned"] = reference
        else:
            logger.info("no untuned model to score: the trial trained from scratch and no "
                        "untuned weights were given")
        return evaluate_forecasts(
            forecasts, truth or data, variant=variant, out_dir=out_dir,
            climatology=training_climatology(climatology_from), baselines=tuple(baselines),
            checkpoint=record,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _model_forecasts(
    model: str | Path, data: xr.Dataset, variant: str, scratch: Path,
    rollout: dict[str, Any], members: MemberRollout | None,
) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """The forecasts to score (``model`` first), the model the untuned baseline starts from,
    and the record of what made ``model``."""
    from aurora_mlops.training import checkpoint_record, load_trained

    if members is not None:
        ens = members(data, variant, scratch=scratch, **rollout)
        return dict(ens.forecasts), ens.best, dict(ens.checkpoint)
    trained = load_trained(model, variant)
    forecast = forecast_from_checkpoint(trained, data, variant, store=scratch / "model.zarr",
                                        **rollout)
    return {"model": forecast}, trained, checkpoint_record(trained)


def training_climatology(source: str | Path | None) -> xr.Dataset | None:
    """The climatology of ``source``'s training split (see
    :func:`aurora_mlops.data.split_times`), or ``None`` for no source (the scorer then uses the
    truth before the first initialisation)."""
    if source is None:
        return None
    from aurora_mlops.data import open_dataset, split_times
    from aurora_mlops.variables import VARIABLES

    src = open_dataset(source)
    train = split_times(src.sizes["time"]).train
    src = src.isel(time=slice(*train))
    angles = {v.name for v in VARIABLES.values() if v.angle}
    return compute_climatology(src, angles=angles)
