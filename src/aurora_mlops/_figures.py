"""Pictures for the pages, drawn through matplotlib's object API.

A :class:`matplotlib.figure.Figure` is made directly and saved to PNG bytes: no ``pyplot``, no
global backend switch, nothing kept alive between calls, so library code never changes a
caller's matplotlib state.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["grid_margins", "lead_axis", "new_figure", "png_bytes", "safe_name", "skill_heatmap"]

#: Skill is coloured between -1 and +1 (numbers are printed unclipped).
_SKILL_RANGE = 1.0
#: Cells above this count get no printed number (they would not be legible).
_MAX_LABELLED_CELLS = 400


def safe_name(name: str) -> str:
    """``name`` with every run of characters other than letters, digits and ``_ . -`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` x ``height`` inches, outside any pyplot state."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def lead_axis(ax: Any, title: str) -> None:
    """Title, lead-time label, small ticks and a light grid: every lead-time curve's axes."""
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("lead (h)", fontsize=8)
    ax.tick_params(labelsize=7)
    # 2.25 under a 1e-4 above the axes rather than 0.000225: tick labels of any field's units
    # stay a few characters wide
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    ax.grid(alpha=0.3)


def png_bytes(fig: Figure, *, dpi: int = 90, tight: bool = True) -> bytes:
    """``fig`` as PNG bytes, cropped to what it draws (``tight``; matplotlib then lays the
    figure out twice, once to measure it) or as laid out (see :func:`grid_margins`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def grid_margins(fig: Figure, rows: int, cols: int) -> None:
    """Fixed margins, in inches, for a ``rows`` x ``cols`` grid of :func:`lead_axis` axes: room
    for the titles, tick labels and axis labels at their font sizes without measuring them
    (so ``png_bytes(fig, tight=False)`` draws the figure once instead of twice)."""
    width, height = fig.get_size_inches()
    left, right, bottom, top = 0.6, 0.12, 0.42, 0.3  # y tick labels; -; x label; title
    gap_w, gap_h = 0.55, 0.62  # between axes: the next one's tick labels; x label + title
    axes_w = (width - left - right - gap_w * (cols - 1)) / cols
    axes_h = (height - bottom - top - gap_h * (rows - 1)) / rows
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height, wspace=gap_w / axes_w, hspace=gap_h / axes_h)


def skill_heatmap(
    targets: Sequence[str],
    leads: Sequence[float],
    skill: Sequence[Sequence[float | None]],
    *,
    title: str,
    reference: str,
) -> bytes:
    """A scorecard: RMSE skill ``1 - RMSE / RMSE(reference)``, targets down, lead times across.

    Diverging colours (blue: better than the reference, red: worse, white: equal), clipped at
    +-1; each cell is labelled with its value when the grid is small enough to read. Missing
    values (``None`` or NaN) are grey.
    """
    import numpy as np

    grid = np.array([[np.nan if v is None else float(v) for v in row] for row in skill],
                    dtype=np.float64).reshape(len(targets), len(leads))
    fig = new_figure(1.6 + 0.55 * max(len(leads), 1), 1.2 + 0.3 * max(len(targets), 1))
    ax = fig.add_subplot()
    from matplotlib import colormaps

    cmap = colormaps["RdBu"].with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-_SKILL_RANGE, vmax=_SKILL_RANGE,
                   aspect="auto")
    ax.set_yticks(range(len(targets)), list(targets), fontsize=7)
    ax.set_xticks(range(len(leads)), [f"{h:g}" for h in leads], fontsize=7)
    ax.set_xlabel("lead time (h)", fontsize=8)
    ax.set_ylabel("variable", fontsize=8)
    ax.set_title(title, fontsize=9)
    if grid.size <= _MAX_LABELLED_CELLS:
        for (r, c), v in np.ndenumerate(grid):
            if math.isfinite(v):
                dark = abs(v) > 0.6 * _SKILL_RANGE
                ax.text(c, r, f"{v:+.2f}", ha="center", va="center", fontsize=6,
                        color="white" if dark else "black")
    bar = fig.colorbar(im, ax=ax, fraction=0.05)
    bar.set_label(f"RMSE skill vs {reference}", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return png_bytes(fig)
