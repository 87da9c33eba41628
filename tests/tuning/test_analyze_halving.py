"""``tune analyze`` on a successive-halving chain: rung 0's parameter analysis with the spec the
chain started from, and the rungs (promotions, where each configuration stopped, rank
correlations between budgets, one verdict on the fidelity).

The chains run the stand-in trial (``specs/halving_trial.py``), whose score is
``(x - 0.3)**2 + (0.2 + x) / (epoch + 1)``: for x in [0.3, 1] it rises with x after every
epoch (the low budget ranks like the high one); for x in [-0.2, 0.05] it rises with x after
one epoch and falls with x after two (the ranking reverses), so the second verdict is earned by
the trials, not written into the files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from scipy.stats import spearmanr

from aurora_mlops.cli import main
from aurora_mlops.errors import ConfigError
from aurora_mlops.tuning import (
    SweepAnalysis,
    analyze_sweep,
    load_experiment,
    read_halving,
    run_halving_local,
    rung_experiment,
    write_analysis,
)

SPECS = Path(__file__).parent / "specs"
SPEC = SPECS / "script-halving.yaml"


def _chain(root: Path, name: str, low: float = 0.0, high: float = 1.0,
           trials: int = 4) -> tuple[Path, Path]:
    """Run the stand-in chain of ``SPEC`` with x in [low, high] and ``trials`` at rung 0 in
    ``root/name``; the work dir and the spec it ran."""
    work = root / name
    work.mkdir()
    shutil.copy(SPECS / "halving_trial.py", work / "halving_trial.py")
    doc = yaml.safe_load(SPEC.read_text())
    doc["metadata"]["name"] = name
    doc["spec"]["maxTrialCount"] = trials
    doc["spec"]["parameters"][0]["feasibleSpace"] = {"min": str(low), "max": str(high)}
    spec = root / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_halving_local(load_experiment(spec), work_dir=work, progress=False, tracking=False)
    return work, spec


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """The spec's own chain (4 -> 2 -> 1), and two of 8 -> 4 -> 2 over the ranges above."""
    root = tmp_path_factory.mktemp("chains")
    work = root / "base"
    work.mkdir()
    shutil.copy(SPECS / "halving_trial.py", work / "halving_trial.py")
    run_halving_local(load_experiment(SPEC), work_dir=work, progress=False, tracking=False)
    return {"base": (work, SPEC),
            "alike": _chain(root, "halving-alike", 0.3, 1.0, trials=8),
            "opposite": _chain(root, "halving-opposite", -0.2, 0.05, trials=8)}


@pytest.fixture(scope="module")
def base(chains: dict[str, tuple[Path, Path]]) -> SweepAnalysis:
    work, spec = chains["base"]
    return analyze_sweep(work, spec=spec)


def _summary(work: Path) -> dict[str, Any]:
    return json.loads((work / "halving.json").read_text())


def _curve(work: Path, trial: str) -> list[float]:
    """The trial's own record of its objective per epoch (its trial.json)."""
    doc = json.loads((work / "trials" / trial / "trial.json").read_text())
    return [e["val_score"] for e in doc["history"]]


def test_rungs_promotions_and_where_each_configuration_stopped(
        chains: dict[str, tuple[Path, Path]], base: SweepAnalysis) -> None:
    work, _ = chains["base"]
    summary = _summary(work)
    r = base.rungs
    assert r is not None and r.chain == "script-halving" and r.budgets == (1, 2, 4)
    assert [(k.experiment, k.budget, k.trials, list(k.promoted)) for k in r.rungs] == [
        (s["experiment"], s["budget"], len(s["trials"]), s["promoted"])
        for s in summary["rungs"]]
    assert [k.trials for k in r.rungs] == [4, 2, 1]
    # Follow each rung-0 trial up the chain by hand: the rung it reached and its value there.
    by_name = {t["name"]: (k, t) for k, s in enumerate(summary["rungs"]) for t in s["trials"]}
    reached: dict[str, tuple[int, float]] = {}
    for k, s in enumerate(summary["rungs"]):
        for t in s["trials"]:
            origin = t["name"]
            while "promoted" in by_name[origin][1]["parameters"]:
                origin = by_name[origin][1]["parameters"]["promoted"]
            reached[origin] = (summary["plan"]["budgets"][k], t["value"])
    assert {c.name: (c.stopped_at, c.value) for c in r.configurations} == reached
    assert sorted(c.stopped_at for c in r.configurations) == [1, 1, 2, 4]
    shipped = [c for c in r.configurations if c.shipped]
    assert len(shipped) == 1 and shipped[0].trials[-1] == summary["bestTrialName"]
    assert shipped[0].params == summary["parameters"]
    # The shipped configuration's curve is its final trial's whole record (4 epochs).
    assert list(shipped[0].history) == pytest.approx(_curve(work, summary["bestTrialName"]))


