"""Publishing against a real ``mlflow server`` on 127.0.0.1 (plain): every variant, the gate,
--force, --rollback, idempotency, a server killed mid-publish, Azure's tag fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow import MlflowClient

from aurora_mlops.cli import main
from aurora_mlops.config import Settings
from aurora_mlops.errors import PublishError
from aurora_mlops.packaging import read_package
from aurora_mlops.publishing import publish_package, rollback
from aurora_mlops.publishing._auth import Redactor
from aurora_mlops.publishing._registry import Registry, RetryPolicy
from aurora_mlops.variants import VARIANTS

GATE = "val_score<=champion"


def _versions(uri: str, name: str) -> list:
    found = MlflowClient(uri, uri).search_model_versions(f"name='{name}'")
    return sorted(found, key=lambda v: int(v.version))


def test_every_variant_publishes_and_loads_by_champion_in_a_fresh_process(
    mlflow_server: str, packages: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for variant, pkg in packages.items():
        gate_out = tmp_path / f"gate-{variant}.json"
        code = main(["publish", str(pkg), "--registry-uri", mlflow_server,
                     "--gate-out", str(gate_out)])
        assert code == 0
        printed = capsys.readouterr().out
        assert f"gate PASS for aurora-{variant} v1 against no champion: first" in printed
        assert json.loads(gate_out.read_text())["outcome"] == "first"
        info = read_package(pkg)
        mv = MlflowClient(mlflow_server, mlflow_server).get_model_version_by_alias(
            f"aurora-{variant}", "champion"
        )
        assert mv.tags["variant"] == variant and mv.tags["publish.state"] == "done"
        assert mv.tags["checkpoint_sha256"] == info.checkpoint_sha256
        assert mv.tags["publish.checkpoint_sha256"] == info.checkpoint_sha256
        assert float(mv.tags["publish.metric.val_score"]) == pytest.approx(info.val_score)
        assert any(k.startswith("event_threshold.") for k in mv.tags)
        assert {"horizon_hours", "resolution_deg", "timestep_hours", "dataset", "git_commit",
                "image"} <= set(mv.tags)
        card = Path(info.model_card).read_text()
        kept = mv.description.split("\n\n(truncated: the full card is MODEL_CARD.md")[0]
        assert card.startswith(kept) and len(mv.description) <= 5000
        assert (kept == card) == (len(card) <= 5000)
        assert set(mv.aliases) == {"champion", "challenger"}
        assert mv.current_stage == "None"  # aliases, never the deprecated stages
    script = textwrap.dedent(f"""
        import mlflow
        for v in {list(VARIANTS)!r}:
            m = mlflow.pyfunc.load_model(f"models:/aurora-{{v}}@champion")
            print(v, m.metadata.metadata["aurora_mlops"]["checkpoint_sha256"])
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_TRACKING_URI"] = mlflow_server  # what a serving host sets
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = dict(line.split() for line in proc.stdout.strip().splitlines())
    assert loaded == {v: read_package(p).checkpoint_sha256 for v, p in packages.items()}


def test_publishing_twice_creates_one_version(
    mlflow_server: str, packages: dict[str, Path]
) -> None:
    pkg = packages["ocean-waves"]
    first = publish_package(pkg, registry_uri=mlflow_server, name="twice", gate=GATE)
    again = publish_package(pkg, registry_uri=mlflow_server, name="twice", gate=GATE)
    assert (first.created, again.created) == (True, False)
    assert again.version == first.version and again.outcome == "existing"
    assert len(_versions(mlflow_server, "twice")) == 1


