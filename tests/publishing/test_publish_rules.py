"""The parts of publishing that need no registry: gate rules, routing specs, grants, redaction,
Azure URIs and role commands, CLI usage."""

from __future__ import annotations

import math
import shlex

import pytest

from aurora_mlops.cli import main
from aurora_mlops.errors import PublishError
from aurora_mlops.publishing import (
    Redactor,
    evaluate_gate,
    parse_azure_uri,
    parse_gate,
    parse_grant,
    parse_routing,
    redact_uri,
    role_commands,
    route,
)
from aurora_mlops.publishing._auth import strip_credentials

AZ = (
    "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/0000-sub/resourceGroups/rg-wx"
    "/providers/Microsoft.MachineLearningServices/workspaces/ws-aurora"
)


# -- gate -------------------------------------------------------------------------------------
def test_gate_rule_parses_champion_offsets_and_numbers() -> None:
    rule = parse_gate("val_score <= champion+0.01 AND rmse_wins_vs_persistence>=champion and x>2")
    assert [str(c) for c in rule.clauses] == [
        "val_score<=champion+0.01", "rmse_wins_vs_persistence>=champion", "x>2",
    ]
    assert rule.clauses[0].against_champion and rule.clauses[0].value == pytest.approx(0.01)
    assert not rule.clauses[2].against_champion


@pytest.mark.parametrize(
    "text",
    ["", "val_score", "val_score=<champion", "val_score<=best", "val_score<=champion or x>1",
     "1x<=champion", "val_score<=champion and"],
)
def test_gate_rule_errors_name_the_clause(text: str) -> None:
    with pytest.raises(PublishError, match="gate rule"):
        parse_gate(text)


CHAMP = {"val_score": 0.50, "rmse_wins_vs_persistence": 4.0}


@pytest.mark.parametrize(
    ("challenger", "force", "passed", "outcome"),
    [
        ({"val_score": 0.40, "rmse_wins_vs_persistence": 5.0}, False, True, "promoted"),
        ({"val_score": 0.50, "rmse_wins_vs_persistence": 4.0}, False, True, "promoted"),
        ({"val_score": 0.60, "rmse_wins_vs_persistence": 5.0}, False, False, "refused"),
        ({"val_score": 0.40, "rmse_wins_vs_persistence": 3.0}, False, False, "refused"),
        ({"val_score": 0.60, "rmse_wins_vs_persistence": 3.0}, True, False, "forced"),
        ({"rmse_wins_vs_persistence": 9.0}, False, False, "refused"),
    ],
    ids=["better", "equal", "worse-score", "fewer-wins", "forced", "missing-metric"],
)
def test_gate_decision(challenger: dict, force: bool, passed: bool, outcome: str) -> None:
    rule = parse_gate("val_score<=champion and rmse_wins_vs_persistence>=champion")
    d = evaluate_gate(
        rule, model="m", challenger_version="2", challenger=challenger,
        champion_version="1", champion=CHAMP, force=force,
    )
    assert (d.passed, d.outcome, d.forced) == (passed, outcome, force and not passed)
    assert d.champion_metrics == CHAMP
    assert ("PASS" if passed else "FAIL") in d.summary() and "v2 against champion v1" in d.summary()


def test_first_version_becomes_champion_without_comparison() -> None:
    d = evaluate_gate(
        parse_gate("val_score<=champion"), model="m", challenger_version="1",
        challenger={"val_score": 9.0}, champion_version=None, champion={},
    )
    assert d.passed and d.outcome == "first" and d.clauses == []


# -- routing ----------------------------------------------------------------------------------
def test_routing_spec_round_trip() -> None:
    spec = parse_routing("aurora-medium-res@champion|aurora-medium-res@challenger@0.1")
    assert (spec.a.uri, spec.b.uri, spec.p) == (
        "models:/aurora-medium-res@champion", "models:/aurora-medium-res@challenger", 0.1,
    )
    assert parse_routing(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a@x", "exactly one '|'"),
        ("a@x|b@y|c@z@0.1", "exactly one '|'"),
        ("a@x|b@y", "must end with @P"),
        ("a@x|b@y@half", "not a number"),
        ("a@x|b@y@1.5", "between 0 and 1"),
        ("a@x|b@y@0", "between 0 and 1"),
        ("a|b@y@0.2", "model A"),
        ("a@x|b@@0.2", "model B"),
        ("a@x|a@x@0.2", "twice"),
    ],
)
def test_routing_spec_errors(text: str, match: str) -> None:
    with pytest.raises(PublishError, match=match):
        parse_routing(text)


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_router_sends_about_p_of_1000_ids_to_b_and_is_sticky(p: float) -> None:
    ids = [f"req-{i}" for i in range(1000)]
    first = [route(i, p) for i in ids]
    assert [route(i, p) for i in ids] == first
    n_b = first.count("B")
    sd = math.sqrt(1000 * p * (1 - p))
    assert abs(n_b - 1000 * p) <= 3 * sd


