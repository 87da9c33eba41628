"""Successive halving on each backend: the embedded runner or Katib, one Experiment per rung.

Both run :func:`~._halving.run_halving` and differ only in how a rung runs and where a trial's
folder is: the embedded runner runs every rung in one work dir (so ``/mnt/artifacts/trials/X``
of a later rung is the folder an earlier rung wrote), Katib on the cluster's volumes. Each
writes ``halving.json`` (the plan, every rung's trials and promotions) for ``tune analyze``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aurora_mlops._io import write_json
from aurora_mlops.tuning._halving import (
    PROMOTED,
    HalvingResult,
    local_outcomes,
    run_halving,
)
from aurora_mlops.tuning.katib._experiment import Experiment
from aurora_mlops.tuning.katib._trials import TrialOutcome

__all__ = ["HalvingRun", "lineage", "run_halving_katib", "run_halving_local"]


@dataclass(frozen=True)
class HalvingRun:
    """What a chain shipped: its best full-budget trial, traced back to rung 0's parameters."""

    experiment: str
    result: HalvingResult
    #: The rung-0 spec's file, if the chain came from one (``tune analyze`` reads it).
    spec: str | None
    best_trial: str
    parameters: dict[str, str]
    metrics: dict[str, float]
    checkpoint: str | None

    def summary(self) -> dict[str, Any]:
        """``halving.json``."""
        return {"experiment": self.experiment, "spec": self.spec,
                "bestTrialName": self.best_trial,
                "parameters": self.parameters, **self.result.as_dict()}


def lineage(result: HalvingResult, name: str) -> dict[str, str]:
    """The rung-0 parameters of the chain of promotions that ends in trial ``name``."""
    by_name = {t.name: t for rung in result.rungs for t in rung.trials}
    trial = by_name[name]
    while PROMOTED in trial.parameters and trial.parameters[PROMOTED] in by_name:
        trial = by_name[trial.parameters[PROMOTED]]
    return dict(trial.parameters)


def _shipped(exp: Experiment, result: HalvingResult) -> HalvingRun:
    best = result.best
    assert best is not None  # run_halving raises when the last rung ships nothing
    from aurora_mlops.tuning.local._workdir import spec_path

    return HalvingRun(experiment=exp.name, result=result, spec=spec_path(exp),
                      best_trial=best.name,
                      parameters=lineage(result, best.name), metrics=dict(best.metrics),
                      checkpoint=best.checkpoint)


def run_halving_local(exp: Experiment, *, work_dir: Path, **run: Any) -> HalvingRun:
    """Every rung of ``exp`` on the embedded runner in ``work_dir`` (``run``: more keywords of
    :func:`~aurora_mlops.tuning.run_local`); writes ``WORKDIR/halving.json``."""
    from aurora_mlops.tuning.local._runner import run_local

    def rung(e: Experiment) -> list[TrialOutcome]:
        run_local(e, work_dir=work_dir, **run)
        return local_outcomes(e, work_dir)

    result = run_halving(exp, rung, usable=_has_state(Path))
    shipped = _shipped(exp, result)
    write_json(Path(work_dir) / "halving.json", shipped.summary(), sort_keys=False)
    return shipped


def run_halving_katib(exp: Experiment, *, here: Callable[[str], Path] = Path,
                      **run: Any) -> HalvingRun:
    """Every rung of ``exp`` as a Katib Experiment, one after the other (``here``: a trial's
    checkpoint path as this process sees the volume; ``run``: more keywords of
    :func:`~aurora_mlops.tuning.run_katib`)."""
    from aurora_mlops.tuning.katib._client import run_katib

    def rung(e: Experiment) -> list[TrialOutcome]:
        return list(run_katib(e, has_checkpoint=lambda p: here(p).is_file(), **run).trials)

    return _shipped(exp, run_halving(exp, rung, usable=_has_state(here)))


def _has_state(here: Callable[[str], Path]) -> Callable[[TrialOutcome], bool]:
    """A trial can be resumed when its folder holds ``train_state.pt`` beside its checkpoint."""
    return lambda t: (t.checkpoint is not None
                      and (here(t.checkpoint).parent / "train_state.pt").is_file())
