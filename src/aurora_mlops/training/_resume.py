"""Resumable trials: the state a finished trial leaves behind, and continuing it.

Every successful trial writes ``train_state.pt``: the state at the END of its training (not the
best weights): the model, AdamW and the schedule, the random generators (Python, NumPy, torch
and CUDA), the position in the data order and the loop's own state (history, best weights,
early-stopping counters). ``train-trial --resume-from DIR`` continues DIR to a larger
``--epochs`` with DIR's parameters, so that the continued trial equals one uninterrupted trial of
the larger budget: promotion in successive halving keeps the work of the lower rung.

Only the budget and knobs that do not change results may differ from DIR (:data:`RESUMABLE`).
Under DDP every rank draws the same random numbers (one seed, the same operations), so rank 0's
generator state, which the file holds, is every rank's.

Import cost: reading DIR's record needs no torch (the CLI checks its flags first); the
functions that touch tensors import torch when called.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurora_mlops._io import sha256_file
from aurora_mlops.errors import ConfigError
from aurora_mlops.training._params import TrialParams, resolve_params

if TYPE_CHECKING:
    import torch

    from aurora_mlops.training._distributed import Distributed

__all__ = [
    "RESUMABLE",
    "STATE_FILE",
    "ResumePoint",
    "checked_point",
    "init_ref",
    "load_train_state",
    "pack_state",
    "restore_rng",
    "resume_point",
    "rng_state",
    "unpack_state",
]

#: The file of a trial's end-of-training state, beside ``trial.json``.
STATE_FILE = "train_state.pt"
_RECORD_KEYS = ("variant", "profile", "params", "history", "train_state", "data", "init",
                "versions")
#: Parameters a resumed trial may change: the budget, and knobs that change speed, not results
#: (DataLoader workers read the same windows in the same order; another thread count may only
#: reorder a sum, a float rounding).
RESUMABLE: tuple[str, ...] = ("epochs", "torch_threads", "num_workers", "prefetch_factor")


def init_ref(init: str | Path | None) -> str | None:
    """How ``trial.json`` records ``--init``: an absolute path for files, else as given."""
    if init is None:
        return None
    path = Path(init)
    return str(path.resolve()) if path.is_file() else str(init)


@dataclass(frozen=True)
class ResumePoint:
    """An earlier trial to continue: its directory (absolute) and its ``trial.json``."""

    path: Path
    trial: dict[str, Any]

    @property
    def epochs(self) -> int:
        """The epochs the earlier trial ran (fewer than its ``--epochs`` if it stopped early)."""
        return len(self.trial["history"])

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    def params_with(self, given: Mapping[str, Any]) -> TrialParams:
        """The earlier trial's parameters overridden by ``given`` (no profile defaults between:
        a flag left out keeps the earlier trial's value).

        Raises:
            ConfigError: An unknown name or a bad value in ``given``.
        """
        return resolve_params(self.trial["profile"], given, base=self.trial["params"])

    def check(self, *, variant: str, profile: str, data: str | Path, params: TrialParams,
              init: str | Path | None) -> None:
        """Refuse a continuation that could not equal an uninterrupted trial.

        Raises:
            ConfigError: Another variant, profile, dataset or ``--init``; a parameter outside
                :data:`RESUMABLE` changed; fewer epochs than already run; curriculum.
        """
        where, trial = f"--resume-from {self.path}", self.trial
        for flag, mine, theirs in (("--variant", variant, trial["variant"]),
                                   ("--profile", profile, trial["profile"])):
            if mine != theirs:
                raise ConfigError(f"{where} trained {flag} {theirs} but this trial asks for "
                                  f"{mine}: resume with {flag} {theirs}, or start a new trial")
        if Path(data).resolve() != Path(trial["data"]["path"]).resolve():
            raise ConfigError(f"{where} trained on {trial['data']['path']} but --data is {data}: "
                              "a resumed trial must read the same dataset")
        if init is not None and init_ref(init) != trial["init"]:
            began = f"--init {trial['init']}" if trial["init"] else "no --init"
            raise ConfigError(f"{where} started from {began} but this trial gives --init {init}: "
                              "leave --init out (the weights come from the state)")
        self._check_params(params)

    def check_world(self, world: int) -> None:
        """Refuse another number of processes (the global batch and shards would differ).

        Raises:
            ConfigError: ``world`` is not the earlier trial's world size.
        """
        theirs = self.trial["versions"]["world_size"]
        if world != theirs:
            raise ConfigError(
                f"--resume-from {self.path} trained on {theirs} process(es) but this trial runs "
                f"on {world}: the global batch and data shards would differ; resume with the "
                "same number of processes")

    def verify(self) -> str:
        """The state file's SHA-256, after checking it against the one ``trial.json`` records.

        Raises:
            ConfigError: The state file is not the one the trial wrote.
        """
        digest, recorded = sha256_file(self.state_file), self.trial["train_state"]["sha256"]
        if digest != recorded:
            raise ConfigError(
                f"{self.state_file} has sha256 {digest[:12]}... but {self.path / 'trial.json'} "
                f"records {recorded[:12]}...: the state changed after the trial wrote it; resume "
                "from an intact trial or train that one again")
        return digest

    def _check_params(self, params: TrialParams) -> None:
        where, saved = f"--resume-from {self.path}", TrialParams(**self.trial["params"])
        if saved.curriculum or params.curriculum:
            raise ConfigError(
                f"{where}: --curriculum cannot be resumed, because its rollout horizon grows "
                "with the total --epochs, so a resumed trial cannot equal an uninterrupted one; "
                "train the full budget in one trial instead")
        changed = [f"--{k}={getattr(params, k)!r} (was {getattr(saved, k)!r})"
                   for k in TrialParams.model_fields
                   if k not in RESUMABLE and getattr(params, k) != getattr(saved, k)]
        if changed:
            raise ConfigError(
                f"{where}: a resumed trial may change only "
                f"{', '.join('--' + k for k in RESUMABLE)}, but this one changes "
                f"{', '.join(changed)}: drop those flags, or start a new trial")
        if params.epochs < self.epochs:
            raise ConfigError(f"--epochs={params.epochs} is fewer than the {self.epochs} epochs "
                              f"{where} already ran: give --epochs={self.epochs} or more")

    def record(self) -> dict[str, Any]:
        """``trial.json``'s ``resumed_from``: where the trial continued from."""
        return {"path": str(self.path), "epochs": self.epochs,
                "train_state_sha256": self.trial["train_state"]["sha256"]}

    def load(self, dist: Distributed) -> dict[str, Any]:
        """The saved state, its tensors on this rank's device (each rank loads its own copy).

        Raises:
            ConfigError: ``dist`` has another number of processes than the earlier trial.
        """
        self.check_world(dist.world)
        return load_train_state(self.state_file, dist.device)


