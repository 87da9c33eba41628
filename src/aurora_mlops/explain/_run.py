"""``aurora-mlops explain``: attribute a trained model's forecast of one quantity to its inputs.

The workflow: load the ``train-trial`` output, check the target and lead against it, take
``max_inits`` windows evenly spaced over the dataset's test split, run Captum on each (see
:mod:`._attribute`), average over the windows and write ``explanation.json``,
``explanation.md``, ``explanation.html`` and the pictures into one folder, whole or not at all.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np

from aurora_mlops._io import atomic_dir, write_json
from aurora_mlops.explain._attribute import Method, WindowAttribution, attribute_window
from aurora_mlops.explain._target import ExplainTarget, lead_horizon, parse_target

__all__ = ["explain_model"]

log = logging.getLogger(__name__)


def explain_model(
    model: str | Path,
    data: str | Path,
    variant: str,
    *,
    out_dir: str | Path,
    target: str | None = None,
    lead: int = 1,
    method: Method = "both",
    max_inits: int = 4,
    tiles: tuple[int, int] = (4, 8),
    progress: bool = True,
) -> dict[str, Any]:
    """Explain a trial's forecast of ``target`` at ``lead`` over ``data``'s test split.

    Args:
        model: A ``train-trial`` output directory (or its ``model.ckpt``, or a sweep's dir).
        data: Canonical dataset path; windows come from its test split.
        variant: The variant the trial trained.
        out_dir: Folder for ``explanation.{json,md,html}`` and the PNG maps.
        target: ``VAR`` or ``VAR@LEVEL`` (default: the variant's first headline variable).
        lead: Lead in model steps.
        method: ``occlusion``, ``saliency`` or ``both``.
        max_inits: Windows explained (evenly spaced; their attributions are averaged).
        tiles: ``(rows, cols)`` of the region occlusion; ``rows`` latitude bands too.
        progress: Show a progress bar on stderr.

    Returns:
        The report written to ``explanation.json``.

    Raises:
        ConfigError: Captum missing, an unknown target or level, a lead beyond the model.
        CheckpointError: No ``train-trial`` output at ``model``, or another variant's.
        DataError: The test split is too short for the model's history and the lead.
    """
    from aurora_mlops.data import WindowDataset, open_dataset, split_times
    from aurora_mlops.evaluation import DEFAULT_LEAD_STEPS, extra_statics
    from aurora_mlops.explain._attribute import require_captum
    from aurora_mlops.training import load_trained
    from aurora_mlops.variables import static_store_name

    require_captum()
    trained = load_trained(model, variant)
    spec = trained.variant
    levels = trained.levels or spec.pressure_levels(trained.profile)
    goal = parse_target(
        target, surf_vars=spec.surf_vars, atmos_vars=spec.atmos_vars, levels=levels,
        lead=lead, horizon=lead_horizon(trained.params.rollout_steps, DEFAULT_LEAD_STEPS),
        default=spec.headline[0],
    )
    ds = open_dataset(data)
    windows = WindowDataset(ds, spec, split_times(int(ds.sizes["time"])).test,
                            history=trained.history, rollout_steps=lead, levels=list(levels))
    items = sorted({int(i) for i in np.linspace(0, len(windows) - 1, max_inits).round()})
    extra = extra_statics(trained, np.asarray(ds[static_store_name("lsm")].values))
    parts = _attribute_all(trained.model, windows, items, extra, goal, method, tiles, progress)
    report = _report(trained, data, windows, items, goal, method, tiles, parts)
    _write(Path(out_dir), report, parts, windows)
    return report


def _attribute_all(
    model: Any, windows: Any, items: list[int], extra: dict[str, Any], goal: ExplainTarget,
    method: Method, tiles: tuple[int, int], progress: bool,
) -> list[WindowAttribution]:
    from aurora_mlops._progress import progress_bar

    out = []
    with progress_bar(unit="windows", enabled=progress) as bar:
        task = bar.add_task(f"explaining {goal.label}", total=len(items))
        for i in items:
            batch, _ = windows.batch([i])
            batch.static_vars.update(extra)
            out.append(attribute_window(model, batch, goal, method=method, tiles=tiles))
            bar.advance(task)
    return out


def mean_of(parts: list[WindowAttribution], field: str) -> np.ndarray | None:
    """The windows' mean of one :class:`WindowAttribution` field (``None`` if not computed)."""
    values = [getattr(p, field) for p in parts]
    return None if values[0] is None else np.mean(np.stack(values), axis=0)


def _shares(values: np.ndarray | None) -> list[float | None]:
    if values is None:
        return []
    total = float(values.sum())
    return [float(v) / total if total > 0 else 0.0 for v in values]


def _report(
    trained: Any, data: str | Path, windows: Any, items: list[int], goal: ExplainTarget,
    method: Method, tiles: tuple[int, int], parts: list[WindowAttribution],
) -> dict[str, Any]:
    """``explanation.json``: the target, the settings and the per-input table, ranked."""
    import captum

    from aurora_mlops.training import checkpoint_record
    from aurora_mlops.variables import VARIABLES

    occ, sal = mean_of(parts, "occlusion"), mean_of(parts, "saliency")
    ranked_by = "occlusion" if occ is not None else "saliency"
    key = occ if occ is not None else sal
    assert key is not None  # method is one of METHODS
    order = np.argsort(-key, kind="stable")
    occ_share, sal_share = _shares(occ), _shares(sal)
    rows = []
    for rank, k in enumerate(order, start=1):
        row: dict[str, Any] = {"rank": rank, "input": parts[0].names[k]}
        if occ is not None:
            row |= {"occlusion": float(occ[k]), "occlusion_share": occ_share[k]}
        if sal is not None:
            row |= {"saliency": float(sal[k]), "saliency_share": sal_share[k]}
        rows.append(row)
    kind: Literal["surf", "atmos"] = "surf" if goal.level is None else "atmos"
    lat = windows.lat.numpy()
    bands = mean_of(parts, "bands")
    edges = [(float(lat[r[0]]), float(lat[r[-1]]))
             for r in np.array_split(np.arange(len(lat)), tiles[0])]
    return {
        "model": {**checkpoint_record(trained), "variant": trained.variant.name,
                  "profile": trained.profile},
        "data": str(data),
        "windows": [windows.time_of(windows.init_index(i)).strftime("%Y-%m-%dT%H:%M")
                    for i in items],
        "target": {"variable": goal.variable, "level": goal.level, "lead": goal.lead,
                   "lead_hours": goal.lead * trained.variant.timestep_hours,
                   "label": goal.label, "units": VARIABLES[(kind, goal.variable)].units},
        "method": method,
        "ranked_by": ranked_by,
        "captum": captum.__version__,
        "tiles": list(tiles),
        "inputs": rows,
        "bands": [] if bands is None else [
            {"lat_north": a, "lat_south": b, "occlusion": float(v)}
            for (a, b), v in zip(edges, bands, strict=True)],
    }


def _write(out: Path, report: dict[str, Any], parts: list[WindowAttribution],
           windows: Any) -> None:
    from aurora_mlops.explain._page import explanation_pages

    grids = (windows.lat.numpy(), windows.lon.numpy())
    maps = {"saliency_maps": mean_of(parts, "saliency_maps"),
            "region_map": mean_of(parts, "region_map")}
    with atomic_dir(out) as tmp:
        pages, pictures = explanation_pages(report, parts[0].names, maps, grids)
        report["files"] = sorted([*pages, *(p.name for p in pictures), "explanation.json"])
        for name, text in pages.items():
            (tmp / name).write_text(text, encoding="utf-8")
        for p in pictures:
            (tmp / p.name).write_bytes(p.png)
        write_json(tmp / "explanation.json", report)
    log.info("wrote the explanation of %s to %s", report["target"]["label"], out)
