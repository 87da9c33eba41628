"""Pipeline ``aurora-tune-and-publish``: one variant from dataset to registered champion.

data-validate -> tune (Katib Experiment, or the embedded runner) -> final-fit -> evaluate ->
benchmark -> package -> publish, with publish under a ``dsl.If`` quality gate on the
evaluation, an exit handler that writes a failure summary, retries on the steps that touch the
network, caching off for data-validate, tune and publish, and the GPU steps placed on the GPU
node pool (:func:`build` with ``cpu_only`` settings: the CPU-only dev build). The dataset,
checkpoints and package stay on the volumes; the steps pass references to them.

The steps are one graph component (:data:`variant_steps`), so ``aurora-all-variants`` runs the
very same chain in its ``ParallelFor``. Compile with ``python -m
aurora_mlops.kfp.tune_and_publish OUT.yaml`` (or ``aurora-mlops pipeline compile``).
"""

# No ``from __future__ import annotations``: kfp reads the annotations as types.

import sys
from dataclasses import dataclass
from typing import Any, NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Artifact, Model

from aurora_mlops.config import Settings, get_settings
from aurora_mlops.kfp import components as c
from aurora_mlops.kfp._platform import (
    ARTIFACTS_MOUNT,
    DATA_MOUNT,
    bake_trial_settings,
    cpu_step,
    gpu_step,
)

__all__ = ["DEV", "NAME", "PRODUCTION", "Defaults", "build", "make_variant_steps",
           "tune_and_publish", "variant_steps"]

NAME = "aurora-tune-and-publish"
#: Retries of the steps that touch the network (a download, the registry).
NETWORK_RETRIES = 3


class VariantOutputs(NamedTuple):
    """What one variant's steps hand to the report."""

    evaluation: Artifact
    benchmark: Artifact
    best_trial: Model


def make_variant_steps(retries: int = NETWORK_RETRIES, settings: Settings | None = None, *,
                       data_root: str = DATA_MOUNT, artifacts_root: str = ARTIFACTS_MOUNT
                       ) -> Any:
    """The graph component of one variant's steps. ``retries``: of the network steps
    (``pipeline run --local`` passes 0: kfp.local would wait out the backoff before failing a
    bad input); ``settings``: placement, volumes, image (default: the process settings);
    ``data_root``, ``artifacts_root``: the volumes (folders of the work dir in a local run)."""
    s = settings or get_settings()

    @dsl.pipeline(name="aurora-variant-steps",
                  description="The steps of one variant (used by both pipelines).")
    def variant_steps(
        variant: str,
        algorithm: str,
        dataset_uri: str,
        max_trials: int,
        parallel_trials: int,
        profile: str,
        backend: str,
        registry_uri: str,
        gate: str,
        min_skill: float,
        model_name: str,
        trial_args: str,
        final_fit_args: str,
        lead_steps: int,
        max_inits: int,
        bench_repeats: int,
        bench_train_steps: int,
        tracking_uri: str,
        namespace: str, ensemble: int,
    ) -> VariantOutputs:
        """data-validate -> tune -> final-fit -> evaluate -> benchmark -> package -> publish."""
        run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
        data = _validated_data(s, retries, dataset_uri=dataset_uri, variant=variant,
                               data_root=data_root, run_id=run_id).outputs["dataset"]
        sweep = c.tune(variant=variant, algorithm=algorithm, profile=profile,
                       backend=backend, max_trials=max_trials, parallel_trials=parallel_trials,
                       trial_args=trial_args, tracking_uri=tracking_uri, namespace=namespace,
                       data_root=data_root, artifacts_root=artifacts_root, run_id=run_id,
                       data=data)
        bake_trial_settings(cpu_step(sweep, s, volumes=True), s).set_caching_options(False)
        fit = gpu_step(c.final_fit(variant=variant, profile=profile, fit_args=final_fit_args,
                                   tracking_uri=tracking_uri, artifacts_root=artifacts_root,
                                   run_id=run_id, best=sweep.outputs["best"], data=data), s)
        ev = gpu_step(c.evaluate(variant=variant, lead_steps=lead_steps, max_inits=max_inits,
                                 ensemble=ensemble, model=fit.outputs["model"], data=data), s)
        bench = gpu_step(c.benchmark(variant=variant, repeats=bench_repeats,
                                     train_steps=bench_train_steps, model=fit.outputs["model"]), s)
        pkg = cpu_step(c.package(variant=variant, tracking_uri=tracking_uri,
                                 artifacts_root=artifacts_root, run_id=run_id,
                                 ensemble=ensemble, model=fit.outputs["model"], data=data,
                                 evaluation=ev.outputs["results"],
                                 bench=bench.outputs["results"]), s, memory="8G", volumes=True)
        _publish_if_skilled(s, retries, ev, pkg, min_skill=min_skill, registry_uri=registry_uri,
                            model_name=model_name, gate=gate)
        return VariantOutputs(evaluation=ev.outputs["results"], benchmark=bench.outputs["results"],
                              best_trial=sweep.outputs["best"])

    return variant_steps


