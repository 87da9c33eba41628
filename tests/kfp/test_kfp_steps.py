"""What the components run (aurora_mlops.kfp.steps), without Kubeflow: bad input, outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aurora_mlops.data import write_dataset
from aurora_mlops.errors import ConfigError, DataFileError, ValidationFailed
from aurora_mlops.kfp._refs import pod_namespace
from aurora_mlops.kfp.steps import (
    SYNTHETIC,
    evaluate_model,
    failure_summary,
    final_fit,
    package,
    prepare_data,
    read_ref,
    reported,
    run_folder,
    sweep,
    write_ref,
)


def test_synthetic_data_is_written_into_the_runs_folder_on_the_volume(tmp_path: Path) -> None:
    out = prepare_data(SYNTHETIC, "ocean-waves", ref_dir=tmp_path / "ref",
                       report_dir=tmp_path / "audit", data_root=str(tmp_path / "vol"),
                       run_id="run-1")
    where = tmp_path / "vol" / "pipeline-runs" / "run-1" / "ocean-waves" / "data"
    assert Path(out["path"]) == where / "ocean-waves.nc"
    assert read_ref(tmp_path / "ref") == where / "ocean-waves.nc"
    audit = json.loads((tmp_path / "audit" / "validation.json").read_text())
    assert audit["ok"] is True


def test_a_dataset_on_the_volume_is_read_in_place_and_bad_values_fail_the_step(
        tmp_path: Path, canonical_factory) -> None:  # type: ignore[no-untyped-def]
    """No copy of the dataset: the reference names the file where it is, so a refreshed file
    is what the next steps read (and nothing writes over it)."""
    ds = canonical_factory("medium-res", times=8)
    vol = tmp_path / "vol"
    src = write_dataset(ds, vol / "medium-res.nc")
    before = src.stat().st_mtime_ns
    prepare_data("", "medium-res", ref_dir=tmp_path / "a", report_dir=tmp_path / "a-audit",
                 data_root=str(vol), run_id="r")
    assert read_ref(tmp_path / "a") == src.resolve()
    assert sorted(p.name for p in vol.iterdir()) == ["medium-res.nc"]  # nothing written
    assert src.stat().st_mtime_ns == before
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["ref.json"]
    bad = ds.copy(deep=True)
    bad["2t"][:] = np.nan
    src = write_dataset(bad, tmp_path / "bad.nc")
    with pytest.raises(ValidationFailed) as exc:
        prepare_data(str(src), "medium-res", ref_dir=tmp_path / "b",
                     report_dir=tmp_path / "b-audit", data_root=str(vol), run_id="r")
    assert any("2t" in p for p in exc.value.problems)
    assert not (tmp_path / "b" / "ref.json").exists()


def test_a_missing_dataset_names_the_parameter(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"dataset_uri .*nope\.nc does not exist"):
        prepare_data(str(tmp_path / "nope.nc"), "medium-res", ref_dir=tmp_path / "d",
                     report_dir=tmp_path / "r", data_root=str(tmp_path), run_id="r")


def test_a_reference_to_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    write_ref(tmp_path / "ref", tmp_path / "gone.nc")
    with pytest.raises(ConfigError, match=r"gone\.nc, which does not exist here"):
        read_ref(tmp_path / "ref")
    with pytest.raises(ConfigError, match="not a reference"):
        read_ref(tmp_path / "empty")
    with pytest.raises(ConfigError, match="run_id"):
        run_folder(tmp_path, "", "medium-res", "sweep")


def _best(tmp_path: Path) -> Path:
    trial = tmp_path / "vol" / "trials" / "t-1"
    trial.mkdir(parents=True)
    (trial / "model.ckpt").write_bytes(b"w")
    best = tmp_path / "best"
    best.mkdir()
    (best / "best.json").write_text(json.dumps({
        "metrics": {"val_score": 0.5}, "parameterAssignments": [],
        "checkpoint": str(trial / "model.ckpt")}))
    return trial


def test_an_empty_final_fit_names_the_best_trials_folder_without_copying(
        tmp_path: Path) -> None:
    trial = _best(tmp_path)
    metrics, model = final_fit(best_dir=tmp_path / "best", data="unused.nc",
                               variant="medium-res", profile="smoke",
                               out_dir=tmp_path / "out", fit_args=" ")
    assert (metrics, model) == ({"val_score": 0.5}, trial)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match=r"best\.json"):
        final_fit(best_dir=tmp_path / "none", data="x.nc", variant="medium-res",
                  profile="smoke", out_dir=tmp_path / "o2", fit_args="")


def test_a_shipped_sweep_trial_is_packaged_with_the_pipelines_dataset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A local sweep's trial records ``data/<variant>.nc``, relative to the sweep's work dir;
    the package step (run elsewhere) is given the pipeline's dataset instead."""
    import io

    from aurora_mlops.data import synthesize
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
    trial = sweep / "trials" / "t-0"
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "best.json").write_text(json.dumps(
        {"metrics": {"val_score": 1.0}, "checkpoint": str(trial / "model.ckpt")}))
    assert json.loads((trial / "trial.json").read_text())["data"]["path"] == "data/medium-res.nc"
    monkeypatch.chdir(tmp_path)
    _, model = final_fit(best_dir=tmp_path / "best", data=dataset, variant="medium-res",
                         profile="smoke", out_dir=tmp_path / "final", fit_args="")
    info = package(model_dir=model, variant="medium-res", out_dir=tmp_path / "pkg",
                   eval_dir=None, bench_dir=None, data=dataset)  # type: ignore[arg-type]
    assert (Path(info["path"]) / "MLmodel").is_file()


