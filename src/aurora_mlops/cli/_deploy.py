"""``aurora-mlops deploy``: a registered model on KServe (InferenceService) or MLServer here.

Cheap to import: mlflow, mlserver and kubernetes are imported inside the handler only.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_deploy", "register"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``deploy`` subcommand to ``subparsers`` (from ``add_subparsers``)."""
    from aurora_mlops.variants import VARIANTS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "deploy",
        help="Serve a registered model with KServe (InferenceService) or MLServer here.",
        description="Resolve a registry alias (models:/NAME@ALIAS) to its version and "
        "artifact location and write the KServe InferenceService that serves it with the "
        "aurora-mlserver ServingRuntime (manifests/serving/); --apply also applies it. With "
        "--package it instead writes the MLServer settings that serve a package folder on "
        "this machine (`python -m aurora_mlops.serving.launch OUT`).",
    )
    p.add_argument("--variant", required=True, choices=list(VARIANTS), help="Aurora variant.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-uri", help="Registry URI, models:/NAME@ALIAS or models:/NAME/N.")
    src.add_argument("--package", help="A package folder to serve here with MLServer.")
    p.add_argument("--out", required=True, help="Folder to write the YAML or settings into.")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking/registry URI.")
    p.add_argument("--name", default="", help="InferenceService name (aurora-VARIANT).")
    p.add_argument("--min-replicas", type=int, default=1, help="Autoscaling minimum (0 ok).")
    p.add_argument("--max-replicas", type=int, default=2, help="Autoscaling maximum.")
    p.add_argument("--concurrency", type=int, default=1,
                   help="Requests in flight per replica that the autoscaler aims at.")
    p.add_argument("--canary", type=int, default=None, metavar="PERCENT",
                   help="Serve this model as a canary with PERCENT of the traffic; the last "
                   "ready revision (the champion) keeps the rest (KServe Serverless mode).")
    p.add_argument("--apply", action="store_true", help="Apply it with the kubernetes client.")
    p.add_argument("--kubeconfig", default=None, help="--apply: kubeconfig file (KUBECONFIG).")
    p.add_argument("--context", default=None, help="--apply: kubeconfig context.")
    p.add_argument("--port", type=int, default=8080, help="--package: HTTP port (v2 REST).")
    p.set_defaults(handler=cmd_deploy)
    return p


def cmd_deploy(args: argparse.Namespace) -> int:
    """Handler of ``aurora-mlops deploy``; returns the exit code."""
    from pathlib import Path

    import yaml
    from pydantic import ValidationError

    from aurora_mlops.errors import AuroraMLOpsError
    from aurora_mlops.serving import (
        DeployPlan,
        apply_inference_service,
        mlserver_config,
        render_inference_service,
        resolve_model,
    )

    if args.package:
        out = mlserver_config(args.package, args.out, name=f"aurora-{args.variant}",
                              http_port=args.port, grpc_port=args.port + 1,
                              metrics_port=args.port + 2)
        print(f"wrote {out}/settings.json and model-settings.json; serve with: "
              f"python -m aurora_mlops.serving.launch {out}")
        return 0
    try:
        plan = DeployPlan(variant=args.variant, name=args.name, min_replicas=args.min_replicas,
                          max_replicas=args.max_replicas, concurrency=args.concurrency,
                          canary_percent=args.canary)
    except ValidationError as e:
        err = e.errors()[0]
        raise AuroraMLOpsError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from e
    model = resolve_model(args.model_uri, args.tracking_uri)
    isvc = render_inference_service(model, plan)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{isvc['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(isvc, sort_keys=False), encoding="utf-8")
    print(f"{model.name} version {model.version} ({model.storage_uri}) -> {path}")
    if args.apply:
        from aurora_mlops.submit import kube_api_client

        verb = apply_inference_service(isvc, kube_api_client(args.context, args.kubeconfig))
        print(f"{verb} InferenceService {isvc['metadata']['namespace']}/"
              f"{isvc['metadata']['name']}")
    return 0
