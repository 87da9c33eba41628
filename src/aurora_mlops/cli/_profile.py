"""Refuse a data/profile mismatch before any model is built.

``data synth`` records the profile it generated for in the dataset's ``profile`` attribute
(smoke data has 3 pressure levels on a coarse grid). ``train-trial`` (its ``--profile``),
``evaluate --model`` and ``benchmark --data`` (the profile the model was trained with) refuse a
dataset made for the other profile with one sentence that names the dataset, its profile and the
flag to pass: otherwise a forgotten ``--profile smoke`` silently builds the full model on smoke
data. A dataset without the attribute (real data, e.g. an ERA5 subset) was made for no profile
and is accepted by both: the smoke model on a small real subset is a legitimate CPU check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aurora_mlops.errors import ConfigError

__all__ = ["data_profile", "require_model_data_profile", "require_train_data_profile",
           "trial_profile"]

def data_profile(path: str | Path) -> str | None:
    """The profile a dataset was made for: its ``profile`` attribute; ``None`` for real data.

    Only the file's global attributes are read (netCDF through netCDF4, a Zarr store through
    zarr): no variable, not even a coordinate, is loaded, and the dataset is not mapped onto
    the canonical layout, because the command that asks opens it properly right after. What
    neither reads (GRIB, an object-store URI, a missing or broken file) goes through
    :func:`~aurora_mlops.data.open_dataset`, which says what is wrong with it.
    """
    attrs = _global_attrs(path)
    if attrs is None:
        from aurora_mlops.data import open_dataset

        ds = open_dataset(path)
        try:
            attrs = dict(ds.attrs)
        finally:
            ds.close()
    value = attrs.get("profile")
    return None if value is None else str(value)


def _global_attrs(path: str | Path) -> dict[str, Any] | None:
    """The global attributes of a local netCDF file or Zarr store; ``None`` where they cannot
    be read this way (the caller opens the dataset instead)."""
    if "://" in str(path):
        return None
    p = Path(path)
    try:
        if p.is_dir():
            import zarr

            group = zarr.open_group(str(p), mode="r", use_consolidated=False)
            return dict(group.attrs)
        import netCDF4

        with netCDF4.Dataset(p, "r") as nc:
            return {name: nc.getncattr(name) for name in nc.ncattrs()}
    except (OSError, ValueError, RuntimeError, KeyError, TypeError):
        return None  # not readable this way: open_dataset says what is wrong


def trial_profile(model: str | Path) -> str | None:
    """The profile recorded in a train-trial output (its directory or its ``model.ckpt``);
    ``None`` when there is no readable ``trial.json`` (loading the model reports that)."""
    path = Path(model)
    trial = (path if path.is_dir() else path.parent) / "trial.json"
    try:
        value = json.loads(trial.read_text()).get("profile")
    except (OSError, ValueError, AttributeError):
        return None
    return None if value is None else str(value)


def require_train_data_profile(data: str | Path, profile: str) -> None:
    """Raise :class:`ConfigError` unless ``data`` was made for ``train-trial --profile``."""
    found = data_profile(data)
    if found is not None and found != profile:
        raise ConfigError(
            f"dataset {data} was made for the {found} profile but train-trial runs the "
            f"{profile} profile; pass --profile {found} (or use data made for {profile})"
        )


def require_model_data_profile(data: str | Path, model: str | Path, command: str) -> None:
    """Raise :class:`ConfigError` unless ``data`` has the profile ``model`` was trained with."""
    wanted = trial_profile(model)
    if wanted is None:
        return
    found = data_profile(data)
    if found is not None and found != wanted:
        raise ConfigError(
            f"dataset {data} was made for the {found} profile but the model {model} was "
            f"trained with the {wanted} profile; pass {command} --data with {wanted}-profile "
            f"data (`aurora-mlops data synth --profile {wanted}`) or a model trained with "
            f"--profile {found}"
        )
