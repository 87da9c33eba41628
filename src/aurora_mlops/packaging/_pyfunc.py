"""The MLflow pyfunc of a packaged Aurora model: built once per process, validated per request.

``load_context`` does the expensive work once: it checks the checkpoint's sha256 against the
packaged ``trial.json``, builds the variant with the trial's knobs, loads the weights
(``weights_only=True``) and keeps the static fields and grid. ``predict`` validates the request
(:mod:`aurora_mlops.packaging._requests`) before touching the model and rolls it out with the
same code as ``evaluate --model``, so both give the same forecast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

try:  # MLflow is a dependency; the base class only matters when it is there.
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object  # type: ignore[assignment,misc]

from aurora_mlops.errors import AuroraMLOpsError, CheckpointError, DataError
from aurora_mlops.packaging._contract import ModelContract, Precision
from aurora_mlops.packaging._ensemble import ensemble_mean_arrays, load_members
from aurora_mlops.packaging._members import ENSEMBLE_FILE, ensemble_sha256
from aurora_mlops.packaging._requests import (
    MEMBERS_SUFFIX,
    ArrayRequest,
    ReferenceRequest,
    RequestError,
    parse_members,
    parse_precision,
    parse_request,
)

__all__ = ["CONTRACT_FILE", "STATIC_FILE", "AuroraForecaster", "load_forecaster"]

log = logging.getLogger(__name__)

CONTRACT_FILE = "contract.json"
STATIC_FILE = "static.npz"
#: Initial states rolled out together (as ``evaluate --model`` batches them).
CHUNK = 4


class AuroraForecaster(PythonModel):
    """Forecasts from a packaged ``train-trial`` checkpoint (see the module docstring)."""

    def __init__(self) -> None:
        self.trained: Any = None
        #: Every member of a top-k ensemble, best first (``[self.trained]`` for one model).
        self.members: list[Any] = []
        self.contract: ModelContract | None = None
        self.grid: dict[str, np.ndarray] = {}
        self.static: dict[str, Any] = {}
        self.device: Any = "cpu"

    # -- loading --------------------------------------------------------------------------

    def load_context(self, context: Any) -> None:
        """Build the model once per process from the package's artifacts."""
        self.load(Path(context.artifacts["model_ckpt"]).parent)

    def load(self, artifacts: Path) -> None:
        """Load from an ``artifacts`` folder (``model.ckpt``, ``trial.json``, contract, grid).

        Raises:
            CheckpointError: The checkpoint's sha256 differs from ``trial.json``'s, or the
                folder is incomplete.
        """
        import torch

        from aurora_mlops.evaluation import extra_statics
        from aurora_mlops.training import load_trained

        contract_path = artifacts / CONTRACT_FILE
        try:
            self.contract = ModelContract.model_validate_json(contract_path.read_text())
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{contract_path}: not a packaged model contract ({e})") from e
        if (artifacts / ENSEMBLE_FILE).is_file():
            self.members = load_members(artifacts, self.contract.variant)
        else:
            self.members = [load_trained(artifacts / "model.ckpt", self.contract.variant)]
        self.trained = self.members[0]
        with np.load(artifacts / STATIC_FILE) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
        self.grid = {k: arrays.pop(k) for k in ("lat", "lon", "level")}
        self.static = {k: torch.from_numpy(v.astype(np.float32)) for k, v in arrays.items()}
        if "lsm" in arrays:
            self.static.update(extra_statics(self.trained, arrays["lsm"]))
        # Serve on the GPU where the pod has one (KServe's predictor asks for one): the model
        # and its static fields move once here, each request's states in _batch.
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device.type != "cpu":
            for member in self.members:
                member.model.to(self.device)
            self.static = {k: v.to(self.device) for k, v in self.static.items()}
        log.info("loaded %s from %s", self.contract.variant, artifacts)

    # -- serving --------------------------------------------------------------------------

    def predict(
        self, context: Any, model_input: Any, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Forecast ``params["steps"]`` lead times from the request (see ``_requests``).

        Returns:
            Arrays form: ``init_time`` (ISO strings), ``lead_hours`` and one array per
            variable, surface ``(b, steps, lat, lon)``, atmospheric
            ``(b, steps, level, lat, lon)``. References form: ``output_uri``, ``init_time``,
            ``lead_hours``, ``variables`` and a ``summary`` (min/mean/max at the last lead).

        Raises:
            mlflow.exceptions.MlflowException: ``INVALID_PARAMETER_VALUE`` (HTTP 400) for a
                malformed request, naming the field.
        """
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        try:
            return self.forecast(model_input, params)
        except (RequestError, DataError) as e:
            raise MlflowException(str(e), error_code=INVALID_PARAMETER_VALUE) from e

    def forecast(self, model_input: Any, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """:meth:`predict` without the MLflow error wrapping (raises :class:`RequestError`)."""
        if self.contract is None:
            raise AuroraMLOpsError("the model is not loaded: call load_context first")
        request = parse_request(model_input, params, self.contract, self.grid)
        precision = parse_precision(params, self.contract)
        if isinstance(request, ReferenceRequest):
            return self._forecast_reference(request, precision)
        members = self.rollout_members(request, precision)
        answer = {
            "init_time": [t.isoformat(timespec="minutes") for t in request.init_times],
            "lead_hours": self._lead_hours(request.steps),
            **self._mean(members),
        }
        if parse_members(params, len(self.members)):
            answer |= {f"{name}{MEMBERS_SUFFIX}": a for name, a in members.items()}
        return answer

    def rollout(self, request: ArrayRequest,
                precision: Precision = "fp32") -> dict[str, np.ndarray]:
        """The forecast from the request's states: the model's, or the ensemble mean of its
        members' (see :meth:`rollout_members`)."""
        return self._mean(self.rollout_members(request, precision))

    def _mean(self, members: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if len(self.members) == 1:
            return {name: a[:, 0] for name, a in members.items()}
        return ensemble_mean_arrays(members, axis=1)

    def rollout_members(self, request: ArrayRequest,
                        precision: Precision = "fp32") -> dict[str, np.ndarray]:
        """Roll every member out from the request's states, :data:`CHUNK` states at a time;
        ``{name: (b, members, steps, ...)}``. Each chunk's batch is built once and rolled out
        by every member in turn (the members' weights differ, so they cannot share a forward).

        ``bf16`` runs the rollout under ``torch.autocast`` in bfloat16 where the model's device
        supports it (any CPU; a CUDA GPU that reports bf16 support), else in fp32 with a
        warning; the answer is float32 either way.
        """
        from aurora_mlops.evaluation import rollout_arrays

        size = len(request.init_times)
        parts = []
        with self._autocast(precision):
            for i in range(0, size, CHUNK):
                batch = self._batch(request, i, i + CHUNK)
                runs = [rollout_arrays(m.model, batch, request.steps) for m in self.members]
                parts.append({name: np.stack([r[name] for r in runs], axis=1)
                              for name in runs[0]})
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def _autocast(self, precision: Precision) -> Any:
        import contextlib

        import torch

        if precision == "fp32":
            return contextlib.nullcontext()
        device = next(self.trained.model.parameters()).device.type
        if device == "cuda" and not torch.cuda.is_bf16_supported():
            log.warning("bf16 requested but this GPU has no bf16 support: running fp32")
            return contextlib.nullcontext()
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    def _batch(self, request: ArrayRequest, start: int, stop: int) -> Any:
        import torch
        from aurora import Batch, Metadata

        assert self.contract is not None
        take = {n: torch.from_numpy(np.ascontiguousarray(a[start:stop]))
                for n, a in request.states.items()}
        batch = Batch(
            surf_vars={n: take[n] for n in self.contract.surf_vars},
            static_vars=dict(self.static),
            atmos_vars={n: take[n] for n in self.contract.atmos_vars},
            metadata=Metadata(
                lat=torch.as_tensor(self.grid["lat"].astype(np.float32)),
                lon=torch.as_tensor(self.grid["lon"].astype(np.float32)),
                time=tuple(request.init_times[start:stop]),
                atmos_levels=tuple(int(x) for x in self.grid["level"]),
            ),
        )
        return batch if str(self.device) == "cpu" else batch.to(self.device)

    def _lead_hours(self, steps: int) -> list[int]:
        assert self.contract is not None
        return [self.contract.timestep_hours * (k + 1) for k in range(steps)]

    def _forecast_reference(self, request: ReferenceRequest,
                            precision: Precision) -> dict[str, Any]:
        from aurora_mlops.data import write_dataset
        from aurora_mlops.evaluation import forecast_dataset
        from aurora_mlops.packaging._reference import read_initial_state

        assert self.contract is not None
        state = read_initial_state(request, self.contract, self.grid)
        arrays = self.rollout(state, precision)
        fc = forecast_dataset(
            arrays, self.trained.variant, inits=np.asarray(state.init_times, "datetime64[ns]"),
            lat=self.grid["lat"], lon=self.grid["lon"], levels=self.contract.levels,
        )
        digests = [str(m.trial["checkpoint"]["sha256"]) for m in self.members]
        fc.attrs["checkpoint_sha256"] = digests[0] if len(digests) == 1 else \
            ensemble_sha256(digests)
        fc.attrs["init_source"] = request.input_uri
        out = write_dataset(fc, _local_path(request.output_uri))
        last = {
            name: {
                "min": float(np.nanmin(a[:, -1])),
                "mean": float(np.nanmean(a[:, -1])),
                "max": float(np.nanmax(a[:, -1])),
                "units": self.contract.units.get(name, ""),
            }
            for name, a in arrays.items()
        }
        return {
            "output_uri": str(out),
            "init_time": [t.isoformat(timespec="minutes") for t in state.init_times],
            "lead_hours": self._lead_hours(request.steps),
            "variables": list(arrays),
            "summary": last,
        }


def _local_path(uri: str) -> Path:
    """A local path from ``uri`` (a plain path or ``file://``); other schemes are refused."""
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if "://" in uri:
        raise RequestError(
            f"output_uri {uri!r}: only local paths and file:// URIs can be written here"
        )
    return Path(uri)


def load_forecaster(package_dir: str | Path) -> AuroraForecaster:
    """An :class:`AuroraForecaster` loaded straight from a package directory, without MLflow
    (what the benchmark uses to time ``predict`` alone)."""
    forecaster = AuroraForecaster()
    forecaster.load(Path(package_dir) / "artifacts")
    return forecaster
