"""A local sweep given a tracking URI it cannot use stops before its first trial.

``train-trial`` refuses a tracking URI it cannot use (rather than training untracked), and the
sweep hands its URI to every trial; a sweep that went on would fail each trial in turn with the
same message. It says so once, up front, and starts nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from _servers import free_port
from aurora_mlops.cli import main
from aurora_mlops.errors import RegistryError
from aurora_mlops.tuning import parse_experiment, run_local

SPECS = Path(__file__).parent / "specs"


def _work_and_spec(tmp_path: Path) -> tuple[Path, Path]:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SPECS / "trial.py", work / "trial.py")
    doc = yaml.safe_load((SPECS / "script-random.yaml").read_text())
    doc["spec"]["maxTrialCount"] = doc["spec"]["maxFailedTrialCount"] = 2
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    return work, spec


def test_a_down_tracking_server_stops_the_sweep_before_any_trial(tmp_path: Path) -> None:
    work, spec = _work_and_spec(tmp_path)
    down = f"http://user:s3cret@127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError) as info:
        run_local(parse_experiment(yaml.safe_load(spec.read_text())), work_dir=work,
                  progress=False, tracking_uri=down)
    message = str(info.value)
    assert "does not answer" in message and "s3cret" not in message
    assert "\n" not in message
    assert not (work / "trials").exists() or not any((work / "trials").iterdir())


def test_the_cli_says_it_in_one_line_and_exits_1(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    work, spec = _work_and_spec(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    from aurora_mlops.config import get_settings

    get_settings.cache_clear()
    try:
        assert main(["tune", str(spec), "--backend", "local", "--work-dir", str(work)]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MLflow tracking server" in err[0], err
