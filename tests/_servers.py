"""Real servers on 127.0.0.1 for tests: an ``mlflow server`` (plain or basic-auth),
moto's S3-compatible ``moto_server``, Azurite (Azure Blob) and ``gcp-storage-emulator``
(Google Cloud Storage).

Started once per test session by the fixtures in ``conftest.py``; ``start_mlflow_server`` is
also used directly by tests that need to kill and restart a server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerExited(RuntimeError):
    """The server process ended before it answered (for example: its port was taken)."""


@dataclass
class _Process:
    """A server process started in its own session, polled until it answers ``probe``."""

    root: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    name = "server"
    log_name = "server.log"
    probe = "/"

    def __post_init__(self) -> None:
        self.log = self.root / self.log_name

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60.0) -> _Process:
        raise NotImplementedError

    def _spawn_and_wait(self, timeout: float) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), cwd=self.root, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerExited(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.uri + self.probe, timeout=2) as r:
                    # Ours answered, not a process that took the port before it could bind.
                    if r.status == 200 and self.proc.poll() is None:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.probe}: "
                           f"{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Kill the server and every process it started (its workers)."""
        if self.proc is None:
            return
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None


S = TypeVar("S", bound=_Process)


def _on_a_free_port(make: Callable[[int], S]) -> S:
    """Start ``make(port)`` on a free port. A free port can be taken by another process between
    picking it and the server binding it; then the server exits and starts on another port."""
    for attempt in range(3):
        server = make(free_port())
        try:
            server.start()
            return server
        except ServerExited:
            if attempt == 2 or "in use" not in server.log.read_text().lower():
                raise
    raise AssertionError("unreachable")


@dataclass
class MlflowServer(_Process):
    """A running ``mlflow server`` and how to reach and restart it."""

    auth: bool = False

    name = "mlflow server"
    log_name = "server.log"
    probe = "/health"

    def command(self) -> list[str]:
        cmd = [
            str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
        ]
        return cmd + (["--app-name", "basic-auth"] if self.auth else [])

    def start(self, timeout: float = 120.0) -> MlflowServer:
        """Start the server (same store as before after a stop) and wait for ``/health``."""
        self._spawn_and_wait(timeout)
        return self


def start_mlflow_server(
    root: Path,
    *,
    auth: bool = False,
    admin_password: str | None = None,
    default_permission: str = "READ",
) -> MlflowServer:
    """Start an ``mlflow server`` on a free port of 127.0.0.1 with its store under ``root``.

    With ``auth`` the basic-auth app runs with admin user ``admin`` and ``admin_password``
    (given only through ``MLFLOW_AUTH_ADMIN_PASSWORD``, never written to a file), and users
    without a grant get ``default_permission`` (``NO_PERMISSIONS`` refuses them).
    """
    root.mkdir(parents=True, exist_ok=True)
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "AURORA_MLOPS_"))
    }
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    if auth:
        if not admin_password:
            raise ValueError("a basic-auth server needs an admin password")
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = admin_password
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = "test-secret-key-" + str(os.getpid())
        # The basic-auth app reads its own config file (MLFLOW_AUTH_CONFIG_PATH, section
        # [mlflow], checked against mlflow 3.17's auth/config.py); its user store goes in root.
        ini = root / "basic_auth.ini"
        ini.write_text(
            "[mlflow]\n"
            f"default_permission = {default_permission}\n"
            f"database_uri = sqlite:///{root / 'auth.db'}\n"
            "admin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Without this cache every request re-hashes the password (PBKDF2), which on a
            # busy 2-core machine costs about a second per request.
            "auth_cache_ttl_seconds = 600\n"
        )
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
    return _on_a_free_port(lambda port: MlflowServer(root=root, port=port, auth=auth, env=env))


@dataclass
class MotoServer(_Process):
    """A running ``moto_server``: a real S3-compatible HTTP server (moto's server mode)."""

    name = "moto_server"
    log_name = "moto.log"
    # Moto's dashboard answers only on moto itself, not on another port holder.
    probe = "/moto-api/data.json"

    @property
    def endpoint(self) -> str:
        return self.uri

    def command(self) -> list[str]:
        return [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]

    def start(self, timeout: float = 60.0) -> MotoServer:
        """Start the server and wait until it answers an S3 request."""
        self._spawn_and_wait(timeout)
        return self


