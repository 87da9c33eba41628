"""The embedded Katib-compatible runner: ``aurora-mlops tune SPEC --backend local``.

It reads the same Katib v1beta1 Experiment YAML that a cluster runs and behaves like Katib:

* the algorithm becomes an Optuna sampler, ``medianstop`` a :class:`~optuna.pruners.MedianPruner`
  with the same settings;
* every trial runs the template's primary-container command with ``${trialParameters.X}`` and
  ``${trialSpec.Name}`` substituted, in the work dir, its stdout and stderr going to
  ``WORKDIR/trials/<name>/log.txt``;
* metrics are collected from that log with Katib's StdOut regex
  (:mod:`aurora_mlops.katib_metrics`); each objective value is an intermediate value at the last
  ``epoch`` printed, and a trial the pruner stops is killed (SIGTERM, then SIGKILL);
* at most ``parallelTrialCount`` trials run at once; the sweep ends at ``maxTrialCount`` finished
  trials, at ``maxFailedTrialCount`` failures, or when ``objective.goal`` is reached.

State lives in an Optuna RDB (``sqlite:///WORKDIR/study.db``, study name = the Experiment's
name), so re-running the same command after a crash or ``kill -9`` resumes: completed trials are
kept and never re-run, and trials a dead runner left running are re-queued with the same
parameters. ``WORKDIR/status.json`` mirrors Katib's ``Experiment.status`` and
``WORKDIR/best.json`` names the best trial, its parameters, metrics and checkpoint.

Start-up: importing torch + aurora + mlflow costs ~10 s, more than a smoke trial trains. So a
recognised ``aurora-mlops train-trial`` command runs in a process forked from a forkserver that
has imported those modules once (:data:`PRELOAD`); the child sets its environment, working dir
and output, then calls :func:`aurora_mlops.cli.main` with the command's arguments, so the trial
is still exactly the template's command. Any other command runs as a plain subprocess.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurora_mlops._io import write_json
from aurora_mlops._redact import redact_uri
from aurora_mlops.errors import ConfigError
from aurora_mlops.katib_metrics import parse_metric_lines
from aurora_mlops.tuning._experiment import Experiment, format_value, load_experiment
from aurora_mlops.tuning._workdir import check_trial_data, lock_work_dir

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

__all__ = [
    "PRELOAD",
    "SweepResult",
    "is_train_trial_command",
    "make_pruner",
    "make_sampler",
    "run_local",
]

#: Modules the forkserver imports once, before it forks trial workers.
PRELOAD: tuple[str, ...] = (
    "torch", "aurora", "aurora.rollout", "mlflow", "xarray", "aurora_mlops.cli",
    "aurora_mlops.training", "aurora_mlops.data._readers", "aurora_mlops.data._windows",
)
#: Seconds between SIGTERM and SIGKILL when a trial is stopped.
KILL_GRACE_S = 3.0
POLL_S = 0.05
LOG_TAIL_LINES = 20
_ATTR = "katib"  # prefix of the user attributes the runner stores on Optuna trials


# ----------------------------------------------------------------------------- samplers / pruner


def _setting(settings: Mapping[str, str], name: str, cast: Callable[[str], Any],
             default: Any) -> Any:
    if name not in settings or settings[name] in ("", None):
        return default
    try:
        return cast(settings[name])
    except ValueError:
        raise ConfigError(f"algorithm setting {name}={settings[name]!r} is not valid") from None


def make_sampler(exp: Experiment, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for the Experiment's ``algorithm`` (Katib settings honoured).

    ``seed`` overrides the ``random_state`` setting.

    Raises:
        ConfigError: An algorithm the local runner cannot run (hyperband, pbt, NAS).
    """
    import optuna

    name = exp.algorithm.name.lower()
    s = exp.algorithm.settings
    seed = seed if seed is not None else _setting(s, "random_state", int, None)
    startup = _setting(s, "n_startup_trials", int, None)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":

        class KatibGridSampler(optuna.samplers.GridSampler):
            """Grid search whose end the runner decides (at the grid's size), as Katib does.

            Optuna's ``after_trial`` calls ``study.stop()``, which only works inside
            ``Study.optimize``; this runner asks and tells trials itself.
            """

            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                return None

        return KatibGridSampler(
            {p.name: list(p.grid_values()) for p in exp.parameters}, seed=seed)
    if name in ("tpe", "multivariate-tpe"):
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=name == "multivariate-tpe",
            n_startup_trials=startup if startup is not None else 10,
            n_ei_candidates=_setting(s, "n_ei_candidates", int, 24))
    if name == "cmaes":
        restart = _setting(s, "restart_strategy", str, None)
        kwargs: dict[str, Any] = {}
        if _setting(s, "sigma", float, None) is not None:
            kwargs["sigma0"] = _setting(s, "sigma", float, None)
        if restart not in (None, "none"):
            kwargs["restart_strategy"] = restart
        with warnings.catch_warnings():  # sigma0/restart_strategy are deprecated in Optuna 4.9+
            warnings.simplefilter("ignore", FutureWarning)
            return optuna.samplers.CmaEsSampler(
                seed=seed, n_startup_trials=startup if startup is not None else 1, **kwargs)
    if name == "sobol":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=seed is not None,
                                              seed=seed)
    if name == "bayesianoptimization":
        initial = _setting(s, "n_initial_points", int, startup if startup is not None else 10)
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=initial)
    raise ConfigError(
        f"{exp.source}: algorithm {exp.algorithm.name!r} cannot run locally; use random, grid, "
        "tpe, multivariate-tpe, cmaes, sobol or bayesianoptimization (or --backend katib)"
    )


