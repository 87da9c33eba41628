"""The README's commands work: the two set-up commands lead, the tour runs, `make run` runs."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _forkrun import ForkRunner

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent


def _blocks(lang: str = "bash") -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def _commands(block: str) -> list[str]:
    lines = [ln.strip() for ln in block.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def test_readme_opens_with_exactly_the_two_setup_commands() -> None:
    first = _blocks()[0]
    assert _commands(first) == ["make run", "make test"]
    # ... and it is the first code block of the file.
    assert README.read_text().index("```bash\nmake run") == README.read_text().index("```")


#: The tour's subcommands that load a model, and so import torch and aurora.
MODEL_STEPS = ("train-trial", "evaluate", "benchmark", "package", "monitor run")


@pytest.mark.slow
def test_readme_tour_commands_run_in_order(tmp_path: Path) -> None:
    tour = [c for block in _blocks()[1:] for c in _commands(block)]
    assert tour and all(c.startswith("aurora-mlops ") for c in tour), tour
    shutil.copytree(ROOT / "katib", tmp_path / "katib")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "AURORA_MLOPS_WORK_DIR": str(tmp_path / "work"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    # Each command in its own process. Those that load a model are forked from one that
    # imported torch and aurora once (tests/_forkrun.py says what stays the same): those
    # imports took several seconds of each. The others start as they are, which is quicker.
    with ForkRunner(tmp_path, env) as runner:
        for command in tour:
            argv = shlex.split(command)
            if argv[1] in MODEL_STEPS or " ".join(argv[1:3]) in MODEL_STEPS:
                result = runner.command(argv)
            else:
                result = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True,
                                        text=True, timeout=600)
            assert result.returncode == 0, \
                f"{command}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
        work = tmp_path / "work"
        assert (work / "reports" / "medium-res" / "validation.md").is_file()
        assert (work / "trials" / "t0" / "model.ckpt").is_file()
        assert (work / "eval" / "t0" / "report.html").is_file()
        assert (work / "bench" / "t0" / "benchmark.json").is_file()
        assert (work / "sweeps" / "mr" / "best.json").is_file()
        assert (work / "sweeps" / "mr" / "analysis" / "next-spec.yaml").is_file()
        assert (work / "report" / "report.html").is_file()
        assert (work / "packages" / "t0" / "artifacts" / "MODEL_CARD.md").is_file()
        # The README's Python examples run against what the tour wrote.
        python_blocks = _blocks("python")
        assert python_blocks
        for block in python_blocks:
            result = runner.python(block)
            assert result.returncode == 0, \
                f"{block}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    assert "[6, 12] (1, 2, 32, 64)" in result.stdout
    assert (work / "forecast.zarr").is_dir()


# `make run` (the pipeline through kfp.local, narrowed to one variant) is run once, shared by
# the tests of tests/kfp/test_kfp_local.py.
