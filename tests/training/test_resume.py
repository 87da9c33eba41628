"""Resumable trials: a trial continued with ``--resume-from`` equals one uninterrupted trial of
the same total budget (weights, optimiser, schedule, random state, data order); a trial that
stopped early is not trained further; a continuation that could not be equal is refused."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import aurora_mlops.training._loop as loop_module
from aurora_mlops.cli import main
from aurora_mlops.katib_metrics import KATIB_METRIC_PATTERN
from aurora_mlops.training import (
    STATE_FILE,
    load_train_state,
    resolve_params,
    resume_point,
    train_trial,
)
from aurora_mlops.variants import get_variant

#: Every part of the state matters here: drop path draws random numbers, weight decay and
#: AdamW's moments carry over, two micro-batches per step move the data order twice as fast as
#: the steps, and over 12 steps the schedule warms up for 2 and restarts its cosine every 4.
BASE: dict[str, Any] = {
    "steps_per_epoch": 3, "accumulation_steps": 2, "batch_size": 2, "val_windows": 2,
    "drop_path": 0.1, "weight_decay": 0.05, "warmup_steps": 2, "t0": 4, "patience": 10,
    "seed": 3,
}
#: Ocean waves trains its density channels (the model's auxiliary outputs), the spectral loss
#: and the coastal mask as an extra static input.
EXTRA: dict[str, dict[str, Any]] = {
    "medium-res": {},
    "ocean-waves": {"coastal_conditioning": True, "spectral_loss_weight": 0.05},
}
TOL = 1e-6


@dataclass(frozen=True)
class Runs:
    """One variant's uninterrupted 4-epoch trial and the 2-epoch trial to continue."""

    variant: str
    data: Path
    full: Path
    part: Path
    full_lines: list[tuple[str, float]]


def _lines(text: str) -> list[tuple[str, float]]:
    return [(m[0], float(m[1])) for m in re.findall(KATIB_METRIC_PATTERN, text)]


def _train(variant: str, data: Path, out: Path, epochs: int, **given: Any) -> str:
    stdout = io.StringIO()
    params = resolve_params("smoke", {**BASE, **EXTRA[variant], "epochs": epochs, **given})
    train_trial(variant=get_variant(variant), data=data, output_dir=out, params=params,
                profile="smoke", tracking=False, stdout=stdout)
    return stdout.getvalue()


@pytest.fixture(scope="module")
def trained(
    synthetic_data: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Runs]:
    """``trained(variant)``: its :class:`Runs`, trained once per module."""
    cache: dict[str, Runs] = {}

    def get(variant: str) -> Runs:
        if variant not in cache:
            data, root = synthetic_data(variant), tmp_path_factory.mktemp(variant)
            text = _train(variant, data, root / "full", 4)
            _train(variant, data, root / "part", 2)
            cache[variant] = Runs(variant, data, root / "full", root / "part", _lines(text))
        return cache[variant]

    return get


def _trial(out: Path) -> dict[str, Any]:
    return json.loads((out / "trial.json").read_text())


def _state(out: Path) -> dict[str, Any]:
    return load_train_state(out / STATE_FILE)


def _close(a: Any, b: Any) -> bool:
    return bool(a == pytest.approx(b, rel=0, abs=TOL))


def _resume(runs: Runs, out: Path, epochs: int = 4) -> str:
    stdout = io.StringIO()
    train_trial(variant=get_variant(runs.variant), data=runs.data, output_dir=out,
                params=resume_point(runs.part).params_with({"epochs": epochs}), profile="smoke",
                tracking=False, stdout=stdout, resume_from=runs.part)
    return stdout.getvalue()


def _assert_same_training(full: Path, resumed: Path) -> None:
    one, two = _trial(full), _trial(resumed)
    assert len(two["history"]) == len(one["history"])
    for a, b in zip(one["history"], two["history"], strict=True):
        assert a.keys() == b.keys() and _close(list(a.values()), list(b.values())), (a, b)
    assert _close(one["step_losses"], two["step_losses"])
    assert one["best_epoch"] == two["best_epoch"]
    assert one["metrics"].keys() == two["metrics"].keys()
    assert _close(list(one["metrics"].values()), list(two["metrics"].values()))
    best_one, best_two = (torch.load(d / "model.ckpt", weights_only=True) for d in (full, resumed))
    end_one, end_two = (_state(d)["model"] for d in (full, resumed))
    for a, b in ((best_one, best_two), (end_one, end_two)):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=TOL, msg=key)


