"""``aurora-mlops tune SPEC --backend local|katib``: run a Katib Experiment here or on a cluster.

``aurora-mlops tune analyze WORKDIR [--spec FILE] [--out DIR]`` analyses a local sweep and
proposes the next spec. Both live on one parser: ``tune`` takes a positional that is either the
spec or the word ``analyze`` (argparse cannot have a subcommand and a free positional in one
place), and :func:`cmd_tune` dispatches on it; options of the other form are usage errors.

Cheap to import: optuna, yaml, mlflow and kubernetes are imported by the handler only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["ANALYZE", "cmd_analyze", "cmd_tune", "register"]

#: The first positional that turns ``tune`` into ``tune analyze``.
ANALYZE = "analyze"
#: Options of ``tune SPEC`` (dest -> flag) that ``tune analyze`` does not take.
_RUN_OPTIONS = {"backend": "--backend", "work_dir": "--work-dir", "data_dir": "--data-dir",
                "timeout": "--timeout", "trial_timeout": "--trial-timeout",
                "namespace": "--namespace"}


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``tune`` subcommand to the CLI's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "tune",
        help="Run a Katib Experiment (locally on Optuna, or through Katib); analyze a sweep.",
        usage="%(prog)s SPEC [--backend {local,katib}] [options]\n"
        "       %(prog)s analyze WORKDIR [--spec FILE] [--out DIR]",
        description="Run a Katib Experiment YAML (katib/<spec>.yaml). --backend local runs it "
        "on this machine with a Katib-compatible Optuna runner (re-run the same command to "
        "resume); --backend katib creates it on the cluster and waits for the best trial. "
        "`tune analyze WORKDIR` reads a local sweep's work dir and writes parameter "
        "importance, directions, plots and a proposed next spec (next-spec.yaml).",
    )
    p.add_argument("spec", metavar="SPEC",
                   help="Katib Experiment YAML (kubeflow.org/v1beta1), or `analyze` (a spec file "
                   "named analyze: ./analyze).")
    p.add_argument("analyze_work_dir", nargs="?", default=None, metavar="WORKDIR",
                   help="analyze: the sweep's work dir (study.db, status.json, best.json).")
    run = p.add_argument_group("tune SPEC")
    run.add_argument("--backend", choices=["local", "katib"], default=None,
                     help="Where the trials run (default local).")
    run.add_argument("--work-dir", default=None,
                     help="Local: study, trials, status.json and best.json (default "
                     "<settings work dir>/tune/<experiment name>).")
    run.add_argument("--data-dir", default=None,
                     help="Local: linked as WORKDIR/data, where the trial command's data/... "
                     "paths point.")
    run.add_argument("--timeout", type=_seconds, default=None,
                     help="Seconds for the whole sweep (katib: to wait; default 24 h).")
    run.add_argument("--trial-timeout", type=_seconds, default=None,
                     help="Local: seconds per trial before it is killed and failed.")
    run.add_argument("--namespace", default=None,
                     help="Katib: namespace (default: the spec's, else the settings').")
    analyze = p.add_argument_group("tune analyze WORKDIR")
    analyze.add_argument("--spec", dest="analyze_spec", default=None, metavar="FILE",
                         help="The Experiment YAML the sweep ran (needed for next-spec.yaml; "
                         "default: a spec path recorded in best.json/status.json).")
    analyze.add_argument("--out", dest="analyze_out", default=None, metavar="DIR",
                         help="Output directory (default WORKDIR/analysis).")
    p.set_defaults(handler=cmd_tune, tune_parser=p)
    return p


def _usage_error(args: argparse.Namespace, message: str) -> None:
    """argparse's usage error (exit 2) on the ``tune`` parser."""
    parser = getattr(args, "tune_parser", None)
    if parser is None:
        from aurora_mlops.errors import ConfigError

        raise ConfigError(message)
    parser.error(message)