def test_too_few_configurations_are_not_judged(base: SweepAnalysis) -> None:
    r = base.rungs
    assert r is not None
    assert [(c.low, c.high, c.n, c.rho) for c in r.between_rungs] == [(1, 2, 2, None),
                                                                       (2, 4, 1, None)]
    assert "Too few configurations (n=2) to judge" in r.verdict
    assert "ranked like the full budget (Spearman" not in r.verdict


def test_rung_zero_parameters_with_the_base_spec_and_a_halving_next_spec(
        base: SweepAnalysis) -> None:
    assert base.experiment == "script-halving-r0"  # rung 0's study: every configuration
    assert base.counts["complete"] == 4 and [p.name for p in base.parameters] == ["x"]
    assert base.next_spec is not None and not base.next_spec_problems
    assert base.next_spec["metadata"]["name"] == "script-halving-v2"
    plan = read_halving(base.next_spec)
    assert plan is not None and plan.budgets == (1, 2, 4) and plan.eta == 2
    assert [p["name"] for p in base.next_spec["spec"]["parameters"]] == ["x"]


def _hand_rho(xs: list[float], ys: list[float]) -> float:
    return float(spearmanr(xs, ys).statistic)


def test_correlations_match_a_hand_computation_and_the_verdict_says_alike(
        chains: dict[str, tuple[Path, Path]]) -> None:
    work, spec = chains["alike"]
    a = analyze_sweep(work, spec=spec)
    r = a.rungs
    assert r is not None and [k.trials for k in r.rungs] == [8, 4, 2]
    summary = _summary(work)
    r0 = {t["name"]: t["value"] for t in summary["rungs"][0]["trials"]}
    r1 = summary["rungs"][1]["trials"]
    pairs = [(r0[t["parameters"]["promoted"]], t["value"]) for t in r1]
    first = r.between_rungs[0]
    assert (first.low, first.high, first.n) == (1, 2, 4)
    assert first.rho == pytest.approx(_hand_rho(*map(list, zip(*pairs, strict=True))))
    # From the curves of the trials that reached rung 1: epoch 1 against epoch 2.
    curves = [_curve(work, t["name"]) for t in r1]
    # Per rung reached by two or more curves, every lower epoch against the rung's budget
    # (rung 0 trains one epoch, so it has no lower one).
    assert [(c.low, c.high, c.n) for c in r.by_budget] == [(1, 2, 4), (1, 4, 2), (2, 4, 2),
                                                           (3, 4, 2)]
    row = r.by_budget[0]
    assert row.n == 4 and row.source == "history"
    assert row.rho == pytest.approx(_hand_rho([c[0] for c in curves], [c[1] for c in curves]))
    assert r.judged is not None and (r.judged.low, r.judged.high, r.judged.n) == (1, 2, 4)
    assert r.judged.rho == pytest.approx(1.0)
    # Exact p of a perfect rank order of 4: 2 of the 24 pairings reach |rho| = 1.
    assert r.judged.p_value == pytest.approx(2 / 24)
    assert r.verdict.startswith("The low rungs ranked like the full budget (Spearman rho=1.00, "
                                "p=0.083, n=4, between 1 and 2 epochs, the highest budget that "
                                "at least 4 configurations reached (the full budget is 4))")


