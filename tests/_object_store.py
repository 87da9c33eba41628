"""Shared by the object-storage tests: fresh filesystem instances, and one refused validation.

fsspec caches a filesystem instance per class and options, so a test that changes credentials
in the environment must drop the cached ones (gcsfs has two classes: ``gcsfs.GCSFileSystem``,
its default, and ``gcsfs.core.GCSFileSystem``, the one ``data`` opens ``gs://`` with).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aurora_mlops.cli import main


def clear_filesystem_caches() -> None:
    """Forget every cached S3, Azure Blob and GCS filesystem instance."""
    import adlfs
    import gcsfs
    import gcsfs.core
    import s3fs

    for cls in (s3fs.S3FileSystem, adlfs.AzureBlobFileSystem, gcsfs.GCSFileSystem,
                gcsfs.core.GCSFileSystem):
        cls.clear_instance_cache()


def validate_refused(uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``data validate`` on ``uri``: it must exit 1 with one line naming the URI, no
    traceback and no report. Returns what it printed on stderr."""
    clear_filesystem_caches()
    try:
        code = main(["data", "validate", uri, "--variant", "medium-res",
                     "--report", str(tmp_path / "report")])
    finally:
        clear_filesystem_caches()
    err = capsys.readouterr().err
    assert code == 1
    assert uri in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "report").exists()
    return err
