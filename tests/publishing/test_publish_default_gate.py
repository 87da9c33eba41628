"""The default promotion gate (``config.DEFAULT_GATE``) on a real ``mlflow server``.

Every other registry test passes its own ``val_score<=champion``; these publish with no gate at
all, so the rule in force is the default, and the champion's side of each clause is read back
from the champion version's tags (``publish.metric.*``). Setting those tags on the champion
decides the outcome, which shows that the gate reads them and not the package on disk.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient

from aurora_mlops.cli import main
from aurora_mlops.config import DEFAULT_GATE
from aurora_mlops.packaging import package_model, read_package
from aurora_mlops.publishing import publish_package

METRIC = "publish.metric."
WINS = "rmse_wins_vs_persistence"


@pytest.fixture(scope="module")
def evaluated_challenger(synthetic_data: Callable[..., Path],
                         tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A medium-res package with an evaluation (so it has ``rmse_wins_vs_persistence``) and
    another checkpoint than the session's medium-res package."""
    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    root = tmp_path_factory.mktemp("challenger")
    data = synthetic_data("medium-res")
    train_trial(variant=get_variant("medium-res"), data=data, output_dir=root / "trial",
                params=resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 2,
                                                "learning_rate": 1e-3}),
                profile="smoke", tracking=False, stdout=io.StringIO())
    assert main(["evaluate", "--model", str(root / "trial"), "--data", str(data), "--variant",
                 "medium-res", "--out", str(root / "eval"), "--lead-steps", "2",
                 "--max-inits", "3"]) == 0
    package_model(root / "trial", variant="medium-res", out=root / "pkg", eval_dir=root / "eval")
    return root / "pkg"


def _champion(uri: str, package: Path, name: str, **tags: float) -> MlflowClient:
    """Publish ``package`` as ``name``'s first version (champion), then set its metric tags."""
    first = publish_package(package, registry_uri=uri, name=name)
    assert (first.version, first.outcome) == ("1", "first")
    client = MlflowClient(uri, uri)
    for metric, value in tags.items():
        client.set_model_version_tag(name, "1", METRIC + metric, repr(value))
    return client


def _clauses(result: object) -> list[dict]:
    gate_file = getattr(result, "gate_file", None)
    assert gate_file is not None
    return json.loads(Path(gate_file).read_text())["clauses"]


def test_default_gate_refuses_when_fewer_targets_are_beaten(
        mlflow_server: str, packages: dict[str, Path], evaluated_challenger: Path) -> None:
    wins = read_package(evaluated_challenger).scores[WINS]
    name = "default-gate-refused"
    # the champion's val_score is far worse (clause 1 passes); it beats more targets than the
    # challenger can (clause 2 fails)
    client = _champion(mlflow_server, packages["medium-res"], name, val_score=1e9,
                       **{WINS: wins + 0.25})
    result = publish_package(evaluated_challenger, registry_uri=mlflow_server, name=name)
    assert (result.outcome, result.gate_passed, result.champion_version) == (
        "refused", False, "1")
    clauses = _clauses(result)
    assert [c["clause"] for c in clauses] == [c.strip() for c in DEFAULT_GATE.split(" and ")]
    assert [c["passed"] for c in clauses] == [True, False]
    assert clauses[1]["challenger"] == pytest.approx(wins)
    assert clauses[1]["reference"] == pytest.approx(wins + 0.25)
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_model_version_by_alias(name, "challenger").version == "2"


def test_default_gate_promotes_when_no_worse_on_both(
        mlflow_server: str, packages: dict[str, Path], evaluated_challenger: Path) -> None:
    wins = read_package(evaluated_challenger).scores[WINS]
    name = "default-gate-promoted"
    client = _champion(mlflow_server, packages["medium-res"], name, val_score=1e9,
                       **{WINS: wins})  # equal counts pass ">="
    result = publish_package(evaluated_challenger, registry_uri=mlflow_server, name=name)
    assert (result.outcome, result.gate_passed, result.champion_version) == (
        "promoted", True, "2")
    assert [c["passed"] for c in _clauses(result)] == [True, True]
    assert client.get_model_version_by_alias(name, "champion").version == "2"


def test_default_gate_names_the_missing_metric_on_either_side(
        mlflow_server: str, packages: dict[str, Path], evaluated_challenger: Path,
        package_factory: Callable[..., Path], capsys: pytest.CaptureFixture) -> None:
    unevaluated = package_factory("medium-res", 3e-4)
    assert WINS not in read_package(unevaluated).scores
    # the challenger has no evaluation: refused, and the CLI says which metric is missing
    name = "default-gate-no-challenger-metric"
    _champion(mlflow_server, packages["medium-res"], name, val_score=1e9)
    capsys.readouterr()
    assert main(["publish", str(unevaluated), "--registry-uri", mlflow_server,
                 "--name", name]) == 0
    out = capsys.readouterr()
    assert f"the challenger has no {WINS}" in out.out + out.err
    # the champion has none: refused, and the note says how to promote anyway
    name = "default-gate-no-champion-metric"
    first = publish_package(unevaluated, registry_uri=mlflow_server, name=name)
    assert first.outcome == "first"
    result = publish_package(evaluated_challenger, registry_uri=mlflow_server, name=name)
    assert result.outcome == "refused"
    notes = [c.get("note") or "" for c in _clauses(result)]
    assert any(f"the champion has no {WINS}; use --force" in n for n in notes), notes
