"""``aurora-mlops pipeline run --local``: the real pipeline through ``kfp.local``, on this machine.

``aurora-all-variants`` runs with ``SubprocessRunner(use_venv=False)`` (every task a process of
this interpreter), the smoke profile and the embedded sweep runner, on synthetic data. One
MLflow store serves the whole run, sweeps, trials, final fits, packages and the registry:
``WORK/mlflow.db``. KFP's own output goes to ``WORK/pipeline.log``; the terminal shows one
line per finished step, and a failing step's own error line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora_mlops.comparison import floors
from aurora_mlops.errors import AuroraMLOpsError, ConfigError
from aurora_mlops.kfp._warm_steps import warm_steps

__all__ = ["LocalBudget", "LocalRun", "PipelineFailed", "TaskTiming", "run_pipeline_locally",
           "task_timings"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR_LINE = re.compile(r"^\s*(aurora-mlops: error: .*)$")
_EXCEPTION_LINE = re.compile(r"^\s*\w+(\.\w+)*(Error|Exception)\b")


class PipelineFailed(AuroraMLOpsError, RuntimeError):
    """A step of the local pipeline failed; the message names it and quotes its error."""


@dataclass(frozen=True, kw_only=True)
class LocalBudget:
    """Budgets of a local run (the smoke profile on 2 CPU cores).

    Attributes:
        algorithm: The smoke sweep run (``katib/smoke/<variant>-<algorithm>.yaml``).
        max_trials: Trials per sweep.
        parallel_trials: Trials at once.
        trial_args: ``--NAME=VALUE`` appended to every sweep trial (its training budget).
        final_fit_args: Budget of the final fit of the best parameters (empty: no final fit).
        lead_steps: Lead times evaluated.
        max_inits: Initialisations evaluated (0: all of the test split).
        bench_repeats: Timed roll-outs per benchmark figure.
        bench_train_steps: Timed optimiser steps per training figure.
        min_skill: The quality gate (fraction of targets beating persistence).
    """

    # Successive halving (katib/smoke/<variant>-halving.yaml): eight Sobol' points (the first the
    # defaults) for 2 epochs of 50 steps, the best four resumed to 6 epochs, the best two to 18
    # (900 steps); the better of those two is shipped as it is (no final fit). Rungs of 8, 4 and
    # 2 keep both trial slots busy in every wave (9, 3, 1 left one idle for the whole last rung),
    # so the chain takes the wall time of 28 one-trial epochs where 9 x 3, 3 x 9, 1 x 27 took 45;
    # it trains 2800 steps. Every rung's trials run at the full budget's settings, so only
    # --epochs differs between rungs. Other algorithms train every trial for the 18 epochs of
    # trial_args.
    algorithm: str = "halving"
    max_trials: int = 8
    parallel_trials: int = 2
    trial_args: str = "--epochs=18 --steps_per_epoch=50 --patience=18"
    final_fit_args: str = ""
    lead_steps: int = 4
    max_inits: int = 4
    bench_repeats: int = 2
    bench_train_steps: int = 1
    min_skill: float = 0.0


@dataclass
class LocalRun:
    """What a local run produced.

    Attributes:
        work_dir: The work folder.
        run_dir: This run's folder under ``WORK/kfp`` (``<pipeline>-<timestamp>``).
        tracking_uri: The MLflow store of sweeps, trials, packages and the registry.
        log: KFP's full output.
        wall_s: Wall time of the pipeline.
        variants: ``{variant: {"dir", "publish", "evaluation", "model_card", "study",
            "skill", "floors"}}`` (``skill``: what the quality gate compared with
            ``min_skill``; ``floors``: :class:`~aurora_mlops.comparison.Floors` of the
            evaluation).
        report: The combined ``report.html``, if written.
        min_skill: The quality gate the run was given.
    """

    work_dir: Path
    run_dir: Path
    tracking_uri: str
    log: Path
    wall_s: float
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: Path | None = None
    min_skill: float = 0.0


def _first(paths: Iterator[Path]) -> Path | None:
    found = sorted(paths)
    return found[0] if found else None


def _collect(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per variant: its iteration folder, publish receipt, reports and sweep study."""
    out: dict[str, dict[str, Any]] = {}
    for ref in sorted(run_dir.glob("**/data-validate/dataset/ref.json")):
        it = ref.parents[2]
        variant = json.loads(ref.read_text())["variant"]
        receipt = it / "publish" / "receipt"
        card = it / "package" / "model_card"
        evaluated = it / "evaluate" / "executor_output.json"
        metrics = it / "evaluate" / "results" / "metrics.json"
        skill = (json.loads(evaluated.read_text()).get("parameterValues", {}).get("Output")
                 if evaluated.is_file() else None)
        out[variant] = {
            "dir": it,
            "publish": json.loads(receipt.read_text()) if receipt.is_file() else None,
            "evaluation": _first(it.glob("evaluate/results/report.html")),
            "model_card": card if card.is_file() else None,
            "study": _first(it.glob("tune/sweep/study.db")),
            "skill": None if skill is None else float(skill),
            "floors": floors(json.loads(metrics.read_text())) if metrics.is_file() else None,
        }
    return out


