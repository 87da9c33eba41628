"""``aurora-mlops pipeline submit`` and ``aurora-mlops pipeline schedule``.

:func:`register_submit` adds both to the ``pipeline`` group's subparsers; the handlers import
:mod:`aurora_mlops.submit` (and through it ``kfp``) only when they run. The credential is read
from the environment (``KFP_TOKEN``, ``KFP_COOKIES`` or ``KF_PIPELINES_SA_TOKEN_PATH``), never
from the command line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["cmd_schedule", "cmd_submit", "register_submit"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pipeline", default="aurora-all-variants",
        help="Pipeline name (pipelines/<name>.yaml) or path of a compiled pipeline YAML "
        "(default aurora-all-variants).",
    )
    p.add_argument("--pipelines-dir", default="pipelines",
                   help="Where compiled pipelines live (default pipelines/).")
    p.add_argument("--experiment", default="aurora-mlops",
                   help="KFP experiment; created when missing (default aurora-mlops).")
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="A pipeline argument, typed by the pipeline's inputs (repeatable), e.g. "
        "--param max_trials=8.",
    )
    p.add_argument("--host", default=None,
                   help="KFP API endpoint (default: KFP_HOST or AURORA_MLOPS_KFP_HOST; in a "
                   "pod: the ml-pipeline Service).")
    p.add_argument("--commit", default=None,
                   help="Commit in the version name (default: the image's, else git's).")
    p.add_argument("--namespace", default=None,
                   help="Namespace of the experiment and run (default: the settings', "
                   "aurora-mlops); '' for a single-user KFP deployment.")


def register_submit(sub: Any) -> None:
    """Add ``submit`` and ``schedule`` to the ``pipeline`` group's subparsers ``sub``."""
    submit = sub.add_parser(
        "submit", help="Upload the compiled pipeline as a new version and start a run on KFP.",
        description="Upload pipelines/<name>.yaml as a new pipeline version (named "
        "<pipeline>-<package version>-<commit>) and start a run in a KFP experiment. The "
        "credential is one of KFP_TOKEN (bearer), KFP_COOKIES (oauth2-proxy session cookie) "
        "or KF_PIPELINES_SA_TOKEN_PATH (projected ServiceAccount token, in a pod). A backend "
        "older than the pipeline needs is refused.",
    )
    _common(submit)
    submit.add_argument("--watch", action="store_true",
                        help="Follow the run; exit 0 if it succeeds, 1 if it fails.")
    submit.add_argument("--poll-seconds", type=float, default=10.0,
                        help="Seconds between two reads of the run with --watch (default 10).")
    submit.add_argument("--timeout", type=float, default=None,
                        help="With --watch: stop following after this many seconds.")
    submit.set_defaults(handler=cmd_submit)

    schedule = sub.add_parser(
        "schedule", help="Upload the compiled pipeline and create a recurring run (cron).",
        description="Upload the pipeline as a new version and create an enabled recurring run. "
        "KFP crons have six fields, seconds first: '0 0 2 * * *' is 02:00 every day.",
    )
    _common(schedule)
    schedule.add_argument("--cron", required=True,
                          help="Six-field cron, seconds first, e.g. '0 0 2 * * *'.")
    schedule.add_argument("--max-concurrency", type=int, default=1,
                          help="Runs of the schedule at once (default 1).")
    schedule.set_defaults(handler=cmd_schedule)


def _request(args: argparse.Namespace) -> Any:
    from aurora_mlops.submit import SubmitRequest

    return SubmitRequest(pipeline=args.pipeline, experiment=args.experiment,
                         params=tuple(args.param), pipelines_dir=args.pipelines_dir,
                         host=args.host, commit=args.commit, namespace=args.namespace)


def cmd_submit(args: argparse.Namespace) -> int:
    """Handler of ``pipeline submit``."""
    from aurora_mlops.config import get_settings
    from aurora_mlops.submit import (
        FINISHED_STATES,
        connect,
        resolve_auth,
        submit_pipeline,
        watch_run,
    )

    settings = get_settings()
    submission = submit_pipeline(_request(args), settings)
    print(f"pipeline version {submission.version_name} ({submission.version_id})")
    print(f"run {submission.run_id}: {submission.url}")
    if not args.watch:
        return 0
    namespace = settings.namespace if args.namespace is None else args.namespace
    client = connect(resolve_auth(settings, host=args.host), namespace or None)
    state, error = watch_run(client, submission.run_id, poll_s=args.poll_seconds,
                             timeout_s=args.timeout,
                             on_change=lambda s: print(f"run {submission.run_id}: {s}",
                                                       flush=True))
    if FINISHED_STATES[state]:
        return 0
    print(f"aurora-mlops: error: run {submission.run_id} finished {state}"
          + (f": {error}" if error else "") + f"; see {submission.url}", file=sys.stderr)
    return 1


def cmd_schedule(args: argparse.Namespace) -> int:
    """Handler of ``pipeline schedule``."""
    from aurora_mlops.submit import schedule_pipeline

    if args.max_concurrency < 1:
        print("aurora-mlops: error: --max-concurrency must be at least 1", file=sys.stderr)
        return 2
    submission = schedule_pipeline(_request(args), args.cron,
                                   max_concurrency=args.max_concurrency)
    print(f"pipeline version {submission.version_name} ({submission.version_id})")
    print(f"recurring run {submission.run_id} on '{' '.join(args.cron.split())}': "
          f"{submission.url}")
    return 0
