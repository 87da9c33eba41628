"""The files of ``tune analyze``: ``analysis.json``, ``analysis.md``, PNG plots, ``next-spec.yaml``.

The Markdown page comes from the Jinja2 template ``templates/analysis.md.j2`` (package data),
its tables from :func:`aurora_mlops._markdown.markdown_table`; the plots are drawn through
matplotlib's ``Figure`` API on the Agg canvas, never through pyplot's global state.

Cheap to import: jinja2, matplotlib, numpy and yaml are imported inside the functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aurora_mlops._io import atomic_write
from aurora_mlops._markdown import markdown_table
from aurora_mlops.tuning.analysis._model import (
    ELITE_FRACTION,
    MIN_ELITES,
    ParameterAnalysis,
    RungAnalysis,
    SweepAnalysis,
)
from aurora_mlops.tuning.analysis._page_parts import _figure, _rho
from aurora_mlops.tuning.analysis._report_fidelity import fidelity_section, plot_fidelity
from aurora_mlops.tuning.analysis._stats import _shown
from aurora_mlops.tuning.analysis._study_read import _label
from aurora_mlops.tuning.katib._experiment import Parameter

__all__ = ["render_markdown", "write_analysis"]

_TEMPLATES = Path(__file__).parent / "templates"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)



def _plot_history(a: SweepAnalysis, path: Path) -> None:
    fig = _figure()
    ax = fig.add_subplot()
    done = sorted(a.completed, key=lambda t: t.number)
    xs = [t.number for t in done]
    ys = [float(t.value or 0.0) for t in done]
    pick = min if a.direction == "minimize" else max
    best = [pick(ys[: i + 1]) for i in range(len(ys))]
    elite = set(a.elites)
    ax.scatter(xs, ys, s=22, color="C0", label="completed")
    ax.scatter([t.number for t in done if t.number in elite],
               [float(t.value or 0.0) for t in done if t.number in elite],
               s=50, facecolors="none", edgecolors="C3", label=f"elite (top {a.elite_count})")
    ax.step(xs, best, where="post", color="C3", label="best so far")
    for state, marker, color in (("pruned", "|", "C1"), ("failed", "x", "C7"),
                                 ("killed", "x", "C5")):
        numbers = [t.number for t in a.trials if t.state == state]
        if numbers:
            ax.scatter(numbers, [0.03] * len(numbers), marker=marker, color=color,
                       transform=ax.get_xaxis_transform(), label=f"{state} (no value)")
    numbers = [t.number for t in a.trials]
    ax.set_xlim(min(numbers) - 0.5, max(numbers) + 0.5)  # the markers above do not autoscale
    ax.set_xlabel("trial number")
    ax.set_ylabel(a.metric)
    ax.set_title(f"{a.experiment}: {a.metric} ({a.direction})")
    ax.legend(fontsize="small")
    fig.savefig(path)



def _plot_rungs(a: SweepAnalysis, r: RungAnalysis, path: Path) -> None:
    """The objective against epochs per configuration: rung budgets as vertical lines, the
    promoted chains in colour, the others grey, the shipped one marked."""
    fig = _figure()
    ax = fig.add_subplot()
    drawn: list[float] = []
    palette = iter(["C0", "C1", "C2", "C4", "C6", "C8", "C9", "C5"] * len(r.configurations))
    for c in sorted(r.configurations, key=lambda c: (len(c.trials), c.shipped)):
        xs, ys = ((list(range(1, len(c.history) + 1)), list(c.history)) if c.history else
                  ([b for b, v in zip(r.budgets, c.values, strict=False) if v is not None],
                   [v for v in c.values if v is not None]))
        if not ys:
            continue
        drawn += ys
        promoted = len(c.trials) > 1
        style: dict[str, Any] = (
            {"color": "C3", "linewidth": 2.4, "zorder": 4} if c.shipped else
            {"color": next(palette), "linewidth": 1.6, "zorder": 3} if promoted else
            {"color": "0.6", "linewidth": 0.9, "alpha": 0.7, "zorder": 2})
        ax.plot(xs, ys, marker="." if len(xs) > 1 else "o", label=(
            f"{c.name} (shipped)" if c.shipped else c.name if promoted else None), **style)
        if c.shipped:
            ax.scatter([xs[-1]], [ys[-1]], marker="*", s=180, color="C3", zorder=5)
    for k, budget in enumerate(r.budgets):
        ax.axvline(budget, color="grey", linestyle="--", linewidth=1)
        ax.text(budget, 1.0, f" rung {k}", transform=ax.get_xaxis_transform(), va="top",
                fontsize="small", color="grey")
    ax.plot([], [], color="0.6", linewidth=0.9, label="stopped at rung 0")
    if drawn and min(drawn) > 0 and max(drawn) / min(drawn) > 10:
        ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(r.resource)
    ax.set_ylabel(a.metric + (" (log)" if ax.get_yscale() == "log" else ""))
    ax.set_title(f"{r.chain}: successive halving, eta {r.eta}", fontsize="small")
    ax.legend(fontsize="x-small")
    fig.savefig(path)



def _plot_numeric(a: SweepAnalysis, pa: ParameterAnalysis, path: Path) -> None:
    fig = _figure(6.0, 4.2)
    ax = fig.add_subplot()
    elite = set(a.elites)
    done = [t for t in a.completed if pa.name in t.params]
    for flag, color, label in ((False, "C0", "completed"), (True, "C3", "elite")):
        pts = [(float(t.params[pa.name]), float(t.value or 0.0)) for t in done
               if (t.number in elite) is flag]
        if pts:
            ax.scatter(*zip(*pts, strict=True), s=22, color=color, label=label)
    for x in (pa.low, pa.high):
        if x is not None:
            ax.axvline(x, color="grey", linestyle=":", linewidth=1)
    ax.plot([], [], color="grey", linestyle=":", label="current range")
    if pa.proposed:
        for key, now in (("min", pa.low), ("max", pa.high)):
            bound = pa.proposed.get(key, now)
            if bound is not None:
                ax.axvline(float(bound), color="C2", linestyle="--", linewidth=1)
        ax.plot([], [], color="C2", linestyle="--", label="proposed range")
    if pa.log:
        ax.set_xscale("log")
    ax.set_xlabel(pa.name + (" (log)" if pa.log else ""))
    ax.set_ylabel(a.metric)
    ax.set_title(pa.direction, fontsize="small")
    ax.legend(fontsize="small")
    fig.savefig(path)



def _plot_categorical(a: SweepAnalysis, pa: ParameterAnalysis, path: Path) -> None:
    import numpy as np

    fig = _figure(6.0, 4.2)
    ax = fig.add_subplot()
    labels = [c.value for c in pa.categories]
    probe = Parameter(name=pa.name, type=pa.type, values=tuple(labels))  # type: ignore[arg-type]
    groups: list[list[float]] = [[] for _ in labels]
    for t in a.completed:
        if pa.name in t.params:
            label = _label(probe, t.params[pa.name])
            if label in labels:
                groups[labels.index(label)].append(float(t.value or 0.0))
    positions = list(range(1, len(labels) + 1))
    tried = [(pos, g) for pos, g in zip(positions, groups, strict=True) if g]
    if tried:
        ax.boxplot([g for _, g in tried], positions=[pos for pos, _ in tried], widths=0.5,
                   showfliers=False)
    rng = np.random.default_rng(0)
    for pos, g in zip(positions, groups, strict=True):
        ax.scatter(pos + rng.uniform(-0.12, 0.12, len(g)), g, s=16, color="C0", alpha=0.7)
    ax.set_xticks(positions, [f"{lab}\n(n={len(g)})" for lab, g in zip(labels, groups,
                                                                     strict=True)])
    ax.set_xlabel(pa.name)
    ax.set_ylabel(a.metric)
    ax.set_title(pa.best_vs_worst, fontsize="x-small")
    fig.savefig(path)



def _space_text(space: Mapping[str, Any] | None) -> str:
    if not space:
        return "unchanged"
    return ", ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in space.items())



def _trials_line(c: Mapping[str, int]) -> str:
    return (f"{c['complete']} completed, {c['pruned']} early-stopped, {c['failed']} failed, "
            f"{c['killed']} killed, {c['running'] + c['waiting']} running or waiting"
            + (f", {c['interrupted']} interrupted and re-queued" if c["interrupted"] else ""))


def _numeric_table(p: ParameterAnalysis) -> str:
    iqr = "-" if p.elite_iqr is None else f"{p.elite_iqr:.0%}"
    return markdown_table(["", ""], [
        ["range", f"{_shown(p.low)} .. {_shown(p.high)}{' (log)' if p.log else ''}"],
        ["completed trials", p.trials],
        ["importance", _shown(p.importance)],
        ["direction", p.direction],
        ["elites", f"{_shown(p.elite_low)} .. {_shown(p.elite_high)}, IQR {iqr} of the "
                   f"{'log ' if p.log else ''}range"],
        ["elites near min / max", f"{p.elites_at_lower} / {p.elites_at_upper}"],
        ["proposed", _space_text(p.proposed)],
    ])


def _section(a: SweepAnalysis, p: ParameterAnalysis, plots: Mapping[str, str]) -> dict[str, Any]:
    """What the template shows of one parameter."""
    numeric = p.type in ("double", "int")
    found = [*p.notes, *(s.message if s.action == "keep" else f"{s.action}: {s.message}"
                         for s in a.suggestions if s.parameter == p.name)]
    return {
        "name": p.name,
        "direction": "" if numeric else p.direction,
        "table": _numeric_table(p) if numeric else markdown_table(
            ["value", "trials", "elites", "mean", "median", "best"],
            [[c.value, c.count, c.elites, _shown(c.mean), _shown(c.median), _shown(c.best)]
             for c in p.categories]),
        "proposed": "" if numeric or not p.proposed else _space_text(p.proposed),
        "found": found,
        "plot": plots.get(p.name, ""),
    }


def _rungs_section(r: RungAnalysis) -> dict[str, Any]:
    """What the template shows of a successive-halving chain."""
    corr = ["lower budget", "higher budget", "configurations", "Spearman rho", "p"]
    return {
        "r": r, "budgets": ", ".join(str(b) for b in r.budgets),
        "rungs": markdown_table(
            ["rung", "Experiment", r.resource, "trials", "succeeded", "promoted"],
            [[k.rung, k.experiment, k.budget, k.trials, k.succeeded,
              ", ".join(k.promoted) or "-"] for k in r.rungs]),
        "configurations": markdown_table(
            ["configuration", "parameters", f"stopped at ({r.resource})", "value there",
             "trials"],
            [[c.name + (" (shipped)" if c.shipped else ""),
              ", ".join(f"{k}={v}" for k, v in c.params.items()), c.stopped_at,
              _shown(c.value), " -> ".join(c.trials)]
             for c in sorted(r.configurations, key=lambda c: (-len(c.trials), c.name))]),
        "between": markdown_table(corr, [_rho(c) for c in r.between_rungs]),
        "by_budget": markdown_table(corr, [_rho(c) for c in r.by_budget])
        if r.by_budget else "",
    }


def render_markdown(a: SweepAnalysis, plots: Mapping[str, str], wrote_spec: bool) -> str:
    """``analysis.md``: the summary, the suggestions, one section per parameter, the notes.

    Args:
        a: The analysis.
        plots: Plot file name per parameter name, and ``history`` for the trials over time.
        wrote_spec: Whether ``next-spec.yaml`` was written (the page then names it).
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=False,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters["shown"] = _shown
    best = ", ".join(f"{k}={_shown(v) if isinstance(v, float) else v}"
                     for k, v in a.best.params.items())
    return env.get_template("analysis.md.j2").render(
        a=a, trials=_trials_line(a.counts), best=best, elite_fraction=f"{ELITE_FRACTION:.0%}",
        min_elites=MIN_ELITES,
        actionable=[s for s in a.suggestions if s.action != "keep"],
        kept=[s for s in a.suggestions if s.action == "keep"],
        next_spec_name=a.next_spec["metadata"]["name"]
        if wrote_spec and a.next_spec is not None else "",
        parameters_table=markdown_table(
            ["parameter", "type", "importance", "direction"],
            [[p.name, f"{p.type}{' (log)' if p.log else ''}", _shown(p.importance),
              p.direction or p.best_vs_worst or "-"] for p in a.parameters]),
        sections=[_section(a, p, plots) for p in a.parameters], history=plots["history"],
        rungs=_rungs_section(a.rungs) if a.rungs else None, rungs_plot=plots.get("rungs", ""),
        fidelity=fidelity_section(a.fidelity) if a.fidelity else None,
        fidelity_plot=plots.get("fidelity", ""))


