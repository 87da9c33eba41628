"""Pipeline ``aurora-tune-and-publish``: one variant from dataset to registered champion.

data-validate -> tune (Katib Experiment, or the embedded runner) -> final-fit -> evaluate ->
benchmark -> package -> publish, with publish under a ``dsl.If`` quality gate on the
evaluation, an exit handler that writes a failure summary, retries on the steps that touch the
network, caching off for tune and publish, and the GPU steps placed on the GPU node pool.

The steps are one graph component (:data:`variant_steps`), so ``aurora-all-variants`` runs the
very same chain in its ``ParallelFor``. Compile with ``python -m
aurora_mlops.kfp.tune_and_publish OUT.yaml`` (or ``aurora-mlops pipeline compile``).
"""

# No ``from __future__ import annotations``: kfp reads the annotations as types.

import sys
from typing import Any, NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Artifact, Model

from aurora_mlops.config import get_settings
from aurora_mlops.kfp import components as c
from aurora_mlops.kfp._platform import DATA_MOUNT, cpu_step, gpu_step

__all__ = ["NAME", "make_variant_steps", "tune_and_publish", "variant_steps"]

NAME = "aurora-tune-and-publish"
#: Retries of the steps that touch the network (a download, the registry).
NETWORK_RETRIES = 3


class VariantOutputs(NamedTuple):
    """What one variant's steps hand to the report."""

    evaluation: Artifact
    benchmark: Artifact
    best_trial: Model


def make_variant_steps(retries: int = NETWORK_RETRIES) -> Any:
    """The graph component of one variant's steps; ``retries`` on the network steps.

    ``pipeline run --local`` builds it with ``retries=0``: there the data is synthetic and the
    registry a local file, and kfp.local would wait out the backoff before failing a bad input.
    """

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
        namespace: str,
    ) -> VariantOutputs:
        """data-validate -> tune -> final-fit -> evaluate -> benchmark -> package -> publish."""
        s = get_settings()
        data = _validated_data(s, retries, dataset_uri=dataset_uri, variant=variant)
        sweep = c.tune(variant=variant, algorithm=algorithm, profile=profile,
                       backend=backend, max_trials=max_trials, parallel_trials=parallel_trials,
                       trial_args=trial_args, tracking_uri=tracking_uri, namespace=namespace,
                       data_root=DATA_MOUNT, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                       data=data.outputs["dataset"])
        cpu_step(sweep, s, volumes=True).set_caching_options(False)
        fit = c.final_fit(variant=variant, profile=profile, fit_args=final_fit_args,
                          tracking_uri=tracking_uri, best=sweep.outputs["best"],
                          data=data.outputs["dataset"])
        gpu_step(fit, s)
        ev = c.evaluate(variant=variant, lead_steps=lead_steps, max_inits=max_inits,
                        model=fit.outputs["model"], data=data.outputs["dataset"])
        gpu_step(ev, s)
        bench = c.benchmark(variant=variant, repeats=bench_repeats, train_steps=bench_train_steps,
                            model=fit.outputs["model"])
        gpu_step(bench, s)
        pkg = c.package(variant=variant, tracking_uri=tracking_uri, model=fit.outputs["model"],
                        evaluation=ev.outputs["results"], bench=bench.outputs["results"])
        cpu_step(pkg, s, memory="8G")
        _publish_if_skilled(s, retries, ev, pkg, min_skill=min_skill, registry_uri=registry_uri,
                            model_name=model_name, gate=gate)
        return VariantOutputs(evaluation=ev.outputs["results"], benchmark=bench.outputs["results"],
                              best_trial=sweep.outputs["best"])

    return variant_steps


def _validated_data(s: Any, retries: int, *, dataset_uri: Any, variant: Any) -> Any:
    """The data-validate task (retried: it may download the dataset)."""
    data = c.data_validate(dataset_uri=dataset_uri, variant=variant)
    cpu_step(data, s, memory="8G", secret=False, volumes=True).set_retry(
        num_retries=retries, backoff_duration="10s", backoff_factor=2)
    return data


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
        cpu_step(pub, s).set_caching_options(False).set_retry(
            num_retries=retries, backoff_duration="30s", backoff_factor=2)


#: One variant's steps, as both compiled pipelines run them.
variant_steps = make_variant_steps()


@dsl.pipeline(
    name=NAME,
    description="Validate a dataset, sweep hyperparameters with Katib, fit, evaluate and "
    "benchmark the best trial, package it as an MLflow model and publish it behind a gate.",
)
def tune_and_publish(
    variant: str = "medium-res",
    algorithm: str = "random",
    dataset_uri: str = "",
    max_trials: int = 12,
    parallel_trials: int = 3,
    profile: str = "production",
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
) -> None:
    """One variant, end to end; the exit handler summarises a failure."""
    summary = c.failure_summary()
    cpu_step(summary, get_settings(), secret=False)
    with dsl.ExitHandler(summary, name="tune-and-publish"):
        variant_steps(
            variant=variant, algorithm=algorithm, dataset_uri=dataset_uri,
            max_trials=max_trials, parallel_trials=parallel_trials, profile=profile,
            backend=backend, registry_uri=registry_uri, gate=gate, min_skill=min_skill,
            model_name=model_name, trial_args=trial_args, final_fit_args=final_fit_args,
            lead_steps=lead_steps, max_inits=max_inits, bench_repeats=bench_repeats,
            bench_train_steps=bench_train_steps, tracking_uri=tracking_uri,
            namespace=namespace)


if __name__ == "__main__":  # pragma: no cover
    compiler.Compiler().compile(tune_and_publish, sys.argv[1] if len(sys.argv) > 1
                                else f"pipelines/{NAME}.yaml")
