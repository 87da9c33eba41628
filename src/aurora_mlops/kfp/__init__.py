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

from typing import TYPE_CHECKING

from aurora_mlops._lazy import lazy_exports

if TYPE_CHECKING:
    from aurora_mlops.kfp._compile import compile_all, compiled_texts
    from aurora_mlops.kfp._monitor_local import MonitorRun, run_monitor_locally
    from aurora_mlops.kfp._run_local import (
        LocalBudget,
        LocalRun,
        PipelineFailed,
        TaskTiming,
        run_pipeline_locally,
        task_timings,
    )

__getattr__, __dir__, __all__ = lazy_exports(__name__)