def make_pruner(exp: Experiment) -> optuna.pruners.BasePruner:
    """``medianstop`` as a median pruner; no early stopping as a no-op pruner.

    Katib's ``start_step`` counts reported values before the rule applies; Optuna's
    ``n_warmup_steps`` counts 0-based steps (epochs), hence ``start_step - 1``.
    """
    import optuna

    es = exp.early_stopping
    if es is None:
        return optuna.pruners.NopPruner()
    if es.name.lower() != "medianstop":
        raise ConfigError(f"{exp.source}: early stopping {es.name!r} is not supported locally; "
                          "use medianstop")
    min_trials = _setting(es.settings, "min_trials_required", int, 3)
    start_step = _setting(es.settings, "start_step", int, 4)
    return optuna.pruners.MedianPruner(n_startup_trials=min_trials,
                                       n_warmup_steps=max(start_step - 1, 0))


def _grid_size(exp: Experiment) -> int:
    size = 1
    for p in exp.parameters:
        size *= len(p.grid_values())
    return size


# ----------------------------------------------------------------------------------- processes


def is_train_trial_command(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is ``aurora-mlops train-trial ...`` (or ``python -m aurora_mlops ...``)."""
    if not argv:
        return False
    head = os.path.basename(argv[0])
    if head == "aurora-mlops":
        return len(argv) > 1 and argv[1] == "train-trial"
    if head.startswith("python") and len(argv) > 3 and argv[1:3] == ["-m", "aurora_mlops"]:
        return argv[3] == "train-trial"
    return False


def _cli_args(argv: Sequence[str]) -> list[str]:
    return list(argv[1:]) if os.path.basename(argv[0]) == "aurora-mlops" else list(argv[3:])


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a killed runner leaves no trials)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: best effort
        pass


def _subprocess_setup() -> None:
    os.setsid()
    _die_with_parent()


def _release_forkserver_pipe() -> None:
    """Close this child's copy of the forkserver's "client alive" pipe.

    multiprocessing hands every forked child the write end of the pipe on which the forkserver
    waits for EOF to learn that its client (the runner) died. A trial holding it keeps the
    forkserver, its parent, alive after ``kill -9`` of the runner, so PR_SET_PDEATHSIG never
    fires and the trial trains on as an orphan. Trials start no processes through the
    forkserver, so they do not need it.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if server is not None and fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


def _forked_trial(argv: list[str], cwd: str, env: dict[str, str], log_path: str,
                  threads: int) -> None:
    """Body of a trial worker forked from the preloaded forkserver (runs in the child)."""
    os.setsid()
    _die_with_parent()
    _release_forkserver_pipe()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    code = 1
    try:
        import torch

        torch.set_num_threads(max(threads, 1))
        from aurora_mlops.cli import main
        from aurora_mlops.config import get_settings

        get_settings.cache_clear()
        code = main(_cli_args(argv))
    except SystemExit as e:  # argparse usage errors
        code = e.code if isinstance(e.code, int) else 2
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(code)


class _ForkServer:
    """multiprocessing's forkserver with :data:`PRELOAD` imported once (shared per process)."""

    _ctx: Any = None

    @classmethod
    def context(cls) -> Any:
        if cls._ctx is None:
            import multiprocessing

            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(PRELOAD))
            cls._ctx = ctx
        return cls._ctx

    @classmethod
    def warm_up(cls) -> None:
        """Start the server now (it imports in the background while the runner sets up)."""
        from multiprocessing import forkserver

        cls.context()
        forkserver.ensure_running()