def start_moto_server(root: Path, *, auth_after: int | None = None) -> MotoServer:
    """Start ``moto_server`` (an S3-compatible server, in memory) on a free port of 127.0.0.1.

    With ``auth_after`` the server checks credentials after that many AWS requests (moto's
    ``INITIAL_NO_AUTH_ACTION_COUNT``): the first ones create an IAM user and its access key,
    every later request must be signed with a key the server knows.
    """
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    if auth_after is not None:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(auth_after)
    return _on_a_free_port(lambda port: MotoServer(root=root, port=port, env=env))


#: The development account that every Azurite accepts: its name and key are published in
#: Microsoft's Azurite documentation ("Well-known storage account and key").
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
               "K1SZFPTOtr/KBHBeksoGMGw==")


@dataclass
class AzuriteServer(_Process):
    """A running ``azurite-blob``: Microsoft's Azure Blob Storage emulator (npm ``azurite``),
    which checks the shared-key signature of every request like Azure does."""

    executable: str = "azurite-blob"

    name = "azurite-blob"
    log_name = "azurite.log"

    @property
    def probe(self) -> str:  # type: ignore[override]
        # Azurite answers nothing unsigned with 200; a SAS-signed "list containers" proves that
        # this process holds the port and accepts the development account's key.
        from datetime import UTC, datetime, timedelta

        from azure.storage.blob import (
            AccountSasPermissions,
            ResourceTypes,
            generate_account_sas,
        )

        sas = generate_account_sas(
            AZURITE_ACCOUNT, AZURITE_KEY, ResourceTypes(service=True),
            AccountSasPermissions(list=True), datetime.now(UTC) + timedelta(hours=1))
        return f"/{AZURITE_ACCOUNT}?comp=list&{sas}"

    @property
    def connection_string(self) -> str:
        """What ``AZURE_STORAGE_CONNECTION_STRING`` holds to reach this server."""
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};BlobEndpoint={self.uri}/{AZURITE_ACCOUNT};")

    def command(self) -> list[str]:
        # --skipApiVersionCheck: Azurite refuses API versions newer than it knows, and the
        # locked azure-storage-blob sends a newer one. --loose: ignore headers it does not
        # implement instead of refusing the request.
        return [self.executable, "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                "--location", str(self.root / "data"), "--skipApiVersionCheck", "--loose",
                "--silent"]

    def start(self, timeout: float = 60.0) -> AzuriteServer:
        """Start the emulator and wait until it answers a signed request."""
        self._spawn_and_wait(timeout)
        return self


def start_azurite(root: Path, executable: str) -> AzuriteServer:
    """Start ``executable`` (``azurite-blob``) on a free port of 127.0.0.1, blobs under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    return _on_a_free_port(
        lambda port: AzuriteServer(root=root, port=port, env=env, executable=executable))


@dataclass
class GcsEmulator(_Process):
    """A running ``gcp-storage-emulator`` (PyPI): the Google Cloud Storage JSON API in memory.
    It checks no credentials; gcsfs reaches it through ``STORAGE_EMULATOR_HOST``."""

    executable: str = str(BIN / "gcp-storage-emulator")

    name = "gcp-storage-emulator"
    log_name = "gcs-emulator.log"
    # Its bucket list, not "/": any HTTP server answers "/".
    probe = "/storage/v1/b"

    def command(self) -> list[str]:
        return [self.executable, "start", "--host", "127.0.0.1", "--port", str(self.port),
                "--in-memory"]

    def start(self, timeout: float = 60.0) -> GcsEmulator:
        """Start the emulator and wait until it lists buckets."""
        self._spawn_and_wait(timeout)
        return self


def start_gcs_emulator(root: Path, executable: str) -> GcsEmulator:
    """Start ``executable`` (``gcp-storage-emulator``) on a free port of 127.0.0.1, data in
    memory."""
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GOOGLE_", "STORAGE_EMULATOR"))}
    return _on_a_free_port(
        lambda port: GcsEmulator(root=root, port=port, env=env, executable=executable))
