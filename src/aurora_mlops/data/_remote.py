"""Datasets in object storage: ``s3://``, ``gs://``, ``abfs://``/``az://`` through fsspec.

A URI with a scheme is opened through fsspec's filesystem for that scheme (s3fs, gcsfs,
adlfs), lazily: a Zarr store is read chunk by chunk, a netCDF-4/HDF5 file by byte ranges
through h5netcdf, so nothing is downloaded whole. The public WeatherBench2 stores
(``gs://weatherbench2/datasets/era5/...zarr``) are ordinary Zarr stores in that sense.

Credentials come from the environment, as each filesystem reads them: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and ``AWS_ENDPOINT_URL_S3``
(or ``AWS_ENDPOINT_URL``) for S3 and S3-compatible servers; ``AZURE_STORAGE_CONNECTION_STRING``
or ``AZURE_STORAGE_ACCOUNT_NAME`` with ``AZURE_STORAGE_ACCOUNT_KEY`` / ``AZURE_STORAGE_SAS_TOKEN``
(or a service principal through ``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID``,
``AZURE_CLIENT_SECRET``) for Azure Blob; ``GOOGLE_APPLICATION_CREDENTIALS`` for Google Cloud
Storage (a key file named there that google-auth cannot load is refused, never replaced by
anonymous access), anonymous access for public buckets. Messages never show them: URIs pass
through :func:`aurora_mlops._redact.redact_uri`.
"""

from __future__ import annotations

import os
import re
from typing import Any

import xarray as xr

from aurora_mlops._redact import redact_uri
from aurora_mlops.errors import DataFileError

__all__ = ["is_remote", "open_remote", "remote_identity", "remote_size"]

#: Schemes opened through fsspec (``file://`` and plain paths stay local).
REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "http", "https")

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NC3_MAGICS = (b"CDF\x01", b"CDF\x02", b"CDF\x05")
_ZARR_META = ("zarr.json", ".zgroup", ".zmetadata", ".zarray")

_CREDENTIALS_HINT = {
    "s3": "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL_S3 for a non-AWS server)",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS, the path of a service-account key file",
    "abfs": "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME with "
            "AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN",
}


def scheme_of(path: object) -> str | None:
    """The URI scheme of ``path`` in lower case, or ``None`` for a plain path."""
    m = _SCHEME.match(str(path)) if isinstance(path, str) else None
    return m.group("scheme").lower() if m else None


def is_remote(path: object) -> bool:
    """Whether ``path`` is an object-store (or http) URI that fsspec opens."""
    return scheme_of(path) in REMOTE_SCHEMES


def _family(scheme: str) -> str:
    """The store behind ``scheme``: ``s3``, ``gs``, ``abfs`` (Azure Blob) or ``scheme``."""
    return {"s3a": "s3", "gcs": "gs", "abfss": "abfs", "az": "abfs", "adl": "abfs"}.get(
        scheme, scheme)


def _hint(scheme: str) -> str:
    return _CREDENTIALS_HINT.get(_family(scheme), "the filesystem's credentials")


def _filesystem(uri: str) -> tuple[Any, str]:
    import fsspec

    scheme = scheme_of(uri) or ""
    options: dict[str, Any] = {}
    if scheme in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
    elif scheme in ("gs", "gcs") and os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        # Without a token gcsfs tries each credential source and silently falls back to
        # anonymous access when the named file is missing or unreadable; named credentials
        # must either work or be refused.
        options["token"] = "google_default"
    try:
        if scheme in ("gs", "gcs"):
            # gcsfs's default class (ExtendedGcsFileSystem, gcsfs/__init__.py) asks a gRPC
            # control plane for each bucket's type before each operation; on a read without
            # Google credentials (public WeatherBench2 stores, an emulator) that fails and logs
            # a warning per call (90 for one Zarr read). The plain class reads the same objects.
            from gcsfs.core import GCSFileSystem

            fs = GCSFileSystem(**options)
            return fs, fs._strip_protocol(uri)
        return fsspec.core.url_to_fs(uri, **options)
    except ImportError as e:
        raise DataFileError(
            f"{redact_uri(uri)}: no filesystem for {scheme}:// is installed ({e}); install "
            "aurora-mlops with its dependencies (s3fs, gcsfs, adlfs)."
        ) from e
    except Exception as e:  # adlfs without any credential, google-auth refusing a file
        raise _failure(uri, e) from e


