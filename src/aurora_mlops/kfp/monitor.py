"""Pipeline ``aurora-monitor``: score the champion on each new window of data, every night.

monitor (load ``models:/NAME@ALIAS``, take each complete window since the last one monitored,
validate, roll out, score against persistence and climatology, check input and skill drift,
append to the history and one MLflow run per window, POST an alert) -> on an alarm, and only
with ``retrain=True``: retrain (start ``aurora-tune-and-publish`` on the newest data, whose
gate decides whether a new champion replaces the old). Schedule it nightly with
``aurora-mlops pipeline schedule --pipeline aurora-monitor --cron "0 0 2 * * *"``.

The monitor step's webhook URL comes from the optional Secret :data:`WEBHOOK_SECRET` (key
``url``): without it the step runs and sends nothing. Compile with ``python -m
aurora_mlops.kfp.monitor OUT.yaml`` (or ``aurora-mlops pipeline compile``).
"""

# No ``from __future__ import annotations``: kfp reads the annotations as types.

import sys
from typing import Any

from kfp import compiler, dsl, kubernetes
from kfp.dsl import HTML, Artifact, Markdown, Metrics, Output

from aurora_mlops.config import Settings, get_settings
from aurora_mlops.kfp._platform import ARTIFACTS_MOUNT, cpu_step, gpu_step
from aurora_mlops.kfp.components import _component

__all__ = ["NAME", "WEBHOOK_SECRET", "aurora_monitor", "build", "monitor", "retrain"]

NAME = "aurora-monitor"
#: The Secret whose key ``url`` becomes ``AURORA_MLOPS_MONITOR_WEBHOOK_URL`` (optional).
WEBHOOK_SECRET = "aurora-monitor-webhook"


@_component
def monitor(model_uri: str, dataset_uri: str, reference_uri: str, tracking_uri: str,
            experiment: str, monitor_dir: str, artifacts_root: str, window_hours: int,
            lead_steps: int, since: str, window_start: str, drift_threshold: float,
            summary: Output[Markdown], report_html: Output[HTML], metrics: Output[Metrics],
            history: Output[Artifact]) -> bool:
    """Monitor every new window; returns whether any raised an alarm."""
    import shutil

    from aurora_mlops.kfp.monitor_steps import watch
    from aurora_mlops.kfp.steps import reported, write_ref

    with reported("monitor"):
        doc = watch(model_uri=model_uri, dataset_uri=dataset_uri, reference_uri=reference_uri,
                    tracking_uri=tracking_uri, experiment=experiment, monitor_dir=monitor_dir,
                    artifacts_root=artifacts_root, window_hours=window_hours,
                    lead_steps=lead_steps, since=since, window_start=window_start,
                    drift_threshold=drift_threshold)
    for name, value in doc["metrics"].items():
        metrics.log_metric(name, value)
    shutil.copyfile(doc["summary"], summary.path)
    if doc["report"]:
        shutil.copyfile(doc["report"], report_html.path)
    else:
        shutil.copyfile(doc["summary"], report_html.path)
    write_ref(history.path, doc["history"], model=model_uri)
    with open(doc["summary"]) as f:
        print(f.read())
    return bool(doc["alarm"])


@_component
def retrain(variant: str, dataset_uri: str, params: str) -> str:
    """Start ``aurora-tune-and-publish`` on the newest data; returns the run's URL."""
    from aurora_mlops.kfp.monitor_steps import submit_retraining
    from aurora_mlops.kfp.steps import reported

    with reported("retrain"):
        url = submit_retraining(variant=variant, dataset_uri=dataset_uri, params=params)
    print(f"retraining started: {url}")
    return url


def build(settings: Settings | None = None, *, artifacts_root: str = ARTIFACTS_MOUNT) -> Any:
    """The ``aurora-monitor`` pipeline for ``settings`` (``cpu_only``: the dev build);
    ``artifacts_root``: where the artifacts volume is (a folder of the work dir locally)."""
    s = settings or get_settings()

    def aurora_monitor(
        model_uri: str = "models:/aurora-medium-res@champion",
        dataset_uri: str = "",
        reference_uri: str = "",
        tracking_uri: str = "",
        experiment: str = "aurora-monitor",
        monitor_dir: str = "",
        window_hours: int = 24,
        lead_steps: int = 4,
        since: str = "",
        window_start: str = "",
        drift_threshold: float = 0.2,
        retrain_on_alarm: bool = False,
        retrain_variant: str = "medium-res",
        retrain_params: str = "",
    ) -> None:
        """Monitor the champion on the new windows; retrain on an alarm when asked."""
        watch = monitor(model_uri=model_uri, dataset_uri=dataset_uri,
                        reference_uri=reference_uri, tracking_uri=tracking_uri,
                        experiment=experiment, monitor_dir=monitor_dir,
                        artifacts_root=artifacts_root, window_hours=window_hours,
                        lead_steps=lead_steps, since=since, window_start=window_start,
                        drift_threshold=drift_threshold)
        # Never cached: the same arguments mean "the windows that arrived since", every night.
        gpu_step(watch, s).set_caching_options(False)
        kubernetes.use_secret_as_env(watch, secret_name=WEBHOOK_SECRET,
                                     secret_key_to_env={"url": "AURORA_MLOPS_MONITOR_WEBHOOK_URL"},
                                     optional=True)
        # kfp.local resolves a condition on a task output only when it is the single return
        # value, named "Output"; the two conditions are KFP expressions, not Python booleans.
        alarm = watch.outputs["Output"] == True  # noqa: E712
        asked = retrain_on_alarm == True  # noqa: E712
        with dsl.If(alarm, name="alarm"), dsl.If(asked, name="retrain-on-alarm"):
            again = retrain(variant=retrain_variant, dataset_uri=dataset_uri,
                            params=retrain_params)
            cpu_step(again, s, secret=False).set_caching_options(False)

    return dsl.pipeline(aurora_monitor, name=NAME, description=(
        "Score the registry's champion on each new window of data against persistence and "
        "climatology, detect input and skill drift, keep the history in MLflow and Parquet, "
        "alert a webhook, and optionally start a retraining run on an alarm."))


#: The pipeline as compiled into ``pipelines/aurora-monitor.yaml``.
aurora_monitor = build()


if __name__ == "__main__":  # pragma: no cover
    compiler.Compiler().compile(aurora_monitor, sys.argv[1] if len(sys.argv) > 1
                                else f"pipelines/{NAME}.yaml")
