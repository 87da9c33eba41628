"""Datasets in Azure Blob (``abfs://``, ``az://``) and Google Cloud Storage (``gs://``) URIs,
against real emulators of both services.

* Azure: Azurite's blob service (npm ``azurite``, installed by ``make testdata`` into
  ``.testdata/azurite``) on 127.0.0.1. It checks the shared-key signature of every request, so
  a wrong account key is refused by the server, as Azure refuses it.
* Google: ``gcp-storage-emulator`` (PyPI, in the ``dev`` extra), which gcsfs reaches through
  ``STORAGE_EMULATOR_HOST``. It checks no credentials at all, so a key that Google would refuse
  cannot be tested here; what is tested is that credentials named in
  ``GOOGLE_APPLICATION_CREDENTIALS`` which google-auth cannot load are refused in one sentence
  instead of gcsfs silently reading anonymously.
"""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import xarray as xr

from _object_store import clear_filesystem_caches, validate_refused
from _servers import AZURITE_KEY, start_azurite, start_gcs_emulator
from _tools import require_tool
from aurora_mlops.cli import main
from aurora_mlops.data import open_dataset, write_dataset

pytestmark = pytest.mark.slow

CONTAINER = "aurora-data"  # an Azure container and a GCS bucket (3 to 63 characters)
AZURITE = Path(__file__).parents[2] / ".testdata" / "azurite" / "node_modules" / ".bin"
# Credentials of the developer's own accounts that would take precedence over the emulators'.
_AZURE_ENV = ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN",
              "AZURE_STORAGE_CLIENT_ID", "AZURE_STORAGE_CLIENT_SECRET", "AZURE_STORAGE_TENANT_ID",
              "AZURE_STORAGE_ANON")
_GOOGLE_ENV = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG")


@contextlib.contextmanager
def _environment(cache: Path, unset: tuple[str, ...], **env: str) -> Iterator[None]:
    """Unset ``unset`` and set ``env`` until the block ends, with fresh filesystem instances."""
    with pytest.MonkeyPatch.context() as mp:
        for k in unset:
            mp.delenv(k, raising=False)
        for k, v in env.items():
            mp.setenv(k, v)
        # Statistics of object-store data are cached per user: here, per session.
        mp.setenv("XDG_CACHE_HOME", str(cache))
        clear_filesystem_caches()
        try:
            yield
        finally:
            clear_filesystem_caches()


def _upload(put: Callable[[Path, str], object], local: Path, store: Path) -> None:
    """Put ``local`` (a netCDF file) and ``store`` (a Zarr directory) under ``era5/``, with
    ``put(file, key)`` writing one object of the container."""
    put(local, "era5/medium-res.nc")
    for f in sorted(p for p in store.rglob("*") if p.is_file()):
        put(f, f"era5/medium-res.zarr/{f.relative_to(store)}")


@pytest.fixture(scope="session")
def local_medium_res(synthetic_data: Callable[..., Path]) -> tuple[Path, Path]:
    """The synthetic medium-res netCDF file and the same data as a Zarr store."""
    local = synthetic_data("medium-res")
    store = local.parent / "medium-res-azure-gcs.zarr"
    if not store.exists():
        write_dataset(open_dataset(local), store)
    return local, store


@pytest.fixture(scope="session")
def azure(
    tmp_path_factory: pytest.TempPathFactory, local_medium_res: tuple[Path, Path]
) -> Iterator[str]:
    """Azurite holding ``era5/medium-res.{nc,zarr}`` in container ``aurora-data``; for the
    session ``AZURE_STORAGE_CONNECTION_STRING`` points at it (restored afterwards)."""
    import fsspec

    exe = AZURITE / "azurite-blob"
    executable = str(exe) if exe.is_file() else require_tool(
        "azurite-blob", "run `make testdata` (npm installs azurite 3.37.0 into .testdata/azurite)")
    server = start_azurite(tmp_path_factory.mktemp("azurite"), executable)
    try:
        fs = fsspec.filesystem("abfs", connection_string=server.connection_string,
                               skip_instance_cache=True)
        fs.mkdir(CONTAINER)
        _upload(lambda f, key: fs.put(str(f), f"{CONTAINER}/{key}"), *local_medium_res)
        with _environment(tmp_path_factory.mktemp("cache"), _AZURE_ENV,
                          AZURE_STORAGE_CONNECTION_STRING=server.connection_string):
            yield server.connection_string
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs(
    tmp_path_factory: pytest.TempPathFactory, local_medium_res: tuple[Path, Path]
) -> Iterator[str]:
    """gcp-storage-emulator holding ``era5/medium-res.{nc,zarr}`` in bucket ``aurora-data``;
    for the session ``STORAGE_EMULATOR_HOST`` points at it, no Google credentials are set."""
    executable = require_tool("gcp-storage-emulator",
                              "pip install -c constraints.txt -e '.[dev]'")
    server = start_gcs_emulator(tmp_path_factory.mktemp("gcs"), executable)

    def put(f: Path, key: str) -> None:
        # A plain PUT of the bytes (the XML API): gcsfs uploads small files as multipart
        # requests, and the emulator's multipart parser drops a trailing carriage return
        # (one Zarr chunk here ends in b"\r").
        req = urllib.request.Request(f"{server.uri}/{CONTAINER}/{quote(key)}",
                                     data=f.read_bytes(), method="PUT")
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200

    try:
        urllib.request.urlopen(urllib.request.Request(
            f"{server.uri}/storage/v1/b", data=json.dumps({"name": CONTAINER}).encode(),
            headers={"Content-Type": "application/json"}), timeout=30).close()
        _upload(put, *local_medium_res)
        # gcsfs sends every request to STORAGE_EMULATOR_HOST instead of storage.googleapis.com.
        with _environment(tmp_path_factory.mktemp("cache"), _GOOGLE_ENV,
                          STORAGE_EMULATOR_HOST=server.uri):
            yield server.uri
    finally:
        server.stop()


