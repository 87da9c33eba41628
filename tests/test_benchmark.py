"""aurora-mlops benchmark: every figure, its environment, the CPU fallback, bad input, atomicity."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from aurora_mlops._io import atomic_write
from aurora_mlops.benchmark import CPU_FALLBACK_NOTE, SCHEMA, run_benchmark, summarise
from aurora_mlops.cli import main
from aurora_mlops.data import synthesize, write_dataset
from aurora_mlops.training import load_trained, resolve_params, train_trial
from aurora_mlops.variants import get_variant

pytestmark = pytest.mark.slow

#: A trial just long enough to write a checkpoint.
TINY_TRIAL = {"epochs": 1, "steps_per_epoch": 2, "val_windows": 2, "batch_size": 1}
#: Few repeats and one thread: seconds on a shared 2-core machine, still every code path.
FAST = [
    "--batch-sizes", "1,2", "--rollout-steps", "2", "--repeats", "3", "--warmup", "1",
    "--train-steps", "2", "--threads", "1",
]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")

Trial = tuple[Path, Path]  # (trial directory, its dataset)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Train and measure on one torch thread: on a shared 2-core box, two OpenMP threads per
    process stall each other and make this module several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Trial]:
    """``trial(variant)`` -> (trial dir, data path) of a tiny smoke trial, trained once."""
    root = tmp_path_factory.mktemp("bench-trials")
    cache: dict[str, Trial] = {}

    def get(variant: str) -> Trial:
        if variant not in cache:
            data = write_dataset(synthesize(variant, times=24, seed=1), root / f"{variant}.nc")
            result = train_trial(
                variant=get_variant(variant),
                data=data,
                output_dir=root / variant,
                params=resolve_params("smoke", TINY_TRIAL),
                profile="smoke",
                tracking=False,
                stdout=io.StringIO(),
            )
            cache[variant] = (result.output_dir, data)
        return cache[variant]

    return get


@pytest.fixture(scope="module")
def medium(
    trial: Callable[[str], Trial], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any], str, str]:
    """One CLI run on the medium-res trial: (out dir, benchmark.json, stdout, stderr)."""
    trial_dir, _ = trial("medium-res")
    out = tmp_path_factory.mktemp("bench") / "report"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(
            ["benchmark", "--model", str(trial_dir), "--variant", "medium-res", "--out", str(out),
             *FAST]
        )
    assert code == 0, stderr.getvalue()
    return out, json.loads((out / "benchmark.json").read_text()), stdout.getvalue(), \
        stderr.getvalue()


def test_summarise_known_answer() -> None:
    s = summarise([float(x) for x in range(1, 101)])
    assert s["median"] == 50.5
    assert s["p95"] == pytest.approx(95.05)
    assert (s["min"], s["max"], s["n"]) == (1.0, 100.0, 100)


def test_every_section_precision_and_batch_size_is_measured(
    medium: tuple[Path, dict[str, Any], str, str],
) -> None:
    _, report, _, _ = medium
    assert report["schema"] == SCHEMA
    ids = {f["id"] for f in report["figures"]}
    assert ids == {
        f"{s}/{p}/bs{b}"
        for s in ("inference", "training")
        for p in ("fp32", "bf16-autocast")
        for b in (1, 2)
    }
    for f in report["figures"]:
        assert "error" not in f, f
        key = "step_latency_s" if f["section"] == "inference" else "step_time_s"
        stats = f[key]
        assert stats["p95"] >= stats["median"] > 0, f
        assert stats["max"] >= stats["p95"] and stats["min"] <= stats["median"]
        assert f["samples_per_s"] > 0
        assert f["samples_per_s"] == pytest.approx(f["batch_size"] / stats["median"])
        if f["section"] == "inference":
            assert stats["n"] == 3 * 2  # repeats x rollout steps, warm-up left out
            assert len(f["per_step_median_s"]) == 2
            assert f["rollout_s"]["median"] > 0
        else:
            assert stats["n"] == 2 and f["optimizer"] == "AdamW"
            assert f["loss_last"] is not None and f["loss_last"] > 0
        assert f["cpu_rss_peak_bytes"] > 0 and f["cpu_rss_now_bytes"] > 0
    assert report["settings"]["amp_modes"] == ["fp32", "bf16-autocast"]

    rows = report["amp_comparison"]
    assert {(r["section"], r["batch_size"]) for r in rows} == {
        (s, b) for s in ("inference", "training") for b in (1, 2)
    }
    for r in rows:
        assert r["speedup"] == pytest.approx(r["fp32"] / r["bf16_autocast"])


def test_model_figures_match_the_checkpoint(
    medium: tuple[Path, dict[str, Any], str, str], trial: Callable[[str], Trial]
) -> None:
    _, report, _, _ = medium
    trial_dir, _ = trial("medium-res")
    loaded = load_trained(trial_dir).model
    model = report["model"]
    assert model["parameters_total"] == sum(p.numel() for p in loaded.parameters())
    assert model["parameters_trainable"] == sum(
        p.numel() for p in loaded.parameters() if p.requires_grad
    )
    ckpt = trial_dir / "model.ckpt"
    assert model["checkpoint_bytes"] == ckpt.stat().st_size
    trial_json = json.loads((trial_dir / "trial.json").read_text())
    assert model["checkpoint_sha256"] == trial_json["checkpoint"]["sha256"]
    assert model["variant"] == "medium-res" and model["profile"] == "smoke"
    # No --data: synthetic windows on the trial's own grid, and the report says so.
    assert report["input"]["source"] == "synthetic"
    assert report["input"]["grid"] == [32, 64]
    assert "the trial's dataset" in report["input"]["grid_source"]


@NO_CUDA
def test_cpu_fallback_says_so(medium: tuple[Path, dict[str, Any], str, str]) -> None:
    _, report, stdout, stderr = medium
    assert report["device"] == {
        "type": "cpu", "cuda": False, "cuda_available": False, "note": CPU_FALLBACK_NOTE
    }
    assert report["memory"]["cuda"] is False and report["memory"]["note"] == CPU_FALLBACK_NOTE
    assert report["memory"]["cuda_peak_bytes"] is None
    assert all(f["cuda_peak_bytes"] is None for f in report["figures"])
    assert report["env"]["cuda"] is None
    assert CPU_FALLBACK_NOTE in stdout and CPU_FALLBACK_NOTE in stderr
    # ru_maxrss only grows: the run's peak bounds every section's.
    assert report["memory"]["cpu_rss_peak_bytes"] >= max(
        f["cpu_rss_peak_bytes"] for f in report["figures"]
    )


def test_every_figure_names_its_environment(
    medium: tuple[Path, dict[str, Any], str, str],
) -> None:
    _, report, _, _ = medium
    env = report["env"]
    assert len(env["id"]) == 12 and env["hostname"] and env["timestamp_utc"].endswith("+00:00")
    assert env["versions"]["torch"] == torch.__version__
    assert set(env["versions"]) >= {"python", "torch", "aurora", "aurora_mlops"}
    assert env["cpu"]["model"] and env["cpu"]["torch_threads"] == 1  # --threads 1
    assert torch.__version__ in env["summary"] and env["cpu"]["model"] in env["summary"]
    carriers = [
        *report["figures"], *report["amp_comparison"], report["model"], report["memory"]
    ]
    for figure in carriers:
        assert figure["env"] == {"id": env["id"], "summary": env["summary"]}


def test_markdown_and_progress(medium: tuple[Path, dict[str, Any], str, str]) -> None:
    out, report, stdout, stderr = medium
    md = (out / "benchmark.md").read_text()
    env = report["env"]
    first = report["figures"][0]
    assert first["id"] == "inference/fp32/bs1"
    for text in (
        env["id"],
        env["cpu"]["model"],
        f"{report['model']['parameters_total']:,}",
        f"{report['model']['checkpoint_bytes']:,} bytes",
        "## Inference latency per rollout step",
        "## Training step",
        "## AMP: bf16 autocast against fp32",
        f"{first['step_latency_s']['median'] * 1e3:,.2f}",
        f"{first['step_latency_s']['p95'] * 1e3:,.2f}",
        f"{first['samples_per_s']:,.2f}",
    ):
        assert text in md, text
    if not torch.cuda.is_available():
        assert CPU_FALLBACK_NOTE in md
    assert "benchmark: inference fp32 batch 1: measuring" in stderr
    assert "benchmark: training bf16-autocast batch 2: median" in stderr
    assert "inference/fp32/bs1: median" in stdout
    # Only the two reports: no temporary files left behind.
    assert sorted(p.name for p in out.iterdir()) == ["benchmark.json", "benchmark.md"]


@pytest.mark.parametrize("variant", ["medium-res", "air-pollution"])
def test_real_windows_and_one_precision(
    variant: str, trial: Callable[[str], Trial], tmp_path: Path
) -> None:
    trial_dir, data = trial(variant)
    lines: list[str] = []
    torch.set_num_threads(2)  # the caller's setting: the run uses --threads 1, then gives 2 back
    try:
        report = run_benchmark(
            trial_dir / "model.ckpt",
            variant,
            data=data,
            out_dir=tmp_path / "out",
            batch_sizes=(2,),
            rollout_steps=2,
            repeats=2,
            warmup=1,
            train_steps=1,
            amp_modes=None,  # the trial's own precision only
            threads=1,
            progress=lines.append,
        )
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert report["env"]["cpu"]["torch_threads"] == 1
    assert report["input"]["source"] == "data" and report["input"]["split"] == "test"
    assert report["input"]["path"] == str(data)
    assert [f["id"] for f in report["figures"]] == ["inference/fp32/bs2", "training/fp32/bs2"]
    assert report["amp_comparison"] == []
    for f in report["figures"]:
        stats = f["step_latency_s" if f["section"] == "inference" else "step_time_s"]
        assert stats["p95"] >= stats["median"] > 0
    assert any("measuring" in line for line in lines)
    assert "AMP comparison not run" in (tmp_path / "out" / "benchmark.md").read_text()


def test_variant_mismatch_is_one_sentence(
    trial: Callable[[str], Trial], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trial_dir, _ = trial("medium-res")
    out = tmp_path / "out"
    code = main(
        ["benchmark", "--model", str(trial_dir), "--variant", "air-pollution", "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "trained for variant medium-res, not air-pollution" in err
    assert "--variant medium-res" in err and "Traceback" not in err
    assert not out.exists()


def test_missing_checkpoint_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["benchmark", "--model", str(tmp_path / "nope"), "--variant", "medium-res",
         "--out", str(tmp_path / "out")]
    )
    assert code == 1
    assert "no such checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@NO_CUDA
def test_cuda_asked_without_cuda_exits_1(
    trial: Callable[[str], Trial], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trial_dir, _ = trial("medium-res")
    code = main(
        ["benchmark", "--model", str(trial_dir), "--variant", "medium-res",
         "--out", str(tmp_path / "out"), "--device", "cuda"]
    )
    assert code == 1
    assert "--device cuda asked for CUDA but torch sees no CUDA device" in capsys.readouterr().err


def test_bad_batch_sizes_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        main(["benchmark", "--model", "m", "--variant", "medium-res", "--out", "o",
              "--batch-sizes", "1,x"])
    assert e.value.code == 2


def test_interrupted_run_leaves_no_report(
    trial: Callable[[str], Trial], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aurora_mlops.benchmark._run as run_mod

    def killed(*args: object, **kwargs: object) -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "time_training", killed)
    trial_dir, _ = trial("medium-res")
    out = tmp_path / "out"
    code = main(
        ["benchmark", "--model", str(trial_dir), "--variant", "medium-res", "--out", str(out),
         "--batch-sizes", "1", "--rollout-steps", "1", "--repeats", "1", "--warmup", "0",
         "--no-amp-compare", "--threads", "1"]
    )
    assert code == 130
    assert not out.exists() or not any(out.iterdir())


def test_atomic_write_leaves_nothing_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "benchmark.json", "{}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_peak_memory_per_figure(trial: Callable[[str], Trial], tmp_path: Path) -> None:
    trial_dir, _ = trial("medium-res")
    report = run_benchmark(
        trial_dir, "medium-res", out_dir=tmp_path / "out", batch_sizes=(1, 2), rollout_steps=2,
        repeats=3, warmup=1, train_steps=2, device="cuda",
    )
    assert report["device"]["cuda"] is True and report["device"]["note"] is None
    assert report["env"]["cuda"]["name"]
    for f in report["figures"]:
        assert f["device"].startswith("cuda")
        assert f["cuda_peak_bytes"] is not None and f["cuda_peak_bytes"] > 0, f
    assert report["memory"]["cuda_peak_bytes"] == max(
        f["cuda_peak_bytes"] for f in report["figures"]
    )
