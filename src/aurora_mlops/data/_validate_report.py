"""The validation audit as files: ``validation.json`` (the audit as is) and ``validation.md``.

The Markdown report is the verdict, the problems, then three tables (dataset, variables, time
gaps) written through the project's one table helper, :func:`aurora_mlops._markdown.markdown_table`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aurora_mlops._io import atomic_write
from aurora_mlops._markdown import Align, markdown_table
from aurora_mlops.data._validate_state import fmt_num
from aurora_mlops.errors import DataFileError

__all__ = ["audit_markdown", "write_reports"]

#: The variables table: name, kind and units left as they come, the nine numbers right-aligned.
_VARIABLE_ALIGN: tuple[Align, ...] = ("default",) * 3 + ("right",) * 9


def write_reports(report_dir: Path, audit: dict[str, Any]) -> list[Path]:
    """Write ``validation.json`` and ``validation.md`` atomically into ``report_dir``.

    Raises:
        DataFileError: The directory cannot be created or written.
    """
    json_path, md_path = report_dir / "validation.json", report_dir / "validation.md"
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(json_path, json.dumps(audit, indent=2, allow_nan=False) + "\n")
        atomic_write(md_path, audit_markdown(audit))
    except OSError as e:
        raise DataFileError(
            f"cannot write the validation report to {report_dir} ({e}); choose a writable "
            "--report directory."
        ) from e
    return [json_path, md_path]


def _txt(x: Any) -> str:
    """A value inside a table cell: ``-`` for none, six significant digits for a float."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return fmt_num(x)
    return str(x)


def audit_markdown(audit: dict[str, Any]) -> str:
    """The Markdown report of a validation audit (see :func:`aurora_mlops.data.validate`)."""
    verdict = "valid" if audit["ok"] else f"INVALID ({len(audit['problems'])} problem(s))"
    lines = [
        f"# Validation of `{audit['file']}` for variant `{audit['variant']}`",
        "",
        f"**Verdict: {verdict}**",
        "",
    ]
    if audit["problems"]:
        lines += ["## Problems", "", *(f"- {p}" for p in audit["problems"]), ""]
    if not audit["values_checked"]:
        lines += ["Values were not read: fix the structural problems first.", ""]
    lines += ["## Dataset", "", _dataset_table(audit["dataset"]), ""]
    lines += ["## Variables", "", _variables_table(audit["variables"])]
    gaps = audit["dataset"]["time"].get("gaps")
    if gaps:
        lines += ["", "## Time gaps", "", markdown_table(
            ("after index", "from", "to", "missing steps"),
            [(g["after_index"], g["from"], g["to"], g["missing_steps"]) for g in gaps],
            align=("right", "default", "default", "right"),
        )]
    return "\n".join(lines) + "\n"


def _dataset_table(ds: dict[str, Any]) -> str:
    grid, tm = ds["grid"], ds["time"]
    g = {k: _txt(grid.get(k)) for k in
         ("lat_points", "lon_points", "lat_range", "lat_step", "lon_range", "lon_step")}
    rows = [
        ("file size", f"{ds['file_size_bytes'] / 2**20:.1f} MiB"),
        ("grid", f"{g['lat_points']} x {g['lon_points']} (lat {g['lat_range']}, step "
                 f"{g['lat_step']}; lon {g['lon_range']}, step {g['lon_step']})"),
        ("levels (hPa)", _txt(", ".join(map(str, ds["levels"])) or None)),
        ("time", f"{_txt(tm.get('start'))} to {_txt(tm.get('end'))}, {_txt(tm.get('count'))} "
                 f"times, step {_txt(tm.get('step_hours'))} h "
                 f"(needed {_txt(tm.get('expected_step_hours'))} h)"),
        ("time gaps", str(len(tm.get("gaps", [])))),
        ("extra variables", _txt(", ".join(ds["extra_variables"]) or None)),
    ]
    return markdown_table(("property", "value"), rows)


def _variables_table(variables: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, e in variables.items():
        cov = e.get("coverage", {})
        nan_frac = e.get("nan_fraction")
        rows.append(tuple(_txt(x) for x in (
            f"`{name}`",
            e["kind"],
            e["units"],
            cov.get("times"),
            len(cov["gaps"]) if "gaps" in cov else None,
            cov.get("all_nan_time_count"),
            e.get("nan_count"),
            None if nan_frac is None else f"{100 * nan_frac:.3g}",
            e.get("outlier_count"),
            e.get("min"),
            e.get("mean"),
            e.get("max"),
        )))
    return markdown_table(
        ("variable", "kind", "units", "times", "gaps", "all-NaN times", "NaN", "NaN %",
         "outliers", "min", "mean", "max"),
        rows,
        align=_VARIABLE_ALIGN,
    )
