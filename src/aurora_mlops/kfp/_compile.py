"""Compile the components and pipelines into the YAML that ships: components/, pipelines/.

``pipelines/dev/`` holds the CPU-only build of the pipelines for the dev overlay (a cluster
without GPUs): no GPU limits, node selectors or tolerations, small requests, and the smoke
profile on synthetic data by default.
"""

from __future__ import annotations

from pathlib import Path

from aurora_mlops._io import atomic_write
from aurora_mlops.errors import ConfigError
from aurora_mlops.kfp._yaml import compiled_text

__all__ = ["DEV_DIR", "compile_all", "compiled_texts"]


#: Where the CPU-only (dev overlay) build of the pipelines goes.
DEV_DIR = "pipelines/dev"


def compiled_texts(parallelism: int | None = None) -> dict[str, str]:
    """``{relative path: YAML}`` of every component and pipeline, as the compiler writes them.

    Args:
        parallelism: Variants at a time in ``aurora-all-variants`` (default: its default).
    """
    from aurora_mlops.config import get_settings
    from aurora_mlops.kfp import all_variants, monitor, tune_and_publish
    from aurora_mlops.kfp.components import ALL

    par = all_variants.DEFAULT_PARALLELISM if parallelism is None else parallelism
    dev = get_settings().model_copy(update={"cpu_only": True})
    targets: dict[str, object] = {f"components/{name}.yaml": comp for name, comp in ALL.items()}
    targets.update({f"components/{c.name}.yaml": c for c in (monitor.monitor, monitor.retrain)})
    targets[f"pipelines/{tune_and_publish.NAME}.yaml"] = tune_and_publish.tune_and_publish
    targets[f"pipelines/{all_variants.NAME}.yaml"] = (
        all_variants.all_variants if parallelism is None else all_variants.build(parallelism))
    targets[f"{DEV_DIR}/{tune_and_publish.NAME}.yaml"] = tune_and_publish.build(
        dev, defaults=tune_and_publish.DEV)
    targets[f"{DEV_DIR}/{all_variants.NAME}.yaml"] = all_variants.build(
        par, settings=dev, defaults=tune_and_publish.DEV)
    targets[f"pipelines/{monitor.NAME}.yaml"] = monitor.aurora_monitor
    targets[f"{DEV_DIR}/{monitor.NAME}.yaml"] = monitor.build(dev)
    return {rel: compiled_text(func) for rel, func in targets.items()}


def compile_all(root: str | Path = ".", parallelism: int | None = None) -> list[Path]:
    """Write ``components/<step>.yaml`` and ``pipelines/<pipeline>.yaml`` under ``root``.

    Everything is compiled before the first file is written; a file is rewritten only when its
    content changes.

    Raises:
        ConfigError: ``root`` is not a directory.
    """
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"--out-dir {base} is not a directory; create it or point at the "
                          "repository root")
    written: list[Path] = []
    for rel, text in compiled_texts(parallelism).items():
        path = base / rel
        if not (path.is_file() and path.read_text(encoding="utf-8") == text):
            atomic_write(path, text)
        written.append(path)
    return written