class _Proc:
    """A running trial process, forked or plain, polled without blocking."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                 threads: int, fork: bool) -> None:
        self.forked = fork
        self._popen: subprocess.Popen[bytes] | None = None
        self._process: Any = None
        if fork:
            ctx = _ForkServer.context()
            self._process = ctx.Process(
                target=_forked_trial, args=(argv, str(cwd), env, str(log_path), threads),
                daemon=False)
            self._process.start()
            self.pid: int = self._process.pid
        else:
            with log_path.open("ab") as out:
                try:
                    self._popen = subprocess.Popen(
                        argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, preexec_fn=_subprocess_setup)
                except OSError as e:
                    out.write(f"cannot start {argv[0]!r}: {e}\n".encode())
                    self._popen = None
                    self.pid = -1
                    self._start_error = 127
                    return
            self.pid = self._popen.pid

    def poll(self) -> int | None:
        if self.forked:
            code = self._process.exitcode
            return None if code is None else int(code)
        if self._popen is None:
            return self._start_error
        return self._popen.poll()

    def signal(self, sig: int) -> None:
        if self.pid <= 0 or self.poll() is not None:
            return
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, sig)

    def stop(self, grace: float = KILL_GRACE_S) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code."""
        self.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.poll() is None:
            self.signal(signal.SIGKILL)
            deadline = time.monotonic() + 5
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        if self.forked:
            with contextlib.suppress(ValueError, AttributeError):
                self._process.join(timeout=0)
        return self.poll()


# -------------------------------------------------------------------------------------- trials


@dataclass
class _Running:
    trial: Any  # optuna.trial.Trial
    name: str
    assignments: dict[str, str]
    proc: _Proc
    log_path: Path
    started: float
    offset: int = 0
    partial: str = ""
    epoch: float | None = None
    last_step: int = -1
    values: dict[str, list[float]] = field(default_factory=dict)
    pruned: bool = False
    timed_out: bool = False

    def read_metrics(self) -> list[tuple[str, float]]:
        """New metric lines since the last call (complete lines only)."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return []
        if not chunk:
            return []
        self.offset += len(chunk)
        text = self.partial + chunk.decode("utf-8", errors="replace")
        lines = text.split("\n")
        self.partial = lines.pop()
        return parse_metric_lines(lines)

    def flush_partial(self) -> list[tuple[str, float]]:
        found = self.read_metrics()
        if self.partial:
            found += parse_metric_lines([self.partial])
            self.partial = ""
        return found


def _signal_text(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hint = " (the OOM killer, or another SIGKILL)" if -code == signal.SIGKILL else ""
    return f"was killed by {name}{hint}"


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - 16384, 0))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _write_json(path: Path, payload: Any) -> None:
    """Atomic JSON write, keys in Katib's order."""
    write_json(path, payload, sort_keys=False)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class SweepResult:
    """What a local sweep produced."""

    experiment: str
    work_dir: Path
    best_trial: str | None
    parameters: dict[str, str]
    metrics: dict[str, float]
    checkpoint: Path | None
    status: dict[str, Any]
    reason: str


# -------------------------------------------------------------------------------------- runner


