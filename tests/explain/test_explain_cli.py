"""``aurora-mlops explain`` on a smoke Aurora trained for two steps: the files it writes, what
the smoke architecture implies, and bad input as one sentence."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from aurora_mlops.cli import main

pytest.importorskip("captum")

#: One window, lead 1 and 2x2 tiles keep a smoke Aurora's explanation to ~30 roll-outs.
QUICK = ["--max-inits", "1", "--tiles", "2x2"]


@pytest.fixture(scope="module")
def trial(synthetic_data: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    out = tmp_path_factory.mktemp("explain") / "trial"
    train_trial(variant=get_variant("medium-res"), data=synthetic_data("medium-res"),
                output_dir=out, params=resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 2}),
                profile="smoke", tracking=False, stdout=io.StringIO())
    return out


def _args(trial: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["explain", "--model", str(trial), "--data", str(data), "--variant", "medium-res",
            "--out", str(out), *QUICK, *extra]


@pytest.mark.slow
def test_explain_writes_the_table_the_maps_and_the_page(
    trial: Path, synthetic_data: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "explain"
    assert main(_args(trial, synthetic_data("medium-res"), out, "--target", "2t")) == 0
    assert "ranked by occlusion" in capsys.readouterr().out
    report = json.loads((out / "explanation.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == report["files"] == [
        "contributions.png", "explanation.html", "explanation.json", "explanation.md",
        "regions.png", "saliency.png"]
    assert report["target"] == {"variable": "2t", "level": None, "lead": 1, "lead_hours": 6,
                                "label": "2t", "units": "K"}
    rows = {r["input"]: r for r in report["inputs"]}
    assert len(rows) == 4 + 5 * 3 + 3 and [r["rank"] for r in report["inputs"]] == list(
        range(1, 23))
    assert sum(r["occlusion_share"] for r in rows.values()) == pytest.approx(1.0)
    # The smoke model's Swin windows are one latent level deep (window_size[0] == 1), so the
    # surface latent never attends to the atmospheric ones: a surface target cannot depend on
    # any pressure-level input, and both methods must find exactly that.
    for name, r in rows.items():
        if "@" in name:
            assert r["occlusion"] == 0.0 and r["saliency"] == 0.0, name
    assert rows["2t"]["occlusion"] > 0 and "@" not in report["inputs"][0]["input"]
    assert len(report["bands"]) == 2 and all(b["occlusion"] > 0 for b in report["bands"])
    md = (out / "explanation.md").read_text()
    assert "## Contribution per input" in md and "| 1 |" in md
    html = (out / "explanation.html").read_text()
    assert "<h1>Explanation: 2t at +6 h (medium-res)</h1>" in html
    # Like every report, the page opens with its pictures; the tables come below.
    assert md.index("![") < md.index("| rank |") and html.index("<img") < html.index("<table")


@pytest.mark.slow
def test_the_page_loads_its_images_in_a_browser(
    trial: Path, synthetic_data: Callable[..., Path], tmp_path: Path,
) -> None:
    from test_pages_in_browser import _chromium, _open

    exe = _chromium()
    out = tmp_path / "explain"
    assert main(_args(trial, synthetic_data("medium-res"), out, "--method", "both")) == 0
    result = _open(exe, out / "explanation.html", tmp_path / "browser")
    assert len(result["images"]) == len(list(out.glob("*.png"))) == 3
    assert all(im["complete"] and im["naturalWidth"] > 0 for im in result["images"])
    assert result["errors"] == [] and result["console"] == [], result


@pytest.mark.slow
def test_an_atmospheric_target_ignores_the_surface_in_the_smoke_model(
    trial: Path, synthetic_data: Callable[..., Path], tmp_path: Path,
) -> None:
    out = tmp_path / "z500"
    assert main(_args(trial, synthetic_data("medium-res"), out, "--target", "z@500",
                      "--method", "saliency")) == 0
    report = json.loads((out / "explanation.json").read_text())
    assert report["ranked_by"] == "saliency" and "occlusion" not in report["inputs"][0]
    assert not (out / "regions.png").exists()
    for r in report["inputs"]:
        assert (r["saliency"] > 0) == ("@" in r["input"]), r


@pytest.mark.parametrize(("extra", "words"), [
    (["--target", "tp"], "does not predict 'tp'"),
    (["--target", "z@700"], "no level 700"),
    (["--lead", "9"], "--lead 9 is beyond this model"),
], ids=["unknown-variable", "unknown-level", "lead-beyond"])
def test_bad_input_is_one_sentence(
    trial: Path, synthetic_data: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], extra: list[str], words: str,
) -> None:
    out = tmp_path / "bad"
    assert main(_args(trial, synthetic_data("medium-res"), out, *extra)) == 1
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_missing_model_is_one_sentence(
    synthetic_data: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(_args(tmp_path / "nowhere", synthetic_data("medium-res"), tmp_path / "o")) == 1
    err = capsys.readouterr().err
    assert "no such checkpoint" in err and err.count("\n") == 1


def test_without_captum_the_extra_is_named(
    trial: Path, synthetic_data: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "captum", None)  # what a missing package looks like
    assert main(_args(trial, synthetic_data("medium-res"), tmp_path / "o")) == 1
    err = capsys.readouterr().err
    assert "aurora-mlops[explain]" in err and err.count("\n") == 1


def test_tiles_must_look_like_rows_x_cols(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["explain", "--model", "m", "--data", "d", "--variant", "medium-res", "--out", "o",
              "--tiles", "0x3"])
    assert e.value.code == 2 and "tiles must be at least 1x1" in capsys.readouterr().err


#: Evaluation flags of a quick package (the session's packaged models use the same).
PACKAGE_EVAL = ["--lead-steps", "2", "--max-inits", "3"]


@pytest.mark.slow
def test_the_evaluation_report_and_the_model_card_link_an_explanation_beside_them(
    trial: Path, synthetic_data: Callable[..., Path], tmp_path: Path,
) -> None:
    from aurora_mlops.packaging import package_model

    data, evaluation = synthetic_data("medium-res"), tmp_path / "eval"
    plain = tmp_path / "eval-plain"
    assert main(["evaluate", "--model", str(trial), "--data", str(data), "--variant",
                 "medium-res", "--out", str(plain), *PACKAGE_EVAL]) == 0
    assert "explanation" not in (plain / "report.md").read_text()
    assert main(_args(trial, data, evaluation / "explanation", "--method", "saliency")) == 0
    assert main(["evaluate", "--model", str(trial), "--data", str(data), "--variant",
                 "medium-res", "--out", str(evaluation), *PACKAGE_EVAL]) == 0
    assert "[explanation](explanation/explanation.html)" in (evaluation / "report.md").read_text()
    assert '<a href="explanation/explanation.html">' in (evaluation / "report.html").read_text()
    assert (evaluation / "explanation" / "explanation.json").is_file()  # evaluate kept it

    package = tmp_path / "package"
    package_model(trial, variant="medium-res", out=package, eval_dir=evaluation)
    card = next(package.rglob("MODEL_CARD.md"))
    assert "## What the forecast depends on" in card.read_text()
    assert "[explanation/explanation.html](explanation/explanation.html)" in card.read_text()
    # The link resolves: the folder ships beside the card.
    assert (card.parent / "explanation" / "explanation.json").is_file()
    no_explanation = tmp_path / "package-plain"
    package_model(trial, variant="medium-res", out=no_explanation, eval_dir=plain)
    assert "What the forecast depends on" not in next(
        no_explanation.rglob("MODEL_CARD.md")).read_text()
