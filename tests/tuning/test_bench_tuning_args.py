"""bench/bench_tuning.py refuses bad parameters before it synthesises or trains anything."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from aurora_mlops.training import resolve_params

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_tuning.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_tuning", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("argv", "says"), [
    (["--best-args=--t0=1500"], "name that variant alone in --variants"),
    (["--variants", "medium-res", "--best-args=--bogus=1"], "--best-args: unknown trial parameter"),
    (["--variants", "medium-res", "--best-args=--t0=soon"], "--best-args: invalid trial parameter"),
    (["--variants", "medium-res", "--trial-args=--epochs=-2"], "--trial-args: invalid"),
    (["--variants", "high-res", "--best-args=--t0=1500", "--from-run", "x"], "not allowed with"),
    (["--variants", "high-res", "--jobs", "0"], "--jobs must be at least 1, not 0"),
])
def test_bad_arguments_are_usage_errors_before_any_work(
        argv: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    with pytest.raises(SystemExit) as exit_:
        _bench().main([*argv, "--work", str(work)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert says in err, err
    assert not work.exists()


def test_given_parameters_are_the_tuned_arm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """--best-args replaces the sweep: no sweep runs, and the tuned fits get those parameters
    (with the final-fit budget and each seed) while the default fits get none."""
    bench = _bench()
    fits: list[tuple[str, dict[str, object]]] = []

    def fit(variant: str, data: Path, out: Path, given: dict[str, object]) -> float:
        assert data.is_file()
        fits.append((out.name, given))
        return 0.5 if out.name.startswith("tuned") else 0.75

    def no_sweep(**_: object) -> None:
        raise AssertionError("--best-args must not sweep")

    monkeypatch.setattr(bench, "_fit", fit)
    monkeypatch.setattr(bench, "sweep", no_sweep)
    assert bench.main(["--variants", "medium-res", "--seeds", "3", "--jobs", "1",
                       "--work", str(tmp_path),
                       "--best-args=--t0=1500 --learning_rate=0.002",
                       "--trial-args=--epochs=2 --steps_per_epoch=3"]) == 0
    tuned = [g for name, g in fits if name.startswith("tuned")]
    default = [g for name, g in fits if name.startswith("default")]
    assert [g["seed"] for g in tuned] == [1, 2, 3] == [g["seed"] for g in default]
    out = capsys.readouterr().out
    assert out.startswith("tuned: '--t0=1500 --learning_rate=0.002'; fits: '--epochs=2")
    assert "default - tuned +0.2500" in out and "best (given)" in out
    assert "per seed (tuned/default): 0.5000/0.7500, 0.5000/0.7500, 0.5000/0.7500" in out
    assert "default - tuned per seed 0.2500 +- 0.0000, tuned better on 3/3 seeds" in out
    smoke = resolve_params("smoke", {})
    for g in tuned:
        p = resolve_params("smoke", g)
        assert (p.t0, p.learning_rate, p.epochs, p.steps_per_epoch) == (1500, 0.002, 2, 3)
    for g in default:
        p = resolve_params("smoke", g)
        assert (p.t0, p.learning_rate, p.epochs) == (smoke.t0, smoke.learning_rate, 2)
    assert (smoke.t0, smoke.learning_rate) != (1500, 0.002)
