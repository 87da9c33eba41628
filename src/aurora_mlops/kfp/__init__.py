"""The Kubeflow Pipelines v2 definitions: components, the two pipelines, compile and local runs.

- :mod:`.steps`: what each component runs (plain library code over paths, no kfp);
- :mod:`.components`: one lightweight component per step, in the project image;
- :mod:`.tune_and_publish`: ``aurora-tune-and-publish`` (one variant, dataset to champion);
- :mod:`.all_variants`: ``aurora-all-variants`` (``ParallelFor`` over variants, one report);
- :mod:`.monitor`: ``aurora-monitor`` (the champion on each new window, drift, alerts);
- :func:`compile_all`: the YAML under ``components/`` and ``pipelines/``;
- :func:`run_pipeline_locally`: ``aurora-mlops pipeline run --local`` through ``kfp.local``.

Public names are imported lazily: ``import aurora_mlops.kfp`` does not import kfp.
"""

from __future__ import annotations

from aurora_mlops._lazy import lazy_exports

__all__ = [
    "LocalBudget",
    "LocalRun",
    "MonitorRun",
    "PipelineFailed",
    "TaskTiming",
    "compile_all",
    "compiled_texts",
    "run_monitor_locally",
    "run_pipeline_locally",
    "task_timings",
]

_LAZY = {
    "compile_all": "aurora_mlops.kfp._compile",
    "compiled_texts": "aurora_mlops.kfp._compile",
    "LocalBudget": "aurora_mlops.kfp._run_local",
    "LocalRun": "aurora_mlops.kfp._run_local",
    "MonitorRun": "aurora_mlops.kfp._monitor_local",
    "run_monitor_locally": "aurora_mlops.kfp._monitor_local",
    "PipelineFailed": "aurora_mlops.kfp._run_local",
    "run_pipeline_locally": "aurora_mlops.kfp._run_local",
    "TaskTiming": "aurora_mlops.kfp._run_local",
    "task_timings": "aurora_mlops.kfp._run_local",
}


__getattr__ = lazy_exports(__name__, _LAZY)
