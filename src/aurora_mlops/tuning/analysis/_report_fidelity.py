"""The Fidelity section of ``tune analyze``'s page (:mod:`._fidelity`): its plot and tables.

Cheap to import: matplotlib is imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aurora_mlops._markdown import markdown_table
from aurora_mlops.tuning.analysis._model import RHO_ALIKE, FidelityAnalysis, SweepAnalysis
from aurora_mlops.tuning.analysis._page_parts import _figure, _rho

__all__ = ["fidelity_section", "plot_fidelity"]


def plot_fidelity(a: SweepAnalysis, f: FidelityAnalysis, path: Path) -> None:
    """Left: each epoch's rank correlation with the full budget. Right, per parameter that acts
    late: each value's mean rank by epoch (lower is better)."""
    fig = _figure(7.0 + 3.5 * min(len(f.late), 2), 4.2)
    axes = fig.subplots(1, 1 + min(len(f.late), 2), squeeze=False)[0]
    ax = axes[0]
    xs = [c.low for c in f.by_epoch]
    ax.plot(xs, [float("nan") if c.rho is None else c.rho for c in f.by_epoch], marker=".",
            color="C0")
    ax.axhline(RHO_ALIKE, color="grey", linestyle="--", linewidth=1)
    if f.alike_from is not None:
        ax.axvline(f.alike_from, color="C2", linestyle=":", linewidth=1.5,
                   label=f"alike from {f.alike_from}")
        ax.legend(fontsize="small")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epochs (a rung stopping there)")
    ax.set_ylabel(f"Spearman rho with the full {f.full}")
    ax.set_title(f"{a.experiment}: {f.curves} full-length trials", fontsize="small")
    for ax, p in zip(axes[1:], f.late, strict=False):
        for v in p.values:
            ax.plot(range(1, f.full + 1), v.ranks, marker=".",
                    label=f"{p.name}={v.value} ({v.count})",
                    linewidth=2.2 if v.value == p.best else 1.2)
        ax.axvline(p.leads_from, color="grey", linestyle=":", linewidth=1)
        ax.invert_yaxis()  # the best rank on top
        ax.set_xlabel("epochs")
        ax.set_ylabel(f"mean rank of {f.curves} (1 = best)")
        ax.set_title(f"{p.name} acts late", fontsize="small")
        ax.legend(fontsize="x-small")
    fig.savefig(path)


def fidelity_section(f: FidelityAnalysis) -> dict[str, Any]:
    """What the template shows of a full-budget sweep's fidelity."""
    late = [[p.name, v.value, v.count, f"{v.ranks[0]:.1f}", f"{v.ranks[p.leads_from - 1]:.1f}",
             f"{v.ranks[-1]:.1f}"] for p in f.late for v in p.values]
    return {"f": f,
            "by_epoch": markdown_table(["epochs", "full budget", "trials", "Spearman rho", "p"],
                                       [_rho(c) for c in f.by_epoch]),
            "late": markdown_table(["parameter", "value", "trials", "mean rank after 1",
                                    "where the best leads", "at the full budget"], late)
            if late else ""}
