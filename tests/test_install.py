"""``tools/install.py`` hands uv the package sources that pip is configured with."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _install_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("install", ROOT / "tools" / "install.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_uv_gets_the_indexes_wheel_folders_and_cert_of_pips_configuration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nextra-index-url = file:///a/simple https://b.example/simple\n"
                    "find-links = /wheels\ncert = /etc/custom-ca.pem\n"
                    "constraint = /etc/ignored.txt\n")
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "/wheels")  # the same folder twice: once to uv
    flags, env = _install_module().pip_sources()
    # pip lists its scopes in its own order: compare the flags as pairs
    assert sorted(zip(flags[::2], flags[1::2], strict=True)) == sorted([
        ("--index-url", "https://mirror.example/simple"),
        ("--extra-index-url", "file:///a/simple"),
        ("--extra-index-url", "https://b.example/simple"),
        ("--find-links", "/wheels")])
    assert env["SSL_CERT_FILE"] == "/etc/custom-ca.pem"
