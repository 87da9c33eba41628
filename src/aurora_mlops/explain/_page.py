"""The explanation's pages and pictures: the ranked table, the latitude bands, a bar chart of
each input's share, the saliency maps of the leading inputs and the region-occlusion map."""

from __future__ import annotations

from typing import Any

import numpy as np

from aurora_mlops._figures import new_figure, png_bytes
from aurora_mlops._templates import Picture, Table, render, tidy_markdown

__all__ = ["explanation_pages"]

#: Saliency maps drawn (the leading inputs by saliency).
MAP_COUNT = 6
#: Inputs shown in the bar chart.
BAR_COUNT = 15


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _tables(r: dict[str, Any]) -> tuple[Table, Table]:
    units = r["target"]["units"]
    header = ["rank", "input"]
    if r["method"] in ("occlusion", "both"):
        header += [f"occlusion ({units})", "occlusion share"]
    if r["method"] in ("saliency", "both"):
        header += [f"saliency ({units})", "saliency share"]
    rows = []
    for row in r["inputs"]:
        cells = [str(row["rank"]), row["input"]]
        if "occlusion" in row:
            cells += [_num(row["occlusion"]), _pct(row["occlusion_share"])]
        if "saliency" in row:
            cells += [_num(row["saliency"]), _pct(row["saliency_share"])]
        rows.append(cells)
    inputs = Table(title="Contribution per input",
                   intro=f"Ranked by {r['ranked_by']}; shares are of the column's total.",
                   header=header, rows=rows)
    bands = Table(
        title="Latitude bands",
        intro=f"RMS change of {r['target']['label']} ({units}) when every input in the band "
        "is occluded.",
        header=["band", f"occlusion ({units})"],
        rows=[[f"{b['lat_north']:.0f} to {b['lat_south']:.0f} deg", _num(b["occlusion"])]
              for b in r["bands"]],
    )
    return inputs, bands


def _bars(r: dict[str, Any]) -> bytes:
    rows = r["inputs"][:BAR_COUNT]
    fig = new_figure(6.0, 0.3 * len(rows) + 1.2)
    ax = fig.add_subplot(1, 1, 1)
    y = np.arange(len(rows))
    for k, (col, colour) in enumerate((("occlusion_share", "tab:blue"),
                                       ("saliency_share", "tab:orange"))):
        if col in rows[0]:
            ax.barh(y + 0.4 * k, [row[col] for row in rows], height=0.4, color=colour,
                    label=col.replace("_share", ""))
    ax.set_yticks(y + 0.2, [row["input"] for row in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("share of the total", fontsize=8)
    ax.set_title(f"{r['target']['label']} at +{r['target']['lead_hours']} h: inputs", fontsize=9)
    ax.legend(fontsize=7)
    return png_bytes(fig)


def _maps(r: dict[str, Any], names: list[str], saliency: np.ndarray,
          grids: tuple[np.ndarray, np.ndarray]) -> bytes:
    score = {row["input"]: row["saliency"] for row in r["inputs"]}
    leading = sorted(names, key=lambda n: -score[n])[:MAP_COUNT]
    rows = (len(leading) + 2) // 3
    fig = new_figure(3.2 * min(3, len(leading)), 2.0 * rows)
    for k, name in enumerate(leading):
        _draw(fig, fig.add_subplot(rows, 3, k + 1), saliency[names.index(name)], grids,
              f"{name}: |grad| x std")
    return png_bytes(fig)


def _draw(fig: Any, ax: Any, field: np.ndarray, grids: tuple[np.ndarray, np.ndarray],
          title: str) -> None:
    lat, lon = grids
    mesh = ax.pcolormesh(lon, lat[: field.shape[0]], field, shading="nearest", cmap="viridis")
    fig.colorbar(mesh, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)


def explanation_pages(
    r: dict[str, Any], names: list[str], maps: dict[str, np.ndarray | None],
    grids: tuple[np.ndarray, np.ndarray],
) -> tuple[dict[str, str], list[Picture]]:
    """``explanation.md`` and ``explanation.html`` and the PNGs they show.

    Args:
        r: The report (see :func:`aurora_mlops.explain.explain_model`).
        names: The inputs in the order of the saliency maps' first axis.
        maps: ``saliency_maps`` ``(inputs, h, w)`` and ``region_map`` ``(h, w)``, or ``None``.
        grids: ``(lat, lon)`` of the maps (degrees).
    """
    t = r["target"]
    pictures = [Picture(name="contributions.png", caption="share of each input", png=_bars(r))]
    if maps["saliency_maps"] is not None:
        pictures.append(Picture(name="saliency.png", caption="saliency maps of the leading "
                                "inputs", png=_maps(r, names, maps["saliency_maps"], grids)))
    if maps["region_map"] is not None:
        fig = new_figure(6.0, 3.2)
        _draw(fig, fig.add_subplot(1, 1, 1), maps["region_map"], grids,
              f"RMS change of {t['label']} ({t['units']}) when the tile is occluded")
        pictures.append(Picture(name="regions.png", caption="region occlusion",
                                png=png_bytes(fig)))
    inputs, bands = _tables(r)
    top = r["inputs"][0]
    context = {
        "r": r, "inputs": inputs, "bands": bands, "pictures": pictures,
        "summary": f"The forecast of {t['label']} at lead {t['lead']} (+{t['lead_hours']} h) "
        f"depends most on {top['input']} (by {r['ranked_by']}).",
        "method_text": "Occlusion (Captum FeatureAblation): each input field, or every input "
        "in one tile or latitude band, is replaced by its own mean over the window, and the "
        "score is the latitude-weighted RMS change of the forecast target. Saliency (Captum "
        "Saliency): the absolute gradient of the target's latitude-weighted mean with respect "
        "to each input point, times the input's standard deviation, summed over the field.",
    }
    pages = {"explanation.md": tidy_markdown(render("explanation.md.j2", context)),
             "explanation.html": render("explanation.html.j2", context)}
    return pages, pictures