@pytest.fixture(params=["abfs", "az", "gs"])
def store(request: pytest.FixtureRequest) -> str:
    """A URI scheme whose emulator is running: Azure Blob under both its names, and GCS."""
    request.getfixturevalue("gcs" if request.param == "gs" else "azure")
    return str(request.param)


@pytest.mark.parametrize("name", ["medium-res.nc", "medium-res.zarr"])
def test_a_dataset_in_azure_or_gcs_reads_like_the_local_file(
    store: str, name: str, local_medium_res: tuple[Path, Path]
) -> None:
    uri = f"{store}://{CONTAINER}/era5/{name}"
    remote = open_dataset(uri)
    assert remote.attrs["source"] == uri
    assert remote["2t"].variable._in_memory is False  # read lazily, chunk by chunk
    xr.testing.assert_identical(remote.drop_attrs(), open_dataset(local_medium_res[0]).drop_attrs())


def test_data_validate_reads_azure_and_gcs(store: str, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    uri = f"{store}://{CONTAINER}/era5/medium-res.zarr"
    caplog.set_level(logging.WARNING)
    assert main(["data", "validate", uri, "--variant", "medium-res", "--report",
                 str(tmp_path)]) == 0
    # no warning per object read (gcsfs's default class logs one when it cannot learn a
    # bucket's type without Google credentials)
    assert not [r for r in caplog.records if r.name.startswith(("gcsfs", "adlfs", "fsspec"))]
    audit = json.loads((tmp_path / "validation.json").read_text())
    assert audit["ok"] is True and audit["file"] == uri
    assert audit["dataset"]["file_size_bytes"] > 0


@pytest.mark.parametrize("scheme", ["abfs", "gs"])
def test_train_trial_reads_azure_and_gcs(
    scheme: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    request.getfixturevalue("gcs" if scheme == "gs" else "azure")
    trial = tmp_path / "trial"
    assert main(["train-trial", "--variant", "medium-res", "--data",
                 f"{scheme}://{CONTAINER}/era5/medium-res.nc", "--output", str(trial),
                 "--profile", "smoke", "--no-tracking", "--epochs=1", "--steps_per_epoch=2",
                 "--seed=3"]) == 0
    assert (trial / "model.ckpt").is_file()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("abfs://no-such-container/era5/x.nc", "no such object or container"),
        (f"az://{CONTAINER}/era5/missing.nc", "no such object or container"),
        ("gs://no-such-bucket/era5/x.nc", "no such object or bucket"),
        (f"gs://{CONTAINER}/era5/missing.nc", "no such object or bucket"),
    ],
    ids=["azure-missing-container", "azure-missing-object", "gcs-missing-bucket",
         "gcs-missing-object"],
)
def test_a_missing_container_or_object_is_one_sentence(
    uri: str, expected: str, request: pytest.FixtureRequest, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    request.getfixturevalue("gcs" if uri.startswith("gs") else "azure")
    assert expected in validate_refused(uri, tmp_path, capsys)


def test_a_wrong_azure_account_key_is_refused_by_the_server_in_one_sentence(
    azure: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A well-formed base64 key of the right length that is not the account's.
    wrong = "d3Jvbmcta2V5" + "A" * 76
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azure.replace(AZURITE_KEY, wrong))
    uri = f"abfs://{CONTAINER}/era5/medium-res.nc"
    err = validate_refused(uri, tmp_path, capsys)
    # Azurite's own refusal (its AuthorizationFailure), then what to set.
    assert "Server failed to authenticate the request" in err
    assert ("check the container name and the credentials in the environment "
            "(AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME with "
            "AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN)") in err
    assert wrong not in err and AZURITE_KEY not in err


def test_no_azure_credentials_at_all_is_one_sentence(
    azure: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # adlfs refuses to build a filesystem without a connection string or an account name
    # (adlfs spec.py, AzureBlobFileSystem.do_connect); that used to escape as a traceback.
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    err = validate_refused(f"az://{CONTAINER}/era5/medium-res.nc", tmp_path, capsys)
    assert "Must provide either a connection_string or account_name" in err
    assert "(AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "was not found"),
        ('{"type": "service_account"}', "Failed to load service account credentials"),
        ("not json", "is not a valid json file"),
    ],
    ids=["missing-file", "incomplete-key", "not-json"],
)
def test_unusable_google_credentials_are_refused_not_read_anonymously(
    gcs: str, content: str | None, expected: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    # gcsfs without a token tries google-auth's default credentials, then anonymous access
    # (gcsfs credentials.py, GoogleCredentials.connect): a broken key file would read the
    # public emulator anonymously and fail later, on a private bucket, with a 401.
    key = tmp_path / "key.json"
    if content is not None:
        key.write_text(content)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    err = validate_refused(f"gs://{CONTAINER}/era5/medium-res.nc", tmp_path, capsys)
    assert expected in err
    assert ("check the bucket name and the credentials in the environment "
            "(GOOGLE_APPLICATION_CREDENTIALS, the path of a service-account key file)") in err
