"""The image's one entrypoint says where a trial trains (a production one never on the CPU:
``tests/training/test_require_cuda.py``)."""

from __future__ import annotations

import logging

import pytest

from aurora_mlops.cli._train import report_device


def test_a_smoke_trial_on_the_cpu_is_stated(monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.DEBUG, logger="aurora_mlops"):
        assert report_device("smoke") == "cpu"
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert "training on the CPU" in record.getMessage()


def test_a_production_trial_claims_no_cpu_fallback(monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.DEBUG, logger="aurora_mlops"):
        assert report_device("production") == "cpu"
    assert caplog.records == []  # train_trial refuses, with what to check


def test_a_gpu_is_named(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    with caplog.at_level(logging.DEBUG, logger="aurora_mlops"):
        assert report_device("production") == "cuda"
    assert "2 CUDA device(s): NVIDIA H100 80GB HBM3" in caplog.text
