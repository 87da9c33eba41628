"""The README's "On a cluster" commands cannot rot: checked offline against the repository.

They need a cluster and a Docker engine to run, so they sit in ``console`` blocks (not run by
tests/test_readme.py); here every command is parsed and what it names must exist: CLI
subcommands and flags, files, build arguments, Secret keys, the cron.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from aurora_mlops.cli import build_parser
from aurora_mlops.submit import check_cron, load_package, parse_params

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## On a cluster\n")
    section = text[start:text.index("\n## ", start + 1)]
    commands = []
    for block in re.findall(r"```console\n(.*?)```", section, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("   #")[0].split("        #")[0].strip()
            if line:
                commands.append(shlex.split(line))
    return commands


def _with(word: str) -> list[list[str]]:
    return [c for c in _commands() if c[0] == word]


def _option(argv: list[str], name: str) -> list[str]:
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]
    values += [a.split("=", 1)[1] for a in argv if a.startswith(name + "=")]
    return values


def test_the_section_has_every_step() -> None:
    words = {" ".join(c[:3]) for c in _commands()}
    for step in ("kubectl apply -k", "docker build -f", "docker push ghcr.io/aurora-mlops/",
                 "aurora-mlops pipeline submit", "aurora-mlops pipeline schedule",
                 "kubectl apply -f", "aurora-mlops pipeline compile"):
        assert any(w.startswith(step) for w in words), step


@pytest.mark.parametrize("argv", _with("aurora-mlops"), ids=lambda a: " ".join(a[1:3]))
def test_aurora_mlops_commands_parse(argv: list[str]) -> None:
    args = build_parser().parse_args(argv[1:])
    assert args.command == argv[1] and callable(args.handler)
    for cron in _option(argv, "--cron"):
        assert check_cron(cron) == cron
    params = _option(argv, "--param")
    if params:
        # What `pipeline submit` reads: the compiled pipeline, which tests/kfp/test_kfp_compile.py
        # holds equal to its source; every --param must name one of its inputs, with its type.
        package = load_package(args.pipeline, ROOT / "pipelines")
        assert package.name == args.pipeline
        assert parse_params(params, package).keys() == {p.split("=", 1)[0] for p in params}


def test_kubectl_targets_exist_and_secret_keys_match_the_template() -> None:
    templates = {d["metadata"]["name"]: set(d["stringData"]) for d in yaml.safe_load_all(
        (ROOT / "manifests" / "secret-template.yaml").read_text()) if d}
    created = {}
    for argv in _with("kubectl"):
        if "apply" in argv:
            for flag in ("-k", "-f"):
                for target in _option(argv, flag):
                    assert (ROOT / target).exists(), target
        if "secret" in argv and "generic" in argv:
            name = argv[argv.index("generic") + 1]
            created[name] = {v.split("=", 1)[0] for v in _option(argv, "--from-literal")}
    assert created == templates


def test_docker_build_uses_the_dockerfile_and_its_build_args() -> None:
    (build,) = [c for c in _with("docker") if c[1] == "build"]
    dockerfile = ROOT / _option(build, "-f")[0]
    declared = set(re.findall(r"^ARG (\w+)", dockerfile.read_text(), flags=re.M))
    given = {v.split("=", 1)[0] for v in _option(build, "--build-arg")}
    assert given and given <= declared
    (tag,) = _option(build, "-t")
    from aurora_mlops._version import __version__

    assert tag.endswith(f":{__version__}")
    assert dict(v.split("=", 1) for v in _option(build, "--build-arg"))[
        "AURORA_MLOPS_VERSION"] == __version__


def test_kfp_run_create_names_the_compiled_pipeline() -> None:
    (kfp,) = _with("kfp")
    assert "create" in kfp and _option(kfp, "--experiment-name")
    (package,) = _option(kfp, "--package-file")
    assert re.fullmatch(r"pipelines/[\w-]+\.yaml", package)
    submit = next(c for c in _with("aurora-mlops") if c[1:3] == ["pipeline", "submit"])
    assert package == f"pipelines/{_option(submit, '--pipeline')[0]}.yaml"