@dataclass(frozen=True)
class TaskTiming:
    """Where one task's time went, from ``pipeline.log`` (seconds since midnight, local time).

    Attributes:
        task: The task's name (``tune``, ``evaluate`` ...).
        queued: kfp.local started the task's process.
        started: The process had imported kfp and began the component (KFP's executor line).
        written: The component returned and its outputs were written.
        finished: kfp.local saw the process end and read the outputs.
    """

    task: str
    queued: float
    started: float
    written: float
    finished: float

    @property
    def own_s(self) -> float:
        """The component's own time: its imports and its work."""
        return self.written - self.started

    @property
    def startup_s(self) -> float:
        """Process start and ``import kfp`` before the component runs."""
        return self.started - self.queued


_ORCH = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) - \w+ - "
                   r"(?:(Executing) task '([^']+)'|Task '([^']+)' finished with status)")
_EXEC = re.compile(r"\[KFP Executor \S+ (\d\d):(\d\d):(\d\d),(\d+) \w+\]: "
                   r"(Looking for component|Wrote executor output)")


def task_timings(log: str | Path) -> list[TaskTiming]:
    """Timings of every task of a run whose tasks ran one at a time (``parallelism`` 1).

    Raises:
        ConfigError: The log has no task lines (not a kfp.local log).
    """
    out: list[TaskTiming] = []
    marks: dict[str, float] = {}
    name = ""
    for line in _ANSI.sub("", Path(log).read_text(errors="replace")).splitlines():
        if m := _ORCH.match(line):
            t = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
            if m[4]:
                name, marks = m[5], {"queued": t}
            elif m[6] == name and {"started", "written"} <= marks.keys():
                out.append(TaskTiming(task=name, queued=marks["queued"],
                                      started=marks["started"], written=marks["written"],
                                      finished=t))
        elif m := _EXEC.search(line):
            t = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) + int(m[4]) / 1000
            marks["started" if m[5].startswith("Looking") else "written"] = t
    if not out:
        raise ConfigError(f"{log}: no kfp.local task lines found")
    return out


def _follow(run_root: Path, since: float, echo: Callable[[str], None],
            stop: threading.Event) -> None:
    """Print one line per task whose ``executor_output.json`` appears (a progress feed), once
    more after ``stop`` is set: the last tasks of a run may end within its last second."""
    seen: set[Path] = set()
    while True:
        stopping = stop.wait(1.0)
        new = {p: p.stat().st_mtime for p in run_root.glob("*/**/executor_output.json")
               if p not in seen}
        for done in sorted((p for p, t in new.items() if t >= since), key=new.__getitem__):
            seen.add(done)
            rel = done.parent.relative_to(run_root)
            echo(f"  done: {'/'.join(rel.parts[1:])}")
        if stopping:
            return


