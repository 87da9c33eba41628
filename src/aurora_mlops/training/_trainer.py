"""``train-trial``: fine-tune one variant with one set of hyperparameters (one Katib trial).

The loop: build the variant with the trial's knobs, train on the training split with rollout
fine-tuning (optionally a short-to-long curriculum), validate every epoch, print Katib metric
lines, stop early on a plateau, fail on a NaN loss, save the best weights and ``trial.json``.
Runs as one process or under ``torchrun`` (DistributedDataParallel, gloo on the CPU).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import json
import logging
import math
import platform
import random
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from aurora_mlops._io import atomic_write, sha256_file, write_json
from aurora_mlops._provenance import git_commit
from aurora_mlops._version import __version__
from aurora_mlops.config import get_settings, katib_context
from aurora_mlops.errors import CheckpointError, ConfigError, TrainingError
from aurora_mlops.katib_metrics import format_metric_lines
from aurora_mlops.training._distributed import DDPStepper, Distributed
from aurora_mlops.training._loss import (
    EVENT_QUANTILE,
    LossConfig,
    ScoreAccumulator,
    event_field,
    lat_weights,
    rollout_loss,
)
from aurora_mlops.training._params import TrialParams
from aurora_mlops.training._tracking import Tracker
from aurora_mlops.variants import (
    Profile,
    VariantSpec,
    build_model,
    load_weights,
    variants_with,
)

log = logging.getLogger(__name__)

__all__ = ["TrialResult", "build_trial_model", "train_trial"]

COAST_VAR = "coast_mask"


@dataclass(frozen=True)
class TrialResult:
    """What a finished trial produced."""

    output_dir: Path
    checkpoint: Path
    metrics: dict[str, float]
    trial_json: Path


def _heads_for(depths: tuple[int, ...], base: tuple[int, ...]) -> tuple[int, ...]:
    """Per-stage attention heads for ``depths`` stages, extending ``base`` by doubling."""
    heads = list(base[: len(depths)])
    while len(heads) < len(depths):
        heads.append(heads[-1] * 2)
    return tuple(heads)


def coast_mask(lsm: torch.Tensor, width: int = 2) -> torch.Tensor:
    """Ocean cells within ``width`` cells of land (1) and everything else (0), shape ``(h, w)``."""
    land = (lsm > 0.5).float()[None, None]
    near = torch.nn.functional.max_pool2d(land, 2 * width + 1, stride=1, padding=width)[0, 0]
    return ((near > 0) & (land[0, 0] == 0)).float()


def build_trial_model(spec: VariantSpec, params: TrialParams, profile: Profile) -> torch.nn.Module:
    """The variant's model with the trial's knobs (derived head counts and decoder depths).

    Raises:
        ConfigError: A knob does not apply to the variant, or Aurora rejects the combination.
    """
    overrides = params.model_overrides()
    base = spec.config(profile)
    from aurora import Aurora

    defaults = {k: p.default for k, p in inspect.signature(Aurora.__init__).parameters.items()}
    if "encoder_depths" in overrides:
        enc = tuple(overrides["encoder_depths"])
        overrides.setdefault("decoder_depths", enc[::-1])
        overrides["encoder_num_heads"] = _heads_for(
            enc, base.get("encoder_num_heads", defaults["encoder_num_heads"])
        )
    if "decoder_depths" in overrides:
        dec = tuple(overrides["decoder_depths"])
        enc_heads = overrides.get(
            "encoder_num_heads", base.get("encoder_num_heads", defaults["encoder_num_heads"])
        )
        overrides["decoder_num_heads"] = _heads_for(
            dec,
            tuple(enc_heads)[::-1]
            if len(enc_heads) >= len(dec)
            else tuple(reversed(_heads_for(dec, enc_heads))),
        )
    if spec.aurora_class == "AuroraAirPollution":
        if params.separate_perceiver is not None:
            overrides["separate_perceiver"] = tuple(params.separate_perceiver)
        # ``modulation_heads=off`` is applied after loading weights (see _modulation_off):
        # Aurora's decoder hook always reads the heads, so they stay and are held at zero.
    elif params.separate_perceiver is not None or params.modulation_heads is not None:
        raise ConfigError(
            f"--separate_perceiver and --modulation_heads apply to air-pollution only, "
            f"not to {spec.name}"
        )
    if params.coastal_conditioning:
        if COAST_VAR not in spec.extra_inputs:
            raise ConfigError(
                f"--coastal_conditioning applies to {variants_with('extra_inputs', COAST_VAR)} "
                f"only, not {spec.name}"
            )
        overrides["static_vars"] = (*spec.static_vars, COAST_VAR)
        overrides["surf_stats"] = {**base.get("surf_stats", {}), COAST_VAR: (0.0, 1.0)}
    if params.spectral_loss_weight > 0 and "spectral" not in spec.loss_terms:
        raise ConfigError(f"--spectral_loss_weight applies to "
                          f"{variants_with('loss_terms', 'spectral')} only, not {spec.name}")
    if params.log_space_loss and "log_space" not in spec.loss_terms:
        raise ConfigError(f"--log_space_loss applies to "
                          f"{variants_with('loss_terms', 'log_space')} only, not {spec.name}")
    embed = overrides.get("embed_dim", base.get("embed_dim", defaults["embed_dim"]))
    heads = overrides.get("num_heads", base.get("num_heads", defaults["num_heads"]))
    if embed % heads:
        raise ConfigError(f"--embed_dim={embed} must be divisible by --num_heads={heads}")
    model = build_model(spec, overrides, profile=profile)
    return model


def modulation_off(model: torch.nn.Module) -> int:
    """Zero and freeze the air-pollution modulation heads, so that a prediction is the model's
    output plus the previous value (no learned modulation). Returns how many tensors changed."""
    changed = 0
    for name, param in model.named_parameters():
        if ".surf_heads." in name or ".atmos_heads." in name:
            head = name.split("_heads.", 1)[1].split(".", 1)[0]
            if head.endswith("_mod"):
                with torch.no_grad():
                    param.zero_()
                param.requires_grad_(False)
                changed += 1
    return changed


def _diagnose(model: torch.nn.Module, ckpt: Path, params: TrialParams) -> str:
    """Name the knob behind a checkpoint that does not fit (best effort)."""
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:
        return f"the checkpoint is unreadable ({e})"
    mine = model.state_dict()
    for key, tensor in mine.items():
        theirs = state.get(key)
        if theirs is not None and tuple(theirs.shape) != tuple(tensor.shape):
            changed = params.changed_architecture()
            hint = (
                f"; the trial changes {', '.join(f'{k}={v}' for k, v in changed.items())}"
                if changed
                else ""
            )
            suspects = [
                k
                for k, v in changed.items()
                if isinstance(v, int) and v in tensor.shape and v not in theirs.shape
            ]
            if suspects:
                hint = f"; the mismatching knob is {', '.join(suspects)}" + hint
            return (
                f"parameter {key} has shape {tuple(theirs.shape)} in the checkpoint but "
                f"{tuple(tensor.shape)} in the model{hint}"
            )
    missing = sorted(set(mine) - set(state))[:3]
    return f"the checkpoint lacks {', '.join(missing)}" if missing else "see the error above"


def _check_loss(dist: Distributed, loss: float, epoch: int, step: int) -> None:
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


#: The validation metrics that a trial prints for Katib (and so must be finite).
REPORTED = ("epoch", "train_loss", "val_rmse", "val_persistence_rmse", "val_event_f1", "val_score")


def _check_validation(metrics: dict[str, float], epoch: int) -> None:
    """Fail the trial like a NaN loss when a reported validation metric is not finite.

    Raises:
        TrainingError: ``val_score`` (or another reported metric) is NaN or infinite.
    """
    bad = {k: metrics[k] for k in REPORTED if k in metrics and not math.isfinite(metrics[k])}
    if bad:
        listed = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise TrainingError(
            f"validation at epoch {epoch} gave {listed}: the model's predictions on the "
            "validation windows are not finite; lower --learning_rate, set --grad_clip, or "
            "check the validation data with `aurora-mlops data validate`"
        )


def _window_order(n: int, seed: int) -> Iterator[int]:
    """An endless stream of window indices: seeded permutations, one after another."""
    rng = np.random.default_rng(seed)
    while True:
        yield from (int(i) for i in rng.permutation(n))


def _lr_lambda(params: TrialParams) -> Callable[[int], float]:
    """Linear warm-up, then cosine annealing with warm restarts (T_0, T_mult) to 1% of the peak."""

    def factor(step: int) -> float:
        if step < params.warmup_steps:
            return (step + 1) / params.warmup_steps
        s = step - params.warmup_steps
        period = params.t0
        while s >= period:
            s -= period
            period *= params.t_mult
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * s / period))

    return factor


def _torch_threads(fn: Callable[..., TrialResult]) -> Callable[..., TrialResult]:
    """Run ``fn`` with ``torch.set_num_threads(params.torch_threads)``, restored afterwards."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> TrialResult:
        params = inspect.signature(fn).bind(*args, **kwargs).arguments["params"]
        previous = torch.get_num_threads()
        if params.torch_threads is not None:
            torch.set_num_threads(params.torch_threads)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(previous)

    return run


