"""Start MLServer on a folder as ``mlserver start FOLDER`` does, with v2 errors for bad bodies.

``python -m aurora_mlops.serving.launch FOLDER`` (the ServingRuntime's command; FOLDER is
``/mnt/models`` on KServe, or what ``aurora-mlops deploy --package --out`` wrote here).

MLServer 1.7.1 registers an exception handler for its own ``MLServerError`` only
(``mlserver/rest/errors.py``, given to FastAPI in ``mlserver/rest/app.py``), so a body that is
not a v2 request (not JSON, NaN, a list, no ``inputs``, an unknown datatype) gets FastAPI's 422
and ``{"detail": [...]}`` before the runtime runs. Here the same server is built from
MLServer's own pieces (``load_settings`` and ``MLServer``, as its ``start`` command does: same
settings, environment variables, parallel workers and metrics server) and its REST app gets
two more handlers: a validation error becomes HTTP 400 with ``{"error": "..."}`` naming the
field (counted as a ``bad_request`` in the runtime's metrics), and any other HTTP error keeps
its status with a v2 error body.

This module imports MLServer at import time: only the launcher's process loads it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from mlserver.cli.serve import load_settings
from mlserver.logging import configure_logger
from mlserver.rest.responses import Response
from mlserver.server import MLServer
from mlserver.utils import install_uvloop_event_loop
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from aurora_mlops.serving._metrics import serving_metrics
from aurora_mlops.serving._v2 import describe_invalid_body

__all__ = ["install_error_handlers", "main", "serve"]

#: The status of a body that is not a v2 request (the v2 protocol's "bad request").
BAD_REQUEST = 400


def install_error_handlers(app: FastAPI, versions: Mapping[str, str | None]) -> None:
    """Answer ``app``'s validation and HTTP errors with v2 error bodies (see the module).

    Args:
        app: MLServer's REST app.
        versions: Each served model's version by name, for the metric labels of a bad body
            sent to that model's endpoints (bodies sent to other paths are not counted).
    """

    async def invalid_body(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        name = str(request.path_params.get("model_name"))
        if name in versions:
            serving_metrics().failed({"model_name": name, "model_version": versions[name]
                                      or "", "precision": "invalid"}, "bad_request")
        message = describe_invalid_body(exc.errors(), exc.body)
        return Response(status_code=BAD_REQUEST, content={"error": message})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return Response(status_code=exc.status_code, content={"error": str(exc.detail)},
                        headers=exc.headers)

    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(HTTPException, http_error)


def _rest_app(server: MLServer) -> FastAPI:
    """The FastAPI app behind ``server``'s REST endpoints.

    MLServer keeps it on its REST server, ``MLServer._rest_server._app``
    (``mlserver/server.py`` ``_create_servers``, ``mlserver/rest/server.py``): no public
    accessor exists, so a release that moves it fails here, by name, at start-up.
    """
    app = getattr(getattr(server, "_rest_server", None), "_app", None)
    if not isinstance(app, FastAPI):
        raise RuntimeError("this MLServer release keeps its REST app elsewhere than "
                           "MLServer._rest_server._app: update aurora_mlops.serving.launch")
    return app


async def serve(folder: str) -> None:
    """Load ``folder``'s settings and serve until a signal stops the server."""
    settings, models = await load_settings(folder)
    server = MLServer(settings)
    versions = {m.name: m.parameters.version if m.parameters else None for m in models}
    install_error_handlers(_rest_app(server), versions)
    await server.start(models)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``python -m aurora_mlops.serving.launch FOLDER``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m aurora_mlops.serving.launch",
        description="Serve the models of FOLDER with MLServer (as `mlserver start FOLDER`), "
        "answering bodies that are not v2 requests with HTTP 400 and a v2 error body.")
    parser.add_argument("folder", help="Folder with settings.json and model-settings.json "
                        "(aurora-mlops deploy --package --out), or /mnt/models on KServe.")
    args = parser.parse_args(argv)
    if not Path(args.folder).is_dir():
        print(f"aurora_mlops.serving.launch: error: {args.folder}: no such folder; give the "
              "folder `aurora-mlops deploy --package --out` wrote", file=sys.stderr)
        return 1
    configure_logger()
    install_uvloop_event_loop()
    try:
        asyncio.run(serve(args.folder))
    except ValidationError as e:
        err: Any = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        print(f"aurora_mlops.serving.launch: error: {args.folder}: the settings "
              f"({e.title}) have a bad {field or 'value'}: {err['msg']}; fix settings.json, "
              "model-settings.json or the MLSERVER_* variables", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
