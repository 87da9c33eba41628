"""A local sweep's study can be browsed with optuna-dashboard on the same storage."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from aurora_mlops.tuning import run_local

SPECS = Path(__file__).parent / "specs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(dashboard: Path, work: Path) -> tuple[subprocess.Popen[bytes], int, Any]:
    """Start the dashboard and wait (60 s at most) for its study list. A port picked free can
    be taken before the server binds it: then the server exits and another port is tried."""
    for _ in range(5):
        port = _free_port()
        server = subprocess.Popen(
            [str(dashboard), f"sqlite:///{work / 'study.db'}", "--port", str(port), "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies",
                                            timeout=5) as r:
                    return server, port, json.loads(r.read())["study_summaries"]
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        if server.poll() is None:
            return server, port, None  # alive but silent: the caller fails the test
        server.wait()
    pytest.fail("optuna-dashboard exited on five ports: "
                + (server.stdout.read().decode() if server.stdout else ""))


def test_optuna_dashboard_lists_the_sweep_and_its_trials(tmp_path: Path) -> None:
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    # A dev dependency that `make` installs: missing, the test fails rather than skips.
    assert dashboard.exists(), "optuna-dashboard is not installed: run `make install`"
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(SPECS / "trial.py", work / "trial.py")
    doc = yaml.safe_load((SPECS / "script-random.yaml").read_text())
    spec = tmp_path / "script.yaml"
    spec.write_text(yaml.safe_dump(doc))
    result = run_local(spec, work_dir=work, progress=False, tracking=False,
                       use_forkserver=False, trial_timeout=60)
    server, port, studies = _serve(dashboard, work)
    try:
        assert studies is not None, "optuna-dashboard did not answer within 60 s"
        (study,) = studies
        assert study["study_name"] == doc["metadata"]["name"] == result.experiment
        url = f"http://127.0.0.1:{port}/api/studies/{study['study_id']}?after=0"
        with urllib.request.urlopen(url, timeout=10) as r:
            detail = json.loads(r.read())
        names = {a["value"] for t in detail["trials"] for a in t["user_attrs"]
                 if a["key"] == "katib_name"}
        assert result.best_trial in names
        assert len(detail["trials"]) == json.loads((work / "status.json").read_text())["trials"]
    finally:
        server.terminate()
        server.wait(timeout=10)
