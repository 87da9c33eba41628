"""Pipeline ``aurora-all-variants``: ``aurora-tune-and-publish`` for every variant, then a report.

The variants run in a ``dsl.ParallelFor``, each the same graph of steps as
``aurora-tune-and-publish`` (:data:`~aurora_mlops.kfp.tune_and_publish.variant_steps`);
``report`` combines their evaluations, benchmarks and best trials (``dsl.Collected``). An exit
handler writes a failure summary. kfp 2.17 compiles the loop's ``parallelism`` in as a constant
(``iteratorPolicy.parallelismLimit``), so it is a parameter of :func:`build` (``aurora-mlops
pipeline compile --parallelism N``), not of a run. Compile with ``python -m
aurora_mlops.kfp.all_variants OUT.yaml`` (or ``aurora-mlops pipeline compile``).
"""

# No ``from __future__ import annotations``: kfp reads the annotations as types.

import sys
from typing import Any

from kfp import compiler, dsl

from aurora_mlops.config import Settings, get_settings
from aurora_mlops.errors import ConfigError
from aurora_mlops.kfp import components as c
from aurora_mlops.kfp._platform import ARTIFACTS_MOUNT, DATA_MOUNT, cpu_step
from aurora_mlops.kfp.tune_and_publish import (
    NETWORK_RETRIES,
    PRODUCTION,
    Defaults,
    make_variant_steps,
)
from aurora_mlops.kfp.tune_and_publish import variant_steps as default_steps
from aurora_mlops.variants import VARIANTS

__all__ = ["DEFAULT_PARALLELISM", "NAME", "all_variants", "build"]

NAME = "aurora-all-variants"
#: Variants that run at once by default (all four: each one's GPU steps get their own node).
DEFAULT_PARALLELISM = 4
_DESCRIPTION = "Tune, judge and publish every Aurora variant (ParallelFor), then one report."


def build(parallelism: int = DEFAULT_PARALLELISM, retries: int = NETWORK_RETRIES,
          settings: Settings | None = None, *, defaults: Defaults = PRODUCTION,
          data_root: str = DATA_MOUNT, artifacts_root: str = ARTIFACTS_MOUNT) -> Any:
    """The ``aurora-all-variants`` pipeline with at most ``parallelism`` variants at a time.

    ``retries``, ``settings``, ``data_root`` and ``artifacts_root`` are those of
    :func:`~aurora_mlops.kfp.tune_and_publish.make_variant_steps`; ``defaults``: the run
    parameters' defaults (the dev build runs the smoke profile).

    Raises:
        ConfigError: ``parallelism`` is below 1.
    """
    if parallelism < 1:
        raise ConfigError(f"parallelism must be at least 1, got {parallelism}")
    s, d = settings or get_settings(), defaults
    custom = (retries, settings, data_root, artifacts_root) != (
        NETWORK_RETRIES, None, DATA_MOUNT, ARTIFACTS_MOUNT)
    variant_steps = (make_variant_steps(retries, s, data_root=data_root,
                                        artifacts_root=artifacts_root)
                     if custom else default_steps)

    def all_variants(
        variants: list[str] = list(VARIANTS),  # noqa: B006 (a pipeline default, never mutated)
        algorithm: str = "random",
        dataset_uri: str = d.dataset_uri,
        max_trials: int = d.max_trials,
        parallel_trials: int = d.parallel_trials,
        profile: str = d.profile,
        backend: str = "katib",
        registry_uri: str = "",
        gate: str = "",
        min_skill: float = 0.5,
        trial_args: str = "",
        final_fit_args: str = "",
        lead_steps: int = 4,
        max_inits: int = 0,
        bench_repeats: int = 10,
        bench_train_steps: int = 5,
        tracking_uri: str = "",
        namespace: str = "", ensemble: int = 1,
    ) -> None:
        """Every variant through the same steps, then one combined report."""
        summary = c.failure_summary()
        cpu_step(summary, s, secret=False)
        with dsl.ExitHandler(summary, name="all-variants"):
            with dsl.ParallelFor(variants, parallelism=parallelism, name="variants") as variant:
                steps = variant_steps(
                    variant=variant, algorithm=algorithm, dataset_uri=dataset_uri,
                    max_trials=max_trials, parallel_trials=parallel_trials, profile=profile,
                    backend=backend, registry_uri=registry_uri, gate=gate,
                    min_skill=min_skill, model_name="", trial_args=trial_args,
                    final_fit_args=final_fit_args, lead_steps=lead_steps, max_inits=max_inits,
                    bench_repeats=bench_repeats, bench_train_steps=bench_train_steps,
                    tracking_uri=tracking_uri, namespace=namespace, ensemble=ensemble)
            rep = c.report(evaluations=dsl.Collected(steps.outputs["evaluation"]),
                           benchmarks=dsl.Collected(steps.outputs["benchmark"]),
                           best_trials=dsl.Collected(steps.outputs["best_trial"]))
            cpu_step(rep, s, memory="8G", secret=False)

    return dsl.pipeline(all_variants, name=NAME, description=_DESCRIPTION)


#: The pipeline as compiled into ``pipelines/aurora-all-variants.yaml``.
all_variants = build()


if __name__ == "__main__":  # pragma: no cover
    compiler.Compiler().compile(all_variants, sys.argv[1] if len(sys.argv) > 1
                                else f"pipelines/{NAME}.yaml")
