"""`aurora-mlops pipeline submit` / `schedule` against a fake KFP REST server on 127.0.0.1.

The real `kfp.Client` talks HTTP to :class:`_fake_kfp.FakeKfp`; the tests check the exact
requests: the uploaded YAML, the version name, the parameters, the experiment, the cron.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from _fake_kfp import FakeKfp

from _tools import require_tool
from aurora_mlops._version import __version__
from aurora_mlops.cli import main
from aurora_mlops.config import get_settings
from aurora_mlops.submit import SubmitRequest, load_package, parse_params, submit_pipeline

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "s3cr3t-token"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pipelines/tiny-sweep.yaml``: a small pipeline compiled by the real KFP compiler."""
    from _tiny_pipeline import compile_to

    root = tmp_path_factory.mktemp("repo")
    (root / "pipelines").mkdir()
    compile_to(root / "pipelines" / "tiny-sweep.yaml")
    return root


@pytest.fixture
def repo(compiled: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(compiled / "pipelines", tmp_path / "pipelines")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp reads ~/.config/kfp/context.json
    monkeypatch.setenv("KFP_TOKEN", TOKEN)
    for name in ("KFP_HOST", "AURORA_MLOPS_KFP_HOST", "AURORA_MLOPS_KFP_TOKEN",
                 "AURORA_MLOPS_NAMESPACE", "AURORA_MLOPS_GIT_COMMIT", "KFP_COOKIES",
                 "AURORA_MLOPS_KFP_COOKIES", "KF_PIPELINES_SA_TOKEN_PATH",
                 "AURORA_MLOPS_KFP_SA_TOKEN_PATH", "AURORA_MLOPS_SERVICE_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    return tmp_path


@pytest.fixture
def fake(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKfp]:
    with FakeKfp() as server:
        monkeypatch.setenv("KFP_HOST", server.url)
        get_settings.cache_clear()
        yield server
    get_settings.cache_clear()


def _submit(*extra: str) -> list[str]:
    return ["pipeline", "submit", "--pipeline", "tiny-sweep", "--commit", COMMIT,
            "--experiment", "nightly-sweeps", "--param", "variant=high-res",
            "--param", "max_trials=8", "--param", "gate=0.25", "--param", "dry=true",
            "--param", 'variants=["high-res", "ocean-waves"]', *extra]


def test_submit_uploads_the_file_and_runs_it_with_typed_params(
        fake: FakeKfp, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_submit()) == 0
    uploaded = (repo / "pipelines" / "tiny-sweep.yaml").read_bytes()
    (upload,) = fake.calls("POST", "/pipelines/upload")
    assert upload.files["uploadfile"] == uploaded and upload.query["name"] == "tiny-sweep"
    (version,) = fake.calls("POST", "/pipelines/upload_version")
    assert version.files["uploadfile"] == uploaded
    assert version.query["name"] == f"tiny-sweep-{__version__}-01234567"
    assert version.query["pipelineid"] == next(iter(fake.pipelines))
    (experiment,) = fake.calls("POST", "/experiments")
    assert experiment.json == {"display_name": "nightly-sweeps", "namespace": "aurora-mlops"}
    (run,) = fake.calls("POST", "/runs")
    body = run.json
    assert body["experiment_id"] == next(iter(fake.experiments))
    version_id = next(v for v, d in fake.versions.items()
                      if d["display_name"] == version.query["name"])
    assert body["pipeline_version_reference"] == {
        "pipeline_id": next(iter(fake.pipelines)), "pipeline_version_id": version_id}
    assert body["runtime_config"]["parameters"] == {
        "variant": "high-res", "max_trials": 8, "gate": 0.25, "dry": True,
        "variants": ["high-res", "ocean-waves"]}
    # No service account: KFP picks default-editor (multi-user) or pipeline-runner
    # (kubeflow/pipelines backend/src/apiserver/template/template.go).
    assert "service_account" not in body
    assert body["display_name"].startswith(f"tiny-sweep-{__version__}-01234567-")
    assert "pipeline_spec" not in body  # the run points at the uploaded version
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in fake.requests)
    out = capsys.readouterr().out
    run_id = next(iter(fake.runs))
    assert f"run {run_id}: {fake.url}/#/runs/details/{run_id}" in out


def test_a_second_submit_of_the_same_commit_reuses_the_version(fake: FakeKfp,
                                                               repo: Path) -> None:
    assert main(_submit()) == 0
    assert main(_submit()) == 0
    assert len(fake.calls("POST", "/pipelines/upload")) == 1
    assert len(fake.calls("POST", "/pipelines/upload_version")) == 1
    assert len(fake.calls("POST", "/experiments")) == 1  # found by name the second time
    runs = fake.calls("POST", "/runs")
    assert len(runs) == 2
    assert len({r.json["pipeline_version_reference"]["pipeline_version_id"] for r in runs}) == 1


def test_a_changed_file_under_the_same_version_name_is_refused(
        fake: FakeKfp, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_submit()) == 0
    path = repo / "pipelines" / "tiny-sweep.yaml"
    path.write_text(path.read_text().replace("max_trials", "max_trial_count"))
    capsys.readouterr()
    argv = [("max_trial_count=3" if a == "max_trials=8" else a) for a in _submit()]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "already exists with a different spec" in err and "commit your change" in err
    assert len(fake.calls("POST", "/runs")) == 1


@pytest.mark.parametrize(("states", "error", "code"), [
    (["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"], None, 0),
    (["RUNNING", "FAILED"], "task tune failed: Katib experiment failed", 1),
    (["RUNNING", "CANCELED"], None, 1),
], ids=["succeeded", "failed", "canceled"])
def test_watch_follows_the_run_and_exits_with_its_state(
        repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        states: list[str], error: str | None, code: int) -> None:
    with FakeKfp(run_states=states, run_error=error) as server:
        monkeypatch.setenv("KFP_HOST", server.url)
        get_settings.cache_clear()
        assert main(_submit("--watch", "--poll-seconds", "0")) == code
        run_id = next(iter(server.runs))
        assert len(server.calls("GET", f"/runs/{run_id}")) == len(states)
    out, err = capsys.readouterr()
    shown = [ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith(f"run {run_id}: ")
             and "http" not in ln]
    assert shown == list(dict.fromkeys(states))  # each state once, in order
    if code:
        assert f"run {run_id} finished {states[-1]}" in err
        if error:
            assert error in err


def test_schedule_creates_a_recurring_run_with_the_six_field_cron(
        fake: FakeKfp, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["pipeline", "schedule", "--pipeline", "tiny-sweep", "--commit", COMMIT,
            "--experiment", "nightly", "--param", "variant=medium-res",
            "--cron", "0 0 2 * * *", "--max-concurrency", "2"]
    assert main(argv) == 0
    (call,) = fake.calls("POST", "/recurringruns")
    body = call.json
    assert body["trigger"] == {"cron_schedule": {"cron": "0 0 2 * * *"}}
    assert body["mode"] == "ENABLE" and int(body["max_concurrency"]) == 2
    assert body["no_catchup"] is True
    assert body["runtime_config"]["parameters"] == {"variant": "medium-res"}
    assert body["experiment_id"] == next(iter(fake.experiments))
    assert body["pipeline_version_reference"]["pipeline_version_id"] in fake.versions
    assert "service_account" not in body
    assert not fake.calls("POST", "/runs")
    assert "recurring run" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--cron", "0 2 * * *"], "has 5 fields; KFP crons have six"),
    (["--cron", "0 0 2 * * * *"], "has 7 fields"),
    (["--cron", "0 0 2 * * $"], "field '$' is not a cron field"),
], ids=["five-fields", "seven-fields", "bad-field"])
def test_a_bad_cron_fails_before_any_request(
        fake: FakeKfp, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code = main(["pipeline", "schedule", "--pipeline", "tiny-sweep", "--param",
                 "variant=medium-res", *argv])
    assert code == 1
    assert message in capsys.readouterr().err
    assert fake.requests == []


@pytest.mark.parametrize(("params", "message"), [
    (["variant=x", "max_trial=3"], "--param max_trial: tiny-sweep has no parameter 'max_trial'"),
    (["variant=x", "max_trials=many"], "max_trials is a NUMBER_INTEGER parameter"),
    (["variant=x", "dry=maybe"], "dry is a BOOLEAN parameter"),
    (["variant=x", "variants=high-res"], "variants is a LIST parameter"),
    (["max_trials=3"], "tiny-sweep needs variant (no default)"),
    (["variant"], "--param 'variant' is not key=value"),
    (["variant=a", "variant=b"], "--param variant is given twice"),
], ids=["unknown", "int", "bool", "list", "missing", "no-equals", "twice"])
def test_bad_params_fail_before_any_request(
        fake: FakeKfp, capsys: pytest.CaptureFixture[str], params: list[str],
        message: str) -> None:
    argv = ["pipeline", "submit", "--pipeline", "tiny-sweep"]
    for p in params:
        argv += ["--param", p]
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert fake.requests == []


def test_missing_file_and_missing_host(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pipeline", "submit", "--pipeline", "no-such-pipeline"]) == 1
    assert "pipelines/no-such-pipeline.yaml does not exist" in capsys.readouterr().err
    assert main(["pipeline", "submit", "--pipeline", "tiny-sweep", "--param", "variant=a"]) == 1
    err = capsys.readouterr().err
    assert "set KFP_HOST" in err and "KFP_COOKIES" in err and len(err.splitlines()) == 1


def test_an_api_error_names_the_request(repo: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with FakeKfp(fail={("POST", "/runs"): 500}) as server:
        monkeypatch.setenv("KFP_HOST", server.url)
        get_settings.cache_clear()
        assert main(_submit()) == 1
    err = capsys.readouterr().err
    assert "KFP refused to create run" in err and "HTTP 500" in err
    assert "injected failure" in err


def test_library_takes_host_and_token_from_the_settings(fake: FakeKfp) -> None:
    request = SubmitRequest(pipeline="pipelines/tiny-sweep.yaml", experiment="e1",
                            params=("variant=air-pollution",), commit=COMMIT)
    submission = submit_pipeline(request)
    assert submission.version_name == f"tiny-sweep-{__version__}-01234567"
    assert submission.url == f"{fake.url}/#/runs/details/{submission.run_id}"
    assert fake.runs[submission.run_id]["runtime_config"]["parameters"] == {
        "variant": "air-pollution"}


CHECKED_IN = sorted((ROOT / "pipelines").glob("*.yaml"))


@pytest.mark.parametrize("path", CHECKED_IN, ids=[p.stem for p in CHECKED_IN])
def test_the_checked_in_pipelines_upload_byte_for_byte(fake: FakeKfp, path: Path) -> None:
    package = load_package(str(path))
    assert package.name == path.stem
    required = [f"{k}={'x' if package.inputs[k] == 'STRING' else '1'}"
                for k in sorted(package.required)]
    # an optional integer parameter the pipeline has, typed on the way (max_trials, or the
    # monitor's lead_steps)
    number = "max_trials" if "max_trials" in package.inputs else "lead_steps"
    assert package.inputs[number] == "NUMBER_INTEGER"
    argv = ["pipeline", "submit", "--pipeline", str(path), "--commit", COMMIT]
    for item in [*required, f"{number}=3"]:
        argv += ["--param", item]
    assert main(argv) == 0
    for call in (*fake.calls("POST", "/pipelines/upload"),
                 *fake.calls("POST", "/pipelines/upload_version")):
        assert call.files["uploadfile"] == path.read_bytes()
    (run,) = fake.calls("POST", "/runs")
    assert run.json["runtime_config"]["parameters"][number] == 3
    assert parse_params(required, package).keys() == package.required


def test_single_user_deployments_get_no_namespace(fake: FakeKfp) -> None:
    assert main(_submit("--namespace", "")) == 0
    (experiment,) = fake.calls("POST", "/experiments")
    assert not experiment.json.get("namespace")
    assert fake.calls("GET", "/healthz")  # the client asks whether KFP is multi-user
    (run,) = fake.calls("POST", "/runs")
    assert run.json["experiment_id"] == next(iter(fake.experiments))


def test_an_unreachable_endpoint_is_one_sentence(repo: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with FakeKfp() as server:
        url = server.url  # a port that was just free: nothing listens there afterwards
    assert main([*_submit(), "--host", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aurora-mlops: error: could not reach KFP to ")
    assert "check KFP_HOST" in err[0]


@pytest.mark.parametrize("command", ["submit", "schedule"])
def test_a_service_account_set_in_the_settings_is_sent(
        fake: FakeKfp, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    monkeypatch.setenv("AURORA_MLOPS_SERVICE_ACCOUNT", "aurora-runner")
    get_settings.cache_clear()
    argv = ["pipeline", command, "--pipeline", "tiny-sweep", "--commit", COMMIT,
            "--param", "variant=a"] + (["--cron", "0 0 2 * * *"] if command == "schedule" else [])
    assert main(argv) == 0
    (call,) = fake.calls("POST", "/runs" if command == "submit" else "/recurringruns")
    assert call.json["service_account"] == "aurora-runner"


# --- authentication: the exact header each credential sends ---------------------------------

COOKIE = "oauth2_proxy_kubeflow=abc.def-ghi"


def _authenticated(fake: FakeKfp) -> list[dict[str, str]]:
    return [r.headers for r in fake.requests]


def test_a_session_cookie_is_sent_as_the_cookie_header_and_no_bearer(
        fake: FakeKfp, monkeypatch: pytest.MonkeyPatch) -> None:
    # Kubeflow's oauth2-proxy reads its session from this cookie (kubeflow/manifests
    # common/oauth2-proxy/base/oauth2_proxy.cfg: cookie_name = "oauth2_proxy_kubeflow").
    monkeypatch.delenv("KFP_TOKEN")
    monkeypatch.setenv("KFP_COOKIES", COOKIE)
    get_settings.cache_clear()
    assert main(_submit()) == 0
    headers = _authenticated(fake)
    assert headers and all(h.get("cookie") == COOKIE for h in headers)
    assert not any("authorization" in h for h in headers)


def test_a_projected_token_file_is_read_again_for_each_request(
        fake: FakeKfp, repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KFP_TOKEN")
    path = repo / "token"
    path.write_text("first-token\n")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(path))
    get_settings.cache_clear()
    from aurora_mlops.submit import connect, resolve_auth

    auth = resolve_auth(get_settings())
    assert auth.mode == "sa-token" and "first-token" not in repr(auth)
    client = connect(auth, "aurora-mlops")
    client.get_kfp_healthz()
    path.write_text("rotated-token\n")  # the kubelet rotates the projected token in place
    client.get_kfp_healthz()
    seen = [r.headers.get("authorization") for r in fake.calls("GET", "/healthz")]
    assert seen == ["Bearer first-token", "Bearer rotated-token"]
    assert main(_submit()) == 0
    assert fake.requests[-1].headers["authorization"] == "Bearer rotated-token"


def test_in_a_pod_the_host_defaults_to_the_ml_pipeline_service(
        repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aurora_mlops.submit import _auth, resolve_auth

    pod = repo / "serviceaccount"
    pod.mkdir()
    (pod / "namespace").write_text("aurora-mlops")
    (pod / "token").write_text("pod-token")
    monkeypatch.setattr(_auth, "POD_NAMESPACE_FILE", pod / "namespace")
    monkeypatch.setattr(_auth, "SA_TOKEN_PATH", pod / "token")
    monkeypatch.delenv("KFP_TOKEN")
    get_settings.cache_clear()
    auth = resolve_auth(get_settings())
    # kfp SDK 2.17 kfp/client/client.py `_IN_CLUSTER_DNS_NAME`, the `kubeflow` namespace.
    assert auth.host == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
    assert (auth.mode, auth.sa_token_path) == ("sa-token", pod / "token")


@pytest.mark.parametrize(("env", "message"), [
    ({"KFP_COOKIES": COOKIE}, "KFP_TOKEN and KFP_COOKIES are both set"),
    ({"KF_PIPELINES_SA_TOKEN_PATH": "/nowhere/token"},
     "KFP_TOKEN and KF_PIPELINES_SA_TOKEN_PATH are both set"),
    ({"KFP_TOKEN": "", "KFP_COOKIES": "just-a-value"}, "KFP_COOKIES must be `name=value"),
    ({"KFP_TOKEN": "", "KF_PIPELINES_SA_TOKEN_PATH": "/nowhere/token"},
     "KF_PIPELINES_SA_TOKEN_PATH: /nowhere/token does not exist"),
], ids=["token-and-cookie", "token-and-file", "bad-cookie", "missing-file"])
def test_credential_mistakes_are_one_sentence_before_any_request(
        fake: FakeKfp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        env: dict[str, str], message: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    assert main(_submit()) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert fake.requests == []


# --- the backend's version against what the pipeline needs -----------------------------------


@pytest.mark.parametrize(("tag", "code", "message"), [
    ("2.15.0", 0, None),
    ("2.14.0", 0, None),
    # Kubeflow 1.10.x ships KFP 2.4.1 / 2.5.0 (kubeflow/manifests README at v1.10.0, v1.10.2):
    # dsl.Collected came with kubeflow/pipelines commit ed828b513a, first tag 2.14.0.
    ("2.5.0", 1, "KFP backend 2.5.0 is too old for aurora-all-variants: dsl.Collected needs "
                 "2.14.0"),
    # Kubeflow 1.9 ships KFP 2.2.0, whose driver has no emptyDirMounts (added in 2.3.0).
    ("2.2.0", 1, "kfp.kubernetes.empty_dir_mount needs 2.3.0"),
    ("unknown", 0, None),  # TAG_NAME defaults to "unknown" (backend/Dockerfile): warn, go on
], ids=["2.15", "2.14", "kubeflow-1.10", "kubeflow-1.9", "unknown"])
def test_the_backend_version_is_checked_before_upload(
        repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture, tag: str, code: int, message: str | None) -> None:
    path = ROOT / "pipelines" / "aurora-all-variants.yaml"
    with FakeKfp(tag_name=tag) as server:
        monkeypatch.setenv("KFP_HOST", server.url)
        get_settings.cache_clear()
        package = load_package(str(path))
        argv = ["pipeline", "submit", "--pipeline", str(path), "--commit", COMMIT]
        for k in sorted(package.required):
            argv += ["--param", f"{k}={'x' if package.inputs[k] == 'STRING' else '1'}"]
        assert main(argv) == code
        assert server.calls("GET", "/healthz")[-1].headers["authorization"] == f"Bearer {TOKEN}"
        uploads = server.calls("POST", "/pipelines/upload")
    if message:
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and "upgrade Kubeflow Pipelines" in err[0]
        assert not uploads
    else:
        assert uploads
    if tag == "unknown":
        assert "KFP backend version 'unknown' is unknown" in caplog.text


def test_what_each_pipeline_needs_is_read_from_its_compiled_file() -> None:
    from aurora_mlops.submit import required_version

    needs = {p.stem: required_version(load_package(str(p))) for p in CHECKED_IN}
    minimum, features = needs["aurora-all-variants"]
    assert minimum == (2, 14, 0) and "dsl.Collected" in [f.name for f in features]
    minimum, features = needs["aurora-tune-and-publish"]
    assert "dsl.Collected" not in [f.name for f in features]
    assert minimum >= (2, 3, 0)  # /dev/shm as an emptyDir on the GPU steps
    # the shipped files carry no securityContext (it is opt-in: KFP 2.14/2.15 refuse it)
    assert "kfp.kubernetes.set_security_context" not in [f.name for f in features]


def test_a_pipeline_with_a_security_context_needs_backend_2_16() -> None:
    """kubernetes_executor_config.proto gains security_context in kubeflow/pipelines 2.16.0;
    2.14/2.15 parse the executor config strictly (argocompiler/container.go) and refuse it."""
    from aurora_mlops.submit import required_version

    package = load_package(str(CHECKED_IN[0]))
    executors = package.platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    first = next(iter(executors.values()))
    first["securityContext"] = {"runAsNonRoot": True, "runAsUser": 10001}
    minimum, features = required_version(package)
    assert minimum == (2, 16, 0)
    assert "kfp.kubernetes.set_security_context" in [f.name for f in features]


@pytest.mark.parametrize(("tag", "parsed"), [
    ("2.15.0", (2, 15, 0)), ("v2.4.1", (2, 4, 1)), ("2.5.0-rc.1", (2, 5, 0)), ("2.14", (2, 14, 0)),
    ("unknown", None), ("", None), (None, None)])
def test_parse_version(tag: str | None, parsed: tuple[int, int, int] | None) -> None:
    from aurora_mlops.submit import parse_version

    assert parse_version(tag) == parsed


# --- CI: the Dex login, the version check and `kfp run create`, run here as written -----------

SESSION = "c2Vzc2lvbg==|1767225600|abc"


def _go(location: str, cookie: str | None = None, code: int = 302) -> tuple[int, str, dict[
        str, str]]:
    return code, "", {"Location": location, **({"Set-Cookie": cookie} if cookie else {})}


class FakeKubeflowLogin(FakeKfp):
    """KFP behind Kubeflow's oauth2-proxy and Dex, as a browser meets them.

    oauth2-proxy's `/oauth2/start` redirects to Dex's `/dex/auth`
    (kubeflow/manifests common/oauth2-proxy/base/oauth2_proxy.cfg: login_url); Dex, with one
    connector, redirects to it (dexidp/dex server/authflow/authorize.go); its password form
    posts `login` and `password` to its own URL and redirects on success, or shows the form
    again (server/authflow/password.go); the approval screen is skipped
    (common/dex/overlays/oauth2-proxy/config-map.yaml); `/oauth2/callback` checks the CSRF
    cookie and sets the session cookie `oauth2_proxy_kubeflow`. The API needs that cookie.
    """

    def _answer(self, req: Any) -> tuple[Any, ...]:
        login = "/dex/auth/local"
        if req.path == "/oauth2/start":
            return _go("/dex/auth?client_id=kubeflow-oidc-authservice&state=s1",
                       "_oauth2_proxy_csrf=csrf1; Path=/; HttpOnly")
        if req.path == "/dex/auth":
            return _go(f"{login}?client_id=kubeflow-oidc-authservice&state=s1")
        if req.path == login and req.method == "GET":
            return 200, "<form method=post><input name=login><input name=password></form>"
        if req.path == login and req.method == "POST":
            if (req.form.get("login"), req.form.get("password")) != ("ci@example.com", "s3cr3t"):
                return 200, "Invalid Email Address and password"
            return _go("/oauth2/callback?code=c1&state=s1", code=303)
        if req.path == "/oauth2/callback":
            if "_oauth2_proxy_csrf=csrf1" not in req.headers.get("cookie", ""):
                return 403, "CSRF cookie missing"
            return _go("/", f"oauth2_proxy_kubeflow={SESSION}; Path=/; HttpOnly")
        if req.path == "/":
            return 200, "central dashboard"
        if f"oauth2_proxy_kubeflow={SESSION}" not in req.headers.get("cookie", ""):
            return 401, {"message": "login required"}
        # The ingress serves KFP under /pipeline (kubeflow/pipelines manifests: the
        # VirtualService of ml-pipeline-ui); the UI proxies /apis to the API server.
        return super()._answer(replace(req, path=req.path.removeprefix("/pipeline")))


def _release_steps() -> dict[str, dict[str, Any]]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    return {s["name"]: s for s in workflow["jobs"]["release"]["steps"] if "name" in s}


def _run_step(step: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("password", ["s3cr3t", "wrong"], ids=["login", "bad-password"])
def test_ci_logs_in_checks_the_backend_and_submits(tmp_path: Path, password: str) -> None:
    require_tool("curl", "`apt-get install -y curl` (the workflow's login step uses it)")
    steps = _release_steps()
    login = steps["Log in to Kubeflow (Dex user, oauth2-proxy session cookie)"]
    github_env = tmp_path / "github_env"
    github_env.touch()
    with FakeKubeflowLogin(tag_name="2.15.0", multi_user=True) as kf:
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path),
               "GITHUB_ENV": str(github_env), "KFP_HOST": f"{kf.url}/pipeline",
               "KUBEFLOW_USERNAME": "ci@example.com", "KUBEFLOW_PASSWORD": password,
               "VERSION": "0.1.0", "GITHUB_SHA": COMMIT}
        done = _run_step(login, env)
        if password == "wrong":
            assert done.returncode == 1
            assert "::error::Kubeflow login at " in done.stdout
            assert "check the secrets KUBEFLOW_USERNAME and KUBEFLOW_PASSWORD" in done.stdout
            return
        assert done.returncode == 0, done.stdout + done.stderr
        assert github_env.read_text() == f"KFP_COOKIES=oauth2_proxy_kubeflow={SESSION}\n"
        assert f"::add-mask::oauth2_proxy_kubeflow={SESSION}" in done.stdout
        env["KFP_COOKIES"] = f"oauth2_proxy_kubeflow={SESSION}"  # what GITHUB_ENV carries on
        check = _run_step(steps["Check the cluster's KFP before submitting"], env)
        assert check.returncode == 0 and "KFP backend 2.15.0" in check.stdout, check.stderr
        submit = _run_step(steps["Submit a run (kfp run create)"], env)
        assert submit.returncode == 0, submit.stdout + submit.stderr
        (run,) = [r for r in kf.requests if r.method == "POST" and r.path.endswith("/runs")]
    assert run.path == "/pipeline/apis/v2beta1/runs"
    assert run.json["display_name"] == f"aurora-all-variants-0.1.0-{COMMIT[:8]}"
    assert run.headers["cookie"] == f"oauth2_proxy_kubeflow={SESSION}"
    assert "authorization" not in run.headers


def test_a_version_whose_platform_spec_changed_is_refused(
        fake: FakeKfp, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The server answers a stored file with a platform spec wrapped (``pipeline_spec`` and
    ``platform_spec``: kubeflow/pipelines backend/src/apiserver/server/api_util.go): the same
    file again reuses its version; the same pipeline with another node selector under the same
    version name (an uncommitted edit) is refused, not run with the stored, stale placement."""
    source = ROOT / "pipelines" / "aurora-tune-and-publish.yaml"
    path = tmp_path / "pipelines" / source.name
    path.write_bytes(source.read_bytes())
    package = load_package(str(path))
    assert package.platform, "the checked-in pipeline has a platform spec"
    argv = ["pipeline", "submit", "--pipeline", str(path), "--commit", COMMIT]
    for key in sorted(package.required):
        argv += ["--param", f"{key}={'x' if package.inputs[key] == 'STRING' else '1'}"]
    assert main(argv) == 0
    stored = len(fake.versions)
    assert all(set(v["pipeline_spec"]) == {"pipeline_spec", "platform_spec"}
               for v in fake.versions.values())
    assert main(argv) == 0
    assert len(fake.calls("POST", "/runs")) == 2
    assert len(fake.versions) == stored  # the same file: its version reused
    spec, platform = path.read_text().split("\n---\n")
    assert "kubernetes.azure.com/accelerator" in platform
    # only the platform spec changes: the pipeline spec alone would compare equal
    path.write_text(spec + "\n---\n" + platform.replace("kubernetes.azure.com/accelerator",
                                                          "example.com/gpu-pool"))
    capsys.readouterr()
    assert main(argv) == 1
    assert "already exists with a different spec" in capsys.readouterr().err
    assert len(fake.calls("POST", "/runs")) == 2