@_torch_threads
def train_trial(
    *,
    variant: VariantSpec,
    data: str | Path,
    output_dir: str | Path,
    params: TrialParams,
    profile: Profile = "production",
    init: str | Path | None = None,
    tracking: bool = True,
    tracking_uri: str | None = None,
    stdout: TextIO | None = None,
    fail_on_step: Callable[[int], bool] | None = None,
) -> TrialResult:
    """Fine-tune ``variant`` on ``data`` with ``params``; write the checkpoint and ``trial.json``.

    Args:
        variant: The variant to train.
        data: Canonical (or readable foreign) dataset path.
        output_dir: The trial's own directory (``model.ckpt``, ``trial.json``, ``norm_stats.json``).
        params: Validated hyperparameters.
        profile: ``smoke`` (CPU-sized model) or ``production`` (the published configuration).
        init: Checkpoint to start from (a path, or ``hub`` for the published weights).
        tracking: Log to MLflow (local default store unless a URI is configured).
        tracking_uri: MLflow URI overriding the settings.
        stdout: Where Katib metric lines go (default ``sys.stdout``).
        fail_on_step: Test hook: return True to make that optimiser step's loss NaN.

    Raises:
        ConfigError: Bad parameters for this variant or dataset (before any training).
        CheckpointError: ``init`` does not fit the model.
        TrainingError: The loss became NaN or infinite.
    """
    from aurora.rollout import rollout

    from aurora_mlops.data import WindowDataset, compute_stats, open_dataset, split_times

    out = stdout or sys.stdout
    output_dir = Path(output_dir)
    t_start = time.perf_counter()
    dist = Distributed()
    settings = get_settings()
    random.seed(params.seed)
    np.random.seed(params.seed)
    torch.manual_seed(params.seed)
    device = dist.device

    # Build everything that can fail on bad input before a single step is taken.
    model = build_trial_model(variant, params, profile)
    history = int(getattr(model, "max_history_size", 2))
    history = max(history, variant.min_history)
    ds = open_dataset(data)
    levels = variant.pressure_levels(profile)
    if "level" in ds.coords:
        have = [int(x) for x in ds["level"].values]
        if not set(levels) <= set(have):
            levels = tuple(lv for lv in have)
            log.info("dataset levels %s used instead of the profile's", have)
    splits = split_times(int(ds.sizes["time"]))
    stats = compute_stats(ds, variant, splits.train)
    train = WindowDataset(
        ds,
        variant,
        splits.train,
        history=history,
        rollout_steps=params.rollout_steps,
        levels=levels,
    )
    val = WindowDataset(
        ds, variant, splits.val, history=history, rollout_steps=params.rollout_steps, levels=levels
    )
    lead_weights = list(params.lead_weights or [1.0] * params.rollout_steps)
    if len(lead_weights) < params.rollout_steps:
        raise ConfigError(
            f"--lead_weights has {len(lead_weights)} values but --rollout_steps is "
            f"{params.rollout_steps}: give one weight per lead"
        )
    unknown_w = sorted(set(params.variable_weights) - set(variant.surf_vars + variant.atmos_vars))
    if unknown_w:
        raise ConfigError(f"--variable_weights names {unknown_w}, not variables of {variant.name}")
    if params.coastal_conditioning:
        mask = coast_mask(train.static["lsm"])
        train.static[COAST_VAR] = mask
        val.static[COAST_VAR] = mask
    if init is not None:
        try:
            load_weights(model, variant, init, strict=not params.coastal_conditioning)
        except CheckpointError as e:
            raise CheckpointError(f"{e}; {_diagnose(model, Path(init), params)}") from e
    if params.modulation_heads is False and not modulation_off(model):
        raise ConfigError(f"variant {variant.name} has no modulation heads to turn off")
    if params.activation_checkpointing:
        try:
            model.configure_activation_checkpointing()  # type: ignore[operator]
        except RuntimeError as e:
            raise ConfigError(f"--activation_checkpointing is not possible here: {e}") from e
    model.to(device)
    ddp_model: Any = model
    stepper: Any = model
    # Ocean waves: the loss also trains the density channels (see rollout_loss).
    keeps_wave_aux = hasattr(model, "wave_aux")
    if dist.active:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, find_unused_parameters=True, **dist.ddp_kwargs()
        )
        stepper = DDPStepper(ddp_model)
    weights = lat_weights(train.lat).to(device)
    train_events = event_field(variant.name, {k: v for k, v in train.surf.items()})
    threshold = float(torch.quantile(train_events.flatten().float()[:1_000_000], EVENT_QUANTILE))
    loss_cfg = LossConfig.from_params(params)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=params.learning_rate,
        weight_decay=params.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(params))

    tracker = Tracker(
        enabled=tracking and dist.main,
        uri=tracking_uri or settings.resolved_tracking_uri(),
        experiment=settings.experiment_name,
    )
    tags = {
        "variant": variant.name,
        "profile": profile,
        "seed": str(params.seed),
        "git_commit": git_commit(),
        "data": str(data),
        "data_split": json.dumps(splits.as_dict()),
        "aurora_mlops": __version__,
        **katib_context(),
    }
    tracker.start(
        run_name=katib_context().get("katib.trial", f"{variant.name}-trial"),
        tags=tags,
        parent_run_id=settings.parent_run_id,
    )
    tracker.log_params(params.model_dump())
    if dist.main:
        output_dir.mkdir(parents=True, exist_ok=True)
        stats.to_json(output_dir / "norm_stats.json")

    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=params.amp)
    order = _window_order(len(train), params.seed)
    micro = params.batch_size
    global_batch = micro * dist.world
    history_rows: list[dict[str, float]] = []
    step_losses: list[float] = []
    best_score, best_state, best_epoch, stale = math.inf, None, -1, 0
    best_metrics: dict[str, float] = {}
    train_seconds = 0.0
    samples = 0
    step = 0
    status = "FAILED"
    try:
        for epoch in range(params.epochs):
            horizon = params.rollout_steps
            if params.curriculum and params.rollout_steps > 1:
                horizon = min(
                    params.rollout_steps, 1 + epoch * params.rollout_steps // max(params.epochs, 1)
                )
            ddp_model.train()
            epoch_losses = []
            t0 = time.perf_counter()
            for _ in range(params.steps_per_epoch):
                optimizer.zero_grad(set_to_none=True)
                total = 0.0
                for micro_step in range(params.accumulation_steps):
                    idx = [next(order) for _ in range(global_batch)]
                    mine = idx[dist.rank * micro : (dist.rank + 1) * micro]
                    batch, targets = train.batch(mine)
                    batch = batch.to(device)
                    targets = {
                        g: {k: v.to(device) for k, v in d.items()} for g, d in targets.items()
                    }
                    sync = (micro_step == params.accumulation_steps - 1) or not dist.active
                    ctx = ddp_model.no_sync() if not sync else contextlib.nullcontext()
                    with ctx, amp:
                        if keeps_wave_aux:
                            model.wave_aux = []  # type: ignore[assignment]
                        preds = list(rollout(stepper, batch, horizon))
                        loss = rollout_loss(
                            preds, targets, stats, weights, loss_cfg, lead_weights,
                            wave_aux=getattr(model, "wave_aux", None),
                        )
                        if keeps_wave_aux:
                            model.wave_aux = None  # type: ignore[assignment]
                    if fail_on_step is not None and fail_on_step(step):
                        loss = loss * float("nan")
                    # Every rank agrees before backward, so a NaN on one rank stops them all.
                    _check_loss(dist, float(loss.detach()), epoch, step)
                    (loss / params.accumulation_steps).backward()
                    total += float(loss.detach()) / params.accumulation_steps
                if params.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                samples += global_batch * params.accumulation_steps
                loss_value = dist.mean(total)
                step_losses.append(loss_value)
                epoch_losses.append(loss_value)
            train_seconds += time.perf_counter() - t0

            metrics = _validate(
                model,  # the bare module: no gradient sync, every rank scores alike
                val,
                stats,
                weights,
                threshold,
                lead_weights,
                device,
                params,
                variant.name,
                rollout,
            )
            metrics["train_loss"] = sum(epoch_losses) / len(epoch_losses)
            metrics["epoch"] = epoch
            metrics["lr"] = float(scheduler.get_last_lr()[0])
            _check_validation(metrics, epoch)
            history_rows.append(metrics)
            if dist.main:
                for line in format_metric_lines({k: metrics[k] for k in REPORTED}):
                    print(line, file=out, flush=True)
            tracker.log_metrics(metrics, step=epoch)
            if metrics["val_score"] < best_score - params.min_delta:
                best_score, best_epoch, stale = metrics["val_score"], epoch, 0
                best_state = copy.deepcopy(
                    {k: v.detach().cpu() for k, v in model.state_dict().items()}
                )
                best_metrics = dict(metrics)
            else:
                stale += 1
                if stale >= params.patience:
                    log.info("validation plateau for %d epochs: stopping early", stale)
                    break
        # Log and write everything before the run ends: after end() MLflow would start
        # a new, untagged run for a late log call (and the tracker refuses one).
        assert best_state is not None
        duration = time.perf_counter() - t_start
        ckpt = output_dir / "model.ckpt"
        result_metrics = {k: float(v) for k, v in best_metrics.items()}
        if dist.main:
            atomic_write(ckpt, lambda f: torch.save(best_state, f))
            peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            system = {
                "duration_s": duration,
                "train_seconds": train_seconds,
                "train_steps": step,
                "samples_per_s": samples / train_seconds if train_seconds > 0 else 0.0,
                "peak_cpu_rss_mib": peak_rss_mib,
                "peak_cuda_mib": (
                    torch.cuda.max_memory_allocated() / 2**20
                    if torch.cuda.is_available()
                    else None
                ),
            }
            tracker.log_metrics(
                {f"system_{k}": float(v) for k, v in system.items() if v is not None}
            )
            config = {
                "variant": variant.name,
                "aurora_class": variant.aurora_class,
                "profile": profile,
                "model_overrides": params.model_overrides(),
                "history": history,
                "levels": list(levels),
            }
            write_json(output_dir / "config.json", config)
            tracker.log_artifact(output_dir / "config.json")
            write_json(
                output_dir / "trial.json",
                {
                    "status": "succeeded",
                    "variant": variant.name,
                    "profile": profile,
                    "params": params.model_dump(mode="json"),
                    "config": config,
                    "data": {
                        "path": str(data), "splits": splits.as_dict(), "levels": list(levels)
                    },
                    "event_threshold": threshold,
                    "metrics": result_metrics,
                    "best_epoch": best_epoch,
                    "history": history_rows,
                    "step_losses": step_losses,
                    "timings": system,
                    "checkpoint": {
                        "path": ckpt.name,
                        "sha256": sha256_file(ckpt),
                        "bytes": ckpt.stat().st_size,
                    },
                    "norm_stats": "norm_stats.json",
                    "init": _init_ref(init),
                    "mlflow_run_id": tracker.run_id,
                    "versions": {
                        "aurora_mlops": __version__,
                        "torch": torch.__version__,
                        "aurora": _dist_version("microsoft-aurora"),
                        "python": platform.python_version(),
                        "world_size": dist.world,
                        "device": str(device),
                    },
                },
            )
        status = "FINISHED"
    except TrainingError as e:
        if dist.main:
            write_json(
                output_dir / "failure.json",
                {"status": "failed", "error": str(e), "history": history_rows},
            )
        raise
    finally:
        tracker.end(status)
        dist.close()

    return TrialResult(
        output_dir=output_dir,
        checkpoint=ckpt,
        metrics=result_metrics,
        trial_json=output_dir / "trial.json",
    )


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


