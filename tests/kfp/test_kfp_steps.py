"""What the components run (aurora_mlops.kfp.steps), without Kubeflow: bad input, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aurora_mlops.data import write_dataset
from aurora_mlops.errors import ConfigError, DataFileError, ValidationFailed
from aurora_mlops.kfp.steps import (
    SYNTHETIC,
    StepFailed,
    failure_summary,
    final_fit,
    prepare_data,
    reported,
    run_cli,
)


def test_synthetic_data_is_written_where_trials_read_it_and_validated(tmp_path: Path) -> None:
    out = prepare_data(SYNTHETIC, "ocean-waves", tmp_path / "ds", tmp_path / "audit")
    assert Path(out["path"]) == tmp_path / "ds" / "ocean-waves.nc"
    audit = json.loads((tmp_path / "audit" / "validation.json").read_text())
    assert audit["ok"] is True


def test_a_local_dataset_is_copied_and_bad_values_fail_the_step(
        tmp_path: Path, canonical_factory) -> None:  # type: ignore[no-untyped-def]
    ds = canonical_factory("medium-res", times=8)
    src = write_dataset(ds, tmp_path / "good.nc")
    prepare_data(str(src), "medium-res", tmp_path / "a", tmp_path / "a-audit")
    assert (tmp_path / "a" / "medium-res.nc").stat().st_size == src.stat().st_size
    bad = ds.copy(deep=True)
    bad["2t"][:] = np.nan
    src = write_dataset(bad, tmp_path / "bad.nc")
    with pytest.raises(ValidationFailed) as exc:
        prepare_data(str(src), "medium-res", tmp_path / "b", tmp_path / "b-audit")
    assert any("2t" in p for p in exc.value.problems)


def test_a_missing_dataset_names_the_parameter(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"dataset_uri .*nope\.nc does not exist"):
        prepare_data(str(tmp_path / "nope.nc"), "medium-res", tmp_path / "d", tmp_path / "r")


def test_an_empty_final_fit_passes_the_best_trial_on(tmp_path: Path) -> None:
    best = tmp_path / "best"
    best.mkdir()
    (best / "model.ckpt").write_bytes(b"w")
    (best / "best.json").write_text(json.dumps({"metrics": {"val_score": 0.5},
                                                "parameterAssignments": []}))
    assert final_fit(best_dir=best, data="unused.nc", variant="medium-res", profile="smoke",
                     out_dir=tmp_path / "out", fit_args=" ") == {"val_score": 0.5}
    assert (tmp_path / "out" / "model.ckpt").read_bytes() == b"w"
    with pytest.raises(ConfigError, match=r"best\.json"):
        final_fit(best_dir=tmp_path / "none", data="x.nc", variant="medium-res",
                  profile="smoke", out_dir=tmp_path / "o2", fit_args="")


def test_a_shipped_sweep_trial_names_the_dataset_so_it_can_be_packaged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """make run ships the best trial as it is; its trial.json said ``data/<variant>.nc``,
    relative to the sweep's work dir, and the package step (run elsewhere) could not find it."""
    import io

    from aurora_mlops.data import synthesize
    from aurora_mlops.packaging import package_model
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    dataset = write_dataset(synthesize("medium-res", times=24, seed=3),
                            tmp_path / "validated" / "medium-res.nc")
    sweep = tmp_path / "sweep"
    (sweep / "data").mkdir(parents=True)
    (sweep / "data" / "medium-res.nc").symlink_to(dataset)
    monkeypatch.chdir(sweep)  # as the runner starts a trial: relative --data and --output
    train_trial(variant=get_variant("medium-res"), data=Path("data/medium-res.nc"),
                output_dir=Path("trials/t-0"), params=resolve_params(
                    "smoke", {"epochs": 1, "steps_per_epoch": 2, "val_windows": 2}),
                profile="smoke", tracking=False, stdout=io.StringIO())
    best = sweep / "trials" / "t-0"
    (best / "best.json").write_text(json.dumps({"metrics": {"val_score": 1.0}}))
    assert json.loads((best / "trial.json").read_text())["data"]["path"] == "data/medium-res.nc"
    monkeypatch.chdir(tmp_path)
    final_fit(best_dir=best, data=dataset, variant="medium-res", profile="smoke",
              out_dir=tmp_path / "final", fit_args="")
    trial = json.loads((tmp_path / "final" / "trial.json").read_text())
    assert trial["data"]["path"] == str(dataset.resolve())
    assert trial["checkpoint"] == json.loads((best / "trial.json").read_text())["checkpoint"]
    result = package_model(tmp_path / "final", variant="medium-res", out=tmp_path / "pkg")
    assert (result.path / "MLmodel").is_file()


def test_reported_turns_a_user_error_into_one_line_and_exit_1(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc, reported("data-validate"):
        raise ValidationFailed(["x.nc: variable 2t: all NaN"])
    assert exc.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "aurora-mlops: error: [data-validate] 1 validation problem(s)"
    assert err[1].strip() == "x.nc: variable 2t: all NaN"
    with pytest.raises(KeyError), reported("x"):  # a bug keeps its traceback
        raise KeyError("bug")


def test_run_cli_raises_on_a_failing_command(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match="exit code 1"):
        run_cli(["data", "validate", str(tmp_path / "missing.nc"), "--variant", "medium-res"])


def test_failure_summary_names_the_step_and_message(tmp_path: Path) -> None:
    text = failure_summary({"state": "FAILED", "pipeline_task_name": "evaluate",
                            "error_code": 1, "error_message": "Task evaluate failed."},
                           tmp_path / "s.md")
    assert "failed step: `evaluate`" in text and "Task evaluate failed." in text
    assert (tmp_path / "s.md").read_text() == text
    ok = failure_summary({"state": "SUCCEEDED"}, tmp_path / "ok.md")
    assert "SUCCEEDED" in ok and "failed step" not in ok


@pytest.mark.parametrize(("code", "rc"), [("print('done')", 0), ("raise ValueError('late')", 1)])
def test_skipping_teardown_keeps_the_exit_code(code: str, rc: int) -> None:
    """A task that wrote its outputs exits at once; an uncaught error still exits 1."""
    import subprocess
    import sys

    prog = ("import atexit\nfrom aurora_mlops.kfp._exit import _exit_without_teardown\n"
            f"atexit.register(_exit_without_teardown)\n{code}\n")
    result = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == rc, result.stderr
    assert ("done" in result.stdout) == (rc == 0)  # stdout was flushed before os._exit


def test_teardown_is_skipped_only_inside_the_kfp_executor() -> None:
    from aurora_mlops.kfp._exit import _in_kfp_executor

    assert _in_kfp_executor() is False  # pytest: a normal interpreter exit
