"""Which Katib Experiments ``katib render`` writes: one :class:`Sweep` per spec, :data:`SWEEPS`.

Per variant: a production architecture grid (the variant's ``sweep_grid``), a random search
(its space without ``sweep_random_leave_out``), successive halving over the same space, TPE over
the fine-tune knobs from the published checkpoint, and five CPU smoke sweeps (grid over
``smoke_sweep_grid``, random, TPE, a Sobol' design, the successive halving that
``make run`` sweeps, and a Sobol' design that adds the physics-aware augmentation's ranges,
``smoke/<variant>-augment.yaml``). Where a production trial needs several GPUs, each
production sweep also has a PyTorchJob copy (one GPU a pod), for GPU pools with fewer GPUs a
node than a trial needs. The variant's facts live on its
:class:`~aurora_mlops.variants.VariantSpec`.

A ``tpe`` sweep runs Katib's ``multivariate-tpe``: Katib serves ``tpe`` with hyperopt, which
proposes one and the same point for every slot of a request (every trial of a
``parallelTrialCount`` > 1 batch after the first); ``multivariate-tpe`` is Optuna's TPE with the
constant liar (kubeflow/katib ``pkg/suggestion/v1beta1/optuna/service.py``), which proposes a
different point for each running trial, and the embedded runner runs that same sampler.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aurora_mlops.tuning.katib._halving_plan import Halving
from aurora_mlops.tuning.space._registry import get_space
from aurora_mlops.tuning.space._search_space import SearchSpace
from aurora_mlops.variants import VARIANTS

__all__ = ["KATIB_ALGORITHMS", "SWEEPS", "Sweep"]

SweepAlgorithm = Literal["grid", "random", "tpe", "sobol", "halving"]
Launcher = Literal["job", "pytorchjob"]
SpecProfile = Literal["smoke", "production"]
#: The Katib algorithm a sweep runs where the names differ (the module docstring says why).
KATIB_ALGORITHMS: dict[str, str] = {"tpe": "multivariate-tpe", "halving": "sobol"}


class Sweep(BaseModel):
    """One rendered Experiment: which variant, algorithm, parameters and budgets.

    Attributes:
        variant: Variant registry name.
        algorithm: Katib suggestion algorithm.
        profile: ``production`` (GPU node pool) or ``smoke`` (CPU, tiny budgets).
        parameters: Names from the variant's search space for ``profile``.
        max_trial_count: ``spec.maxTrialCount``.
        parallel_trial_count: ``spec.parallelTrialCount``.
        max_failed_trial_count: ``spec.maxFailedTrialCount``.
        init: ``train-trial --init`` (``hub``: the published checkpoint), ``None``: from scratch.
        early_stopping: Add ``medianstop``.
        launcher: ``job`` (``batch/v1`` Job, every GPU in one pod) or ``pytorchjob``
            (training-operator ``kubeflow.org/v1`` PyTorchJob, one GPU a pod).
        purpose: One sentence, written into the spec's annotations.
        halving: The successive-halving plan of a ``halving`` sweep (its rung 0 is a Sobol'
            design of ``max_trial_count`` trials; see :mod:`._halving`).
        augment: A smoke sweep over the augmentation space (:data:`._space.AUGMENT_SPACES`),
            written as ``smoke/<variant>-augment.yaml``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    variant: str
    algorithm: SweepAlgorithm
    profile: SpecProfile
    parameters: tuple[str, ...] = Field(min_length=1)
    max_trial_count: int = Field(ge=1)
    parallel_trial_count: int = Field(ge=1)
    max_failed_trial_count: int = Field(ge=0)
    init: str | None = None
    early_stopping: bool = False
    launcher: Launcher = "job"
    purpose: str
    halving: Halving | None = None
    augment: bool = False

    @property
    def space(self) -> SearchSpace:
        """The searched parameters."""
        return get_space(self.variant, self.profile, augment=self.augment).subset(
            self.parameters)

    @property
    def katib_algorithm(self) -> str:
        """``spec.algorithm.algorithmName``: ``tpe`` runs as ``multivariate-tpe`` (see above)."""
        return KATIB_ALGORITHMS.get(self.algorithm, self.algorithm)

    @property
    def experiment_name(self) -> str:
        """``metadata.name``: ``aurora-[smoke-]<variant>-<algorithm>[-pytorchjob]``, or
        ``aurora-smoke-<variant>-augment``."""
        smoke = "smoke-" if self.profile == "smoke" else ""
        suffix = "-pytorchjob" if self.launcher == "pytorchjob" else ""
        return f"aurora-{smoke}{self.variant}-{self._kind}{suffix}"

    @property
    def _kind(self) -> str:
        return "augment" if self.augment else self.algorithm

    @property
    def relpath(self) -> str:
        """Where the spec lives under ``katib/``."""
        if self.profile == "smoke":
            return f"smoke/{self.variant}-{self._kind}.yaml"
        suffix = "-pytorchjob" if self.launcher == "pytorchjob" else ""
        return f"{self.variant}/{self.algorithm}{suffix}.yaml"