# -- grants, redaction ------------------------------------------------------------------------
def test_grant_parsing() -> None:
    g = parse_grant("alice@example.com:read")
    assert (g.user, g.permission) == ("alice@example.com", "READ")
    for bad in ("alice", "alice:WRITE", ":READ"):
        with pytest.raises(PublishError, match="USER:PERMISSION"):
            parse_grant(bad)


def test_redaction_of_uris_and_secrets() -> None:
    text = "failed on http://bob:s3cret@127.0.0.1:5000/api and https://tok@host/x with s3cret"
    assert redact_uri(text) == (
        "failed on http://***@127.0.0.1:5000/api and https://***@host/x with s3cret"
    )
    assert "s3cret" not in Redactor(["s3cret"])(text) and "bob" not in Redactor()(text)
    assert strip_credentials("http://bob:s3cret@127.0.0.1:5000") == "http://127.0.0.1:5000"


# -- Azure ------------------------------------------------------------------------------------
def test_azure_uri_and_role_commands() -> None:
    target = parse_azure_uri(AZ)
    assert (target.subscription, target.resource_group, target.name) == (
        "0000-sub", "rg-wx", "ws-aurora",
    )
    cmds = role_commands(target, [parse_grant("alice@contoso.com:READ"),
                                  parse_grant("ops@contoso.com:MANAGE")])
    parsed = [shlex.split(c) for c in cmds]
    assert [p[p.index("--role") + 1] for p in parsed] == [
        "Reader", "AzureML Data Scientist", "User Access Administrator",
    ]
    assert {p[p.index("--assignee") + 1] for p in parsed[1:]} == {"ops@contoso.com"}
    assert all(p[:4] == ["az", "role", "assignment", "create"] for p in parsed)
    assert all(p[p.index("--scope") + 1] == target.scope for p in parsed)
    assert target.scope.endswith("/workspaces/ws-aurora")


@pytest.mark.parametrize(
    "uri", ["azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/x",
            "azureml:///mlflow/v1.0/subscriptions/s/resourceGroups/r/providers/"
            "Microsoft.MachineLearningServices/workspaces/w"],
)
def test_bad_azure_uri(uri: str) -> None:
    with pytest.raises(PublishError, match="not an Azure ML MLflow URI"):
        parse_azure_uri(uri)


def test_azure_without_plugin_says_what_to_install(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from aurora_mlops.publishing._connect import has_module, open_registry

    if has_module("azureml.mlflow"):
        pytest.skip("azureml-mlflow is installed here")

    with pytest.raises(PublishError, match=r"aurora-mlops\[azure\]"):
        open_registry(AZ)


# -- CLI usage --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["publish", "--registry-uri", "http://x"], "needs PACKAGE_DIR"),
        (["publish", "--registry-uri", "http://x", "--rollback"], "needs --name"),
        (["publish", "pkg", "--registry-uri", "http://x", "--rollback", "--name", "m"],
         "takes no PACKAGE_DIR"),
        (["publish", "--registry-uri", "http://x", "--rollback", "--ab", "a@b|c@d@0.1"],
         "do not go together"),
    ],
)
def test_cli_usage_errors_exit_2(argv: list[str], match: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_cli_bad_package_dir_exits_1(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["publish", str(tmp_path), "--registry-uri", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "no MLmodel" in err and err.count("\n") == 1


def test_cli_bad_gate_exits_1_before_any_registry_work(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["publish", str(tmp_path), "--registry-uri", "http://127.0.0.1:9",
                 "--gate", "val_score<=best"])
    assert code == 1 and "gate rule clause 1" in capsys.readouterr().err