def test_a_low_rung_that_ranks_opposite_is_called_misleading(
        chains: dict[str, tuple[Path, Path]]) -> None:
    work, spec = chains["opposite"]
    r = analyze_sweep(work, spec=spec).rungs
    assert r is not None and r.judged is not None
    summary = _summary(work)
    r0 = {t["name"]: t["value"] for t in summary["rungs"][0]["trials"]}
    pairs = [(r0[t["parameters"]["promoted"]], t["value"]) for t in summary["rungs"][1]["trials"]]
    assert r.judged.n == 4 and r.judged.rho == pytest.approx(
        _hand_rho(*map(list, zip(*pairs, strict=True)))) == pytest.approx(-1.0)
    assert r.verdict.startswith("The low rungs did not rank like the full budget "
                                "(Spearman rho=-1.00, p=0.083, n=4")
    assert "raise it or keep more per rung" in r.verdict


def test_files_and_the_terminal_line(chains: dict[str, tuple[Path, Path]], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    work, spec = chains["alike"]
    out = tmp_path / "out"
    assert main(["tune", "analyze", str(work), "--spec", str(spec), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ("rungs of halving-alike: 8 at 1 epochs -> 4 at 2 epochs -> 2 at 4 epochs, "
            "shipped halving-alike-r2-") in printed
    assert "The low rungs ranked like the full budget" in printed
    for name in ("analysis.json", "analysis.md", "rungs.png", "history.png", "param-x.png",
                 "next-spec.yaml"):
        assert (out / name).is_file() and str(out / name) in printed
    assert (out / "rungs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "analysis.json").read_text())
    assert doc["rungs"]["verdict"].startswith("The low rungs ranked like")
    assert [k["trials"] for k in doc["rungs"]["rungs"]] == [8, 4, 2]
    md = (out / "analysis.md").read_text()
    assert "## Rungs" in md and "![rungs](rungs.png)" in md
    assert "| 1 | halving-alike-r1 | 2 | 4 | 4 |" in md
    assert main(["katib", "check", str(out / "next-spec.yaml")]) == 0


def test_a_rung_spec_is_refused_and_a_recorded_base_spec_is_used(
        chains: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    work, spec = chains["base"]
    exp = load_experiment(spec)
    plan = read_halving(exp.raw)
    assert plan is not None
    rung1 = rung_experiment(exp, plan, 1, ["script-halving-r0-0"])
    path = tmp_path / "rung1.yaml"
    path.write_text(yaml.safe_dump(dict(rung1.raw)))
    with pytest.raises(ConfigError, match=r"is the spec of rung 1 \(script-halving-r1\).*"
                                          r"metadata.name script-halving"):
        analyze_sweep(work, spec=path)
    with pytest.raises(ConfigError, match="holds the successive-halving chain script-halving"):
        analyze_sweep(work, spec=SPECS / "script-random.yaml")
    # A spec path recorded beside the chain is used when it is the base, skipped otherwise.
    copy = tmp_path / "copy"
    shutil.copytree(work, copy)
    for recorded, used in ((str(spec.resolve()), True), (str(path), False)):
        doc = _summary(copy)
        doc["spec"] = recorded
        (copy / "halving.json").write_text(json.dumps(doc))
        a = analyze_sweep(copy)
        assert (a.next_spec is not None) is used
        assert used or any("is the spec of rung 1" in n for n in a.notes)


def test_a_folder_with_only_halving_json_and_trial_folders(
        chains: dict[str, tuple[Path, Path]], tmp_path: Path) -> None:
    """What a Katib chain leaves: no study.db; real trials record their curve in trial.json."""
    work, spec = chains["base"]
    folder = tmp_path / "best"
    folder.mkdir()
    shutil.copy(work / "halving.json", folder)
    shutil.copytree(work / "trials", folder / "trials")
    best = _summary(work)["bestTrialName"]
    curve = [0.9, 0.5, 0.3, 0.2]  # as train-trial writes it: one dict per epoch
    (folder / "trials" / best / "trial.json").write_text(json.dumps(
        {"history": [{"epoch": e, "val_score": v, "train_loss": 1.0}
                     for e, v in enumerate(curve)]}))
    assert analyze_sweep(folder).next_spec is not None  # halving.json names the spec
    unnamed = {**_summary(work), "spec": None}
    (folder / "halving.json").write_text(json.dumps(unnamed))
    with pytest.raises(ConfigError, match=r"no study\.db; pass --spec"):
        analyze_sweep(folder)
    a = analyze_sweep(folder, spec=spec)
    assert a.counts["complete"] == 4 and a.next_spec is not None
    assert a.rungs is not None
    shipped = next(c for c in a.rungs.configurations if c.shipped)
    assert list(shipped.history) == curve
    written = write_analysis(a, tmp_path / "out")
    assert tmp_path / "out" / "rungs.png" in written


@pytest.mark.parametrize("xs, ys, rho, p", [
    ([1, 2, 3], [1, 2, 3], 1.0, 2 / 6),  # scipy's t approximation says p=0 here
    ([1, 2, 3, 4], [4, 3, 2, 1], -1.0, 2 / 24),
    ([1, 2, 3, 4, 5], [1, 3, 2, 4, 5], 0.9, None),
    ([1, 2], [1, 2], None, None),
    ([1, 2, 3, 4], [2, 2, 2, 2], None, None),
], ids=["three", "four-reversed", "five", "two", "constant"])
def test_spearman_and_its_exact_p(xs: list[float], ys: list[float], rho: float | None,
                                  p: float | None) -> None:
    from itertools import permutations

    from aurora_mlops.tuning.analysis._rungs import _spearman

    got_rho, got_p = _spearman(xs, ys)
    assert got_rho == (None if rho is None else pytest.approx(rho))
    if rho is None:
        assert got_p is None
        return
    # By hand: the share of all pairings of the y values whose |rho| is at least as large.
    pairings = [_hand_rho(xs, list(perm)) for perm in permutations(ys)]
    share = sum(abs(q) >= abs(rho) - 1e-9 for q in pairings) / len(pairings)
    assert got_p == pytest.approx(share if p is None else p)


@pytest.mark.parametrize("rho, n, words", [
    (0.9, 5, "ranked like the full budget (Spearman rho=0.90"),
    (0.3, 5, "ranked only loosely like the full budget (Spearman rho=0.30"),
    (-0.5, 5, "did not rank like the full budget (Spearman rho=-0.50"),
    (1.0, 3, "Too few configurations (n=3) to judge"),
    (None, 5, "the objective was the same for all n=5 configurations"),
], ids=["alike", "loosely", "opposite", "too-few", "constant"])
def test_the_verdict_is_one_sentence(rho: float | None, n: int, words: str) -> None:
    from aurora_mlops.tuning.analysis._model import RankCorrelation
    from aurora_mlops.tuning.analysis._rungs import _verdict

    text = _verdict(RankCorrelation(low=3, high=27, n=n, rho=rho, p_value=None,
                                    source="rungs"), [3, 9, 27], "epochs")
    assert words in text and "between 3 and 27 epochs" in text
    assert text.count(". ") == 0 and text.endswith(".")


@pytest.mark.parametrize("text, words", [
    ("{not json", "cannot be read as JSON"),
    ('{"experiment": "x", "plan": {}, "rungs": []}', "is not a successive-halving summary"),
    ('{"experiment": "x", "plan": {}, "rungs": [{"experiment": "x-r0", "budget": 1, '
     '"trials": [{"value": 1.0}]}]}', "every trial with a name and parameters"),
], ids=["not-json", "no-rungs", "nameless-trial"])
def test_a_broken_halving_json_is_one_sentence(text: str, words: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "halving.json").write_text(text)
    assert main(["tune", "analyze", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("aurora-mlops: error: ") and words in err and err.count("\n") == 1
    assert str(tmp_path / "halving.json") in err
