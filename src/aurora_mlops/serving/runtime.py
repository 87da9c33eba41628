"""The MLServer runtime of a packaged Aurora model (``MLSERVER_MODEL_IMPLEMENTATION``).

It is MLServer's MLflow runtime (``mlserver_mlflow.MLflowRuntime``: it loads the package with
``mlflow.pyfunc.load_model``, once per worker, so the static fields and grid are read once
and cached) with the v2 request forms of :mod:`aurora_mlops.serving._v2`, errors as v2 error
bodies (HTTP 400 naming the field for a bad request, 500 for a model failure; the worker goes
on either way) and the metrics of :mod:`aurora_mlops.serving._metrics`.

This module imports MLServer at import time: only MLServer loads it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_mlflow import MLflowRuntime

from aurora_mlops.errors import DataError
from aurora_mlops.packaging import PRECISIONS, RequestError
from aurora_mlops.serving._metrics import ErrorKind, serving_metrics
from aurora_mlops.serving._v2 import decode_request, encode_answer

__all__ = ["AuroraRuntime"]

log = logging.getLogger(__name__)

_STATUS: dict[ErrorKind, int] = {"bad_request": 400, "model_failure": 500}


class AuroraRuntime(MLflowRuntime):
    """MLServer's MLflow runtime for :class:`aurora_mlops.packaging.AuroraForecaster`."""

    async def load(self) -> bool:
        """Load the package (MLflow runtime), then reach the forecaster inside the pyfunc."""
        await super().load()
        self._forecaster = self._model.unwrap_python_model()
        self._metrics = serving_metrics()
        # One thread runs the requests' model work, one request at a time (two rollouts at
        # once would only split the cores between them), so that the event loop goes on
        # reading, parsing and answering other requests meanwhile instead of waiting behind
        # the rollout.
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="aurora-forecast")
        return True

    async def unload(self) -> bool:
        """Let the model's thread finish its request, then unload (MLflow runtime)."""
        pool = getattr(self, "_model_thread", None)
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
        return bool(await super().unload())

    def _sync_metadata(self) -> None:
        """The v2 metadata (``GET /v2/models/NAME``) from the package's contract.

        The MLflow runtime reads it from the signature's inputs, which this pyfunc leaves out
        (its request forms are not one tensor schema).
        """
        from mlserver.types import MetadataTensor

        contract = self._model.unwrap_python_model().contract
        self.inputs = [
            MetadataTensor(name=n, datatype="FP32", shape=[-1, *contract.state_shape(n)])
            for n in contract.state_vars
        ] + [MetadataTensor(name="init_time", datatype="BYTES", shape=[-1])]

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Answer one v2 request (see :mod:`aurora_mlops.serving._v2`) on the model's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread, self._answer, payload)

    def _answer(self, payload: InferenceRequest) -> InferenceResponse:
        """Decode, forecast and encode one request; its metrics; errors as v2 errors."""
        start = time.perf_counter()
        labels = {"model_name": self.name, "model_version": self.version or "",
                  "precision": "invalid"}
        try:
            model_input, params = decode_request(payload)
            labels["precision"] = _precision_label(params, self._forecaster.contract)
            answer = self._forecaster.forecast(model_input, params)
        except (RequestError, DataError) as e:
            self._fail(labels, "bad_request")
            raise MLServerError(str(e), status_code=_STATUS["bad_request"]) from None
        except Exception as e:  # a model failure must not take the worker down
            log.exception("forecast failed")
            self._fail(labels, "model_failure")
            raise MLServerError(f"the model failed: {type(e).__name__}: {e}",
                                status_code=_STATUS["model_failure"]) from None
        response = encode_answer(answer, model_name=self.name, model_version=self.version)
        steps = len(answer["lead_hours"])
        self._metrics.observe(labels, seconds=time.perf_counter() - start, steps=steps,
                              batch=len(answer["init_time"]))
        return response

    def _fail(self, labels: dict[str, str], kind: ErrorKind) -> None:
        self._metrics.failed(labels, kind)


def _precision_label(params: dict[str, Any], contract: Any) -> str:
    """The precision a request runs in, as a label (``invalid`` for one the model refuses).

    Read here rather than through the packaging helpers: MLflow puts the package's own copy
    of ``aurora_mlops`` first on the path when it loads the model, and a package written by
    another release may not have them.
    """
    value = params.get("precision", getattr(contract, "precision", "fp32"))
    return value if value in PRECISIONS else "invalid"