def test_gate_refuses_worse_promotes_better_and_rollback(
    mlflow_server: str, ranked_medium_res: list[Path], tmp_path: Path
) -> None:
    best, mid, worst = ranked_medium_res
    name = "gate-test"

    def pub(pkg: Path, **kw: object) -> object:
        return publish_package(pkg, registry_uri=mlflow_server, name=name, gate=GATE,
                               gate_out=tmp_path / f"{pkg.name}.json", **kw)

    first = pub(mid)
    assert (first.version, first.champion_version, first.outcome) == ("1", "1", "first")
    refused = pub(worst)
    assert (refused.gate_passed, refused.outcome, refused.champion_version) == (
        False, "refused", "1")
    record = json.loads(Path(refused.gate_file).read_text())
    assert record["champion_version"] == "1" and record["challenger_version"] == "2"
    assert record["clauses"][0]["challenger"] == pytest.approx(read_package(worst).val_score)
    assert record["clauses"][0]["reference"] == pytest.approx(read_package(mid).val_score)
    client = MlflowClient(mlflow_server, mlflow_server)
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_model_version_by_alias(name, "challenger").version == "2"
    promoted = pub(best)
    assert (promoted.outcome, promoted.champion_version) == ("promoted", "3")
    assert client.get_model_version_by_alias(name, "champion").version == "3"
    assert client.get_model_version(name, "3").tags["publish.previous_champion"] == "1"

    rb = rollback(name, registry_uri=mlflow_server)
    assert (rb.from_version, rb.to_version) == ("3", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_model_version(name, "3").tags["publish.rolled_back_to"] == "1"
    assert client.get_model_version(name, "1").tags["publish.restored_from"] == "3"
    with pytest.raises(PublishError, match="first champion"):
        rollback(name, registry_uri=mlflow_server)


def test_force_promotes_and_is_recorded_then_cli_rollback(
    mlflow_server: str, ranked_medium_res: list[Path], capsys: pytest.CaptureFixture
) -> None:
    best, _, worst = ranked_medium_res
    name = "force-test"

    assert publish_package(best, registry_uri=mlflow_server, name=name, gate=GATE).version == "1"
    forced = publish_package(worst, registry_uri=mlflow_server, name=name, gate=GATE, force=True)
    assert (forced.outcome, forced.champion_version, forced.gate_passed) == ("forced", "2", False)
    tags = MlflowClient(mlflow_server, mlflow_server).get_model_version(name, "2").tags
    assert (tags["publish.forced"], tags["publish.gate"]) == ("true", "forced")
    capsys.readouterr()
    assert main(["publish", "--rollback", "--name", name, "--registry-uri", mlflow_server]) == 0
    assert "from v2 to v1" in capsys.readouterr().out
    champion = MlflowClient(mlflow_server, mlflow_server).get_model_version_by_alias(
        name, "champion")
    assert champion.version == "1"
    # a refused version promoted afterwards with --force: no new version, recorded
    _, mid, _ = ranked_medium_res
    assert publish_package(mid, registry_uri=mlflow_server, name=name, gate=GATE).outcome == (
        "refused")
    again = publish_package(mid, registry_uri=mlflow_server, name=name, gate=GATE, force=True)
    assert (again.version, again.created, again.outcome, again.champion_version) == (
        "3", False, "forced", "3")
    tags = MlflowClient(mlflow_server, mlflow_server).get_model_version(name, "3").tags
    assert (tags["publish.forced"], tags["publish.previous_champion"]) == ("true", "1")
    assert len(_versions(mlflow_server, name)) == 3


def test_server_killed_mid_publish_then_rerun_succeeds(
    tmp_path: Path, packages: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from _servers import start_mlflow_server
    from aurora_mlops.publishing import _registry

    server = start_mlflow_server(tmp_path / "dying")
    monkeypatch.setenv("AURORA_MLOPS_PUBLISH_RETRIES", "2")
    monkeypatch.setenv("AURORA_MLOPS_PUBLISH_BACKOFF_S", "0.2")
    argv = ["publish", str(packages["air-pollution"]), "--registry-uri", server.uri,
            "--gate-out", str(tmp_path / "gate.json")]
    try:
        monkeypatch.setattr(_registry, "after_create_version", lambda n, v: server.stop())
        assert main(argv) == 1
        errors = [ln for ln in capsys.readouterr().err.splitlines() if "aurora-mlops: error" in ln]
        assert len(errors) == 1
        assert "did not answer" in errors[0] and "run the same command" in errors[0]
        assert not (tmp_path / "gate.json").exists()
        monkeypatch.setattr(_registry, "after_create_version", lambda n, v: None)
        assert main(argv) == 1  # still down: fails the same way, quickly and bounded
        server.start()
        left = _versions(server.uri, "aurora-air-pollution")
        assert [v.tags.get("publish.state") for v in left] == ["pending"]
        # (search results may omit aliases, so ask for the version itself)
        assert MlflowClient(server.uri, server.uri).get_model_version(
            "aurora-air-pollution", left[0].version).aliases == []
        assert main(argv) == 0
        done = _versions(server.uri, "aurora-air-pollution")
        assert [(v.version, v.tags["publish.state"]) for v in done] == [("1", "done")]
        assert set(MlflowClient(server.uri, server.uri).get_model_version(
            "aurora-air-pollution", "1").aliases) == {"champion", "challenger"}
    finally:
        server.stop()


def test_pending_version_of_another_package_is_cleaned_up(
    mlflow_server: str, ranked_medium_res: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aurora_mlops.publishing import _registry

    best, mid, _ = ranked_medium_res

    def crash(name: str, version: str) -> None:
        raise KeyboardInterrupt  # a publish killed right after creating its version

    monkeypatch.setattr(_registry, "after_create_version", crash)
    with pytest.raises(KeyboardInterrupt):
        publish_package(mid, registry_uri=mlflow_server, name="cleanup", gate=GATE)
    monkeypatch.setattr(_registry, "after_create_version", lambda n, v: None)
    assert [v.tags["publish.state"] for v in _versions(mlflow_server, "cleanup")] == ["pending"]
    result = publish_package(best, registry_uri=mlflow_server, name="cleanup", gate=GATE)
    left = _versions(mlflow_server, "cleanup")
    assert [(v.version, v.tags["publish.state"]) for v in left] == [(result.version, "done")]
    assert result.outcome == "first"


def test_registry_without_aliases_records_them_as_tags(
    mlflow_server: str, ranked_medium_res: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azure ML's registry path (no aliases, tags set after registering), run on a real server."""
    from aurora_mlops.publishing import _publish

    best, mid, _ = ranked_medium_res

    def no_aliases(uri: str, settings: Settings | None = None) -> tuple[Registry, list[str]]:
        reg = Registry(uri, policy=RetryPolicy(retries=1, backoff_s=0.1), redact=Redactor(),
                       aliases=False, tags_on_create=False)
        return reg, ["aliases as tags"]

    monkeypatch.setattr(_publish, "open_registry", no_aliases)
    name = "no-aliases"
    publish_package(mid, registry_uri=mlflow_server, name=name, gate=GATE)
    result = publish_package(best, registry_uri=mlflow_server, name=name, gate=GATE)
    assert (result.outcome, result.champion_version, result.notes) == (
        "promoted", "2", ("aliases as tags",))
    vs = _versions(mlflow_server, name)
    client = MlflowClient(mlflow_server, mlflow_server)
    assert [client.get_model_version(name, v.version).aliases for v in vs] == [[], []]
    assert [v.tags["publish.alias.champion"] for v in vs] == ["false", "true"]
    assert rollback(name, registry_uri=mlflow_server).to_version == "1"
    assert [v.tags["publish.alias.champion"] for v in _versions(mlflow_server, name)] == [
        "true", "false"]


def test_down_server_fails_with_one_sentence(
    packages: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
    tmp_path: Path,
) -> None:
    from _servers import free_port

    monkeypatch.setenv("AURORA_MLOPS_PUBLISH_RETRIES", "1")
    monkeypatch.setenv("AURORA_MLOPS_PUBLISH_BACKOFF_S", "0.1")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ci")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-should-not-show")
    uri = f"http://ci:pw-should-not-show@127.0.0.1:{free_port()}"
    code = main(["publish", str(packages["medium-res"]), "--registry-uri", uri,
                 "--gate-out", str(tmp_path / "g.json")])
    captured = capsys.readouterr()
    assert code == 1
    assert "pw-should-not-show" not in captured.out + captured.err
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "did not answer" in errors[0] and "http://127.0.0.1:" in errors[0]



def test_azure_grant_prints_role_commands_even_when_publish_cannot_start(
    packages: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    from aurora_mlops.publishing._connect import has_module

    if has_module("azureml.mlflow"):
        pytest.skip("azureml-mlflow is installed here: the publish would try to reach Azure")
    az = ("azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/sub-1/resourceGroups/rg"
          "/providers/Microsoft.MachineLearningServices/workspaces/ws")
    code = main(["publish", str(packages["medium-res"]), "--registry-uri", az,
                 "--grant", "alice@contoso.com:READ"])
    out, err = capsys.readouterr()
    assert code == 1 and "aurora-mlops[azure]" in err
    assert ("az role assignment create --role Reader --assignee alice@contoso.com --scope "
            "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.MachineLearningServices"
            "/workspaces/ws") in out
