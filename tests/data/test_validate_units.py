"""One unit normaliser: the reader and the validator judge every units spelling alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr

from aurora_mlops.data import open_dataset, validate
from aurora_mlops.data._validate_state import Checks
from aurora_mlops.data._validate_structure import check_variables
from aurora_mlops.variants import VARIANTS

#: (variable, units as found in a file, what both must make of it).
SPELLINGS: list[tuple[str, str, str]] = [
    ("2t", "K", "same"),
    ("2t", "kelvin", "same"),
    ("10u", "m s**-1", "same"),
    ("10u", "M/S", "same"),
    ("lsm", "-", "same"),  # the validator accepted this and the reader warned, before
    ("lsm", "(0 - 1)", "same"),
    ("msl", "hPa", "convert"),
    ("2t", "degC", "convert"),
    ("2t", "furlongs", "refuse"),
    ("10u", "knots", "refuse"),
]


def _reader_verdict(ds: xr.Dataset, name: str, units: str, tmp_path: Path) -> str:
    ds[name].attrs["units"] = units
    path = tmp_path / "in.nc"
    ds.to_netcdf(path, engine="netcdf4")
    with open_dataset(path) as read:
        attrs = read[name].attrs
    if "original_units" in attrs:
        return "convert"
    return "same" if attrs["units"] == _vocabulary_units(name) else "refuse"


def _vocabulary_units(name: str) -> str:
    return next(v.units for v in VARIANTS["medium-res"].variables() if v.store_name == name)


def _validator_accepts(ds: xr.Dataset, name: str, units: str) -> bool:
    ds[name].attrs["units"] = units
    c = Checks(ds, Path("in.nc"), VARIANTS["medium-res"], max_nan_fraction=0.0, chunk_bytes=1)
    check_variables(c)
    return not any(f"{name!r} has units" in p for p in c.problems)


@pytest.mark.parametrize(("name", "units", "verdict"), SPELLINGS,
                         ids=[f"{n}-{u}" for n, u, _ in SPELLINGS])
def test_reader_and_validator_agree_on_each_spelling(
    canonical_factory, name: str, units: str, verdict: str, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    read = _reader_verdict(canonical_factory("medium-res"), name, units, tmp_path)
    assert read == verdict
    # The validator's own check on the file as written (before the reader's rewrite): it takes
    # as is exactly what the reader takes as is.
    assert _validator_accepts(canonical_factory("medium-res"), name, units) == (verdict == "same")


def test_a_converted_unit_validates_after_the_reader_converts_it(
    canonical_factory, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    ds = canonical_factory("medium-res")
    ds["msl"] = ds["msl"] / 100.0
    ds["msl"].attrs["units"] = "hPa"
    ds.to_netcdf(tmp_path / "hpa.nc", engine="netcdf4")
    report = validate(tmp_path / "hpa.nc", "medium-res")
    assert report.ok, report.problems
    assert report.audit["variables"]["msl"]["units"] == "Pa"