def _failure(uri: str, e: BaseException) -> DataFileError:
    """One sentence for a missing object, a missing bucket or refused credentials."""
    scheme = scheme_of(uri) or ""
    text = redact_uri(str(e).splitlines()[0] if str(e) else type(e).__name__)
    bucket = "container" if _family(scheme) == "abfs" else "bucket"  # Azure's word
    if isinstance(e, FileNotFoundError):
        return DataFileError(
            f"{redact_uri(uri)}: no such object or {bucket} ({text}); check the {bucket} and "
            "the path."
        )
    return DataFileError(
        f"{redact_uri(uri)}: cannot be read ({type(e).__name__}: {text}); check the {bucket} "
        f"name and the credentials in the environment ({_hint(scheme)})."
    )


def open_remote(uri: str) -> xr.Dataset:
    """Open a netCDF-4 file or a Zarr store in object storage lazily (not yet canonical).

    Raises:
        DataFileError: The bucket or object does not exist, the credentials are refused, or
            the object is not a Zarr store or netCDF-4 file.
    """
    fs, root = _filesystem(uri)
    try:
        info = fs.info(root)
        is_dir = info.get("type") == "directory"
        if is_dir:
            names = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)}
        else:
            with fs.open(root, "rb") as fh:
                head = fh.read(2048)
    except DataFileError:
        raise
    except Exception as e:  # botocore, azure and google errors share no base class
        raise _failure(uri, e) from e
    if is_dir:
        if not names & set(_ZARR_META):
            raise DataFileError(
                f"{redact_uri(uri)}: is a prefix but not a Zarr store (no zarr.json, .zgroup "
                "or .zmetadata inside); pass the store's root or a netCDF-4 object."
            )
        return _open_zarr(fs, root, uri, consolidated=".zmetadata" in names)
    if head[:4] in _NC3_MAGICS or any(
            head[o : o + 8] == _HDF5_MAGIC for o in (0, 512, 1024)):
        if head[:4] in _NC3_MAGICS:
            raise DataFileError(
                f"{redact_uri(uri)}: is a classic netCDF-3 file, which cannot be read by byte "
                "ranges; convert it to netCDF-4 or Zarr (`aurora-mlops data convert`)."
            )
        return _open_netcdf4(fs, root, uri)
    raise DataFileError(
        f"{redact_uri(uri)}: is not a Zarr store or netCDF-4 file (its first bytes are "
        f"{head[:8]!r}); GRIB must be downloaded first, other formats converted."
    )


def _open_zarr(fs: Any, root: str, uri: str, *, consolidated: bool) -> xr.Dataset:
    try:
        store = fs.get_mapper(root)
        return xr.open_dataset(store, engine="zarr", chunks=None, consolidated=consolidated)
    except Exception as e:
        raise _failure(uri, e) from e


def _open_netcdf4(fs: Any, root: str, uri: str) -> xr.Dataset:
    try:
        fh = fs.open(root, "rb", block_size=8 * 2**20, cache_type="readahead")
        return xr.open_dataset(fh, engine="h5netcdf", chunks=None)
    except Exception as e:
        raise _failure(uri, e) from e


def remote_size(uri: str) -> int:
    """Bytes stored under ``uri`` (an object, or every object of a Zarr store); 0 if unknown."""
    fs, root = _filesystem(uri)
    try:
        return int(fs.du(root, total=True))
    except Exception:  # the size is only reported; reading already succeeded or failed
        return 0


def remote_identity(uri: str) -> dict[str, list[str]]:
    """What identifies the data behind ``uri`` now: size, ETag and modification time of the
    object, or of each metadata file of a Zarr store (``{"": [...], "zarr.json": [...]}``)."""
    fs, root = _filesystem(uri)

    def stat(path: str) -> list[str]:
        info = fs.info(path)
        return [str(info.get(k, "")) for k in ("size", "ETag", "LastModified", "mtime",
                                               "etag", "last_modified")]

    try:
        files = {"": stat(root)}
        if fs.isdir(root):
            files.update({m: stat(f"{root}/{m}") for m in _ZARR_META
                          if fs.exists(f"{root}/{m}")})
    except Exception as e:  # botocore, azure and google errors share no base class
        raise _failure(uri, e) from e
    return files
