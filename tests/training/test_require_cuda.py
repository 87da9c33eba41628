"""A production trial refuses to train without CUDA; a smoke trial trains on the CPU.

The GPU is the one thing this machine cannot have, so ``torch.cuda.is_available`` is patched;
everything after it (the CLI, ``train_trial``, the error path) is the real code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import xarray as xr

from aurora_mlops.cli import main
from aurora_mlops.errors import TrainingError
from aurora_mlops.training import resolve_params, train_trial
from aurora_mlops.training._distributed import Distributed
from aurora_mlops.variants import get_variant


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize(("cuda", "driver"), [("13.0", "580 or newer"), ("12.8", "525 or newer")])
def test_production_without_cuda_says_what_to_check(no_gpu: None, monkeypatch: pytest.MonkeyPatch,
                                                    cuda: str, driver: str) -> None:
    monkeypatch.setattr(torch.version, "cuda", cuda)
    with pytest.raises(TrainingError) as e:
        Distributed(require_cuda="production")
    message = str(e.value)
    assert message.startswith("the production profile trains on a GPU")
    assert f"supports CUDA {cuda} ({driver})" in message
    assert "NVIDIA device plugin" in message and "nvidia.com/gpu" in message
    assert "--profile smoke" in message


def test_a_cpu_build_of_torch_is_named(no_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(TrainingError, match="this torch is a CPU build"):
        Distributed(require_cuda="production")


def test_smoke_trains_on_the_cpu(no_gpu: None) -> None:
    assert Distributed().device == torch.device("cpu")


def test_train_trial_refuses_before_building_the_model(no_gpu: None, tmp_path: Path) -> None:
    # The data path does not exist: the refusal comes before anything reads it.
    with pytest.raises(TrainingError, match="production profile trains on a GPU"):
        train_trial(variant=get_variant("medium-res"), data=tmp_path / "none.nc",
                    output_dir=tmp_path / "out", params=resolve_params("production", {}),
                    profile="production", tracking=False)
    assert not (tmp_path / "out").exists()


def test_cli_production_trial_without_gpu_exits_with_one_line(
    no_gpu: None, synthetic_data: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with xr.open_dataset(synthetic_data("medium-res")) as ds:
        real = ds.load()
    del real.attrs["profile"]  # real data suits the production profile
    data = tmp_path / "real.nc"
    real.to_netcdf(data)
    code = main(["train-trial", "--variant", "medium-res", "--profile", "production",
                 "--data", str(data), "--output", str(tmp_path / "trial"), "--no-tracking"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "the production profile trains on a GPU" in err
    assert not (tmp_path / "trial").exists()
