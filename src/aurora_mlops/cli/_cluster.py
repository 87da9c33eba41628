"""``aurora-mlops cluster check``: a preflight of the cluster before the first submission.

The handler imports :mod:`aurora_mlops.submit` (and through it ``kubernetes`` and ``kfp``)
only when it runs.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["cmd_check", "register"]


def register(sub: Any) -> None:
    """Add the ``cluster`` group (``check``) to the top-level subparsers ``sub``."""
    group = sub.add_parser("cluster", help="Check that a cluster is ready for a run.")
    commands = group.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check", help="Preflight: Katib, KFP, namespace, identity, volumes, GPUs, secrets.",
        description="Read the cluster (kubeconfig, or the pod's ServiceAccount) and KFP's API "
        "and print one line per check: ok, warn, or fail with what is wrong and the command "
        "that fixes it. Exits 1 if any check fails.",
    )
    check.add_argument("--namespace", default=None,
                       help="Namespace of runs and sweeps (default: the settings', "
                       "aurora-mlops).")
    check.add_argument("--service-account", default=None,
                       help="Identity of pipeline pods (default: AURORA_MLOPS_SERVICE_ACCOUNT, "
                       "else default-editor in a profile namespace, else pipeline-runner).")
    check.add_argument("--kfp-host", default=None,
                       help="KFP API endpoint (default: KFP_HOST; in a pod: the ml-pipeline "
                       "Service). The credential comes from KFP_TOKEN, KFP_COOKIES or "
                       "KF_PIPELINES_SA_TOKEN_PATH.")
    check.add_argument("--mlflow-url", default=None,
                       help="MLflow server whose /health to call (default: the tracking URI "
                       "when it is http(s)).")
    check.add_argument("--pipelines-dir", default="pipelines",
                       help="Compiled pipelines, read for the KFP version they need.")
    check.add_argument("--kubeconfig", default=None,
                       help="kubeconfig file (default: KUBECONFIG or ~/.kube/config; in a pod "
                       "without it: the pod's ServiceAccount).")
    check.add_argument("--context", default=None,
                       help="kubeconfig context (default: the current one).")
    check.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Handler of ``cluster check``: 0 when nothing fails, 1 otherwise."""
    from aurora_mlops.submit import PreflightRequest, run_preflight

    request = PreflightRequest(namespace=args.namespace, service_account=args.service_account,
                               kfp_host=args.kfp_host, mlflow_url=args.mlflow_url,
                               pipelines_dir=args.pipelines_dir, kube_context=args.context,
                               kubeconfig=args.kubeconfig)
    results = run_preflight(request, on_check=lambda c: print(c.line(), flush=True))
    failed = sum(c.status == "fail" for c in results)
    warned = sum(c.status == "warn" for c in results)
    print(f"{len(results)} checks: {failed} failed, {warned} warnings")
    return 1 if failed else 0
