"""``benchmark.md``: the benchmark report as a readable page, from the Jinja2 template
``benchmark.md.j2`` (see :mod:`aurora_mlops._templates`); tables through
:func:`aurora_mlops._markdown.markdown_table`."""

from __future__ import annotations

from typing import Any

from aurora_mlops._templates import Table, render

__all__ = ["render_markdown"]

_HEADER = ["precision", "batch", "median (ms)", "p95 (ms)", "samples/s", "peak CUDA (MiB)",
           "peak RSS (MiB)"]


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.1f}"


def _ms(value: float) -> str:
    return f"{value * 1e3:,.2f}"


def _table(header: list[str], rows: list[list[str]]) -> Table:
    return Table(title="", intro="", header=header, rows=rows)


def _environment(env: dict[str, Any]) -> Table:
    cuda = env.get("cuda")
    cpu = env["cpu"]
    return _table(["", ""], [
        ["host", env["hostname"]],
        ["platform", env["platform"]],
        ["CPU", f"{cpu['model']}: {cpu['usable_cores']} usable of {cpu['logical_cores']} "
                f"logical cores, torch threads {cpu['torch_threads']}, ISA {cpu['isa']}"],
        ["memory", _mib(env["memory_total_bytes"]) + " MiB"],
        ["load (1 min) at start", str(env.get("load_average_1m"))],
        ["GPU", f"{cuda['name']} (compute {cuda['capability']}, "
                f"{_mib(cuda['total_memory_bytes'])} MiB), driver {cuda['driver']}, CUDA "
                f"{cuda['cuda_runtime']}" if cuda else "none used"],
        ["versions", ", ".join(f"{k} {v}" for k, v in env["versions"].items())],
    ])


def _model(model: dict[str, Any]) -> Table:
    return _table(["parameters", "trainable", "checkpoint", "sha256"], [[
        f"{model['parameters_total']:,}",
        f"{model['parameters_trainable']:,}",
        f"{model['checkpoint_bytes']:,} bytes ({_mib(model['checkpoint_bytes'])} MiB)",
        f"`{(model['checkpoint_sha256'] or 'not recorded')[:16]}`",
    ]])


def _figures(figures: list[dict[str, Any]], section: str, key: str) -> Table:
    rows = []
    for f in figures:
        if f["section"] != section:
            continue
        if "error" in f:
            rows.append([f["precision"], str(f["batch_size"]), f["error"], "", "", "", ""])
            continue
        rows.append([
            f["precision"], str(f["batch_size"]), _ms(f[key]["median"]), _ms(f[key]["p95"]),
            f"{f['samples_per_s']:,.2f}", _mib(f["cuda_peak_bytes"]),
            _mib(f["cpu_rss_peak_bytes"]),
        ])
    return _table(_HEADER, rows)


def _amp(rows: list[dict[str, Any]]) -> Table:
    return _table(
        ["section", "batch", "fp32 (ms)", "bf16 (ms)", "speedup", "CUDA peak ratio"],
        [[
            r["section"], str(r["batch_size"]), _ms(r["fp32"]), _ms(r["bf16_autocast"]),
            f"{r['speedup']:.2f}x",
            "n/a" if r["cuda_peak_ratio"] is None else f"{r['cuda_peak_ratio']:.2f}",
        ] for r in rows],
    )


def render_markdown(report: dict[str, Any]) -> str:
    """A readable page of ``report`` (the dict that ``benchmark.json`` holds)."""
    memory = report["memory"]
    context = {
        "r": report,
        "environment": _environment(report["env"]),
        "model": _model(report["model"]),
        "inference": _figures(report["figures"], "inference", "step_latency_s"),
        "training": _figures(report["figures"], "training", "step_time_s"),
        "amp": _amp(report["amp_comparison"]) if report["amp_comparison"] else None,
        "rss_peak": _mib(memory["cpu_rss_peak_bytes"]),
        "rss_now": _mib(memory["cpu_rss_now_bytes"]),
        "cuda_peak": (f"{_mib(memory['cuda_peak_bytes'])} MiB"
                      if memory["cuda_peak_bytes"] is not None else f"n/a ({memory['note']})"),
    }
    return render("benchmark.md.j2", context).rstrip() + "\n"
