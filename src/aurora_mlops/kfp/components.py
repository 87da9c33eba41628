"""The pipeline's components: one lightweight Python component per step, each a thin wrapper.

Every component runs in the project image (:func:`aurora_mlops.config.image_ref`, which already
holds kfp and this package, so nothing is pip-installed at start), resolves its artifacts to
paths (the dataset, checkpoints and package are references to files on the volumes:
:mod:`aurora_mlops.kfp._refs`), calls one function of :mod:`aurora_mlops.kfp.steps` and logs
what it returned on its typed outputs (``Metrics``, ``ClassificationMetrics``, ``HTML``,
``Markdown``) so the KFP UI shows them. A user-caused error ends the step with one line
``aurora-mlops: error: [STEP] ...``.

The function bodies are copied into the compiled YAML, so they import everything they use.
"""

# No ``from __future__ import annotations``: kfp reads the annotations as types.

from collections.abc import Callable
from typing import Any, NamedTuple

from kfp import dsl
from kfp.dsl import (
    HTML,
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
    PipelineTaskFinalStatus,
)

from aurora_mlops.config import image_ref

__all__ = ["ALL", "benchmark", "data_validate", "evaluate", "failure_summary", "final_fit",
           "package", "publish", "report", "tune"]

#: The project image, tagged with the package version.
IMAGE = image_ref()


def _component(func: Callable[..., Any]) -> Any:
    """``@dsl.component`` in the project image, without kfp's pip install at start."""
    return dsl.component(func, base_image=IMAGE, install_kfp_package=False)


@_component
def data_validate(dataset_uri: str, variant: str, data_root: str, run_id: str,
                  dataset: Output[Dataset], audit: Output[Markdown]) -> None:
    """Find (``synthetic``: synthesise) the dataset, validate it in place; fail on a problem."""
    import os
    import shutil

    from aurora_mlops.kfp.steps import prepare_data, reported

    with reported("data-validate"):
        ref = prepare_data(dataset_uri, variant, ref_dir=dataset.path,
                           report_dir=os.path.join(dataset.path, "audit"), data_root=data_root,
                           run_id=run_id)
    shutil.copyfile(os.path.join(dataset.path, "audit", "validation.md"), audit.path)
    dataset.metadata.update(variant=variant, path=ref["path"])


@_component
def tune(variant: str, algorithm: str, profile: str, backend: str, max_trials: int,
         parallel_trials: int, trial_args: str, tracking_uri: str, namespace: str,
         data_root: str, artifacts_root: str, run_id: str, data: Input[Dataset],
         best: Output[Model], sweep: Output[Artifact], metrics: Output[Metrics]) -> None:
    """Run the variant's Katib Experiment (Katib, or the embedded runner); name the best trial."""
    from aurora_mlops.kfp.steps import read_ref, reported
    from aurora_mlops.kfp.steps import sweep as run_sweep

    with reported("tune"):
        doc = run_sweep(variant=variant, algorithm=algorithm, profile=profile,
                        data=read_ref(data.path), best_dir=best.path, sweep_dir=sweep.path,
                        max_trials=max_trials, parallel_trials=parallel_trials, backend=backend,
                        trial_args=trial_args, tracking_uri=tracking_uri, namespace=namespace,
                        data_root=data_root, artifacts_root=artifacts_root, run_id=run_id)
    for name, value in doc["metrics"].items():
        metrics.log_metric(name, value)
    best.metadata.update(variant=variant, trial=doc["bestTrialName"], path=doc["checkpoint"])
    sweep.metadata["variant"] = variant


@_component
def final_fit(variant: str, profile: str, fit_args: str, tracking_uri: str,
              artifacts_root: str, run_id: str, best: Input[Model], data: Input[Dataset],
              model: Output[Model], metrics: Output[Metrics]) -> None:
    """Train the best trial's parameters with the final budget (empty ``fit_args``: skip)."""
    from aurora_mlops.kfp.steps import final_fit as fit
    from aurora_mlops.kfp.steps import read_ref, reported, run_folder, write_ref

    with reported("final-fit"):
        figures, model_dir = fit(
            best_dir=best.path, data=read_ref(data.path), variant=variant, profile=profile,
            out_dir=run_folder(artifacts_root, run_id, variant, "final-fit"),
            fit_args=fit_args, tracking_uri=tracking_uri)
        ref = write_ref(model.path, model_dir, variant=variant)
    for name, value in figures.items():
        metrics.log_metric(name, value)
    model.metadata.update(variant=variant, path=ref["path"])


@_component
def evaluate(variant: str, lead_steps: int, max_inits: int, ensemble: int, model: Input[Model],
             data: Input[Dataset], results: Output[Artifact], metrics: Output[Metrics],
             events: Output[ClassificationMetrics], report_html: Output[HTML],
             report_md: Output[Markdown]) -> float:
    """Score the model and the baselines on the test split; returns the skill the gate reads."""
    import os
    import shutil

    from aurora_mlops.kfp.steps import evaluate_model, read_ref, reported

    with reported("evaluate"):
        summary = evaluate_model(model_dir=read_ref(model.path), data=read_ref(data.path),
                                 variant=variant, out_dir=results.path,
                                 lead_steps=lead_steps, max_inits=max_inits,
                                 ensemble=ensemble)
    for name, value in summary["figures"].items():
        metrics.log_metric(name, value)
    if summary["event"]:
        e = summary["event"]
        events.log_confusion_matrix(["no event", "event"], [
            [e["correct_negatives"], e["false_alarms"]], [e["misses"], e["hits"]]])
    shutil.copyfile(os.path.join(results.path, "report.html"), report_html.path)
    shutil.copyfile(os.path.join(results.path, "report.md"), report_md.path)
    results.metadata["variant"] = variant
    return float(summary["skill"])