def cmd_analyze(args: argparse.Namespace) -> int:
    """``tune analyze WORKDIR``: write the analysis, print the top suggestions and the paths."""
    from aurora_mlops.tuning._analyze import analyze_sweep, write_analysis

    work = Path(args.analyze_work_dir)
    analysis = analyze_sweep(work, spec=args.analyze_spec)
    out = Path(args.analyze_out) if args.analyze_out else work / "analysis"
    paths = write_analysis(analysis, out)
    c = analysis.counts
    print(f"{analysis.experiment}: {c['complete']} completed, {c['pruned']} early-stopped, "
          f"{c['failed'] + c['killed']} failed; best {analysis.metric}="
          f"{analysis.best.value:.6g} ({analysis.best.name})")
    actionable = [s for s in analysis.suggestions if s.action != "keep"]
    if actionable:
        print("suggestions:")
        for s in actionable[:5]:
            print(f"  {s.parameter}: {s.message}")
        if len(actionable) > 5:
            print(f"  ... {len(actionable) - 5} more in {out / 'analysis.md'}")
    else:
        print("suggestions: none (no feasible-space changes)")
    if analysis.next_spec_problems:
        print("next-spec.yaml not written: the proposal fails katib check (see analysis.md)")
    elif analysis.next_spec is None:
        print("next-spec.yaml not written: pass --spec with the Experiment this sweep ran")
    print("wrote:")
    for path in paths:
        print(f"  {path}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """``tune SPEC``, or ``tune analyze WORKDIR`` when the first positional is ``analyze``."""
    extra_analyze = [flag for dest, flag in (("analyze_spec", "--spec"), ("analyze_out", "--out"))
                     if getattr(args, dest, None) is not None]
    if args.spec == ANALYZE:
        given = [flag for dest, flag in _RUN_OPTIONS.items()
                 if getattr(args, dest, None) is not None]
        if given:
            _usage_error(args, f"tune analyze does not take {', '.join(given)}; usage: "
                         "tune analyze WORKDIR [--spec FILE] [--out DIR]")
        if getattr(args, "analyze_work_dir", None) is None:
            _usage_error(args, "tune analyze needs WORKDIR, the work dir of a local sweep")
        return cmd_analyze(args)
    unexpected = extra_analyze + ([args.analyze_work_dir]
                                  if getattr(args, "analyze_work_dir", None) else [])
    if unexpected:
        _usage_error(args, f"unrecognized arguments: {' '.join(unexpected)} (they belong to "
                     "`tune analyze WORKDIR`)")
    from aurora_mlops.config import get_settings
    from aurora_mlops.tuning._experiment import load_experiment

    exp = load_experiment(args.spec)
    settings = get_settings()
    backend = args.backend or "local"
    if backend == "katib":
        from aurora_mlops.tuning._katib_client import run_katib

        k = run_katib(exp, namespace=args.namespace or exp.namespace or settings.namespace,
                      timeout=args.timeout or 24 * 3600.0)
        payload: dict[str, Any] = {
            "experiment": k.experiment, "namespace": k.namespace, "condition": k.condition,
            "bestTrialName": k.best_trial, "parameters": k.parameters, "metrics": k.metrics,
            "checkpoint": k.checkpoint,
        }
    else:
        from aurora_mlops.tuning._local import run_local

        work = Path(args.work_dir) if args.work_dir else settings.work_dir / "tune" / exp.name
        r = run_local(exp, work_dir=work, data_dir=args.data_dir, timeout=args.timeout,
                      trial_timeout=args.trial_timeout)
        payload = {
            "experiment": r.experiment, "workDir": str(r.work_dir), "reason": r.reason,
            "bestTrialName": r.best_trial, "parameters": r.parameters, "metrics": r.metrics,
            "checkpoint": str(r.checkpoint) if r.checkpoint else None,
            "trialsSucceeded": r.status.get("trialsSucceeded"),
            "trialsFailed": r.status.get("trialsFailed"),
            "trialsEarlyStopped": r.status.get("trialsEarlyStopped"),
            "dashboard": f"optuna-dashboard sqlite:///{r.work_dir / 'study.db'}",
        }
    print(json.dumps(payload, indent=2))
    if payload["bestTrialName"] is None:
        import sys

        where = ("the Experiment's status" if backend == "katib"
                 else Path(payload["workDir"]) / "status.json")
        print(f"aurora-mlops: error: no trial of {exp.name} succeeded; see the failures in "
              f"{where}", file=sys.stderr)
        return 1
    return 0