def _plot_all(analysis: SweepAnalysis, out: Path) -> dict[str, str]:
    """Draw the history and one plot per parameter with trials; their file names by key."""
    plots = {"history": "history.png"}
    _plot_history(analysis, out / plots["history"])
    if analysis.rungs is not None:
        plots["rungs"] = "rungs.png"
        _plot_rungs(analysis, analysis.rungs, out / plots["rungs"])
    if analysis.fidelity is not None:
        plots["fidelity"] = "fidelity.png"
        plot_fidelity(analysis, analysis.fidelity, out / plots["fidelity"])
    for pa in analysis.parameters:
        if not pa.trials:
            continue
        plots[pa.name] = f"param-{_slug(pa.name)}.png"
        if pa.type in ("double", "int"):
            _plot_numeric(analysis, pa, out / plots[pa.name])
        else:
            _plot_categorical(analysis, pa, out / plots[pa.name])
    return plots


def write_analysis(analysis: SweepAnalysis, out_dir: str | Path) -> list[Path]:
    """Write ``analysis.json``, ``analysis.md``, the PNG plots and ``next-spec.yaml``.

    ``next-spec.yaml`` is written only when there is a spec and the proposal adds no
    ``katib check`` problem to it. Returns the paths written.
    """
    import yaml

    from aurora_mlops.tuning.katib._render import _Dumper

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plots = _plot_all(analysis, out)
    wrote_spec = analysis.next_spec is not None and not analysis.next_spec_problems
    if wrote_spec:
        header = (f"# Proposed by `aurora-mlops tune analyze` from the sweep {analysis.experiment} "
                  f"({analysis.counts['complete']} completed trials).\n"
                  "# Review it against analysis.md before running it.\n")
        written.append(atomic_write(out / "next-spec.yaml", header + yaml.dump(
            analysis.next_spec, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
            width=4096)))
    written.insert(0, atomic_write(out / "analysis.json", json.dumps(
        analysis.to_dict(), indent=2, allow_nan=False) + "\n"))
    written.insert(1, atomic_write(out / "analysis.md",
                                   render_markdown(analysis, plots, wrote_spec)))
    written += [out / name for name in plots.values()]
    return written