@_component
def benchmark(variant: str, repeats: int, train_steps: int, model: Input[Model],
              results: Output[Artifact], metrics: Output[Metrics],
              report_md: Output[Markdown]) -> None:
    """Measure latency, throughput and memory of the model on this step's machine."""
    import os
    import shutil

    from aurora_mlops.kfp.steps import benchmark_model, read_ref, reported

    with reported("benchmark"):
        figures = benchmark_model(model_dir=read_ref(model.path), variant=variant,
                                  out_dir=results.path, repeats=repeats,
                                  train_steps=train_steps)
    for name, value in figures.items():
        metrics.log_metric(name, value)
    shutil.copyfile(os.path.join(results.path, "benchmark.md"), report_md.path)
    results.metadata["variant"] = variant


@_component
def package(variant: str, tracking_uri: str, artifacts_root: str, run_id: str, ensemble: int,
            model: Input[Model], data: Input[Dataset], evaluation: Input[Artifact],
            bench: Input[Artifact], mlflow_model: Output[Model],
            model_card: Output[Markdown]) -> None:
    """Package the model as an MLflow pyfunc with its evaluation, benchmark and model card."""
    import glob
    import os
    import shutil

    from aurora_mlops.kfp.steps import package as make_package
    from aurora_mlops.kfp.steps import read_ref, reported, run_folder, write_ref

    with reported("package"):
        out = run_folder(artifacts_root, run_id, variant, "package")
        info = make_package(model_dir=read_ref(model.path), variant=variant, out_dir=out,
                            data=read_ref(data.path), eval_dir=evaluation.path,
                            bench_dir=bench.path, tracking_uri=tracking_uri,
                            ensemble=ensemble)
        write_ref(mlflow_model.path, out, variant=variant)
    cards = [p for p in sorted(glob.glob(os.path.join(out, "**", "*.md"), recursive=True))
             if "card" in p.lower()]
    if cards:
        shutil.copyfile(cards[0], model_card.path)
    mlflow_model.metadata.update(variant=variant, sha256=info["checkpoint_sha256"],
                                 path=str(out))


@_component
def publish(registry_uri: str, model_name: str, gate: str, mlflow_model: Input[Model],
            receipt: Output[Artifact]) -> NamedTuple(  # type: ignore[valid-type]
                "Outputs", [("name", str), ("version", str), ("champion_version", str),
                            ("gate_passed", bool)]):
    """Register the package as challenger, promote it to champion when the gate passes."""
    from collections import namedtuple

    from aurora_mlops.kfp.steps import publish as register
    from aurora_mlops.kfp.steps import read_ref, reported

    with reported("publish"):
        r = register(package_dir=read_ref(mlflow_model.path), registry_uri=registry_uri,
                     name=model_name, gate=gate, receipt=receipt.path)
    receipt.metadata.update(name=r["name"], version=r["version"])
    outputs = namedtuple("outputs", ["name", "version", "champion_version", "gate_passed"])
    return outputs(r["name"], r["version"], r["champion_version"] or "", r["gate_passed"])


@_component
def report(evaluations: Input[list[Artifact]], benchmarks: Input[list[Artifact]],
           best_trials: Input[list[Model]], results: Output[Artifact],
           report_html: Output[HTML], report_md: Output[Markdown]) -> None:
    """One report over every variant: scores, lead-time plots, efficiency, best trials."""
    import os
    import shutil

    from aurora_mlops.kfp.steps import combine_report, reported

    def by_variant(items: list) -> dict:
        return {a.metadata.get("variant", str(i)): a.path for i, a in enumerate(items)}

    with reported("report"):
        combine_report(evals=by_variant(evaluations), benches=by_variant(benchmarks),
                       sweeps=by_variant(best_trials), out_dir=results.path)
    shutil.copyfile(os.path.join(results.path, "report.html"), report_html.path)
    shutil.copyfile(os.path.join(results.path, "report.md"), report_md.path)


@_component
def failure_summary(status: PipelineTaskFinalStatus, summary: Output[Markdown]) -> None:
    """The exit handler: write how the run ended (which step failed, its message)."""
    from aurora_mlops.kfp.steps import failure_summary as summarise

    print(summarise({"state": status.state, "pipeline_task_name": status.pipeline_task_name,
                     "error_code": status.error_code, "error_message": status.error_message,
                     "pipeline_job_resource_name": status.pipeline_job_resource_name},
                    summary.path))


#: Every component, by the name it has in the compiled YAML (``components/<name>.yaml``).
ALL = {c.name: c for c in (data_validate, tune, final_fit, evaluate, benchmark, package,
                           publish, report, failure_summary)}
