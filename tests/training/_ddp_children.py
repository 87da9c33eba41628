"""Functions that run inside spawned gloo processes (importable by name for ``spawn``)."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path
from typing import Any


def _init(rank: int, world: int, store: Path, timeout_s: float) -> None:
    """Join a gloo group through a file store (no TCP port to pick), as torchrun would."""
    import torch.distributed as dist

    os.environ.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank),
                       "OMP_NUM_THREADS": "1"})
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout_s))


def helper_child(rank: int, world: int, store: Path, results: Any) -> None:
    """Exercise the helper's collectives; record the devices of the reduced tensors."""
    import torch.distributed as dist

    from aurora_mlops.training._distributed import Distributed

    _init(rank, world, store, 60)
    devices: list[str] = []
    real_reduce, real_gather = dist.all_reduce, dist.all_gather

    def reduce(t: Any, *a: Any, **k: Any) -> Any:
        devices.append(str(t.device))
        return real_reduce(t, *a, **k)

    def gather(parts: Any, t: Any, *a: Any, **k: Any) -> Any:
        devices.append(str(t.device))
        return real_gather(parts, t, *a, **k)

    dist.all_reduce, dist.all_gather = reduce, gather  # type: ignore[assignment]
    helper = Distributed()
    out = {
        "rank": helper.rank, "world": helper.world, "device": str(helper.device),
        "mean": helper.mean(float(rank + 1)),
        "gather": helper.gather(10.0 * rank),
        "non_finite": helper.non_finite(float("nan") if rank == 1 else 1.0),
        "all_finite": helper.non_finite(2.0),
    }
    out["devices"] = devices
    helper.close()
    dist.destroy_process_group()
    results.put(out)


def _nan_on_rank_one(step: int) -> bool:
    return os.environ["RANK"] == "1" and step == 1


def trial_child(rank: int, world: int, store: Path, data: Path, out_dir: Path,
                results: Any) -> None:
    """Run a smoke trial where only rank 1's loss becomes NaN at step 1; report the error."""
    import torch.distributed as dist

    from aurora_mlops.training import resolve_params, train_trial
    from aurora_mlops.variants import get_variant

    # A short timeout: without the agreement the other rank would wait here, then fail with a
    # different (gloo) error instead of the trial's message.
    _init(rank, world, store, 60)
    try:
        train_trial(variant=get_variant("medium-res"), data=data, output_dir=out_dir,
                    params=resolve_params("smoke", {"epochs": 1, "steps_per_epoch": 3,
                                                    "batch_size": 1}),
                    profile="smoke", tracking=False, stdout=io.StringIO(),
                    fail_on_step=_nan_on_rank_one)
        results.put((rank, "no error", ""))
    except Exception as e:
        results.put((rank, type(e).__name__, str(e)))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
