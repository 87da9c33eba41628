"""Datasets in object storage: ``s3://`` URIs against a real S3-compatible server.

The server is moto's ``moto_server`` on 127.0.0.1 (a separate process speaking the S3 HTTP
API), with authentication switched on: after the set-up actions, requests need the access key
of an IAM user created on the server, so refused credentials are tested for real.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import xarray as xr

from _object_store import clear_filesystem_caches, validate_refused
from _servers import MotoServer, start_moto_server
from aurora_mlops.cli import main
from aurora_mlops.data import open_dataset, write_dataset

pytestmark = pytest.mark.slow

BUCKET = "aurora-data"
_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_PROFILE", "XDG_CACHE_HOME")


@pytest.fixture(scope="session")
def s3(
    tmp_path_factory: pytest.TempPathFactory, synthetic_data: Callable[..., Path]
) -> Iterator[dict[str, str]]:
    """A moto S3 server holding ``medium-res.nc`` and ``medium-res.zarr``; the environment
    points at it with a valid key for the whole session (restored afterwards)."""
    import boto3

    saved = {k: os.environ.get(k) for k in _ENV}
    # Three unsigned set-up requests (user, policy, key), then every request is checked.
    server: MotoServer = start_moto_server(tmp_path_factory.mktemp("moto"), auth_after=3)
    try:
        env = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": server.endpoint,
               # Statistics of object-store data are cached per user: here, per session.
               "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}
        admin = {"aws_access_key_id": "admin", "aws_secret_access_key": "admin",
                 "region_name": "us-east-1", "endpoint_url": server.endpoint}
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="trainer")
        iam.put_user_policy(UserName="trainer", PolicyName="s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }))
        key = iam.create_access_key(UserName="trainer")["AccessKey"]
        env["AWS_ACCESS_KEY_ID"] = key["AccessKeyId"]
        env["AWS_SECRET_ACCESS_KEY"] = key["SecretAccessKey"]
        client = boto3.client("s3", region_name="us-east-1", endpoint_url=server.endpoint,
                              aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        client.create_bucket(Bucket=BUCKET)
        local = synthetic_data("medium-res")
        client.upload_file(str(local), BUCKET, "era5/medium-res.nc")
        store = write_dataset(open_dataset(local), local.parent / "medium-res-remote.zarr")
        for f in sorted(p for p in store.rglob("*") if p.is_file()):
            client.upload_file(str(f), BUCKET, f"era5/medium-res.zarr/{f.relative_to(store)}")
        for k in _ENV:
            os.environ.pop(k, None)
        os.environ.update(env)
        clear_filesystem_caches()
        yield {"endpoint": server.endpoint, "local": str(local), **env}
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        clear_filesystem_caches()


@pytest.mark.parametrize("name", ["medium-res.nc", "medium-res.zarr"])
def test_a_dataset_in_s3_reads_like_the_local_file(s3: dict[str, str], name: str) -> None:
    remote = open_dataset(f"s3://{BUCKET}/era5/{name}")
    local = open_dataset(s3["local"])
    assert remote.attrs["source"] == f"s3://{BUCKET}/era5/{name}"
    assert remote["2t"].variable._in_memory is False  # read lazily, chunk by chunk
    xr.testing.assert_identical(remote.drop_attrs(), local.drop_attrs())


def test_data_validate_reads_s3(s3: dict[str, str], tmp_path: Path) -> None:
    code = main(["data", "validate", f"s3://{BUCKET}/era5/medium-res.zarr",
                 "--variant", "medium-res", "--report", str(tmp_path)])
    assert code == 0
    audit = json.loads((tmp_path / "validation.json").read_text())
    assert audit["ok"] is True and audit["file"] == f"s3://{BUCKET}/era5/medium-res.zarr"
    assert audit["dataset"]["file_size_bytes"] > 0


def test_train_trial_and_evaluate_read_s3(s3: dict[str, str], tmp_path: Path) -> None:
    uri = f"s3://{BUCKET}/era5/medium-res.nc"
    trial = tmp_path / "trial"
    assert main(["train-trial", "--variant", "medium-res", "--data", uri, "--output",
                 str(trial), "--profile", "smoke", "--no-tracking", "--epochs=1",
                 "--steps_per_epoch=2", "--seed=3"]) == 0
    assert (trial / "model.ckpt").is_file()
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(trial), "--data", uri, "--variant", "medium-res",
                 "--out", str(out), "--lead-steps", "2", "--max-inits", "2"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pairs"]["model"] == 4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("uri", "env", "expected"),
    [
        ("s3://no-such-bucket/era5/x.nc", {}, "no such object or bucket"),
        (f"s3://{BUCKET}/era5/missing.nc", {}, "no such object or bucket"),
        (f"s3://{BUCKET}/era5/medium-res.nc",
         {"AWS_ACCESS_KEY_ID": "AKIAWRONGWRONGWRONG1", "AWS_SECRET_ACCESS_KEY": "wrong-secret"},
         "check the bucket name and the credentials in the environment"),
    ],
    ids=["missing-bucket", "missing-object", "bad-credentials"],
)
def test_missing_bucket_or_bad_credentials_is_one_sentence(
    s3: dict[str, str], uri: str, env: dict[str, str], expected: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    err = validate_refused(uri, tmp_path, capsys)
    assert expected in err
    assert "wrong-secret" not in err and s3["AWS_SECRET_ACCESS_KEY"] not in err


def test_the_pipeline_data_step_takes_an_s3_dataset_uri(s3: dict[str, str], tmp_path: Path) -> None:
    from aurora_mlops.kfp.steps import prepare_data

    uri = f"s3://{BUCKET}/era5/medium-res.zarr"
    got = prepare_data(uri, "medium-res", ref_dir=tmp_path / "ref",
                       report_dir=tmp_path / "report", data_root=str(tmp_path / "data"),
                       run_id="r1")
    assert got["path"] == str(tmp_path / "data" / "pipeline-runs" / "r1" / "medium-res" / "data"
                              / "medium-res.nc")
    xr.testing.assert_identical(open_dataset(got["path"]).drop_attrs(),
                                open_dataset(s3["local"]).drop_attrs())
    assert json.loads((tmp_path / "report" / "validation.json").read_text())["ok"] is True


def test_evaluate_scores_a_forecast_store_in_s3_like_the_local_one(
    s3: dict[str, str], tmp_path: Path
) -> None:
    import boto3
    import numpy as np
    import pandas as pd

    from aurora_mlops.evaluation import persistence_forecast

    truth = open_dataset(s3["local"])
    inits = truth["time"].values[-12:-4:2]
    leads = np.array([6, 12], dtype="timedelta64[h]").astype("timedelta64[ns]")
    fc = persistence_forecast(truth.load(), inits, leads, variables=["2t", "msl", "z"])
    local = write_dataset(fc, tmp_path / "fc.zarr")
    client = boto3.client("s3", endpoint_url=s3["endpoint"])
    for f in sorted(p for p in local.rglob("*") if p.is_file()):
        client.upload_file(str(f), BUCKET, f"forecasts/fc.zarr/{f.relative_to(local)}")
    tables = {}
    for where, forecast, data in (
        ("local", str(local), s3["local"]),
        ("s3", f"s3://{BUCKET}/forecasts/fc.zarr", f"s3://{BUCKET}/era5/medium-res.zarr"),
    ):
        assert main(["evaluate", "--forecast", forecast, "--truth", data, "--variant",
                     "medium-res", "--out", str(tmp_path / where)]) == 0
        tables[where] = pd.read_parquet(tmp_path / where / "metrics.parquet")
    assert len(tables["s3"]) > 50
    pd.testing.assert_frame_equal(tables["s3"], tables["local"])