def _failure(log: Path, error: BaseException) -> PipelineFailed:
    """The failing step (from KFP's message) and its own error line (from the log)."""
    message = _ANSI.sub("", str(error))
    stack = re.findall(r"'([^']+)'", message.split("Inner task failed:", 1)[-1])
    step = stack[0] if stack else "unknown"
    text = _ANSI.sub("", log.read_text(errors="replace")) if log.is_file() else ""
    lines = [m.group(1) for ln in text.splitlines() if (m := _ERROR_LINE.match(ln))]
    if not lines:  # a bug rather than bad input: the last line of the traceback
        tb = [ln.strip() for ln in text.splitlines() if _EXCEPTION_LINE.match(ln)]
        lines = tb[-1:] or ["no error line found"]
    where = " inside ".join(stack) if stack else "the pipeline"
    return PipelineFailed(f"step {step} failed ({where}): {lines[-1]}; the full log is {log}")


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the tasks (they inherit this process's environment)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_pipeline_locally(*, variants: Sequence[str], work_dir: str | Path,
                         budget: LocalBudget | None = None, parallelism: int = 1,
                         dataset_uri: str = "", echo: Callable[[str], None] | None = None
                         ) -> LocalRun:
    """Run ``aurora-all-variants`` for ``variants`` through ``kfp.local``.

    Args:
        variants: Variant registry names.
        work_dir: The work folder (``mlflow.db``, ``kfp/`` outputs, ``pipeline.log``, and
            ``volumes/data`` and ``volumes/artifacts``, where a cluster mounts its volumes).
        budget: Smoke budgets (default :class:`LocalBudget`).
        parallelism: Variants at a time (1 on a 2-core machine: the steps use every core).
        dataset_uri: The data step's source (default: each variant's synthetic dataset).
        echo: Where progress lines go (default: this process's stdout, which the run itself
            redirects into the log).

    Raises:
        ConfigError: An unknown variant.
        PipelineFailed: A step failed (the message names it and quotes its error).
    """
    from kfp import local

    from aurora_mlops.kfp.all_variants import build

    _require_variants(variants)
    echo = echo or _stdout_echo()
    work = Path(work_dir).resolve()
    root = work / "kfp"
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    log = work / "pipeline.log"
    # The data and artifacts volumes of a cluster run are folders of the work dir here.
    volumes = work / "volumes"
    pipeline = build(parallelism, retries=0, data_root=str(volumes / "data"),
                     artifacts_root=str(volumes / "artifacts"))
    local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
               raise_on_error=True)
    before = set(root.iterdir())
    budget = budget or LocalBudget()
    arguments = _arguments(variants, budget, uri, dataset_uri)
    wall = _run_logged(pipeline, arguments, root=root, log=log, uri=uri, echo=echo, warm=True)
    new = sorted(set(root.iterdir()) - before, key=lambda p: p.stat().st_mtime)
    if not new:
        raise PipelineFailed(f"kfp.local wrote no run folder under {root}; see {log}")
    run_dir = new[-1]
    return LocalRun(work_dir=work, run_dir=run_dir, tracking_uri=uri, log=log, wall_s=wall,
                    variants=_collect(run_dir), min_skill=budget.min_skill,
                    report=_first(run_dir.glob("report/results/report.html")))


def _require_variants(variants: Sequence[str]) -> None:
    from aurora_mlops.variants import VARIANTS

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ConfigError(f"--variants: unknown {', '.join(unknown) or '(none given)'}; choose "
                          f"from {', '.join(VARIANTS)}")


def _stdout_echo() -> Callable[[str], None]:
    """Print to this process's stdout as it is now (the run later redirects ``sys.stdout``)."""
    out = sys.stdout
    return lambda line: print(line, file=out, flush=True)


def _arguments(variants: Sequence[str], b: LocalBudget, uri: str,
               dataset_uri: str) -> dict[str, Any]:
    """The ``aurora-all-variants`` arguments of a local smoke run with budget ``b``."""
    from aurora_mlops.kfp.steps import SYNTHETIC

    return dict(variants=list(variants), algorithm=b.algorithm,
                dataset_uri=dataset_uri or SYNTHETIC,
                max_trials=b.max_trials, parallel_trials=b.parallel_trials,
                profile="smoke", backend="local", registry_uri=uri, gate="",
                min_skill=b.min_skill, trial_args=b.trial_args,
                final_fit_args=b.final_fit_args, lead_steps=b.lead_steps,
                max_inits=b.max_inits, bench_repeats=b.bench_repeats,
                bench_train_steps=b.bench_train_steps, tracking_uri=uri, namespace="")


def _run_logged(pipeline: Callable[..., Any], arguments: dict[str, Any], *, root: Path,
                log: Path, uri: str, echo: Callable[[str], None], warm: bool = False) -> float:
    """Run the pipeline with its output in ``log`` and a progress feed; returns the wall time.
    ``warm``: its tasks fork from a warm step server (a pipeline of many tasks that import
    torch; for one task the server's imports cost more than they save).

    Raises:
        PipelineFailed: A step failed.
    """
    stop = threading.Event()
    feed = threading.Thread(target=_follow, args=(root, time.time(), echo, stop), daemon=True)
    t0 = time.perf_counter()
    feed.start()
    try:
        with log.open("w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f), \
                _environment({"MLFLOW_TRACKING_URI": uri, "AURORA_MLOPS_TRACKING_URI": uri,
                              "PYTHONUNBUFFERED": "1"}), \
                warm_steps(log.with_name(f"{log.stem}-steps.log"), enabled=warm):
            pipeline(**arguments)
    except RuntimeError as e:
        raise _failure(log, e) from None
    finally:
        stop.set()
        feed.join()
    return time.perf_counter() - t0
