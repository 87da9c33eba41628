"""``aurora-mlops tune``: run a Katib Experiment here or on a cluster, or analyze a local sweep.

Two subcommands: ``tune run SPEC --backend local|katib`` and ``tune analyze WORKDIR [--spec FILE]
[--out DIR]``. ``run`` is the default: a first word that is not a subcommand is the spec, so
``tune SPEC ...`` (the form the README documents) is ``tune run SPEC ...``; a spec file named
``analyze`` or ``run`` is given with a path (``./analyze``).

Cheap to import: optuna, yaml, mlflow and kubernetes are imported by the handlers only.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["cmd_analyze", "cmd_tune", "register"]

#: The subcommand a first word that is no subcommand belongs to (as its SPEC).
DEFAULT_SUBCOMMAND = "run"


class _AnyWord(Mapping[str, Any]):
    """The subcommand table as argparse's choice check sees it: every first word passes."""

    def __init__(self, table: dict[str, Any]) -> None:
        self._table = table

    def __getitem__(self, key: str) -> Any:
        return self._table[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, key: object) -> bool:
        return True


class _RunByDefault(argparse._SubParsersAction):
    """``tune``'s subcommands; ``tune SPEC ...`` is read as ``tune run SPEC ...``.

    argparse has no default subcommand, and a subcommand and a free positional cannot share a
    place, so this action checks the first word itself (it subclasses argparse's subcommand
    action, the documented ``action=`` hook of ``add_subparsers``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = _AnyWord(self._name_parser_map)  # type: ignore[assignment]

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if values and values[0] not in self._name_parser_map:
            values = [DEFAULT_SUBCOMMAND, *values]
        super().__call__(parser, namespace, values, option_string)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``tune`` subcommand (``tune run``, ``tune analyze``) to the CLI's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "tune",
        help="Run a Katib Experiment (locally on Optuna, or through Katib); analyze a sweep.",
        usage="%(prog)s [run] SPEC [--backend {local,katib}] [options]\n"
        "       %(prog)s analyze WORKDIR [--spec FILE] [--out DIR]",
        description="`tune [run] SPEC` runs a Katib Experiment YAML (katib/<spec>.yaml): "
        "--backend local on this machine with a Katib-compatible Optuna runner (re-run the same "
        "command to resume), --backend katib on the cluster, waiting for the best trial. "
        "`tune analyze WORKDIR` reads a local sweep's work dir and writes parameter "
        "importance, directions, plots and a proposed next spec (next-spec.yaml).",
    )
    p.set_defaults(analyze_work_dir=None)
    sub = p.add_subparsers(dest="tune_command", required=True, metavar="{run,analyze}", prog=p.prog,
                           action=_RunByDefault)
    _register_run(sub)
    _register_analyze(sub)
    return p


def _register_run(sub: Any) -> None:
    run: argparse.ArgumentParser = sub.add_parser(
        "run", help="Run a Katib Experiment YAML (the default: `tune SPEC` is `tune run SPEC`).")
    run.add_argument("spec", metavar="SPEC", help="Katib Experiment YAML (kubeflow.org/v1beta1).")
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
    run.set_defaults(handler=cmd_tune)


def _register_analyze(sub: Any) -> None:
    analyze: argparse.ArgumentParser = sub.add_parser(
        "analyze", help="Analyze a local sweep (or a successive-halving chain's rungs) and "
        "propose the next spec.")
    analyze.add_argument("analyze_work_dir", metavar="WORKDIR",
                         help="The sweep's work dir (study.db, status.json, best.json; "
                         "halving.json for a chain, or a folder with only halving.json and "
                         "trial folders, given --spec).")
    analyze.add_argument("--spec", dest="analyze_spec", default=None, metavar="FILE",
                         help="The Experiment YAML the sweep ran, for a chain the "
                         "successive-halving spec it started from (needed for next-spec.yaml; "
                         "default: a spec path recorded in halving.json/best.json/status.json).")
    analyze.add_argument("--out", dest="analyze_out", default=None, metavar="DIR",
                         help="Output directory (default WORKDIR/analysis).")
    analyze.set_defaults(handler=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    """``tune analyze WORKDIR``: write the analysis, print the top suggestions and the paths."""
    from aurora_mlops.tuning import analyze_sweep, write_analysis

    work = Path(args.analyze_work_dir)
    analysis = analyze_sweep(work, spec=args.analyze_spec)
    out = Path(args.analyze_out) if args.analyze_out else work / "analysis"
    paths = write_analysis(analysis, out)
    c = analysis.counts
    print(f"{analysis.experiment}: {c['complete']} completed, {c['pruned']} early-stopped, "
          f"{c['failed'] + c['killed']} failed; best {analysis.metric}="
          f"{analysis.best.value:.6g} ({analysis.best.name})")
    r = analysis.rungs
    if r is not None:
        print(f"rungs of {r.chain}: " + " -> ".join(
            f"{k.trials} at {k.budget} {r.resource}" for k in r.rungs)
            + f", shipped {r.shipped}. {r.verdict}")
    if analysis.fidelity is not None:
        print(f"fidelity: {analysis.fidelity.verdict}")
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
        print("next-spec.yaml not written: pass --spec with the Experiment this sweep ran"
              + (" (the successive-halving spec, not a rung's)" if r is not None else ""))
    print("wrote:")
    for path in paths:
        print(f"  {path}")
    return 0


def _run_halving(exp: Any, args: argparse.Namespace, backend: str) -> dict[str, Any]:
    """A successive-halving spec: one Experiment per rung on ``backend``; the shipped trial."""
    from aurora_mlops.config import get_settings
    from aurora_mlops.tuning import run_halving_katib, run_halving_local

    settings = get_settings()
    if backend == "katib":
        h = run_halving_katib(exp, namespace=args.namespace or exp.namespace
                              or settings.namespace, timeout=args.timeout or 24 * 3600.0)
        where: dict[str, Any] = {}
    else:
        work = Path(args.work_dir) if args.work_dir else settings.work_dir / "tune" / exp.name
        h = run_halving_local(exp, work_dir=work.resolve(), data_dir=args.data_dir,
                              timeout=args.timeout, trial_timeout=args.trial_timeout)
        where = {"workDir": str(work.resolve()), "halving": str(work.resolve() / "halving.json"),
                 "dashboard": f"optuna-dashboard sqlite:///{work.resolve() / 'study.db'}"}
    return {"experiment": exp.name, **where, "bestTrialName": h.best_trial,
            "parameters": h.parameters, "metrics": h.metrics, "checkpoint": h.checkpoint,
            "rungs": [{"experiment": r.experiment, "budget": r.budget, "trials": len(r.trials),
                       "promoted": list(r.promoted)} for r in h.result.rungs]}


def cmd_tune(args: argparse.Namespace) -> int:
    """``tune [run] SPEC``: run the Experiment; print the best trial as JSON (exit 1: none)."""
    from aurora_mlops.config import get_settings
    from aurora_mlops.tuning import load_experiment

    exp = load_experiment(args.spec)
    settings = get_settings()
    backend = args.backend or "local"
    from aurora_mlops.tuning import read_halving

    payload: dict[str, Any]
    if read_halving(exp.raw, exp.source) is not None:
        payload = _run_halving(exp, args, backend)
    elif backend == "katib":
        from aurora_mlops.tuning import run_katib

        k = run_katib(exp, namespace=args.namespace or exp.namespace or settings.namespace,
                      timeout=args.timeout or 24 * 3600.0)
        payload = {
            "experiment": k.experiment, "namespace": k.namespace, "condition": k.condition,
            "bestTrialName": k.best_trial, "parameters": k.parameters, "metrics": k.metrics,
            "checkpoint": k.checkpoint,
        }
    else:
        from aurora_mlops.tuning import run_local

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