def load_train_state(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The state in a ``train_state.pt`` (:func:`pack_state`'s file, or an older unpacked
    one), its tensors on ``device``."""
    import torch

    state: dict[str, Any] = unpack_state(torch.load(path, map_location=device,
                                                    weights_only=True))
    return state


#: The key of the flat tensors in a packed state (:func:`pack_state`), and the first item of
#: the tuple that stands for each tensor in its place.
_PACKED = "packed_tensors"
_TENSOR = "packed_tensor"


def _map_leaves(x: Any, is_leaf: Callable[[Any], bool], leaf: Callable[[Any], Any]) -> Any:
    """``x`` with each leaf replaced by ``leaf(it)``, through dicts, lists and tuples (each
    kept of its own type)."""
    if is_leaf(x):
        return leaf(x)
    if isinstance(x, dict):
        return {k: _map_leaves(v, is_leaf, leaf) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_map_leaves(v, is_leaf, leaf) for v in x)
    return x


def pack_state(state: Any) -> dict[str, Any]:
    """``state`` with every tensor moved into one flat tensor per dtype and device, each
    tensor's place holding ``(_TENSOR, key, offset, shape)``: ``torch.save`` pickles and writes
    a record per tensor, so a smoke trial's state (746 tensors: the model, AdamW's moments and
    the best weights) took ~37 ms to save and packed takes a few. :func:`unpack_state` undoes
    it; the file still loads with ``weights_only=True``."""
    import torch

    parts: dict[str, list[torch.Tensor]] = {}
    sizes: dict[str, int] = {}

    def place(x: torch.Tensor) -> tuple[str, str, int, tuple[int, ...]]:
        t = x.detach()
        key = f"{str(t.dtype).removeprefix('torch.')}@{t.device}"
        offset = sizes.get(key, 0)
        parts.setdefault(key, []).append(t.reshape(-1))
        sizes[key] = offset + t.numel()
        return (_TENSOR, key, offset, tuple(t.shape))

    tree = _map_leaves(state, lambda x: isinstance(x, torch.Tensor), place)
    return {_PACKED: {k: torch.cat(v) for k, v in parts.items()}, "state": tree}


def unpack_state(doc: Any) -> Any:
    """The state that :func:`pack_state` packed, each tensor its own copy (a view would keep
    the whole flat tensor alive, and be saved whole with the weights it ends up in); a state
    saved unpacked is returned as it is."""
    if not (isinstance(doc, dict) and _PACKED in doc):
        return doc
    flats = doc[_PACKED]

    def tensor(x: tuple[str, str, int, tuple[int, ...]]) -> Any:
        _, key, offset, shape = x
        return flats[key][offset:offset + math.prod(shape)].view(shape).clone()

    return _map_leaves(doc["state"], lambda x: isinstance(x, tuple) and len(x) == 4
                       and x[0] == _TENSOR, tensor)


def resume_point(path: str | Path) -> ResumePoint:
    """Read the record of the trial in ``path`` (its ``--output`` directory) to continue it.

    Raises:
        ConfigError: ``path`` holds no ``trial.json`` or ``train_state.pt`` of a finished
            trial, or its ``trial.json`` is unreadable.
    """
    where = Path(path)
    missing = [name for name in ("trial.json", STATE_FILE) if not (where / name).is_file()]
    if missing:
        raise ConfigError(
            f"--resume-from {where} has no {' or '.join(missing)}: give the --output directory "
            "of a train-trial that finished (only finished trials leave a resumable state)")
    record = where / "trial.json"
    try:
        trial = json.loads(record.read_text())
        lacks = [k for k in _RECORD_KEYS if k not in trial] + ([] if "path" in trial["data"]
                                                               else ["data.path"])
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{record} is unreadable ({e}): train that trial again") from e
    if lacks:
        raise ConfigError(f"{record} lacks {', '.join(lacks)}: it is not the record of a "
                          "resumable train-trial; train that trial again")
    return ResumePoint(where.resolve(), trial)


def checked_point(path: str | Path, *, variant: str, profile: str, data: str | Path,
                  params: TrialParams, init: str | Path | None) -> ResumePoint:
    """The trial in ``path`` to continue, after :meth:`ResumePoint.check` and
    :meth:`ResumePoint.verify` (the process count is checked once the process group is up).

    Raises:
        ConfigError: As :func:`resume_point`, :meth:`ResumePoint.check` and
            :meth:`ResumePoint.verify`.
    """
    point = resume_point(path)
    point.check(variant=variant, profile=profile, data=data, params=params, init=init)
    point.verify()
    return point


def rng_state(device: torch.device) -> dict[str, Any]:
    """The Python, NumPy, torch and (on a CUDA ``device``) CUDA generator states, in types
    that ``torch.load(weights_only=True)`` reads back."""
    import numpy as np
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": (name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_rng(state: Mapping[str, Any], device: torch.device) -> None:
    """Set the generators to ``state`` (from :func:`rng_state`; tensors on any device)."""
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