def _validated_data(s: Any, retries: int, *, dataset_uri: Any, variant: Any, data_root: str,
                    run_id: str) -> Any:
    """The data-validate task: retried (it may download), never cached.

    KFP's cache key holds the input parameters, the input artifacts' names, the image, the
    command and the PVC names, not what the volume holds (backend/src/v2/cacheutils/cache.go,
    GenerateCacheKey), so a cached validation would vouch for a file replaced since. The
    step reads the file in place, so running it again costs one validation pass.
    """
    data = c.data_validate(dataset_uri=dataset_uri, variant=variant, data_root=data_root,
                           run_id=run_id)
    cpu_step(data, s, memory="8G", secret=False, volumes=True).set_retry(
        num_retries=retries, backoff_duration="10s", backoff_factor=2)
    return data.set_caching_options(False)


def _publish_if_skilled(s: Any, retries: int, ev: Any, pkg: Any, *, min_skill: Any,
                        registry_uri: Any, model_name: Any, gate: Any) -> None:
    """The quality gate: publish only a model that beats persistence on at least ``min_skill``
    of the (variable, level, lead) targets.

    kfp.local resolves a condition on a task output only when the output is the component's
    single return value, named "Output".
    """
    with dsl.If(ev.outputs["Output"] >= min_skill, name="quality-gate"):
        pub = c.publish(registry_uri=registry_uri, model_name=model_name, gate=gate,
                        mlflow_model=pkg.outputs["mlflow_model"])
        cpu_step(pub, s, volumes=True).set_caching_options(False).set_retry(
            num_retries=retries, backoff_duration="30s", backoff_factor=2)


#: One variant's steps, as both compiled pipelines run them.
variant_steps = make_variant_steps()


@dataclass(frozen=True, kw_only=True)
class Defaults:
    """The run parameters' defaults that differ between the cluster and the dev build.

    The dev build (a CPU-only cluster, ``manifests/overlays/dev``) runs the smoke profile on
    the synthetic dataset by default, so a run started without arguments fits there.
    """

    profile: str = "production"
    dataset_uri: str = ""
    max_trials: int = 12
    parallel_trials: int = 3


PRODUCTION = Defaults()
DEV = Defaults(profile="smoke", dataset_uri="synthetic", max_trials=4, parallel_trials=2)
_DESCRIPTION = ("Validate a dataset, sweep hyperparameters with Katib, fit, evaluate and "
                "benchmark the best trial, package it as an MLflow model and publish it behind a "
                "gate.")


def build(settings: Settings | None = None, *, defaults: Defaults = PRODUCTION) -> Any:
    """The ``aurora-tune-and-publish`` pipeline for ``settings`` (``cpu_only``: the dev build)."""
    s = settings or get_settings()
    steps = variant_steps if settings is None else make_variant_steps(settings=s)
    d = defaults

    def tune_and_publish(
        variant: str = "medium-res",
        algorithm: str = "random",
        dataset_uri: str = d.dataset_uri,
        max_trials: int = d.max_trials,
        parallel_trials: int = d.parallel_trials,
        profile: str = d.profile,
        backend: str = "katib",
        registry_uri: str = "",
        gate: str = "",
        min_skill: float = 0.5,
        model_name: str = "",
        trial_args: str = "",
        final_fit_args: str = "",
        lead_steps: int = 4,
        max_inits: int = 0,
        bench_repeats: int = 10,
        bench_train_steps: int = 5,
        tracking_uri: str = "",
        namespace: str = "",
        ensemble: int = 1,
    ) -> None:
        """One variant, end to end; the exit handler summarises a failure."""
        summary = c.failure_summary()
        cpu_step(summary, s, secret=False)
        with dsl.ExitHandler(summary, name="tune-and-publish"):
            steps(
                variant=variant, algorithm=algorithm, dataset_uri=dataset_uri,
                max_trials=max_trials, parallel_trials=parallel_trials, profile=profile,
                backend=backend, registry_uri=registry_uri, gate=gate, min_skill=min_skill,
                model_name=model_name, trial_args=trial_args, final_fit_args=final_fit_args,
                lead_steps=lead_steps, max_inits=max_inits, bench_repeats=bench_repeats,
                bench_train_steps=bench_train_steps, tracking_uri=tracking_uri,
                namespace=namespace, ensemble=ensemble)

    return dsl.pipeline(tune_and_publish, name=NAME, description=_DESCRIPTION)


#: The pipeline as compiled into ``pipelines/aurora-tune-and-publish.yaml``.
tune_and_publish = build()


if __name__ == "__main__":  # pragma: no cover
    compiler.Compiler().compile(tune_and_publish, sys.argv[1] if len(sys.argv) > 1
                                else f"pipelines/{NAME}.yaml")
