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

The pieces: :mod:`~aurora_mlops.tuning.local._optuna_map` (sampler and pruner),
:mod:`~aurora_mlops.tuning.local._trial_proc` (the trial processes; the preloaded forkserver and
its workers are :mod:`~aurora_mlops.tuning.local._trial_workers`),
:mod:`~aurora_mlops.tuning.local._trial_metrics` (a running trial's metrics),
:mod:`~aurora_mlops.tuning.local._status` (``status.json`` and ``best.json``),
:mod:`~aurora_mlops.tuning.local._study_storage` (``study.db`` in WAL mode, a new ``mlflow.db``) and
:mod:`~aurora_mlops.tuning.local._sweep_tracking` (the MLflow parent run); this module is the loop.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aurora_mlops._progress import progress_bar
from aurora_mlops.tuning.katib._experiment import Experiment
from aurora_mlops.tuning.katib._experiment_load import load_experiment
from aurora_mlops.tuning.local._optuna_map import (
    enqueue_defaults,
    grid_size,
    katib_assignments,
    make_pruner,
    make_sampler,
)
from aurora_mlops.tuning.local._states import attr, live_trials, requeue_interrupted
from aurora_mlops.tuning.local._status import (
    SweepResult,
    best_trial,
    counts,
    experiment_status,
    now,
    write_status,
)
from aurora_mlops.tuning.local._study_storage import close_storage, open_storage
from aurora_mlops.tuning.local._sweep_tracking import ParentRun, start_parent_run
from aurora_mlops.tuning.local._trial_metrics import (
    RunningTrial,
    failure_reason,
    metric_summaries,
    observation,
    observe,
)
from aurora_mlops.tuning.local._trial_proc import (
    TrialProcess,
    is_train_trial_command,
    log_tail,
    wait_any,
    warm_step_command,
    warm_trial_workers,
)
from aurora_mlops.tuning.local._trial_workers import ForkServer
from aurora_mlops.tuning.local._workdir import (
    check_trial_data,
    link_data,
    localize,
    localize_path,
    lock_work_dir,
    spec_path,
    trial_checkpoint,
)

log = logging.getLogger(__name__)

__all__ = [
    "SweepResult",
    "is_train_trial_command",
    "make_pruner",
    "make_sampler",
    "run_local",
]

POLL_S = 0.05
#: Reasons that stop a sweep at once (running trials are killed).
_STOP_NOW = ("GoalReached", "MaxFailedTrialsReached", "Timeout")


class _Runner:
    def __init__(self, exp: Experiment, work_dir: Path, *, trial_timeout: float | None,
                 timeout: float | None, progress: bool, tracking: bool,
                 tracking_uri: str | None, seed: int | None, use_forkserver: bool) -> None:
        import optuna

        self.exp = exp
        self.work = work_dir
        self.trial_timeout, self.timeout = trial_timeout, timeout
        self.progress_enabled = progress
        self.use_forkserver = use_forkserver
        self.t0 = time.monotonic()
        self.start_time = now()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.storage = open_storage(work_dir / "study.db")  # closed by run_local
        self.study = optuna.create_study(
            storage=self.storage, study_name=exp.name,
            direction=exp.objective.type, sampler=make_sampler(exp, seed),
            pruner=make_pruner(exp), load_if_exists=True)
        self.distributions = {p.name: p.distribution_for_optuna() for p in exp.parameters}
        self.max_trials = exp.max_trial_count
        if exp.algorithm.name.lower() == "grid":
            size = grid_size(exp)
            self.max_trials = min(self.max_trials or size, size)
        self.running: dict[int, RunningTrial] = {}
        self.exiting: list[TrialProcess] = []  # ended trials whose processes may still exit
        self.forked = False  # a trial ran in a forkserver worker: keep one standing by
        self.tracking, self.tracking_uri = tracking, tracking_uri
        self.parent: ParentRun | None = None
        self.threads = max((os.cpu_count() or 1) // max(exp.parallel_trial_count, 1), 1)
        self.conditions = [{"type": "Created", "status": "True", "reason": "ExperimentCreated",
                            "lastUpdateTime": self.start_time}]

    def _trials(self) -> list[Any]:
        return live_trials(self.study.get_trials(deepcopy=False))

    def _best(self, trials: list[Any]) -> Any | None:
        return best_trial(trials, self.exp.objective.type)

    def _status(self, conditions: list[dict[str, str]], done: bool,
                trials: list[Any] | None = None) -> dict[str, Any]:
        return experiment_status(self.exp, self._trials() if trials is None else trials,
                                 start_time=self.start_time, conditions=conditions, done=done)

    # -- trials -------------------------------------------------------------------------------

    def _env(self, name: str, assignments: Mapping[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        bindir = os.path.dirname(sys.executable)
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
        for key, value in self.exp.trial_env(name, assignments).items():
            local = localize_path(value)  # HF_HOME on the artifacts volume: in the work dir
            env[key] = value if local == value else str(self.work / local)
        env["KATIB_TRIAL_NAME"] = name
        env["KATIB_EXPERIMENT_NAME"] = self.exp.name
        env["PYTHONUNBUFFERED"] = "1"
        env["OMP_NUM_THREADS"] = str(self.threads)
        if self.tracking_uri:
            env["MLFLOW_TRACKING_URI"] = self.tracking_uri
            env["AURORA_MLOPS_TRACKING_URI"] = self.tracking_uri
        if self.parent is not None:
            env["AURORA_MLOPS_PARENT_RUN_ID"] = self.parent.run_id
        return env

    def _launch(self) -> None:
        trial = self.study.ask(self.distributions)
        name = f"{self.exp.name}-{trial.number}"
        assignments = katib_assignments(self.exp, trial)
        argv = localize(self.exp.trial_command(name, assignments))
        trial.set_user_attr(attr("name"), name)
        trial.set_user_attr(attr("assignments"), assignments)
        trial.set_user_attr(attr("command"), argv)
        trial_dir = self.work / "trials" / name
        trial_dir.mkdir(parents=True, exist_ok=True)
        log_path = trial_dir / "log.txt"
        log_path.write_bytes(b"")
        fork = self.use_forkserver and is_train_trial_command(argv)
        resolved, env = list(argv), self._env(name, assignments)
        warm = warm_step_command(argv) if fork else None
        if warm is not None:  # forked from a local pipeline run's warm step server
            resolved, fork = warm, False
        elif not fork:
            resolved[0] = shutil.which(argv[0], path=env["PATH"]) or argv[0]
        proc = TrialProcess(resolved, self.work, env, log_path, self.threads, fork)
        self.forked = self.forked or fork
        trial.set_user_attr(attr("runner"), "warm-step-server" if warm else
                            "forkserver" if fork else "subprocess")
        self.running[trial.number] = RunningTrial(
            trial=trial, name=name, assignments=assignments, proc=proc, log_path=log_path,
            started=time.monotonic())
        log.info("trial %s started: %s", name, assignments)

    def _finish(self, run: RunningTrial, code: int | None,
                killed_reason: str | None = None) -> str:
        from optuna.trial import TrialState

        observe(run, run.flush_partial(), self.exp.objective.metric)
        objective = self.exp.objective
        obs = observation(run, objective)
        trial = run.trial
        trial.set_user_attr(attr("seconds"), time.monotonic() - run.started)
        trial.set_user_attr(attr("observation"), obs)
        trial.set_user_attr(attr("metrics"), metric_summaries(run, objective))
        trial.set_user_attr(attr("epochs"), len(run.values.get(objective.metric, [])))
        if killed_reason is not None:
            trial.set_user_attr(attr("killed"), True)
            reason: str | None = killed_reason
        elif run.pruned:
            self.study.tell(trial, state=TrialState.PRUNED)
            return "EarlyStopped"
        else:
            reason = failure_reason(run, code, obs, self.exp.objective.metric,
                                    trial_timeout=self.trial_timeout)
        if reason is None:
            self.study.tell(trial, obs[objective.metric])
            return "Succeeded"
        tail = log_tail(run.log_path)
        trial.set_user_attr(attr("reason"), reason)
        trial.set_user_attr(attr("log_tail"), tail)
        self.study.tell(trial, state=TrialState.FAIL)
        last = tail[-1] if tail else "(no output)"
        log.warning("trial %s failed: it %s; last log line: %s", run.name, reason, last)
        return "Killed" if killed_reason else "Failed"

    def _poll(self) -> list[str]:
        ended = []
        for number, run in list(self.running.items()):
            observe(run, run.read_metrics(), self.exp.objective.metric)
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
            self.exiting.append(run.proc)
            del self.running[number]
        return ended

    def _kill_all(self, reason: str) -> None:
        for number, run in list(self.running.items()):
            code = run.proc.stop(grace=1.0)
            self._finish(run, code, killed_reason=reason)
            del self.running[number]

    # -- main loop ----------------------------------------------------------------------------

    def _stop_reason(self, finished: dict[str, int], best: Any | None) -> str | None:
        exp = self.exp
        if exp.max_failed_trial_count is not None and \
                finished["failed"] >= exp.max_failed_trial_count:
            return "MaxFailedTrialsReached"
        if best is not None and exp.objective.reached(float(best.value)):
            return "GoalReached"
        if self.max_trials is not None and sum(finished.values()) >= self.max_trials:
            return "MaxTrialsReached"
        return None

    def _room(self, finished: dict[str, int]) -> bool:
        """Whether another trial may start (parallelism and the trial budget allow it)."""
        return len(self.running) < self.exp.parallel_trial_count and self._more(finished)

    def _more(self, finished: dict[str, int]) -> bool:
        """Whether more trials than those running may still start."""
        return self.max_trials is None or \
            sum(finished.values()) + len(self.running) < self.max_trials

    def _loop(self, progress: Any, running_cond: dict[str, str]) -> str | None:
        """Launch, poll and finish trials until the sweep stops; returns the reason."""
        status_path = self.work / "status.json"
        task = progress.add_task(self.exp.name, total=self.max_trials, best="")
        # The study is read only when a trial ends or starts, once each time (every read
        # loads all trials): a busy runner would steal the CPU that the trials' thread pools
        # spin on, and between two trials it delays the next one.
        trials = self._trials()
        finished = counts(trials)
        state_reason = self._stop_reason(finished, self._best(trials))
        while True:
            ended = self._poll()
            if ended:
                trials = self._trials()
                finished = counts(trials)
                best = self._best(trials)
                state_reason = self._stop_reason(finished, best)
                progress.update(task, completed=sum(finished.values()), best=(
                    f"best {self.exp.objective.metric}={best.value:.5g}"
                    if best is not None else ""))
            reason = state_reason
            if reason is None and self.timeout is not None \
                    and time.monotonic() - self.t0 > self.timeout:
                reason = "Timeout"
            if reason in _STOP_NOW:
                self._kill_all(f"the experiment stopped ({reason})")
                return reason
            launched = False
            while reason is None and self._room(finished):
                self._launch()
                launched = True
            if launched and self.forked and self._more(finished):
                ForkServer.prepare()  # the next trial's worker forks while these train
            if ended or launched:  # one status per change, the new trials in it
                write_status(status_path, self._status(
                    [*self.conditions, running_cond], False,
                    self._trials() if launched else trials))
            if reason is not None and not self.running:
                return reason
            wait_any([run.proc for run in self.running.values()], POLL_S)

    def _result(self, reason: str | None, status: dict[str, Any]) -> SweepResult:
        best = self._best(self._trials())
        if best is None:
            return SweepResult(experiment=self.exp.name, work_dir=self.work, best_trial=None,
                               parameters={}, metrics={}, checkpoint=None, status=status,
                               reason=str(reason))
        name = best.user_attrs[attr("name")]
        return SweepResult(
            experiment=self.exp.name, work_dir=self.work, best_trial=name,
            parameters=dict(best.user_attrs.get(attr("assignments"), {})),
            metrics={k: float(v) for k, v in best.user_attrs.get(attr("observation"), {}).items()},
            checkpoint=trial_checkpoint(self.exp, self.work, name), status=status,
            reason=str(reason))

    def run(self) -> SweepResult:
        requeue_interrupted(self.study)
        enqueue_defaults(self.study, self.exp)
        if self.tracking:
            self.parent = start_parent_run(self.exp, self.study, self.tracking_uri)
        status_path = self.work / "status.json"
        running_cond = {"type": "Running", "status": "True", "reason": "ExperimentRunning",
                        "lastUpdateTime": now()}
        write_status(status_path, self._status([*self.conditions, running_cond], done=False))
        progress = progress_bar(fields=("best",), enabled=self.progress_enabled)
        reason: str | None = None
        try:
            with progress:
                reason = self._loop(progress, running_cond)
        finally:
            for run in self.running.values():  # interrupted: stop our trials, keep them RUNNING
                run.proc.stop(grace=1.0)       # in the study so a re-run re-queues them
            ForkServer.dismiss()
            for proc in self.exiting:  # the sweep returns with none of its processes left
                proc.reap()
        failed = reason in ("MaxFailedTrialsReached", "Timeout")
        final = {"type": "Failed" if failed else "Succeeded", "status": "True",
                 "reason": f"Experiment{reason}", "lastUpdateTime": now(),
                 "message": f"Experiment has {'failed' if failed else 'succeeded'}: {reason}"}
        running_cond = {**running_cond, "status": "False"}
        status = self._status([*self.conditions, running_cond, final], done=True)
        write_status(status_path, status)
        if self.parent is not None:
            self.parent.finish(self._best(self._trials()), "FAILED" if failed else "FINISHED")
        result = self._result(reason, status)
        write_status(self.work / "best.json", result.best_json(
            parent_run_id=self.parent.run_id if self.parent else None,
            spec=spec_path(self.exp)))
        return result


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
        work_dir: Optuna study database, MLflow store (by default), trial dirs, status and
            best files; trial commands run with this as their working directory.
        data_dir: Linked (or copied) as ``WORKDIR/data``, where relative ``data/...`` paths in
            the trial command point, and ``/mnt/data/...`` ones (the data volume of a cluster).
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
        probe = localize(exp.trial_command("probe", {p.name: "0" for p in exp.parameters}))
        if use_forkserver and is_train_trial_command(probe):
            warm_trial_workers()  # first: it imports while the runner sets up, on another core
        if data_dir is not None:
            link_data(work, Path(data_dir))
        check_trial_data(probe, work, spec=exp.source)
        if tracking_uri is None and tracking:
            from aurora_mlops.config import get_settings

            tracking_uri = (get_settings().resolved_tracking_uri()
                            or f"sqlite:///{work / 'mlflow.db'}")
        runner = _Runner(exp, work, trial_timeout=trial_timeout, timeout=timeout,
                         progress=progress, tracking=tracking, tracking_uri=tracking_uri,
                         seed=seed, use_forkserver=use_forkserver)
        try:
            return runner.run()
        finally:
            close_storage(runner.storage)
