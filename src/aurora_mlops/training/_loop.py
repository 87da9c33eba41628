"""The training loop: rollout fine-tuning steps, validation every epoch, early stopping.

Each optimiser step takes ``accumulation_steps`` micro-batches from the DataLoader (this
rank's shard), rolls the model out ``horizon`` steps (``rollout_steps``, or a growing horizon
with ``curriculum``), and backpropagates the rollout loss. Every rank checks the loss before
backward, so a NaN on one rank stops them all. After each epoch the bare module is validated,
the Katib metric lines are printed, and the best weights are kept. Progress goes to stderr
through ``rich`` when stderr is a terminal.

A loop given the end state of an earlier trial (``resume``, see :mod:`._resume`) restores the
weights, optimiser, schedule, loop state, data position and random generators, re-prints the
earlier epochs' metric lines (Katib takes the best over all of a trial's lines) and trains on
from the next epoch, unless the earlier trial stopped early. :meth:`Loop.state` is that state.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import torch

from aurora_mlops._progress import progress_bar
from aurora_mlops.errors import TrainingError
from aurora_mlops.katib_metrics import format_metric_lines
from aurora_mlops.training._data import TrialData, train_batches
from aurora_mlops.training._distributed import Distributed
from aurora_mlops.training._loss import LossConfig, lat_weights, rollout_loss
from aurora_mlops.training._model import TrialModel
from aurora_mlops.training._params import TrialParams
from aurora_mlops.training._resume import restore_rng, rng_state
from aurora_mlops.training._schedule import make_scheduler
from aurora_mlops.training._tracking import Tracker
from aurora_mlops.training._validation import REPORTED, check_validation, validate

log = logging.getLogger(__name__)

__all__ = ["Loop", "LoopResult", "check_loss"]


def check_loss(dist: Distributed, loss: float, epoch: int, step: int) -> None:
    """Raise the same :class:`TrainingError` on every rank if any rank's loss is not finite.

    Raises:
        TrainingError: Some rank's loss is NaN or infinite (named with its rank under DDP).
    """
    bad = dist.non_finite(loss)
    if not bad:
        return
    value = bad[0][1]
    where = f" on rank {', '.join(str(r) for r, _ in bad)}" if dist.active else ""
    raise TrainingError(
        f"the training loss became {value} at epoch {epoch} step {step}{where}: lower "
        "--learning_rate, set --grad_clip, or check the data with `aurora-mlops data validate`"
    )


@contextlib.contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A ``rich`` progress bar of optimiser steps on stderr; yields ``advance(description)``."""
    bar = progress_bar(enabled=enabled, terminal_only=True)
    with bar:
        task = bar.add_task("training", total=total)
        yield lambda text: bar.update(task, advance=1, description=text)