@torch.no_grad()
def _validate(
    model: torch.nn.Module,
    val: Any,
    stats: Any,
    weights: torch.Tensor,
    threshold: float,
    lead_weights: list[float],
    device: torch.device,
    params: TrialParams,
    variant: str,
    rollout: Any,
) -> dict[str, float]:
    """Validation scores over evenly spaced validation windows (see ``_loss`` for definitions)."""
    model.eval()
    n = len(val)
    count = min(n, params.val_windows)
    picks = sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)})
    acc = ScoreAccumulator(variant=variant, stats=stats, weights=weights, threshold=threshold)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=params.amp)
    for start in range(0, len(picks), params.batch_size):
        batch, targets = val.batch(picks[start : start + params.batch_size])
        batch = batch.to(device)
        with amp:
            preds = list(rollout(model, batch, params.rollout_steps))
        for k, pred in enumerate(preds):
            pred32 = pred.type(torch.float32) if hasattr(pred, "type") else pred
            acc.add(
                k,
                pred32,
                batch,
                {n_: v[:, k].to(device) for n_, v in targets["surf"].items()},
                {n_: v[:, k].to(device) for n_, v in targets["atmos"].items()},
            )
    rmse = acc.rmse_by_lead()
    pers = acc.persistence_rmse_by_lead()
    out = {
        "val_score": acc.score(lead_weights),
        "val_rmse": rmse[0],
        "val_persistence_rmse": pers[0],
        "val_event_f1": acc.f1(),
    }
    for k in range(1, len(rmse)):
        out[f"val_rmse_lead{k + 1}"] = rmse[k]
    for name, value in acc.rmse_by_variable().items():
        out[f"val_rmse_{name}"] = value
    for name, value in acc.rmse_by_variable(persistence=True).items():
        out[f"val_persistence_rmse_{name}"] = value
    return out


def _init_ref(init: str | Path | None) -> str | None:
    """How ``trial.json`` records ``--init``: an absolute path for files, else as given."""
    if init is None:
        return None
    path = Path(init)
    return str(path.resolve()) if path.is_file() else str(init)