@pytest.mark.parametrize("variant", list(EXTRA))
def test_a_resumed_trial_equals_an_uninterrupted_one(
    variant: str, trained: Callable[[str], Runs], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = trained(variant)
    out = tmp_path / "resumed"
    # The Katib chain's command: the budget and a speed knob; everything else from DIR (no
    # smoke defaults over DIR's parameters, which would change them and be refused).
    code = main(["train-trial", "--output", str(out), "--resume-from", str(runs.part),
                 "--no-tracking", "--epochs=4", "--prefetch_factor=3"])
    assert code == 0
    _assert_same_training(runs.full, out)
    trial = _trial(out)
    assert trial["params"] == {**_trial(runs.full)["params"], "prefetch_factor": 3}
    # Katib takes the best of all the lines a trial printed: the earlier epochs' come first.
    printed = _lines(capsys.readouterr().out)
    assert [n for n, _ in printed] == [n for n, _ in runs.full_lines]
    assert _close([v for _, v in printed], [v for _, v in runs.full_lines])
    part = _trial(runs.part)
    assert trial["resumed_from"] == {"path": str(runs.part.resolve()), "epochs": 2,
                                     "train_state_sha256": part["train_state"]["sha256"]}
    assert trial["timings"]["train_steps"] == 6 and trial["timings"]["total_train_steps"] == 12
    assert trial["train_state"]["bytes"] == (out / STATE_FILE).stat().st_size
    assert _state(out)["data"]["micro_batches"] == 24  # 12 steps of 2 micro-batches


def test_the_resumed_mlflow_run_logs_the_new_epochs_and_where_it_resumed_from(
    trained: Callable[[str], Runs], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("AURORA_MLOPS_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    runs, uri, out = trained("medium-res"), f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "r"
    train_trial(variant=get_variant("medium-res"), data=runs.data, output_dir=out,
                params=resume_point(runs.part).params_with({"epochs": 4}), profile="smoke",
                tracking_uri=uri, stdout=io.StringIO(), resume_from=runs.part)
    client = mlflow.MlflowClient(uri)
    run = client.get_run(_trial(out)["mlflow_run_id"])
    assert run.data.tags["resumed_from"] == str(runs.part.resolve())
    history = client.get_metric_history(run.info.run_id, "val_score")
    assert [m.step for m in history] == [2, 3]  # the earlier epochs are in the earlier run
    assert _close([m.value for m in history],
                  [h["val_score"] for h in _trial(runs.full)["history"][2:]])


def _no_sampler_position(real: Callable[..., Any]) -> Callable[..., Any]:
    return lambda *args, start=0, **kwargs: real(*args, start=0, **kwargs)


#: Each part of the state, left out of the restore: the resumed trial must then differ.
SABOTAGE: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "data-order": lambda mp: mp.setattr(loop_module, "train_batches",
                                        _no_sampler_position(loop_module.train_batches)),
    "random-state": lambda mp: mp.setattr(loop_module, "restore_rng", lambda *a: None),
    "optimizer": lambda mp: mp.setattr(torch.optim.AdamW, "load_state_dict", lambda *a: None),
    "schedule": lambda mp: mp.setattr(torch.optim.lr_scheduler.SequentialLR, "load_state_dict",
                                      lambda *a: None),
}


@pytest.mark.parametrize("part", list(SABOTAGE))
def test_each_part_of_the_state_is_needed(
    part: str, trained: Callable[[str], Runs], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = trained("medium-res")
    SABOTAGE[part](monkeypatch)
    _resume(runs, tmp_path / "resumed")
    full, resumed = _trial(runs.full), _trial(tmp_path / "resumed")
    assert _close(full["step_losses"][:6], resumed["step_losses"][:6])  # the earlier part
    assert not _close(full["step_losses"][6:], resumed["step_losses"][6:]), part


def test_a_trial_that_stopped_early_is_not_trained_further(
    synthetic_data: Callable[..., Path], tmp_path: Path,
) -> None:
    data = synthetic_data("medium-res")
    # No epoch improves on the first by min_delta: a plateau after the second of 4 epochs.
    _train("medium-res", data, tmp_path / "part", 4, patience=1, min_delta=1e9)
    part = _trial(tmp_path / "part")
    assert len(part["history"]) == 2
    runs = Runs("medium-res", data, tmp_path / "full", tmp_path / "part", [])
    text = _resume(runs, tmp_path / "resumed", epochs=6)
    trial = _trial(tmp_path / "resumed")
    assert trial["history"] == part["history"] and trial["step_losses"] == part["step_losses"]
    assert trial["metrics"] == part["metrics"] and trial["params"]["epochs"] == 6
    assert trial["timings"]["train_steps"] == 0 and trial["timings"]["total_train_steps"] == 6
    assert trial["checkpoint"]["sha256"] == part["checkpoint"]["sha256"]
    assert _state(tmp_path / "resumed")["loop"]["stopped_early"] is True
    assert [n for n, _ in _lines(text)].count("val_score") == 2


def _copy_without(src: Path, dest: Path, name: str) -> Path:
    shutil.copytree(src, dest)
    (dest / name).unlink()
    return dest


def _tampered(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    with (dest / STATE_FILE).open("ab") as f:
        f.write(b"\0")
    return dest


def _curriculum(src: Path, dest: Path) -> Path:
    data = Path(_trial(src)["data"]["path"])
    _train("medium-res", data, dest, 1, steps_per_epoch=1, rollout_steps=2, curriculum=True)
    return dest


#: (id, how DIR is made from the 2-epoch trial, extra flags, phrase of the refusal).
REFUSED: list[tuple[str, Callable[[Path, Path], Path], list[str], str]] = [
    ("no-state", lambda s, d: _copy_without(s, d, STATE_FILE), [], "has no train_state.pt"),
    ("no-record", lambda s, d: _copy_without(s, d, "trial.json"), [], "has no trial.json"),
    ("tampered-state", _tampered, [], "the state changed after the trial wrote it"),
    ("other-variant", lambda s, d: s, ["--variant", "high-res"], "trained --variant medium-res"),
    ("other-profile", lambda s, d: s, ["--profile", "production"], "trained --profile smoke"),
    ("other-data", lambda s, d: s, ["--data", "OTHER"], "must read the same dataset"),
    ("changed-param", lambda s, d: s, ["--learning_rate=0.01", "--seed=4"],
     "changes --learning_rate=0.01 (was 0.003), --seed=4 (was 3)"),
    ("fewer-epochs", lambda s, d: s, ["--epochs=1"], "fewer than the 2 epochs"),
    ("curriculum-dir", _curriculum, ["--epochs=2"], "--curriculum cannot be resumed"),
    ("curriculum-flag", lambda s, d: s, ["--curriculum=on"], "--curriculum cannot be resumed"),
    ("other-init", lambda s, d: s, ["--init", "hub"], "started from no --init"),
    ("with-from-sweep", lambda s, d: s, ["--from-sweep", "."], "cannot be combined"),
]


@pytest.mark.parametrize(("make", "flags", "phrase"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_a_continuation_that_could_not_be_equal_is_refused(
    make: Callable[[Path, Path], Path], flags: list[str], phrase: str,
    trained: Callable[[str], Runs], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    runs = trained("medium-res")
    source = make(runs.part, tmp_path / "dir")
    if "OTHER" in flags:
        flags = [str(shutil.copy(runs.data, tmp_path / "other.nc")) if f == "OTHER" else f
                 for f in flags]
    out = tmp_path / "out"
    capsys.readouterr()
    code = main(["train-trial", "--output", str(out), "--resume-from", str(source),
                 "--no-tracking", *flags])
    err = capsys.readouterr().err
    assert code == 1, err
    assert phrase in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def _torchrun(python: str, *args: str) -> None:
    """torchrun of two ``train-trial`` workers; ``python`` (the ``warm_python`` fixture) runs
    the launcher and, with ``--no-python``, each worker (torch/distributed/run.py: the
    command is then run as given, not prefixed with the launcher's own interpreter)."""
    proc = subprocess.run(
        [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "--no-python", python, "-m", "aurora_mlops", "train-trial", "--no-tracking", *args],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_a_resumed_ddp_trial_equals_an_uninterrupted_one(
    synthetic_data: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    warm_python: str,
) -> None:
    data = synthetic_data("medium-res")
    common = ["--variant", "medium-res", "--data", str(data), "--profile", "smoke",
              "--steps_per_epoch=2", "--batch_size=1", "--val_windows=2", "--drop_path=0.1",
              "--weight_decay=0.05", "--warmup_steps=1", "--t0=2", "--seed=5"]
    _torchrun(warm_python, "--output", str(tmp_path / "full"), *common, "--epochs=2")
    _torchrun(warm_python, "--output", str(tmp_path / "part"), *common, "--epochs=1")
    # Every rank loads the state that rank 0 wrote.
    _torchrun(warm_python, "--output", str(tmp_path / "resumed"), "--resume-from",
              str(tmp_path / "part"), "--epochs=2")
    _assert_same_training(tmp_path / "full", tmp_path / "resumed")
    assert _trial(tmp_path / "resumed")["versions"]["world_size"] == 2
    # One process cannot continue what two trained: its global batch would differ.
    out = tmp_path / "one"
    code = main(["train-trial", "--output", str(out), "--resume-from", str(tmp_path / "part"),
                 "--no-tracking", "--epochs=2"])
    err = capsys.readouterr().err
    assert code == 1 and "trained on 2 process(es) but this trial runs on 1" in err
    assert err.count("\n") == 1 and not out.exists()


@pytest.mark.gpu
def test_the_cuda_generator_is_saved_and_restored() -> None:
    """Drop path on a GPU draws from the device's generator, which the state keeps too."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from aurora_mlops.training._resume import restore_rng, rng_state

    device = torch.device("cuda", torch.cuda.current_device())
    state = rng_state(device)
    first = (torch.rand(8, device=device), torch.rand(8))
    torch.rand(8, device=device)  # move on, then back
    restore_rng(state, device)
    assert torch.equal(first[0], torch.rand(8, device=device))
    assert torch.equal(first[1], torch.rand(8))


def test_every_generator_comes_back_through_the_state_file(tmp_path: Path) -> None:
    import random

    import numpy as np

    from aurora_mlops.training._resume import restore_rng, rng_state

    cpu = torch.device("cpu")
    torch.save(rng_state(cpu), tmp_path / "rng.pt")

    def draw() -> tuple[float, float, float, float]:
        return (random.random(), float(np.random.rand()), float(np.random.randn()),
                float(torch.rand(1)))

    first = draw()
    draw()
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True), cpu)
    assert draw() == first


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (tensors: dtype, shape and values)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape \
            and torch.equal(a, b)
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def test_a_packed_state_loads_back_whole_and_each_tensor_on_its_own(tmp_path: Path) -> None:
    """train_state.pt holds its tensors in one flat tensor per dtype (a few records for
    torch.save instead of one per tensor); loaded, the state is what was saved, each tensor in
    storage of its own, and the file still loads with ``weights_only=True``."""
    from aurora_mlops.training._resume import pack_state, rng_state, unpack_state

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    state = {
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(),  # int keys, 0-d "step" tensors, param groups
        "rng": rng_state(torch.device("cpu")),  # a uint8 tensor, tuples and lists of ints
        "loop": {"history": [{"val_score": 0.5}], "best": 0.5, "mask": torch.tensor([True]),
                 "transposed": torch.arange(6.0).reshape(2, 3).t(), "stopped_early": False},
    }
    torch.save(pack_state(state), tmp_path / STATE_FILE)
    back = load_train_state(tmp_path / STATE_FILE)  # weights_only=True
    assert _same(state, back)
    for t in (back["model"]["0.weight"], back["optimizer"]["state"][0]["exp_avg"]):
        assert t.untyped_storage().nbytes() == t.numel() * t.element_size()
    assert unpack_state(state) is state  # a state saved before packing reads as it is
