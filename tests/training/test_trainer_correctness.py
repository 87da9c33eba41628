"""The trainer under DDP (gloo on the CPU), its failure paths, and its MLflow run."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import queue
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from aurora_mlops.errors import RegistryError, TrainingError
from aurora_mlops.training import resolve_params, train_trial
from aurora_mlops.training._distributed import Distributed
from aurora_mlops.training._tracking import MlflowTracker, make_tracker
from aurora_mlops.variants import get_variant

#: A generous bound on how long spawned children may take: a guard against a hang, not a
#: speed check (a healthy run takes seconds).
DEADLINE_S = 240


def _run_children(target: Callable[..., None], args: tuple[Any, ...], world: int = 2) -> list[Any]:
    """Run ``target(rank, world, *args, results)`` in ``world`` spawned processes."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(rank, world, *args, results)) for rank in
             range(world)]
    for p in procs:
        p.start()
    got = []
    try:
        for _ in procs:
            got.append(results.get(timeout=DEADLINE_S))
    except queue.Empty:
        pytest.fail(f"a rank reported nothing within {DEADLINE_S} s (hung in a collective?)")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    return got


def test_distributed_helper_reduces_on_its_own_device_with_gloo(tmp_path: Path) -> None:
    from _ddp_children import helper_child

    got = sorted(_run_children(helper_child, (tmp_path / "store",)), key=lambda r: r["rank"])
    assert [r["rank"] for r in got] == [0, 1] and {r["world"] for r in got} == {2}
    for r in got:
        assert r["mean"] == pytest.approx(1.5)
        assert r["gather"] == [0.0, 10.0]
        assert r["all_finite"] == []
        # Every rank learns which rank went wrong, so all can stop together.
        assert len(r["non_finite"]) == 1 and r["non_finite"][0][0] == 1
        # Collectives use the helper's device (NCCL only reduces tensors on the rank's GPU).
        assert r["devices"] and set(r["devices"]) == {r["device"]}


def test_distributed_helper_on_cuda_sets_the_local_device_before_nccl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ran here instead of NCCL (no GPU): the CUDA branch with CUDA and NCCL stubbed."""
    import torch.distributed as dist

    calls: list[tuple[str, Any]] = []
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group",
                        lambda backend, **_: calls.append(("init", backend)))
    monkeypatch.setattr(dist, "get_rank", lambda: 3)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    helper = Distributed()
    assert helper.device == torch.device("cuda", 1)
    assert calls == [("set_device", torch.device("cuda", 1)), ("init", "nccl")]
    assert helper.ddp_kwargs() == {"device_ids": [1], "output_device": 1}
    assert (helper.rank, helper.world, helper.main) == (3, 4, False)


@pytest.mark.slow
def test_a_nan_on_one_rank_fails_every_rank_with_the_same_message(
    synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    from _ddp_children import trial_child

    data = synthetic_data("medium-res")
    got = _run_children(trial_child, (tmp_path / "store", data, tmp_path / "trial"))
    errors = {rank: (kind, msg) for rank, kind, msg in got}
    assert set(errors) == {0, 1}
    assert errors[0] == errors[1], errors
    kind, msg = errors[0]
    assert kind == "TrainingError"
    assert "became nan at epoch 0 step 1 on rank 1" in msg
    failure = json.loads((tmp_path / "trial" / "failure.json").read_text())
    assert failure["error"] == msg
    assert not (tmp_path / "trial" / "model.ckpt").exists()


def test_a_non_finite_validation_score_fails_the_trial_with_failure_json(
    synthetic_data: Callable[..., Path], tmp_path: Path
) -> None:
    import xarray as xr

    from aurora_mlops.data import split_times

    ds = xr.open_dataset(synthetic_data("medium-res")).load()
    val = split_times(ds.sizes["time"]).val
    ds["msl"][val[0] : val[1]] = float("nan")  # training windows stay finite
    bad = tmp_path / "nan-val.nc"
    ds.to_netcdf(bad)
    with pytest.raises(TrainingError, match=r"validation at epoch 0 gave .*val_score=nan"):
        train_trial(variant=get_variant("medium-res"), data=bad, output_dir=tmp_path / "t",
                    params=resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 2}),
                    profile="smoke", tracking=False, stdout=io.StringIO())
    failure = json.loads((tmp_path / "t" / "failure.json").read_text())
    assert failure["status"] == "failed" and "val_score=nan" in failure["error"]
    assert not (tmp_path / "t" / "trial.json").exists()


def test_a_tracked_trial_leaves_exactly_one_run_with_its_late_logs(
    synthetic_data: Callable[..., Path], tmp_path: Path, mlflow_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    from aurora_mlops.config import get_settings

    experiment = f"one-run-{tmp_path.name}"  # an experiment of its own on the shared server
    monkeypatch.setenv("AURORA_MLOPS_EXPERIMENT_NAME", experiment)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    try:
        result = train_trial(
            variant=get_variant("medium-res"), data=synthetic_data("medium-res"),
            output_dir=tmp_path / "t",
            params=resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 2}),
            profile="smoke", tracking=True, tracking_uri=mlflow_server, stdout=io.StringIO(),
        )
    finally:
        get_settings.cache_clear()
    # The trial's tracking URI does not outlive it in this process (nor in its environment).
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert mlflow.get_tracking_uri() != mlflow_server
    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    run_id = json.loads(result.trial_json.read_text())["mlflow_run_id"]
    assert [r.info.run_id for r in runs] == [run_id]  # no stray run from a late log call
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["variant"] == "medium-res"
    assert "system_train_steps" in run.data.metrics  # logged before the run ended
    assert [a.path for a in client.list_artifacts(run_id)] == ["config.json"]


def test_the_tracker_refuses_to_log_after_end() -> None:
    tracker = make_tracker("mlflow", enabled=False, uri=None, experiment="x")
    tracker.log_metrics({"a": 1.0})
    tracker.end("FINISHED")
    for call in (lambda: tracker.log_metrics({"a": 1.0}), lambda: tracker.log_params({"a": 1}),
                 lambda: tracker.log_artifact(Path("x"))):
        with pytest.raises(RuntimeError, match="after end"):
            call()


def test_the_tracker_never_logs_the_credentials_of_its_uri(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from aurora_mlops._redact import redact_uri

    # Port 9 (discard) on loopback: nothing answers, and the error names the URI redacted.
    tracker = MlflowTracker(enabled=True, uri="http://alice:s3cret@127.0.0.1:9", experiment="x")
    with caplog.at_level("WARNING"), pytest.raises(RegistryError) as info:
        tracker.start(run_name="r", tags={}, parent_run_id=None)
    text = caplog.text + str(info.value)
    assert "http://***@127.0.0.1:9" in text and "s3cret" not in text and "alice" not in text
    assert redact_uri("a https://u:p@h/x and postgresql://v@db:5432/m") == (
        "a https://***@h/x and postgresql://***@db:5432/m")
    assert redact_uri("http://host:5000/path@x") == "http://host:5000/path@x"  # no user-info
