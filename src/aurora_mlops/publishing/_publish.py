"""``publish_package`` and ``rollback``: register a package, gate it, move the aliases.

The order of registry writes is what makes a failed publish safe to run again:

1. the version is created with ``publish.state=pending`` and the checkpoint's sha256;
2. its tags, description, the gate's record and ``challenger`` are set (all idempotent);
3. ``champion`` moves if the gate passed (or ``--force``; recorded in ``publish.forced``);
4. ``publish.state=done`` is set last.

A re-run finds the pending version by its sha256 and finishes it; a publish of another package
deletes pending versions that are not its own. A version that is ``done`` with the same sha256
is returned as it is.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

import aurora_mlops.publishing._registry as _registry
from aurora_mlops.config import Settings
from aurora_mlops.errors import PublishError
from aurora_mlops.publishing._auth import Grant, parse_grant
from aurora_mlops.publishing._azure import is_azure_uri, parse_azure_uri, role_commands
from aurora_mlops.publishing._connect import open_registry, refused_as_error
from aurora_mlops.publishing._gate import GateDecision, evaluate_gate, parse_gate, write_gate
from aurora_mlops.publishing._registry import SHA_TAG, STATE_TAG, Registry

__all__ = ["PublishResult", "RollbackResult", "publish_package", "rollback"]

logger = logging.getLogger(__name__)

#: Tag prefix of the numbers the gate compares (``publish.metric.val_score``).
METRIC_TAG = "publish.metric."
#: MLflow's model version description column holds 5,000 characters.
MAX_DESCRIPTION = 5000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


class PublishResult(BaseModel):
    """What one publish did.

    Attributes:
        name: Registered model name.
        version: The version of this package (new or existing).
        champion_version: The version holding ``champion`` afterwards.
        gate_passed: Whether the gate passed (``True`` for a model's first version).
        created: Whether this call created the version (``False``: it existed already).
        gate_file: The ``gate.json`` written, or ``None`` when nothing was decided.
        model_uri: ``models:/<name>/<version>``.
        outcome: ``first``, ``promoted``, ``refused``, ``forced`` or ``existing``.
        notes: What was done differently on this registry (Azure ML: aliases as tags).
        azure_commands: ``az role assignment create`` commands for ``--grant`` on Azure.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    champion_version: str | None
    gate_passed: bool
    created: bool
    gate_file: Path | None
    model_uri: str
    outcome: str
    notes: tuple[str, ...] = ()
    azure_commands: tuple[str, ...] = ()
    gate: GateDecision | None = None


class RollbackResult(BaseModel):
    """What ``rollback`` did: ``champion`` moved from one version back to another."""

    model_config = ConfigDict(frozen=True)

    name: str
    from_version: str
    to_version: str
    notes: tuple[str, ...] = ()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _metrics(info: Any) -> dict[str, float | None]:
    values: dict[str, float | None] = {"val_score": info.val_score}
    values.update({k: float(v) for k, v in info.scores.items()})
    return values


def _version_metrics(mv: Any) -> dict[str, float | None]:
    return {
        k[len(METRIC_TAG):]: float(v) for k, v in mv.tags.items()
        if k.startswith(METRIC_TAG) and v not in ("", "None")
    }


def _version_tags(info: Any) -> dict[str, str]:
    tags = {k: str(v) for k, v in info.tags().items()}
    tags.update({
        METRIC_TAG + k: "" if v is None else repr(float(v)) for k, v in _metrics(info).items()
    })
    return tags


def _description(card: Path) -> str:
    text = card.read_text(encoding="utf-8")
    if len(text) <= MAX_DESCRIPTION:
        return text
    note = "\n\n(truncated: the full card is MODEL_CARD.md in the model's artifacts)"
    return text[: MAX_DESCRIPTION - len(note)] + note


def _read(package_dir: Path) -> Any:
    from aurora_mlops.packaging import read_package

    if not (package_dir / "MLmodel").is_file():
        raise PublishError(
            f"{package_dir} is not a package (no MLmodel file): build one with "
            "`aurora-mlops package --model TRIAL --variant V --out DIR`"
        )
    return read_package(package_dir)


def _register(reg: Registry, info: Any, name: str, package_dir: Path, settings: Settings) -> str:
    """Find or create this package's version (pending until the publish finishes)."""
    sha = info.checkpoint_sha256
    for v in reg.versions(name):
        if v.tags.get(STATE_TAG) == "pending" and v.tags.get(SHA_TAG) != sha:
            logger.warning("deleting %s v%s, left pending by a failed publish", name, v.version)
            reg.delete_version(name, str(v.version))
    if reg.local_source:  # Azure ML: the plugin uploads a local MLmodel folder itself
        return reg.create_pending(
            name, source=f"file://{package_dir.resolve()}", run_id=None, sha=sha
        )
    earlier = [v for v in reg.versions(name) if v.tags.get(SHA_TAG) == sha]
    if earlier:  # a pending version of this checkpoint: finish it
        return str(earlier[-1].version)
    from aurora_mlops.packaging import log_package

    logged = reg.call(
        f"log the package {package_dir.name}", log_package, package_dir, reg.uri,
        run_name=f"publish-{name}", experiment=settings.experiment_name,
        tags={SHA_TAG: sha},
    )
    return reg.create_pending(
        name, source=logged.model_uri, run_id=logged.run_id, sha=sha, tags=_version_tags(info)
    )


def _done_version(reg: Registry, name: str, sha: str) -> str | None:
    """The finished version of ``name`` holding the checkpoint ``sha``, if any."""
    done = [
        v for v in reg.versions(name)
        if v.tags.get(SHA_TAG) == sha and v.tags.get(STATE_TAG) == "done"
    ]
    return str(done[-1].version) if done else None


def _champion_before(reg: Registry, name: str, mv: Any) -> str | None:
    """The champion this version is judged against (also when a re-run finds it promoted)."""
    champion = reg.get_alias(name, "champion")
    if champion == str(mv.version):
        return mv.tags.get("publish.previous_champion") or None
    return champion


def _decide(
    reg: Registry, name: str, version: str, info: Any, rule_text: str, force: bool
) -> GateDecision:
    mv = reg.version(name, version)
    champion = _champion_before(reg, name, mv)
    champion_metrics = _version_metrics(reg.version(name, champion)) if champion else {}
    return evaluate_gate(
        parse_gate(rule_text), model=name, challenger_version=version,
        challenger=_metrics(info), champion_version=champion, champion=champion_metrics,
        force=force,
    )


def _experiment_of(reg: Registry, mv: Any) -> str | None:
    if not mv.run_id:
        return None
    run = reg.call("get the publish run", reg.client.get_run, mv.run_id)
    return str(run.info.experiment_id)


def _grants(grants: Any) -> list[Grant]:
    return [g if isinstance(g, Grant) else parse_grant(str(g)) for g in grants]


def publish_package(
    package_dir: str | Path,
    *,
    registry_uri: str,
    name: str | None = None,
    gate: str | None = None,
    force: bool = False,
    grants: Any = (),
    gate_out: str | Path | None = None,
    settings: Settings | None = None,
) -> PublishResult:
    """Register a package, judge it against the champion and move the aliases.

    Args:
        package_dir: A directory written by ``aurora-mlops package``.
        registry_uri: MLflow tracking/registry URI (``http://...``, ``azureml://...``).
        name: Registered model name (default ``aurora-<variant>``).
        gate: Gate rule (default ``Settings.publish_gate``); see :mod:`._gate`.
        force: Promote even when the gate fails (recorded in ``publish.forced``).
        grants: ``USER:PERMISSION`` strings or :class:`Grant` objects.
        gate_out: Where to write ``gate.json`` (default ``<package_dir>/gate.json``).
        settings: Settings (default: read from the environment now).

    Raises:
        PublishError: bad package, name, rule or grant, or a refused registry write.
        RegistryError: the registry stayed unreachable after the bounded retries.
    """
    settings = settings or Settings()
    package_dir = Path(package_dir)
    rule_text, grant_list, info, name = _inputs(package_dir, name, gate, grants, settings)
    reg, notes = open_registry(registry_uri, settings)
    azure_commands = (
        tuple(role_commands(parse_azure_uri(reg.uri), grant_list))
        if is_azure_uri(reg.uri) else ()
    )
    direct_grants = bool(grant_list) and not azure_commands
    with refused_as_error(reg, f"publish {name}"):
        if direct_grants:
            reg.check_grantees(grant_list)
        reg.ensure_model(name)
        done = _done_version(reg, name, info.checkpoint_sha256)
        # Publishing a registered checkpoint again changes nothing, except that --force
        # promotes a version the gate refused.
        if done is not None and not (force and reg.get_alias(name, "champion") != done):
            return _existing(reg, name, reg.version(name, done), grant_list, notes,
                             azure_commands)
        version = done or _register(reg, info, name, package_dir, settings)
        if done is None:
            _registry.after_create_version(name, version)
        decision = _finish(reg, name, version, info, package_dir, rule_text, force)
        if direct_grants:
            reg.grant(name, grant_list, _experiment_of(reg, reg.version(name, version)))
    out = Path(gate_out) if gate_out else package_dir / "gate.json"
    write_gate(decision, out)
    logger.info("%s", decision.summary())
    return _result(name, version, decision, force=force, created=done is None, gate_file=out,
                   notes=notes, azure_commands=azure_commands)


def _inputs(package_dir: Path, name: str | None, gate: str | None, grants: Any,
            settings: Settings) -> tuple[str, list[Grant], Any, str]:
    """The gate rule, grants, package info and model name, checked before any registry work."""
    rule_text = gate or settings.publish_gate
    parse_gate(rule_text)
    grant_list = _grants(grants)
    info = _read(package_dir)
    name = name or f"aurora-{info.variant}"
    if not _NAME.match(name):
        raise PublishError(f"--name {name!r} must be letters, digits, '.', '_' or '-'")
    return rule_text, grant_list, info, name


def _result(name: str, version: str, decision: GateDecision, *, force: bool, created: bool,
            gate_file: Path, notes: list[str], azure_commands: tuple[str, ...]) -> PublishResult:
    return PublishResult(
        name=name, version=version,
        champion_version=version if decision.passed or force else decision.champion_version,
        gate_passed=decision.passed, created=created, gate_file=gate_file,
        model_uri=f"models:/{name}/{version}", outcome=decision.outcome,
        notes=tuple(notes), azure_commands=azure_commands, gate=decision,
    )


def _finish(
    reg: Registry, name: str, version: str, info: Any, package_dir: Path,
    rule_text: str, force: bool,
) -> GateDecision:
    """Tags, description, gate and aliases of a pending version, then ``done``."""
    mv = reg.version(name, version)
    reg.set_tags(name, version, _version_tags(info), current=mv)
    description = _description(Path(info.model_card))
    if mv.description != description:
        reg.set_description(name, version, description)
    decision = _decide(reg, name, version, info, rule_text, force)
    reg.set_tags(name, version, {
        "publish.gate": decision.outcome,
        "publish.gate_rule": decision.rule,
        "publish.gate_against": decision.champion_version or "",
        "publish.forced": "true" if decision.forced else "false",
        "publish.published_at": _now(),
    })
    reg.set_alias(name, "challenger", version)
    if decision.passed or force:
        reg.set_tags(name, version, {
            "publish.previous_champion": decision.champion_version or "",
            "publish.champion_since": _now(),
        })
        reg.set_alias(name, "champion", version)
    reg.set_tags(name, version, {STATE_TAG: "done"})
    return decision


def _existing(
    reg: Registry, name: str, mv: Any, grants: list[Grant], notes: list[str],
    azure_commands: tuple[str, ...],
) -> PublishResult:
    version = str(mv.version)
    logger.info("%s v%s already holds this checkpoint; nothing created", name, version)
    if grants and not azure_commands:
        reg.grant(name, grants, _experiment_of(reg, mv))
    outcome = mv.tags.get("publish.gate", "")
    return PublishResult(
        name=name, version=version, champion_version=reg.get_alias(name, "champion"),
        gate_passed=outcome in {"first", "promoted"}, created=False, gate_file=None,
        model_uri=f"models:/{name}/{version}", outcome="existing",
        notes=tuple(notes), azure_commands=azure_commands,
    )


def rollback(
    name: str, *, registry_uri: str, settings: Settings | None = None
) -> RollbackResult:
    """Move ``champion`` of ``name`` back to the version that held it before.

    The demoted version gets ``publish.rolled_back_at``; the restored one
    ``publish.restored_from`` and ``publish.restored_at``.

    Raises:
        PublishError: the model has no champion, or no earlier champion to go back to.
        RegistryError: the registry stayed unreachable after the bounded retries.
    """
    reg, notes = open_registry(registry_uri, settings)
    with refused_as_error(reg, f"roll back {name}"):
        current = reg.get_alias(name, "champion")
        if current is None:
            raise PublishError(
                f"model {name} has no champion on {reg.redact(reg.uri)}: publish a version first"
            )
        previous = reg.version(name, current).tags.get("publish.previous_champion") or None
        if previous is None:
            raise PublishError(
                f"{name} v{current} was the first champion: there is no earlier one to roll back to"
            )
        reg.version(name, previous)  # must still exist
        now = _now()
        reg.set_tags(
            name, current, {"publish.rolled_back_at": now, "publish.rolled_back_to": previous}
        )
        reg.set_tags(
            name, previous, {"publish.restored_from": current, "publish.restored_at": now}
        )
        reg.set_alias(name, "champion", previous)
    logger.info("%s: champion moved back from v%s to v%s", name, current, previous)
    return RollbackResult(name=name, from_version=current, to_version=previous, notes=tuple(notes))
