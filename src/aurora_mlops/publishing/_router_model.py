"""The A/B router as an MLflow "models from code" file (logged by ``publish_router``).

MLflow runs this file when the router is loaded; the expensive work happens in
:meth:`ABRouter.load_context`, once per process. Routing rules live in
:mod:`aurora_mlops.publishing._router`.
"""

from __future__ import annotations

from typing import Any

from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from aurora_mlops.errors import PublishError
from aurora_mlops.publishing._http import use_registry
from aurora_mlops.publishing._router import request_id_of, route

__all__ = ["ABRouter"]


class ABRouter(PythonModel):
    """The router pyfunc: two loaded models and a sticky split (see the module docstring).

    ``model_config``: ``a_uri``, ``b_uri`` (``models:/name@alias``), ``p`` and
    ``registry_uri`` (where to resolve the aliases; override it with ``model_config`` when
    loading elsewhere).
    """

    def __init__(self) -> None:
        self.models: dict[str, Any] = {}
        self.served: dict[str, dict[str, str]] = {}
        self.p = 0.0

    def load_context(self, context: Any) -> None:
        """Resolve both aliases to versions and load both models, once per process."""
        import mlflow
        from mlflow import MlflowClient

        cfg = dict(context.model_config or {})
        self.p = float(cfg["p"])
        registry = cfg.get("registry_uri") or None
        client = MlflowClient(tracking_uri=registry, registry_uri=registry)
        for side in ("a", "b"):
            name, _, alias = str(cfg[f"{side}_uri"]).removeprefix("models:/").partition("@")
            version = str(client.get_model_version_by_alias(name, alias).version)
            with use_registry(registry):
                self.models[side.upper()] = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
            self.served[side.upper()] = {"model": f"{name}@{alias}", "version": version}

    def predict(
        self, context: Any, model_input: Any, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send the request to A or B by its ``request_id``; the answer says which served it."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        try:
            rid = request_id_of(model_input, params)
        except PublishError as e:
            raise MlflowException(str(e), error_code=INVALID_PARAMETER_VALUE) from e
        side = route(rid, self.p)
        forward = {
            k: v for k, v in (params or {}).items() if k != "request_id" and v not in (0, "")
        }
        answer = self.models[side].predict(model_input, params=forward or None)
        if not isinstance(answer, dict):
            answer = {"prediction": answer}
        return {
            **answer, "request_id": rid, "served_by": side,
            "served_model": self.served[side]["model"],
            "served_version": self.served[side]["version"],
        }


set_model(ABRouter())
