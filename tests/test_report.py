"""aurora-mlops report: numbers equal their sources, pages are self-contained, parts are optional,
bad directories fail with one sentence, --from-dir discovery, and nothing half-written."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import yaml

from aurora_mlops.cli import main
from aurora_mlops.comparison import (
    ReportEntry,
    build_report,
    discover_entries,
    headline_targets,
    parse_entry,
)
from aurora_mlops.errors import ConfigError

SPECS = Path(__file__).parent / "tuning" / "specs"
#: Lead times (hours) scored per variant: 6-hourly weather, 12-hourly air pollution.
LEADS = {"medium-res": (6, 12, 24), "air-pollution": (12, 24)}
#: Variables kept in each synthetic truth (few, so that evaluate writes few plots).
KEEP = {"medium-res": ["2t", "10u", "10v", "msl", "z"], "air-pollution": ["2t", "pm2p5", "pm10"]}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _forecast(truth: xr.Dataset, variant: str, seed: int) -> xr.Dataset:
    """WB2-layout forecast: the truth at every valid time, perturbed (multiplicatively for the
    positive species)."""
    leads = np.array(LEADS[variant], dtype="timedelta64[h]").astype("timedelta64[ns]")
    inits = truth["time"].values[12:18]
    parts = [truth.sel(time=inits + lead).assign_coords(time=inits) for lead in leads]
    fc = xr.concat(parts, dim=pd.Index(leads, name="prediction_timedelta"))
    fc = fc.transpose("time", "prediction_timedelta", ...)
    rng = np.random.default_rng(seed)
    for name in fc.data_vars:
        noise = rng.normal(0.0, 1.0, fc[name].shape)
        fc[name] = fc[name] * (1 + 0.05 * noise) if str(name).startswith("pm") else fc[name] + noise
    return fc


def _sweep(work: Path) -> Path:
    """A real one-trial local sweep of the runner tests' stand-in trial (seconds)."""
    from aurora_mlops.tuning import run_local

    doc = yaml.safe_load((SPECS / "script-random.yaml").read_text())
    # maxFailedTrialCount <= maxTrialCount, or `tune` refuses the spec as Katib would
    doc["spec"].update(maxTrialCount=1, parallelTrialCount=1, maxFailedTrialCount=1)
    container = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]
    container["containers"][0]["command"] += ["--epochs=1", "--sleep=0"]
    work.mkdir(parents=True)
    shutil.copy(SPECS / "trial.py", work / "trial.py")
    (work / "spec.yaml").write_text(yaml.safe_dump(doc))
    run_local(work / "spec.yaml", work_dir=work, progress=False, tracking=False)
    return work


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The conventional layout with genuine outputs: eval/medium-res-era5 and
    eval/air-pollution-cams (evaluate_forecasts), bench/medium-res (run_benchmark of a tiny
    trial), sweeps/medium-res (run_local), and eval/empty (no metrics.json)."""
    from aurora_mlops.benchmark import run_benchmark
    from aurora_mlops.data import synthesize, write_dataset
    from aurora_mlops.evaluation import evaluate_forecasts
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report-root")
    for variant, dataset, seed in (("medium-res", "era5", 0), ("air-pollution", "cams", 1)):
        truth = synthesize(variant, times=24, grid=(8, 16), seed=seed)[KEEP[variant]]
        evaluate_forecasts(
            {"model": _forecast(truth, variant, seed)}, truth, variant=variant,
            out_dir=root / "eval" / f"{variant}-{dataset}",
        )
    (root / "eval" / "empty").mkdir()

    data = write_dataset(synthesize("medium-res", times=24, seed=1), root / "data.nc")
    trial = train_trial(
        variant=get_variant("medium-res"), data=data, output_dir=root / "trial",
        params=resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 2, "val_windows": 2,
                                        "batch_size": 1}),
        profile="smoke", tracking=False, stdout=io.StringIO(),
    )
    run_benchmark(
        trial.output_dir, "medium-res", out_dir=root / "bench" / "medium-res", batch_sizes=(1,),
        rollout_steps=1, repeats=2, warmup=0, train_steps=1, amp_modes=None, threads=1,
    )
    _sweep(root / "sweeps" / "medium-res")
    torch.set_num_threads(threads)
    yield root


def _entries(root: Path) -> list[ReportEntry]:
    return [
        ReportEntry(variant="medium-res", dataset="era5", eval_dir=root / "eval/medium-res-era5",
                    bench_dir=root / "bench/medium-res", sweep_dir=root / "sweeps/medium-res"),
        ReportEntry(variant="air-pollution", dataset="cams",
                    eval_dir=root / "eval/air-pollution-cams"),
    ]


@pytest.fixture(scope="module")
def built(root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("report-out") / "report"
    files = build_report(_entries(root), out, title="Test report")
    assert files[0] == out / "report.json"
    assert all(f.is_file() for f in files)
    return out, json.loads((out / "report.json").read_text())


def _entry(report: dict[str, Any], label: str) -> dict[str, Any]:
    return next(e for e in report["entries"] if e["label"] == label)


def _parquet(root: Path, name: str, **kw: Any) -> float:
    t = pd.read_parquet(root / "eval" / name / "metrics.parquet")
    for k, v in kw.items():
        t = t[t["level"].isna()] if (k == "level" and v is None) else t[t[k] == v]
    assert len(t) == 1, t
    return float(t["value"].iloc[0])


# -------------------------------------------------------------------------- numbers and sources


@pytest.mark.slow
def test_headline_numbers_equal_the_evaluation_table(
    root: Path, built: tuple[Path, dict[str, Any]]
) -> None:
    _, report = built
    mr = _entry(report, "medium-res / era5")["evaluation"]
    assert mr["headline_targets"] == ["2t", "msl", "z500"]
    rows = {(h["target"], h["metric"], h["lead_hours"]): h["values"] for h in mr["headline"]}
    # First and last lead only; every model of the evaluation has a column.
    assert {k[2] for k in rows} == {6.0, 24.0}
    for target, var, level in (("2t", "2t", None), ("z500", "z", 500)):
        for model in ("model", "persistence", "climatology"):
            assert rows[(target, "rmse", 6.0)][model] == _parquet(
                root, "medium-res-era5", model=model, metric="rmse", variable=var, level=level,
                lead_hours=6.0,
            )
        assert rows[(target, "acc", 24.0)]["model"] == _parquet(
            root, "medium-res-era5", model="model", metric="acc", variable=var, level=level,
            lead_hours=24.0,
        )
    curve = next(c for c in mr["lead_rmse"] if c["target"] == "msl" and c["model"] == "model")
    assert curve["lead_hours"] == [6.0, 12.0, 24.0]
    assert curve["rmse"] == [
        _parquet(root, "medium-res-era5", model="model", metric="rmse", variable="msl",
                 level=None, lead_hours=h) for h in (6.0, 12.0, 24.0)
    ]
    # Headline variables missing from the table are skipped (air pollution: no tcno2 here).
    ap = _entry(report, "air-pollution / cams")["evaluation"]
    assert ap["headline_targets"] == ["pm2p5", "pm10"]
    assert {h["lead_hours"] for h in ap["headline"]} == {12.0, 24.0}


@pytest.mark.slow
def test_scorecard_and_events_come_from_metrics_json(
    root: Path, built: tuple[Path, dict[str, Any]]
) -> None:
    _, report = built
    for label, name in (("medium-res / era5", "medium-res-era5"),
                        ("air-pollution / cams", "air-pollution-cams")):
        metrics = json.loads((root / "eval" / name / "metrics.json").read_text())
        ev = _entry(report, label)["evaluation"]
        assert ev["scorecard"] == metrics["scorecard"]["model"]
        assert len(ev["events"]) == len(metrics["events"]) > 0
        for got, src in zip(ev["events"], metrics["events"], strict=True):
            h, m, fa = src["hits"], src["misses"], src["false_alarms"]
            assert {k: got[k] for k in src} == src
            assert got["f1"] == (pytest.approx(2 * h / (2 * h + m + fa)) if h + m + fa else None)
            assert got["csi"] == (pytest.approx(h / (h + m + fa)) if h + m + fa else None)
    assert report["references"] == ["persistence", "climatology"]


@pytest.mark.slow
def test_efficiency_row_equals_benchmark_json(
    root: Path, built: tuple[Path, dict[str, Any]]
) -> None:
    out, report = built
    bench = json.loads((root / "bench/medium-res/benchmark.json").read_text())
    fig = {f["id"]: f for f in bench["figures"]}
    eff = _entry(report, "medium-res / era5")["efficiency"]
    inference, training = fig["inference/fp32/bs1"], fig["training/fp32/bs1"]
    assert eff["parameters"] == bench["model"]["parameters_total"]
    assert eff["checkpoint_bytes"] == bench["model"]["checkpoint_bytes"]
    assert eff["precision"] == "fp32"
    assert eff["step_latency_median_s"] == inference["step_latency_s"]["median"]
    assert eff["step_latency_p95_s"] == inference["step_latency_s"]["p95"]
    assert eff["inference_samples_per_s"] == inference["samples_per_s"]
    assert eff["training_samples_per_s"] == training["samples_per_s"]
    assert eff["cpu_rss_peak_bytes"] == bench["memory"]["cpu_rss_peak_bytes"]
    assert eff["cuda_peak_bytes"] == bench["memory"]["cuda_peak_bytes"]
    assert (eff["env_id"], eff["env_summary"]) == (bench["env"]["id"], bench["env"]["summary"])
    md = (out / "report.md").read_text()
    row = next(line for line in md.splitlines()
               if line.startswith("| medium-res / era5 | ") and bench["env"]["id"] in line)
    assert f"| {bench['model']['parameters_total']:,} |" in row
    assert f"| {inference['step_latency_s']['median'] * 1e3:,.2f} |" in row


@pytest.mark.slow
def test_sweep_summary_is_the_best_trial(root: Path, built: tuple[Path, dict[str, Any]]) -> None:
    _, report = built
    best = json.loads((root / "sweeps/medium-res/best.json").read_text())
    sweep = _entry(report, "medium-res / era5")["sweep"]
    assert sweep["best_trial"] == best["bestTrialName"] is not None
    assert sweep["val_score"] == best["metrics"]["val_score"]
    assert sweep["parameters"] == {p["name"]: p["value"] for p in best["parameterAssignments"]}
    assert sweep["trials"] == {"total": 1, "succeeded": 1, "failed": 0, "early_stopped": 0}


# ------------------------------------------------------------------------------- the pages


@pytest.mark.slow
def test_html_is_self_contained_and_markdown_has_the_tables(
    built: tuple[Path, dict[str, Any]],
) -> None:
    out, report = built
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["lead_rmse_air-pollution_cams.png", "lead_rmse_medium-res_era5.png",
                    "scorecard_air-pollution_cams.png", "scorecard_medium-res_era5.png"]
    assert sorted(report["files"]) == sorted(["report.json", "report.md", "report.html", *pngs])
    assert all((out / p).read_bytes().startswith(PNG_MAGIC) for p in pngs)
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(pngs)
    for external in ('src="http', "src='http", "<script", "<link", "url("):
        assert external not in page
    md = (out / "report.md").read_text()
    assert md.startswith("# Test report\n")
    for section in ("Scorecards", "Lead-time curves", "Entries", "Scorecard summary",
                    "Headline metrics", "Events", "Efficiency", "Sweeps", "Notes"):
        assert f"\n## {section}\n" in md
    assert "| entry | vs persistence (RMSE) | vs persistence (ACC) |" in md
    assert "| entry | target | metric | lead (h) | model | persistence | climatology |" in md
    card = _entry(report, "medium-res / era5")["evaluation"]["scorecard"]["persistence"]["rmse"]
    assert f"| medium-res / era5 | {card['wins']}/{card['targets']} (" in md
    h = _entry(report, "medium-res / era5")["evaluation"]["headline"][0]
    assert f"| medium-res / era5 | 2t | RMSE | 6 | {h['values']['model']:.4g} |" in md
    assert md.count("data:image/png;base64,") == len(pngs)


@pytest.mark.slow
def test_pages_open_with_scorecards_of_the_evaluations_skill(
    root: Path, built: tuple[Path, dict[str, Any]]
) -> None:
    out, report = built
    for label, name in (("medium-res / era5", "medium-res-era5"),
                        ("air-pollution / cams", "air-pollution-cams")):
        metrics = json.loads((root / "eval" / name / "metrics.json").read_text())
        want = {
            (r["variable"] + ("" if r["level"] is None else str(r["level"])), r["lead_hours"]):
            r["value"] for r in metrics["rows"]
            if r["model"] == "model" and r["metric"] == "rmse_skill_vs_persistence"
        }
        skill = _entry(report, label)["evaluation"]["skill"]
        assert skill["reference"] == "persistence" and len(want) > 0
        got = {(t, h): v for t, row in zip(skill["targets"], skill["skill"], strict=True)
               for h, v in zip(skill["lead_hours"], row, strict=True)}
        assert {k: v for k, v in got.items() if v is not None} == {
            k: v for k, v in want.items() if v is not None}
    page = (out / "report.html").read_text()
    assert page.index('<img alt="scorecard_') < page.index("<img alt=\"lead_rmse_") < (
        page.index("<table"))
    md = (out / "report.md").read_text()
    assert md.index("![scorecard_") < md.index("![lead_rmse_") < md.index("\n| entry |")


@pytest.mark.slow
def test_missing_benchmark_and_sweep_are_noted_not_fatal(
    built: tuple[Path, dict[str, Any]],
) -> None:
    out, report = built
    ap = _entry(report, "air-pollution / cams")
    assert ap["efficiency"] is None and ap["sweep"] is None
    assert "air-pollution / cams: no benchmark given; efficiency not reported." in report["notes"]
    assert "air-pollution / cams: no sweep given; best trial not reported." in report["notes"]
    md = (out / "report.md").read_text()
    assert "no benchmark given |" in md and "| no sweep given |" in md
    assert "- air-pollution / cams: no benchmark given" in md


# ------------------------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_cli_from_dir_discovers_the_layout(root: Path, tmp_path: Path) -> None:
    entries, notes = discover_entries(root)
    assert [(e.label, e.bench_dir, e.sweep_dir) for e in entries] == [
        ("air-pollution / cams", None, None),
        ("medium-res / era5", root / "bench/medium-res", root / "sweeps/medium-res"),
    ]
    assert notes == [f"Skipped {root / 'eval/empty'}: it holds no metrics.json."]

    out = tmp_path / "report"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["report", "--from-dir", str(root), "--out", str(out), "--title", "T"])
    assert code == 0
    printed = stdout.getvalue().split()
    assert printed[:3] == [str(out / n) for n in ("report.json", "report.md", "report.html")]
    assert all(Path(p).is_file() for p in printed)
    report = json.loads((out / "report.json").read_text())
    assert report["title"] == "T"
    assert notes[0] in report["notes"]
    assert _entry(report, "medium-res / era5")["efficiency"] is not None
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary directory left


@pytest.mark.slow
def test_cli_entry_flag_and_rerun_replaces_the_files(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("not ours")
    entry = (f"medium-res:era5={root / 'eval/medium-res-era5'},"
             f"bench={root / 'bench/medium-res'}")
    for _ in range(2):
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["report", "--out", str(out), "--entry", entry]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [e["label"] for e in report["entries"]] == ["medium-res / era5"]
    assert (out / "keep.txt").read_text() == "not ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def _bad_cases(root: Path, tmp: Path) -> list[tuple[list[str], str]]:
    """(--entry values, what stderr must say)."""
    ev = root / "eval/medium-res-era5"
    nothing = tmp / "nothing"
    broken = tmp / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "metrics.json").write_text("{not json")
    return [
        ([f"medium-res={nothing}"], f"{nothing} holds no metrics.json"),
        ([f"medium-res={root / 'eval/empty'}"], "holds no metrics.json"),
        ([f"medium-res={broken}"], f"{broken / 'metrics.json'} is not readable JSON"),
        ([f"medium-res={ev},bench={ev}"], f"{ev} holds no benchmark.json"),
        ([f"medium-res={ev},sweep={ev}"], f"{ev} holds no best.json"),
        ([f"air-pollution={ev}"], "is an evaluation of medium-res, not air-pollution"),
        ([f"medium-res:x={ev}", f"medium-res:x={ev}"], "is given twice"),
        ([f"tiny-res={ev}"], "unknown variant 'tiny-res'"),
        ([f"medium-res:{ev}"], "must look like VARIANT[:DATASET]=EVAL_DIR"),
        ([f"medium-res={ev},cache=x"], "is not bench=DIR or sweep=DIR"),
    ]


@pytest.mark.slow
def test_cli_bad_input_exits_1_with_one_sentence(root: Path, tmp_path: Path) -> None:
    for entries, message in _bad_cases(root, tmp_path):
        out = tmp_path / "out"
        stderr = io.StringIO()
        args = ["report", "--out", str(out)] + [x for e in entries for x in ("--entry", e)]
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = main(args)
        err = stderr.getvalue()
        assert code == 1, (entries, err)
        assert err.startswith("aurora-mlops: error: ") and message in err, (entries, err)
        assert err.count("\n") == 1
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]


def test_cli_needs_an_entry(tmp_path: Path) -> None:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(["report", "--out", str(tmp_path / "out")]) == 1
    assert "at least one --entry or --from-dir" in stderr.getvalue()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(["report", "--out", str(tmp_path / "o"), "--from-dir", str(tmp_path)]) == 1
    assert f"{tmp_path} has no eval/ directory" in stderr.getvalue()


@pytest.mark.slow
def test_a_failure_while_writing_leaves_nothing(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aurora_mlops.comparison._build as build

    def boom(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "render_html", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_report(_entries(root), tmp_path / "report")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- units


def test_parse_entry_known_answers() -> None:
    e = parse_entry("ocean-waves:wam=a/b,sweep=s,bench=c")
    assert (e.variant, e.dataset, e.eval_dir, e.bench_dir, e.sweep_dir) == (
        "ocean-waves", "wam", Path("a/b"), Path("c"), Path("s")
    )
    assert e.label == "ocean-waves / wam"
    e = parse_entry("high-res=x")
    assert (e.dataset, e.label, e.bench_dir, e.sweep_dir) == (None, "high-res", None, None)
    for bad in ("high-res", "=x", "high-res:=x", "high-res=", "high-res=x,bench=a,bench=b",
                "high-res:bad label=x"):
        with pytest.raises(ConfigError):
            parse_entry(bad)


def _rows(model: str, targets: list[tuple[str, int | None]]) -> list[dict[str, Any]]:
    return [{"model": model, "metric": "rmse", "variable": v, "level": lv, "lead_hours": 6.0,
             "value": 1.0} for v, lv in targets]


def test_headline_targets_pick_from_what_the_table_has() -> None:
    rows = _rows("model", [("z", 850), ("z", 300), ("2t", None), ("t", 850)])
    # msl missing; z lacks 500 hPa -> the nearest level it has (300: 200 hPa away, 850: 350).
    assert headline_targets("medium-res", rows, "model") == [("2t", None), ("z", 300)]
    # None of the headline variables: the first three targets, surface first.
    rows = _rows("model", [("go3", 500), ("pm1", None), ("co", 850), ("no", 500)])
    assert headline_targets("air-pollution", rows, "model") == [
        ("pm1", None), ("go3", 500), ("co", 850)
    ]
    assert headline_targets("ocean-waves", rows, "other") == []