# The plan ------------------------------------------------------------------------------------
def _production_sweeps(variant: str) -> list[Sweep]:
    spec = VARIANTS[variant]
    space = get_space(variant, "production")
    parallel = 2 if spec.node_pool.gpus_per_trial > 1 else 4
    out: list[Sweep] = []
    if spec.sweep_grid:
        grid = space.subset(spec.sweep_grid)
        grid_size = grid.grid_size() or 1
        out.append(Sweep(
            variant=variant, algorithm="grid", profile="production", parameters=grid.names,
            max_trial_count=grid_size, parallel_trial_count=min(parallel, grid_size),
            max_failed_trial_count=max(1, grid_size // 4),
            purpose="Architecture grid trained from scratch (proxy-scale sweep).",
        ))
    out.append(Sweep(
        variant=variant, algorithm="random", profile="production",
        parameters=space.without(spec.sweep_random_leave_out).names,
        max_trial_count=24, parallel_trial_count=parallel, max_failed_trial_count=6,
        purpose="Random search over architecture and fine-tune knobs, from scratch.",
    ))
    out.append(Sweep(
        variant=variant, algorithm="halving", profile="production",
        parameters=space.without(spec.sweep_random_leave_out).names,
        max_trial_count=27, parallel_trial_count=parallel, max_failed_trial_count=6,
        halving=Halving(eta=3, budgets=(2, 7, 20)),
        purpose="Successive halving from scratch: 27 Sobol' points for 2 epochs, the best 9 "
                "resumed to 7, the best 3 to the full 20.",
    ))
    tpe = Sweep(
        variant=variant, algorithm="tpe", profile="production",
        parameters=space.by_tag("fine-tune").names, max_trial_count=40,
        parallel_trial_count=parallel, max_failed_trial_count=8, init="hub",
        early_stopping=True,
        purpose="TPE over fine-tune knobs from the published checkpoint, median stopping.",
    )
    out.append(tpe)
    if spec.node_pool.gpus_per_trial > 1:
        out += [s.model_copy(update={"launcher": "pytorchjob"}) for s in list(out)]
    return out


def _smoke_sweeps(variant: str) -> list[Sweep]:
    space = get_space(variant, "smoke")
    common: dict[str, Any] = dict(
        variant=variant, profile="smoke", parallel_trial_count=2, max_failed_trial_count=1,
    )
    out: list[Sweep] = []
    if VARIANTS[variant].smoke_sweep_grid:
        grid = space.subset(VARIANTS[variant].smoke_sweep_grid)
        out.append(Sweep(
            algorithm="grid", parameters=grid.names,
            max_trial_count=min(4, grid.grid_size() or 4),
            purpose="Smoke grid over discrete fine-tune knobs (CPU).", **common,
        ))
    out.append(Sweep(
        algorithm="random", parameters=space.names, max_trial_count=4,
        purpose="Smoke random search over fine-tune knobs (CPU).", **common,
    ))
    out.append(Sweep(
        algorithm="tpe", parameters=space.names, max_trial_count=6, early_stopping=True,
        purpose="Smoke TPE over fine-tune knobs with median stopping (CPU).", **common,
    ))
    out.append(Sweep(
        algorithm="sobol", parameters=space.names, max_trial_count=6,
        purpose="Smoke Sobol' design over fine-tune knobs, every listed value spread (CPU).",
        **common,
    ))
    out.append(Sweep(
        algorithm="halving", parameters=space.names, max_trial_count=8,
        halving=Halving(eta=2, budgets=(2, 6, 18)),
        purpose="Smoke successive halving (CPU): 8 Sobol' points for 2 epochs, the best 4 "
                "resumed to 6, the best 2 to 18; make run's sweep.", **common,
    ))
    # Last, so a look-up of the smoke Sobol' sweep by variant and algorithm finds the one above.
    out.append(Sweep(
        algorithm="sobol", augment=True,
        parameters=get_space(variant, "smoke", augment=True).names, max_trial_count=6,
        purpose="Smoke Sobol' design over fine-tune knobs and the physics-aware augmentation "
                "(CPU); bench/bench_augment.py sets it against the one without.", **common,
    ))
    return out


def _sweeps() -> tuple[Sweep, ...]:
    """Every variant's production sweeps, then every variant's smoke sweeps."""
    production = [s for v in VARIANTS for s in _production_sweeps(v)]
    return tuple(production + [s for v in VARIANTS for s in _smoke_sweeps(v)])


#: Every spec ``katib render`` writes.
SWEEPS: tuple[Sweep, ...] = _sweeps()