@dataclass
class LoopResult:
    """What the loop produced: per-epoch metrics, per-step losses and the best weights.

    ``steps``, ``samples`` and ``train_seconds`` count the whole training, a resumed trial's
    earlier part included; ``carried`` holds what they were when this process started.
    ``stale`` and ``best`` are the early-stopping counters.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    step_losses: list[float] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch: int = -1
    best_metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    samples: int = 0
    train_seconds: float = 0.0
    stale: int = 0
    best: float = math.inf
    stopped_early: bool = False
    carried: tuple[int, int, float] = (0, 0, 0.0)

    def own(self) -> tuple[int, int, float]:
        """Steps, samples and training seconds of this process alone."""
        steps, samples, seconds = self.carried
        return self.steps - steps, self.samples - samples, self.train_seconds - seconds

    def state(self) -> dict[str, Any]:
        """The fields a resumed loop continues from (all but ``carried``)."""
        return {k: getattr(self, k) for k in _LOOP_STATE}


_LOOP_STATE = ("history", "step_losses", "best_state", "best_epoch", "best_metrics", "steps",
               "samples", "train_seconds", "stale", "best", "stopped_early")


@dataclass
class Loop:
    """One trial's training loop over ``data`` with ``model``."""

    model: TrialModel
    data: TrialData
    params: TrialParams
    dist: Distributed
    lead_weights: list[float]
    tracker: Tracker
    out: TextIO = sys.stdout
    fail_on_step: Callable[[int], bool] | None = None
    resume: dict[str, Any] | None = None
    result: LoopResult = field(default_factory=LoopResult)

    def run(self) -> LoopResult:
        """Train until ``epochs`` or a validation plateau; the result holds the best weights."""
        params, module = self.params, self.model.module
        self.optimizer = torch.optim.AdamW(
            [p for p in module.parameters() if p.requires_grad],
            lr=params.learning_rate,
            weight_decay=params.weight_decay,
            # One kernel over all tensors: the for-loop version cost the smoke models, with
            # hundreds of small per-variable tensors, 4x as much (bench/bench_trial_speed.py).
            fused=True,
        )
        self.scheduler = make_scheduler(self.optimizer, params)
        patch = int(getattr(module, "patch_size", 1))
        lat = self.data.train.lat
        rows = len(lat) - 1 if len(lat) % patch == 1 else len(lat)  # as fit_to_patches crops
        self.weights = lat_weights(lat[:rows]).to(self.dist.device)
        self.loss_cfg = LossConfig.from_params(params)
        self.amp = torch.autocast(self.dist.device.type, dtype=torch.bfloat16,
                                  enabled=params.amp)
        result = self.result = self._restore()
        start = 0 if self.resume is None else int(self.resume["data"]["micro_batches"])
        batches = train_batches(self.data.train, params, self.dist, patch, start=start,
                                augment=self.data.augment)
        if self.resume is not None:  # after the DataLoader drew its seed (see loader_batches)
            restore_rng(self.resume["rng"], self.dist.device)
        first = params.epochs if result.stopped_early else len(result.history)
        try:
            with _progress(max(params.epochs - first, 0) * params.steps_per_epoch,
                           self.dist.main) as advance:
                for epoch in range(first, params.epochs):
                    self._early_stop(self._epoch(epoch, batches, result, advance), epoch)
                    if result.stopped_early:
                        log.info("validation plateau for %d epochs: stopping early",
                                 result.stale)
                        break
        finally:
            batches.close()  # shuts the DataLoader's workers down
        return result

    def _early_stop(self, metrics: dict[str, float], epoch: int) -> None:
        """Keep the best weights, or count a stale epoch (``stopped_early`` at ``patience``)."""
        result, params = self.result, self.params
        if metrics["val_score"] < result.best - params.min_delta:
            result.best, result.best_epoch, result.stale = metrics["val_score"], epoch, 0
            result.best_state = copy.deepcopy(
                {k: v.detach().cpu() for k, v in self.model.module.state_dict().items()}
            )
            result.best_metrics = dict(metrics)
            return
        result.stale += 1
        result.stopped_early = result.stale >= params.patience

    def _restore(self) -> LoopResult:
        """A fresh result, or (resuming) the earlier trial's, with the weights, optimiser and
        schedule restored and its metric lines printed again."""
        state = self.resume
        if state is None:
            return LoopResult()
        self.model.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        loop = dict(state["loop"])
        if loop["best_state"] is not None:
            loop["best_state"] = {k: v.cpu() for k, v in loop["best_state"].items()}
        result = LoopResult(**loop)
        result.carried = (result.steps, result.samples, result.train_seconds)
        for metrics in result.history:
            self._report(metrics)
        return result

    def state(self) -> dict[str, Any]:
        """The end state that a resumed trial continues from (see :mod:`._resume`); call after
        :meth:`run`. ``micro_batches``: the global micro-batches taken from the data order."""
        module = self.model.module
        return {
            "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(self.dist.device),
            "data": {"micro_batches": self.result.steps * self.params.accumulation_steps,
                     "seed": self.params.seed},
            "loop": self.result.state(),
        }

    def _report(self, metrics: dict[str, float]) -> None:
        """Print the Katib metric lines of one epoch (rank 0 only)."""
        if self.dist.main:
            for line in format_metric_lines({k: metrics[k] for k in REPORTED}):
                print(line, file=self.out, flush=True)

    def _horizon(self, epoch: int) -> int:
        params = self.params
        if params.curriculum and params.rollout_steps > 1:
            return min(params.rollout_steps,
                       1 + epoch * params.rollout_steps // max(params.epochs, 1))
        return params.rollout_steps

    def _epoch(
        self, epoch: int, batches: Generator[Any, None, None], result: LoopResult,
        advance: Callable[[str], None],
    ) -> dict[str, float]:
        """Train one epoch, validate, print and log the metrics; returns them."""
        self.model.wrapped.train()
        losses: list[float] = []
        t0 = time.perf_counter()
        for _ in range(self.params.steps_per_epoch):
            loss = self._step(epoch, batches, result)
            losses.append(loss)
            advance(f"epoch {epoch + 1}/{self.params.epochs} loss {loss:.4g}")
        result.train_seconds += time.perf_counter() - t0
        metrics = validate(
            self.model.module,  # the bare module: no gradient sync, every rank scores alike
            self.data.val, self.data.stats, self.weights, self.data.threshold,
            self.lead_weights, self.dist.device, self.params, self.data.train.spec.name,
            _rollout(),
        )
        metrics["train_loss"] = sum(losses) / len(losses)
        metrics["epoch"] = epoch
        metrics["lr"] = float(self.scheduler.get_last_lr()[0])
        check_validation(metrics, epoch)
        result.history.append(metrics)
        self._report(metrics)
        self.tracker.log_metrics(metrics, step=epoch)
        return metrics

    def _step(self, epoch: int, batches: Iterator[Any], result: LoopResult) -> float:
        """One optimiser step over ``accumulation_steps`` micro-batches; the mean loss."""
        params, dist, module = self.params, self.dist, self.model.module
        rollout = _rollout()
        keeps_wave_aux = hasattr(module, "wave_aux")  # ocean waves: see rollout_loss
        horizon = self._horizon(epoch)
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(params.accumulation_steps):
            batch, targets = next(batches)
            sync = micro == params.accumulation_steps - 1 or not dist.active
            ctx = self.model.wrapped.no_sync() if not sync else contextlib.nullcontext()
            with ctx, self.amp:
                if keeps_wave_aux:
                    module.wave_aux = []  # type: ignore[assignment]
                preds = list(rollout(self.model.stepper, batch, horizon))
                loss = rollout_loss(
                    preds, targets, self.data.stats, self.weights, self.loss_cfg,
                    self.lead_weights, wave_aux=getattr(module, "wave_aux", None),
                )
                if keeps_wave_aux:
                    module.wave_aux = None  # type: ignore[assignment]
            if self.fail_on_step is not None and self.fail_on_step(result.steps):
                loss = loss * float("nan")
            check_loss(dist, float(loss.detach()), epoch, result.steps)
            (loss / params.accumulation_steps).backward()
            total += float(loss.detach()) / params.accumulation_steps
        if params.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(module.parameters(), params.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        result.steps += 1
        result.samples += params.batch_size * dist.world * params.accumulation_steps
        value = dist.mean(total)
        result.step_losses.append(value)
        return value


def _rollout() -> Any:
    from aurora.rollout import rollout

    return rollout
