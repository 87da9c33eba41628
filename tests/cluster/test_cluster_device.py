"""The image's one entrypoint says when a trial falls back to the CPU."""

from __future__ import annotations

import logging

import pytest

from aurora_mlops.cli._train import report_device


@pytest.mark.parametrize(("profile", "level"), [("production", logging.WARNING),
                                                ("smoke", logging.INFO)])
def test_cpu_fallback_is_stated(monkeypatch: pytest.MonkeyPatch,
                                caplog: pytest.LogCaptureFixture, profile: str,
                                level: int) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.DEBUG, logger="aurora_mlops"):
        assert report_device(profile) == "cpu"
    (record,) = caplog.records
    assert record.levelno == level
    assert "falls back to the CPU" in record.getMessage()


def test_a_gpu_is_named(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H100 80GB HBM3")
    with caplog.at_level(logging.DEBUG, logger="aurora_mlops"):
        assert report_device("production") == "cuda"
    assert "2 CUDA device(s): NVIDIA H100 80GB HBM3" in caplog.text
