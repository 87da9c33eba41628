"""What a package holds: pinned requirements, a card whose numbers match their sources, a
checkpoint that is checked at load, and refusals of inputs about another checkpoint."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from aurora_mlops._io import sha256_file
from aurora_mlops.cli import main
from aurora_mlops.packaging import read_package
from aurora_mlops.variants import VARIANTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _table(markdown: str, header_start: str) -> list[list[str]]:
    """Cells of the Markdown table whose header row starts with ``header_start``."""
    lines = markdown.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _shows(cell: str, value: float | None) -> bool:
    """Whether a card cell shows ``value`` to the card's 4 significant digits (``-``: none).

    Written here rather than taken from the card module, so that a formatting bug there cannot
    make its own expectation.
    """
    if value is None or not math.isfinite(value):
        return cell == "-"
    try:
        shown = float(cell)
    except ValueError:
        return False
    return math.isclose(shown, value, rel_tol=5e-4, abs_tol=1e-300)


def _f1(hits: int, misses: int, false_alarms: int) -> float | None:
    """F1 = 2 TP / (2 TP + FN + FP), ``None`` with nothing to score."""
    total = 2 * hits + misses + false_alarms
    return None if total == 0 else 2 * hits / total


def test_requirements_are_pinned_from_the_lock_file(
    packaged_models: dict[str, dict[str, Path]],
) -> None:
    package = packaged_models["medium-res"]["package"]
    lock = {
        ln.split("==")[0].lower(): ln.split("==")[1]
        for ln in (ROOT / "constraints.txt").read_text().splitlines() if "==" in ln
    }
    lines = [ln for ln in (package / "requirements.txt").read_text().splitlines() if ln]
    assert "-c constraints.txt" in lines
    pins = dict(ln.split("==") for ln in lines if not ln.startswith("-"))
    assert all(ln.startswith("-c") or "==" in ln for ln in lines), lines
    for name in ("torch", "torchvision", "microsoft-aurora", "mlflow", "numpy", "xarray"):
        assert pins[name] == lock[name], name
    # The package's constraints pin the requirements' dependencies from the lock, no more
    # (tests/packaging/test_package_env.py: what inference needs).
    packed = [ln for ln in (package / "constraints.txt").read_text().splitlines() if ln]
    canon = {re.sub(r"[-_.]+", "-", k): v for k, v in lock.items()}
    pairs = [ln.lower().split("==") for ln in packed]
    # Build tools the lock leaves out (setuptools) are pinned at the installed version.
    assert pairs and all(canon.get(name, ver) == ver for name, ver in pairs)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_package_describes_itself(
    variant: str, packaged_models: dict[str, dict[str, Path]]
) -> None:
    paths = packaged_models[variant]
    info = read_package(paths["package"])
    trial = json.loads((paths["trial"] / "trial.json").read_text())
    metrics = json.loads((paths["eval"] / "metrics.json").read_text())
    assert info.variant == variant and info.trial == paths["trial"].name
    assert info.checkpoint_sha256 == sha256_file(paths["trial"] / "model.ckpt")
    assert info.val_score == trial["metrics"]["val_score"]
    card = metrics["scorecard"]["model"]["persistence"]["rmse"]
    assert info.scores["rmse_wins_vs_persistence"] == card["wins"]
    assert info.tags()["checkpoint_sha256"] == info.checkpoint_sha256
    art = paths["package"] / "artifacts"
    for name in ("model.ckpt", "trial.json", "config.json", "norm_stats.json", "metrics.json",
                 "scorecard.json", "preprocessing.json", "artifacts_versions.json",
                 "best_params.json", "training_config.json", "data_config.json",
                 "MODEL_CARD.md", "model_card.html", "usage_example.py", "contract.json"):
        assert (art / name).is_file(), name
    assert json.loads((art / "metrics.json").read_text()) == metrics


def test_model_card_numbers_agree_with_their_sources(
    packaged_models: dict[str, dict[str, Path]],
) -> None:
    paths = packaged_models["medium-res"]
    card = (paths["package"] / "artifacts" / "MODEL_CARD.md").read_text()
    metrics = json.loads((paths["eval"] / "metrics.json").read_text())
    bench = json.loads((paths["bench"] / "benchmark.json").read_text())
    trial = json.loads((paths["trial"] / "trial.json").read_text())
    rmse = {(r["model"], r["variable"] + ("" if r["level"] is None else str(r["level"])),
             float(r["lead_hours"])): r["value"]
            for r in metrics["rows"] if r["metric"] == "rmse"}
    rows = _table(card, "| target | lead (h) | model |")
    assert rows, card
    columns = ["model", "persistence", "climatology"]
    for target, lead, *values in rows:
        for model, cell in zip(columns, values, strict=True):
            assert _shows(cell, rmse[(model, target, float(lead))]), (target, lead, model, cell)
    assert {r[0] for r in rows} == {"2t", "msl", "z500"}
    # Events: counts and F1 as metrics.json has them.
    events = _table(card, "| model | quantity | hits |")
    assert len(events) == len(metrics["events"])
    for cells, e in zip(events, metrics["events"], strict=True):
        assert cells[:6] == [e["model"], e["quantity"], str(e["hits"]), str(e["misses"]),
                             str(e["false_alarms"]), str(e["correct_negatives"])]
        assert _shows(cells[6], _f1(e["hits"], e["misses"], e["false_alarms"])), cells
    # Efficiency: every benchmark figure, as benchmark.json has it.
    figures = [f for f in bench["figures"] if "error" not in f]
    eff = _table(card, "| section | precision | batch |")
    assert len(eff) == len(figures)
    for cells, f in zip(eff, figures, strict=True):
        key = "step_latency_s" if f["section"] == "inference" else "step_time_s"
        assert cells[:3] == [f["section"], f["precision"], str(f["batch_size"])]
        for cell, value in zip(cells[3:], (f[key]["median"], f[key]["p95"], f["samples_per_s"]),
                               strict=True):
            assert _shows(cell, value), (cells, f)
    val = re.search(r"\| val_score \(trial\.json\) \| ([^|]+) \|", card)
    assert val and _shows(val[1].strip(), trial["metrics"]["val_score"]), card
    # Limitations say plainly how often the model loses to each baseline.
    for base, scores in metrics["scorecard"]["model"].items():
        s = scores["rmse"]
        assert re.search(rf"Against \*\*{base}\*\* the model has the larger RMSE on "
                         rf"{s['targets'] - s['wins']} of\s+{s['targets']}", card), base
    html = (paths["package"] / "artifacts" / "model_card.html").read_text()
    cell = f"{rmse[('model', '2t', 6.0)]:.4g}"
    assert "<table>" in html and cell in html


def test_a_checkpoint_altered_by_one_byte_is_refused_at_load(
    packaged_models: dict[str, dict[str, Path]], tmp_path: Path
) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    from aurora_mlops.errors import CheckpointError

    copy = tmp_path / "pkg"
    shutil.copytree(packaged_models["medium-res"]["package"], copy)
    ckpt = copy / "artifacts" / "model.ckpt"
    recorded = read_package(copy).checkpoint_sha256
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0x01
    ckpt.write_bytes(bytes(data))
    with pytest.raises((CheckpointError, MlflowException)) as err:
        mlflow.pyfunc.load_model(str(copy))
    text = str(err.value)
    assert str(ckpt) in text and recorded in text and sha256_file(ckpt) in text


def test_log_to_a_tracking_server_loads_back_by_its_models_uri(
    packaged_models: dict[str, dict[str, Path]], mlflow_server: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import mlflow
    import numpy as np

    paths = packaged_models["medium-res"]
    code = main(["package", "--model", str(paths["trial"]), "--variant", "medium-res",
                 "--out", str(tmp_path / "pkg"), "--eval", str(paths["eval"]),
                 "--log-to", mlflow_server])
    assert code == 0
    uri = re.search(r"logged: (models:/\S+)", capsys.readouterr().out)
    assert uri, "no models:/ URI printed"
    mlflow.set_tracking_uri(mlflow_server)
    try:
        model = mlflow.pyfunc.load_model(uri.group(1))
    finally:
        mlflow.set_tracking_uri(None)
    example = json.loads((tmp_path / "pkg" / "serving_input_example.json").read_text())
    remote = model.predict(example["inputs"], params={"steps": 1})
    local = mlflow.pyfunc.load_model(str(tmp_path / "pkg")).predict(
        example["inputs"], params={"steps": 1})
    np.testing.assert_array_equal(remote["2t"], local["2t"])
    run = mlflow.MlflowClient(mlflow_server).search_runs(
        [mlflow.MlflowClient(mlflow_server).get_experiment_by_name("aurora-mlops")
         .experiment_id], filter_string=f"tags.trial = '{paths['trial'].name}'")
    assert run and run[0].data.tags["checkpoint_sha256"] == read_package(
        tmp_path / "pkg").checkpoint_sha256


def test_an_evaluation_of_another_checkpoint_is_refused(
    packaged_models: dict[str, dict[str, Path]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = packaged_models["medium-res"]
    other = tmp_path / "eval"
    shutil.copytree(paths["eval"], other)
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["checkpoint"]["sha256"] = "0" * 64
    (other / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "out" / "pkg"
    code = main(["package", "--model", str(paths["trial"]), "--variant", "medium-res",
                 "--out", str(out), "--eval", str(other)])
    err = capsys.readouterr().err
    assert code == 1
    assert "0" * 64 in err and sha256_file(paths["trial"] / "model.ckpt") in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no temp folder left
    # An evaluation that does not say what it scored is refused too.
    del metrics["checkpoint"]
    (other / "metrics.json").write_text(json.dumps(metrics))
    assert main(["package", "--model", str(paths["trial"]), "--variant", "medium-res",
                 "--out", str(out), "--eval", str(other)]) == 1
    assert "does not say which checkpoint" in capsys.readouterr().err


def test_a_sweep_folder_packages_its_best_trial(
    packaged_models: dict[str, dict[str, Path]], tmp_path: Path
) -> None:
    from aurora_mlops.packaging import package_model
    from aurora_mlops.tuning import best_document

    paths = packaged_models["medium-res"]
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "best.json").write_text(json.dumps(best_document(
        experiment="mr-smoke", best_trial="mr-smoke-t3", parameters={}, metrics={},
        checkpoint=str(paths["trial"] / "model.ckpt"))))
    result = package_model(sweep, variant="medium-res", out=tmp_path / "pkg")
    assert result.info.sweep == str(sweep)
    assert result.info.trial == paths["trial"].name
    assert (result.info.katib_experiment, result.info.katib_trial) == ("mr-smoke", "mr-smoke-t3")
    card = (tmp_path / "pkg" / "artifacts" / "MODEL_CARD.md").read_text()
    assert f"best trial of the local sweep `{sweep}`, Katib Experiment `mr-smoke` trial " \
        "`mr-smoke-t3`." in card