class _Runner:
    def __init__(self, exp: Experiment, work_dir: Path, *, trial_timeout: float | None,
                 timeout: float | None, progress: bool, tracking: bool,
                 tracking_uri: str | None, seed: int | None, use_forkserver: bool) -> None:
        import optuna

        self.exp = exp
        self.work = work_dir
        self.trial_timeout = trial_timeout
        self.timeout = timeout
        self.progress_enabled = progress
        self.use_forkserver = use_forkserver
        self.t0 = time.monotonic()
        self.start_time = _now()
        obj = exp.objective
        self.direction = obj.type
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(
            storage=f"sqlite:///{work_dir / 'study.db'}", study_name=exp.name,
            direction=obj.type, sampler=make_sampler(exp, seed), pruner=make_pruner(exp),
            load_if_exists=True)
        self.distributions = {p.name: p.distribution_for_optuna() for p in exp.parameters}
        self.max_trials = exp.max_trial_count
        if exp.algorithm.name.lower() == "grid":
            size = _grid_size(exp)
            self.max_trials = min(self.max_trials or size, size)
        self.running: dict[int, _Running] = {}
        self.tracking_uri = tracking_uri
        self.parent_run_id: str | None = None
        self.tracking = tracking
        self.threads = max((os.cpu_count() or 1) // max(exp.parallel_trial_count, 1), 1)

    # -- state --------------------------------------------------------------------------------

    def _trials(self) -> list[Any]:
        return [t for t in self.study.get_trials(deepcopy=False)
                if not t.user_attrs.get(f"{_ATTR}_interrupted")]

    def _counts(self) -> dict[str, int]:
        from optuna.trial import TrialState

        out = {"succeeded": 0, "failed": 0, "early_stopped": 0, "killed": 0}
        for t in self._trials():
            if t.state == TrialState.COMPLETE:
                out["succeeded"] += 1
            elif t.state == TrialState.PRUNED:
                out["early_stopped"] += 1
            elif t.state == TrialState.FAIL:
                out["killed" if t.user_attrs.get(f"{_ATTR}_killed") else "failed"] += 1
        return out

    def _best(self) -> Any | None:
        from optuna.trial import TrialState

        done = [t for t in self._trials() if t.state == TrialState.COMPLETE and t.value is not None]
        if not done:
            return None
        pick = min if self.direction == "minimize" else max
        return pick(done, key=lambda t: (t.value, ))

    def _resume(self) -> None:
        """Re-queue trials a dead runner left RUNNING (same parameters), never re-run others."""
        from optuna.trial import TrialState

        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.study._storage.set_trial_user_attr(t._trial_id, f"{_ATTR}_interrupted", True)
            self.study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            self.study.enqueue_trial(dict(t.params), user_attrs={
                f"{_ATTR}_requeued_from": t.user_attrs.get(f"{_ATTR}_name", str(t.number))},
                skip_if_exists=False)
            log.info("re-queued trial %s left running by a previous runner", t.number)

    # -- tracking -----------------------------------------------------------------------------

    def _start_tracking(self) -> None:
        if not self.tracking:
            return
        key = f"{_ATTR}_mlflow_parent_run_id"
        run_id = self.study.user_attrs.get(key)
        from mlflow.tracking import MlflowClient

        from aurora_mlops.config import get_settings

        client = MlflowClient(tracking_uri=self.tracking_uri)
        if run_id is None:
            name = get_settings().experiment_name
            experiment = client.get_experiment_by_name(name)
            exp_id = experiment.experiment_id if experiment else client.create_experiment(name)
            run = client.create_run(exp_id, run_name=self.exp.name, tags={
                "katib.experiment": self.exp.name, "sweep.algorithm": self.exp.algorithm.name,
                "sweep.backend": "local", "sweep.spec": self.exp.source})
            run_id = run.info.run_id
            client.log_param(run_id, "algorithm", self.exp.algorithm.name)
            client.log_param(run_id, "objective", f"{self.direction} {self.exp.objective.metric}")
            client.log_param(run_id, "max_trial_count", str(self.exp.max_trial_count))
            client.log_param(run_id, "parallel_trial_count", str(self.exp.parallel_trial_count))
            self.study.set_user_attr(key, run_id)
        self.parent_run_id = run_id
        self._client = client

    def _finish_tracking(self, best: Any | None, status: str) -> None:
        if not self.parent_run_id:
            return
        client = self._client
        try:
            if best is not None:
                client.set_tag(self.parent_run_id, "best_trial", best.user_attrs[f"{_ATTR}_name"])
                client.log_metric(self.parent_run_id, f"best_{self.exp.objective.metric}",
                                  float(best.value))
                for k, v in best.user_attrs.get(f"{_ATTR}_assignments", {}).items():
                    client.log_param(self.parent_run_id, f"best.{k}", v)
            client.set_terminated(self.parent_run_id, status)
        except Exception as e:
            log.warning("MLflow: could not finish the sweep's parent run (%s)",
                        redact_uri(str(e)))

    # -- trials -------------------------------------------------------------------------------

    def _env(self, name: str, assignments: Mapping[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        bindir = os.path.dirname(sys.executable)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        env.update(self.exp.trial_env(name, assignments))
        env["KATIB_TRIAL_NAME"] = name
        env["KATIB_EXPERIMENT_NAME"] = self.exp.name
        env["PYTHONUNBUFFERED"] = "1"
        env["OMP_NUM_THREADS"] = str(self.threads)
        if self.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = self.tracking_uri
            env["AURORA_MLOPS_TRACKING_URI"] = self.tracking_uri
        if self.parent_run_id:
            env["AURORA_MLOPS_PARENT_RUN_ID"] = self.parent_run_id
        return env

    def _launch(self) -> None:
        trial = self.study.ask(self.distributions)
        name = f"{self.exp.name}-{trial.number}"
        assignments: dict[str, str] = {}
        for p in self.exp.parameters:
            value = trial.params[p.name]
            if p.type in ("discrete", "categorical"):
                assignments[p.name] = p.values[list(p.choices()).index(value)]
            else:
                assignments[p.name] = format_value(value)
        argv = self.exp.trial_command(name, assignments)
        trial.set_user_attr(f"{_ATTR}_name", name)
        trial.set_user_attr(f"{_ATTR}_assignments", assignments)
        trial.set_user_attr(f"{_ATTR}_command", argv)
        trial_dir = self.work / "trials" / name
        trial_dir.mkdir(parents=True, exist_ok=True)
        log_path = trial_dir / "log.txt"
        log_path.write_bytes(b"")
        fork = self.use_forkserver and is_train_trial_command(argv)
        resolved = list(argv)
        if not fork:
            exe = shutil.which(argv[0], path=self._env(name, assignments)["PATH"])
            resolved[0] = exe or argv[0]
        proc = _Proc(resolved, self.work, self._env(name, assignments), log_path,
                     self.threads, fork)
        trial.set_user_attr(f"{_ATTR}_runner", "forkserver" if fork else "subprocess")
        self.running[trial.number] = _Running(trial=trial, name=name, assignments=assignments,
                                              proc=proc, log_path=log_path,
                                              started=time.monotonic())
        log.info("trial %s started: %s", name, assignments)

    def _observe(self, run: _Running, found: list[tuple[str, float]]) -> None:
        metric = self.exp.objective.metric
        for name, value in found:
            run.values.setdefault(name, []).append(value)
            if name == "epoch":
                run.epoch = value
            elif name == metric and math.isfinite(value) and not run.pruned:
                step = int(run.epoch) if run.epoch is not None else run.last_step + 1
                if step <= run.last_step:
                    step = run.last_step + 1
                run.last_step = step
                run.trial.report(value, step)
                if run.trial.should_prune():
                    run.pruned = True
                    log.info("trial %s early-stopped at step %d", run.name, step)

    def _observation(self, run: _Running) -> dict[str, float]:
        obj = self.exp.objective
        out: dict[str, float] = {}
        for name in (obj.metric, *obj.additional_metrics):
            values = [v for v in run.values.get(name, []) if math.isfinite(v)]
            if not values:
                continue
            strategy = obj.strategy(name)
            out[name] = min(values) if strategy == "min" else max(values) \
                if strategy == "max" else values[-1]
        return out

    def _metric_summaries(self, run: _Running) -> list[dict[str, str]]:
        """Each objective metric's latest, min and max reported value, as Katib's trial
        observation lists them (over the finite values; ``unavailable`` when there are none)."""
        obj = self.exp.objective
        out = []
        for name in (obj.metric, *obj.additional_metrics):
            values = [v for v in run.values.get(name, []) if math.isfinite(v)]
            if not values:
                continue
            out.append({"name": name, "latest": format_value(values[-1]),
                        "min": format_value(min(values)), "max": format_value(max(values))})
        return out

    def _finish(self, run: _Running, code: int | None, killed_reason: str | None = None) -> str:
        from optuna.trial import TrialState

        self._observe(run, run.flush_partial())
        obs = self._observation(run)
        trial = run.trial
        seconds = time.monotonic() - run.started
        trial.set_user_attr(f"{_ATTR}_seconds", seconds)
        trial.set_user_attr(f"{_ATTR}_observation", obs)
        trial.set_user_attr(f"{_ATTR}_metrics", self._metric_summaries(run))
        trial.set_user_attr(f"{_ATTR}_epochs", len(run.values.get(self.exp.objective.metric, [])))
        metric = self.exp.objective.metric
        raw = run.values.get(metric, [])
        reason = None
        if killed_reason is not None:
            trial.set_user_attr(f"{_ATTR}_killed", True)
            reason = killed_reason
        elif run.pruned:
            self.study.tell(trial, state=TrialState.PRUNED)
            return "EarlyStopped"
        elif run.timed_out:
            reason = f"timed out after {self.trial_timeout:g} s and was killed"
        elif code != 0:
            reason = _signal_text(code if code is not None else -signal.SIGKILL)
        elif not raw:
            reason = f"printed no {metric}=VALUE line Katib's collector can parse " \
                     "(metrics unavailable)"
        elif not all(math.isfinite(v) for v in raw) or metric not in obs:
            reason = f"reported a non-finite {metric}"
        if reason is None:
            self.study.tell(trial, obs[metric])
            return "Succeeded"
        tail = _tail(run.log_path)
        trial.set_user_attr(f"{_ATTR}_reason", reason)
        trial.set_user_attr(f"{_ATTR}_log_tail", tail)
        self.study.tell(trial, state=TrialState.FAIL)
        last = tail[-1] if tail else "(no output)"
        log.warning("trial %s failed: it %s; last log line: %s", run.name, reason, last)
        return "Killed" if killed_reason else "Failed"

    def _poll(self) -> list[str]:
        ended = []
        for number, run in list(self.running.items()):
            self._observe(run, run.read_metrics())
            code = run.proc.poll()
            if code is None:
                if run.pruned:
                    code = run.proc.stop()
                elif self.trial_timeout and time.monotonic() - run.started > self.trial_timeout:
                    run.timed_out = True
                    code = run.proc.stop()
                else:
                    continue
            ended.append(self._finish(run, code))
            del self.running[number]
        return ended

    def _kill_all(self, reason: str) -> None:
        for number, run in list(self.running.items()):
            code = run.proc.stop(grace=1.0)
            self._finish(run, code, killed_reason=reason)
            del self.running[number]

    # -- outputs ------------------------------------------------------------------------------

    def _checkpoint(self, name: str) -> Path | None:
        out = self.exp.trial_output_dir(name)
        if out is None:
            return None
        d = (self.work / out).resolve()
        tj = d / "trial.json"
        if tj.is_file():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                return d / json.loads(tj.read_text())["checkpoint"]["path"]
        ckpt = d / "model.ckpt"
        return ckpt if ckpt.is_file() else None

    def status(self, conditions: list[dict[str, str]], done: bool) -> dict[str, Any]:
        from optuna.trial import TrialState

        trials = self._trials()
        names: dict[str, list[str]] = {"succeeded": [], "failed": [], "early": [], "killed": [],
                                       "running": []}
        for t in trials:
            n = t.user_attrs.get(f"{_ATTR}_name", f"{self.exp.name}-{t.number}")
            if t.state == TrialState.COMPLETE:
                names["succeeded"].append(n)
            elif t.state == TrialState.PRUNED:
                names["early"].append(n)
            elif t.state == TrialState.FAIL:
                names["killed" if t.user_attrs.get(f"{_ATTR}_killed") else "failed"].append(n)
            elif t.state == TrialState.RUNNING:
                names["running"].append(n)
        best = self._best()
        optimal: dict[str, Any] = {}
        if best is not None:
            obs = best.user_attrs.get(f"{_ATTR}_observation", {})
            optimal = {
                "bestTrialName": best.user_attrs.get(f"{_ATTR}_name"),
                "parameterAssignments": [
                    {"name": k, "value": v}
                    for k, v in best.user_attrs.get(f"{_ATTR}_assignments", {}).items()],
                # A study from before the summaries were stored knows one value per metric.
                "observation": {"metrics": best.user_attrs.get(f"{_ATTR}_metrics") or [
                    {"name": k, "latest": format_value(float(v)), "min": format_value(float(v)),
                     "max": format_value(float(v))} for k, v in obs.items()]},
            }
        return {
            "startTime": self.start_time,
            **({"completionTime": _now()} if done else {}),
            "lastReconcileTime": _now(),
            "conditions": conditions,
            "currentOptimalTrial": optimal,
            "trials": len(names["succeeded"]) + len(names["failed"]) + len(names["early"])
            + len(names["killed"]) + len(names["running"]),
            "trialsSucceeded": len(names["succeeded"]),
            "trialsFailed": len(names["failed"]),
            "trialsEarlyStopped": len(names["early"]),
            "trialsKilled": len(names["killed"]),
            "trialsRunning": len(names["running"]),
            "trialsPending": 0,
            "succeededTrialList": names["succeeded"],
            "failedTrialList": names["failed"],
            "earlyStoppedTrialList": names["early"],
            "killedTrialList": names["killed"],
            "runningTrialList": names["running"],
            "failures": {t.user_attrs.get(f"{_ATTR}_name", str(t.number)): {
                "reason": t.user_attrs.get(f"{_ATTR}_reason"),
                "logTail": t.user_attrs.get(f"{_ATTR}_log_tail", [])}
                for t in trials if t.state == TrialState.FAIL
                and not t.user_attrs.get(f"{_ATTR}_killed")},
        }

    # -- main loop ----------------------------------------------------------------------------

    def _stop_reason(self, counts: dict[str, int]) -> str | None:
        exp = self.exp
        finished = sum(counts.values())
        if exp.max_failed_trial_count is not None and \
                counts["failed"] >= exp.max_failed_trial_count:
            return "MaxFailedTrialsReached"
        best = self._best()
        if best is not None and exp.objective.reached(float(best.value)):
            return "GoalReached"
        if self.max_trials is not None and finished >= self.max_trials:
            return "MaxTrialsReached"
        return None

    def run(self) -> SweepResult:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._resume()
        try:
            self._start_tracking()
        except Exception as e:  # any MLflow/store failure: the sweep runs on, untracked
            why = redact_uri((str(e).splitlines() or [type(e).__name__])[0])
            print(f"tune: MLflow tracking is off for this sweep ({why}); trials still run",
                  file=sys.stderr)
            self.tracking = False
            self.parent_run_id = None
        status_path = self.work / "status.json"
        reason: str | None = None
        conditions = [{"type": "Created", "status": "True", "reason": "ExperimentCreated",
                       "lastUpdateTime": self.start_time}]
        running_cond = {"type": "Running", "status": "True", "reason": "ExperimentRunning",
                        "lastUpdateTime": _now()}
        _write_json(status_path, self.status([*conditions, running_cond], done=False))
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[best]}"),
                            TimeElapsedColumn(), console=Console(stderr=True),
                            disable=not self.progress_enabled, transient=False)
        total = self.max_trials
        try:
            with progress:
                task = progress.add_task(self.exp.name, total=total, best="")
                # The study is read only when a trial ends: a busy runner would steal the CPU
                # that the trials' thread pools spin on.
                counts = self._counts()
                state_reason = self._stop_reason(counts)
                while True:
                    ended = self._poll()
                    if ended:
                        counts = self._counts()
                        state_reason = self._stop_reason(counts)
                        best = self._best()
                        progress.update(task, completed=sum(counts.values()), best=(
                            f"best {self.exp.objective.metric}={best.value:.5g}"
                            if best is not None else ""))
                        _write_json(status_path,
                                    self.status([*conditions, running_cond], done=False))
                    reason = state_reason
                    if reason is None and self.timeout is not None \
                            and time.monotonic() - self.t0 > self.timeout:
                        reason = "Timeout"
                    if reason in ("GoalReached", "MaxFailedTrialsReached", "Timeout"):
                        self._kill_all(f"the experiment stopped ({reason})")
                        break
                    launched = False
                    while reason is None and len(self.running) < self.exp.parallel_trial_count \
                            and (self.max_trials is None
                                 or sum(counts.values()) + len(self.running) < self.max_trials):
                        self._launch()
                        launched = True
                    if launched:
                        _write_json(status_path,
                                    self.status([*conditions, running_cond], done=False))
                    if reason is not None and not self.running:
                        break
                    time.sleep(POLL_S)
        finally:
            for run in self.running.values():  # interrupted: stop our trials, keep them RUNNING
                run.proc.stop(grace=1.0)       # in the study so a re-run re-queues them
        failed = reason in ("MaxFailedTrialsReached", "Timeout")
        final = {"type": "Failed" if failed else "Succeeded", "status": "True",
                 "reason": f"Experiment{reason}", "lastUpdateTime": _now(),
                 "message": f"Experiment has {'failed' if failed else 'succeeded'}: {reason}"}
        running_cond = {**running_cond, "status": "False"}
        status = self.status([*conditions, running_cond, final], done=True)
        _write_json(status_path, status)
        best = self._best()
        self._finish_tracking(best, "FAILED" if failed else "FINISHED")
        if best is None:
            result = SweepResult(experiment=self.exp.name, work_dir=self.work, best_trial=None,
                                 parameters={}, metrics={}, checkpoint=None, status=status,
                                 reason=str(reason))
        else:
            name = best.user_attrs[f"{_ATTR}_name"]
            result = SweepResult(
                experiment=self.exp.name, work_dir=self.work, best_trial=name,
                parameters=dict(best.user_attrs.get(f"{_ATTR}_assignments", {})),
                metrics={k: float(v) for k, v in
                         best.user_attrs.get(f"{_ATTR}_observation", {}).items()},
                checkpoint=self._checkpoint(name), status=status, reason=str(reason))
        _write_json(self.work / "best.json", {
            "experiment": result.experiment,
            "bestTrialName": result.best_trial,
            "parameterAssignments": [{"name": k, "value": v} for k, v in result.parameters.items()],
            "metrics": result.metrics,
            "checkpoint": str(result.checkpoint) if result.checkpoint else None,
            "reason": result.reason,
            "mlflowParentRunId": self.parent_run_id,
            "spec": _spec_path(self.exp),
        })
        return result


def _spec_path(exp: Experiment) -> str | None:
    """The Experiment YAML's absolute path (``tune analyze`` reads it), if it came from a file."""
    path = Path(exp.source)
    return str(path.resolve()) if path.is_file() else None


def _link_data(work: Path, data_dir: Path) -> None:
    """Make ``WORKDIR/data`` the user's data directory (a symlink, or a copy where not allowed)."""
    target = work / "data"
    src = data_dir.resolve()
    if not src.exists():
        raise ConfigError(f"--data-dir {data_dir} does not exist")
    if target.is_symlink():
        if target.resolve() == src:
            return
        target.unlink()
    elif target.exists():
        if target.resolve() == src:
            return
        raise ConfigError(f"{target} already exists and is not a link to {src}; remove it or "
                          "drop --data-dir")
    try:
        target.symlink_to(src, target_is_directory=src.is_dir())
    except OSError:
        if src.is_dir():
            shutil.copytree(src, target)
        else:
            shutil.copy2(src, target)


def run_local(
    spec: str | Path | Experiment,
    *,
    work_dir: str | Path,
    data_dir: str | Path | None = None,
    timeout: float | None = None,
    trial_timeout: float | None = None,
    progress: bool = True,
    tracking: bool = True,
    tracking_uri: str | None = None,
    seed: int | None = None,
    use_forkserver: bool = True,
) -> SweepResult:
    """Run a Katib Experiment on this machine; re-running the same call resumes it.

    Args:
        spec: The Experiment YAML (or an already loaded :class:`Experiment`).
        work_dir: Study database, MLflow store (by default), trial dirs, status and best files;
            trial commands run with this as their working directory.
        data_dir: Linked (or copied) as ``WORKDIR/data``, where relative ``data/...`` paths in
            the trial command point.
        timeout: Seconds for the whole sweep; running trials are killed when it passes.
        trial_timeout: Seconds per trial; a trial running longer is killed and failed.
        progress: Show a progress bar on stderr.
        tracking: Create an MLflow parent run that trials nest under.
        tracking_uri: MLflow URI (default: the settings', else ``sqlite:///WORKDIR/mlflow.db``).
        seed: Sampler seed, overriding the ``random_state`` algorithm setting.
        use_forkserver: Run ``aurora-mlops train-trial`` commands in preloaded forked workers.

    Raises:
        ConfigError: The spec is invalid or asks for something the local runner cannot run.
    """
    exp = spec if isinstance(spec, Experiment) else load_experiment(spec)
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    with lock_work_dir(work):  # a second live runner would re-queue this one's trials
        if data_dir is not None:
            _link_data(work, Path(data_dir))
        probe = exp.trial_command("probe", {p.name: "0" for p in exp.parameters})
        check_trial_data(probe, work, spec=exp.source)
        if tracking_uri is None and tracking:
            from aurora_mlops.config import get_settings

            tracking_uri = (get_settings().resolved_tracking_uri()
                            or f"sqlite:///{work / 'mlflow.db'}")
        if use_forkserver and is_train_trial_command(probe):
            _ForkServer.warm_up()  # it imports torch, aurora and mlflow while the runner sets up
        runner = _Runner(exp, work, trial_timeout=trial_timeout, timeout=timeout,
                         progress=progress, tracking=tracking, tracking_uri=tracking_uri,
                         seed=seed, use_forkserver=use_forkserver)
        return runner.run()
