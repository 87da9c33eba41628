"""``aurora-mlops publish``: register a package, gate it, grant access, roll back, A/B routers.

Cheap to import: mlflow is imported inside the handler only. Everything printed goes through
the redactor, so a password or a ``user:password@`` URI never reaches the terminal.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from aurora_mlops.errors import ConfigError

__all__ = ["cmd_publish", "register"]


class UsageError(ConfigError):
    """Flags that do not go together (exit 2, like argparse)."""

    exit_code = 2


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``publish`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    from aurora_mlops.config import DEFAULT_GATE

    p: argparse.ArgumentParser = subparsers.add_parser(
        "publish",
        help="Register a package in an MLflow registry with tags, aliases, a gate and grants.",
        description="Register PACKAGE_DIR (from `aurora-mlops package`) as a new version of NAME "
        "(default aurora-<variant>) with its tags and model card, give it the `challenger` "
        "alias, and move `champion` to it when the gate rule passes against the current "
        "champion (or with --force). The decision is written to gate.json and printed. "
        "Publishing the same checkpoint again returns the existing version. Credentials come "
        "only from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD. "
        "--rollback moves champion back to the previous champion; --ab registers an A/B router "
        "NAME_A@ALIAS_A|NAME_B@ALIAS_B@P as aurora-<variant>-ab.",
    )
    p.add_argument("package_dir", nargs="?", help="Package directory (has an MLmodel file).")
    p.add_argument(
        "--registry-uri", required=True,
        help="MLflow tracking/registry URI (http://host:5000, azureml://...).",
    )
    p.add_argument("--name", default=None, help="Registered model name (default aurora-<variant>).")
    p.add_argument(
        "--gate", default=None,
        help=f"Gate rule, clauses joined by 'and' (default {DEFAULT_GATE!r}, or "
        "AURORA_MLOPS_PUBLISH_GATE).",
    )
    p.add_argument("--force", action="store_true", help="Promote even if the gate fails.")
    p.add_argument(
        "--grant", action="append", default=[], metavar="USER:PERMISSION",
        help="Give USER READ, EDIT or MANAGE on the model (repeatable); on azureml:// prints "
        "the `az role assignment create` commands instead.",
    )
    p.add_argument("--gate-out", default=None, help="Where to write gate.json "
                   "(default PACKAGE_DIR/gate.json).")
    p.add_argument("--rollback", action="store_true",
                   help="Move champion of --name back to the previous champion.")
    p.add_argument("--ab", default=None, metavar="SPEC",
                   help="Register an A/B router NAME_A@ALIAS_A|NAME_B@ALIAS_B@P.")
    p.set_defaults(handler=cmd_publish)
    return p


def _check_usage(args: argparse.Namespace) -> None:
    if args.rollback and args.ab:
        raise UsageError("--rollback and --ab do not go together: run them one at a time")
    if args.rollback or args.ab:
        if args.package_dir or args.force or args.gate or args.grant:
            flag = "--rollback" if args.rollback else "--ab"
            raise UsageError(
                f"{flag} takes no PACKAGE_DIR, --gate, --force or --grant: publish first, then "
                f"run {flag} on its own"
            )
        if args.rollback and not args.name:
            raise UsageError("--rollback needs --name, the registered model to roll back")
    elif not args.package_dir:
        raise UsageError("publish needs PACKAGE_DIR (or --rollback / --ab)")


def cmd_publish(args: argparse.Namespace) -> int:
    """Handler of ``aurora-mlops publish``; returns the exit code."""
    from aurora_mlops.config import Settings
    from aurora_mlops.publishing import (
        Redactor,
        is_azure_uri,
        parse_azure_uri,
        parse_grant,
        publish_package,
        publish_router,
        role_commands,
        rollback,
    )

    _check_usage(args)
    settings = Settings()
    secret = settings.tracking_password.get_secret_value() if settings.tracking_password else ""
    redact = Redactor([secret])

    def say(text: str) -> None:
        print(redact(text), flush=True)

    if args.rollback:
        rb = rollback(args.name, registry_uri=args.registry_uri, settings=settings)
        say(f"{rb.name}: champion moved back from v{rb.from_version} to v{rb.to_version}")
        for note in rb.notes:
            say(f"note: {note}")
        return 0
    if args.ab:
        rr = publish_router(args.ab, registry_uri=args.registry_uri, name=args.name,
                            settings=settings)
        verb = "registered" if rr.created else "already registered"
        say(f"{rr.name} v{rr.version} {verb}: {rr.spec} (A = v{rr.a_version}, "
            f"B = v{rr.b_version}); load it with models:/{rr.name}@champion")
        return 0
    if args.grant and is_azure_uri(args.registry_uri):
        # Printed first: they do not depend on the registry, and help even if the publish fails.
        say("Azure ML uses Azure RBAC on the workspace; run these to give the same access:")
        grants = [parse_grant(g) for g in args.grant]
        for command in role_commands(parse_azure_uri(args.registry_uri), grants):
            say(f"  {command}")
    result = publish_package(
        args.package_dir, registry_uri=args.registry_uri, name=args.name, gate=args.gate,
        force=args.force, grants=args.grant, gate_out=args.gate_out, settings=settings,
    )
    if not result.created:
        say(f"{result.name} v{result.version} already holds this checkpoint: nothing created "
            f"(champion: v{result.champion_version})")
    if result.gate is not None:
        say(result.gate.summary())
        say(json.dumps(result.gate.model_dump(mode="json"), indent=2))
        say(f"wrote {result.gate_file}")
        say(f"{result.name} v{result.version}: challenger; champion is "
            f"v{result.champion_version} ({result.outcome})")
    for note in result.notes:
        say(f"note: {note}")
    return 0
