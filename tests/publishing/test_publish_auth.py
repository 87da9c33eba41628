"""Publishing against a real basic-auth ``mlflow server``: --grant, refusals, no leaked secrets."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from aurora_mlops.cli import main
from aurora_mlops.errors import PublishError
from aurora_mlops.publishing import publish_package
from aurora_mlops.publishing._http import use_registry

ALICE, MALLORY = ("alice", "alice-Pw-4242"), ("mallory", "mallory-Pw-4242")


def _as(monkeypatch: pytest.MonkeyPatch, user: tuple[str, str] | None) -> None:
    if user is None:
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        return
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", user[1])


def _download(uri: str) -> str:
    with use_registry(uri):  # models:/ resolves through MLflow's global registry URI
        return mlflow.artifacts.download_artifacts("models:/aurora-medium-res@champion")


def test_grant_read_can_load_not_register_and_no_grant_is_refused(
    auth_server: object, packages: dict[str, Path], ranked_medium_res: list[Path],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mlflow.server import get_app_client

    uri: str = auth_server.uri  # type: ignore[attr-defined]
    admin_password: str = auth_server.env["MLFLOW_AUTH_ADMIN_PASSWORD"]  # type: ignore[attr-defined]
    _as(monkeypatch, ("admin", admin_password))
    admin = get_app_client("basic-auth", tracking_uri=uri)
    for user, password in (ALICE, MALLORY):
        admin.create_user(user, password)

    with_creds = uri.replace("http://", f"http://admin:{admin_password}@")
    gate_out = tmp_path / "gate.json"
    code = main(["publish", str(packages["medium-res"]), "--registry-uri", with_creds,
                 "--grant", "alice:READ", "--gate-out", str(gate_out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "***@127.0.0.1" in caplog.text  # the URI's credentials were dropped, and said so
    perm = admin.get_user_permission("alice", "registered_model", "aurora-medium-res")
    assert "READ" in str(vars(perm))

    # alice (READ) loads the champion but cannot register a new version
    _as(monkeypatch, ALICE)
    local = _download(uri)
    assert mlflow.pyfunc.load_model(local).metadata.metadata["aurora_mlops"]["variant"] == (
        "medium-res")
    with pytest.raises(PublishError, match="refused"):
        publish_package(ranked_medium_res[1], registry_uri=uri, name="aurora-medium-res",
                        gate="val_score<=champion")
    # mallory (no grant) and an anonymous caller are refused
    _as(monkeypatch, MALLORY)
    with pytest.raises(MlflowException, match=r"403|Permission denied"):
        _download(uri)
    _as(monkeypatch, None)
    with pytest.raises(MlflowException, match=r"401|not authenticated"):
        _download(uri)
    _as(monkeypatch, ("admin", admin_password))
    versions = mlflow.MlflowClient(uri, uri).search_model_versions("name='aurora-medium-res'")
    assert [v.version for v in versions] == ["1"]

    # the admin password is nowhere: output, logs, gate.json, the registry's store and files
    root: Path = auth_server.root  # type: ignore[attr-defined]
    secret = admin_password.encode()
    assert admin_password not in printed.out + printed.err + caplog.text
    assert secret not in gate_out.read_bytes()
    store = [root / "mlflow.db", *(p for p in (root / "artifacts").rglob("*") if p.is_file())]
    assert len(store) > 5
    assert not [p for p in store if secret in p.read_bytes()]


def test_grant_without_basic_auth_says_so(
    mlflow_server: str, packages: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(PublishError, match="basic-auth app"):
        publish_package(packages["high-res"], registry_uri=mlflow_server, name="no-auth-grant",
                        grants=["bob:EDIT"], gate_out=tmp_path / "g.json")
    client = mlflow.MlflowClient(mlflow_server, mlflow_server)
    assert not client.search_registered_models("name='no-auth-grant'")  # checked first
    assert not (tmp_path / "g.json").exists()