def test_the_katib_tune_step_refuses_data_off_the_volume_and_finds_its_namespace(
        tmp_path: Path) -> None:
    """Katib's trials mount only the data volume; the Experiment goes to the pod's namespace
    (the run's, where the PVCs and Secret are), read from the ServiceAccount mount."""
    from aurora_mlops.kfp._tune import _trial_data

    assert _trial_data(tmp_path / "vol" / "x" / "m.nc", str(tmp_path / "vol")) == \
        "/mnt/data/x/m.nc"
    with pytest.raises(ConfigError, match="not on the data volume"):
        sweep(variant="medium-res", algorithm="random", profile="production",
              data=tmp_path / "elsewhere.nc", best_dir=tmp_path / "b", sweep_dir=tmp_path / "s",
              max_trials=1, parallel_trials=1, backend="katib", run_id="r",
              data_root=str(tmp_path / "vol"))
    (tmp_path / "ns").write_text("team-a\n")
    assert pod_namespace(tmp_path / "ns") == "team-a"
    assert pod_namespace(tmp_path / "missing") is None


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


def test_the_evaluate_step_raises_the_user_error_in_its_own_process(tmp_path: Path) -> None:
    """The step runs the evaluation in-process: a bad setting is the library's one-sentence
    error (which `reported` prints), raised before any file is written."""
    with pytest.raises(ConfigError, match=r"lead_steps\) must be at least 1, got 0"):
        evaluate_model(model_dir=tmp_path / "trial", data=tmp_path / "data.nc",
                       variant="medium-res", out_dir=tmp_path / "eval", lead_steps=0)
    assert list(tmp_path.iterdir()) == []


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


@pytest.mark.parametrize("as_executor", [True, False], ids=["kfp-executor", "plain"])
def test_teardown_is_skipped_only_inside_the_kfp_executor(as_executor: bool) -> None:
    """Under ``python -m kfp.dsl.executor_main`` (Python sets ``__main__.__spec__`` to that
    module, as it does for any ``-m``) a finished step ends with ``os._exit``: an exit hook
    registered before it never runs. Elsewhere the interpreter's teardown runs as usual."""
    spec = ("import importlib.machinery, sys\n"
            "sys.modules['__main__'].__spec__ = importlib.machinery.ModuleSpec("
            "'kfp.dsl.executor_main', None)\n") if as_executor else ""
    prog = (f"{spec}import atexit\n"
            "atexit.register(lambda: print('teardown ran', flush=True))\n"
            "from aurora_mlops.kfp._exit import _in_kfp_executor, reported\n"
            "print('executor', _in_kfp_executor(), flush=True)\n"
            "with reported('probe'):\n    print('step done', flush=True)\n")
    result = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"executor {as_executor}" in result.stdout and "step done" in result.stdout
    assert ("teardown ran" in result.stdout) is not as_executor


def test_the_experiment_goes_to_the_tune_pods_namespace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty ``namespace`` is the pod's own (where the run, its PVCs and Secret are), not
    the settings' default; the trials are told where the dataset is on their mount."""
    from types import SimpleNamespace

    import aurora_mlops.tuning as tuning

    trial = tmp_path / "artifacts" / "trials" / "t-1"
    trial.mkdir(parents=True)
    (trial / "model.ckpt").write_bytes(b"w")
    sent: dict[str, object] = {}

    def run_katib(exp, *, namespace, **_):  # type: ignore[no-untyped-def]
        """Stands in for the Kubernetes API server; records where the Experiment goes."""
        sent.update(namespace=namespace, command=exp.trial_command(
            "t-1", {p.name: "1" for p in exp.parameters}))
        return SimpleNamespace(checkpoint="/mnt/artifacts/trials/t-1/model.ckpt",
                               best_trial="t-1", parameters={}, metrics={"val_score": 0.1},
                               trials=[])

    monkeypatch.setattr(tuning, "run_katib", run_katib)
    (tmp_path / "ns").write_text("team-b\n")
    data = tmp_path / "vol" / "refreshed" / "medium-res.nc"
    doc = sweep(variant="medium-res", algorithm="random", profile="production", data=data,
                best_dir=tmp_path / "best", sweep_dir=tmp_path / "s", max_trials=1,
                parallel_trials=1, backend="katib", run_id="abcdef123",
                data_root=str(tmp_path / "vol"), artifacts_root=str(tmp_path / "artifacts"),
                namespace_file=str(tmp_path / "ns"))
    assert sent["namespace"] == "team-b"
    assert sent["command"][-1] == "--data=/mnt/data/refreshed/medium-res.nc"  # type: ignore[index]
    assert doc["checkpoint"] == str((trial / "model.ckpt").resolve())
