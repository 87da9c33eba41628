"""The Markdown form of a benchmark report, and atomic writes of both reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aurora_mlops._io import atomic_write

__all__ = ["render_markdown", "write_text_atomic"]


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` so that ``path`` appears only complete (see :mod:`aurora_mlops._io`)."""
    return atomic_write(path, text)


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.1f}"


def _ms(value: float) -> str:
    return f"{value * 1e3:,.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """A readable page of ``report`` (the dict that ``benchmark.json`` holds)."""
    env, model, dev, inp = report["env"], report["model"], report["device"], report["input"]
    settings, memory = report["settings"], report["memory"]
    figures = report["figures"]
    out = [
        f"# Benchmark: {model['variant']} ({model['profile']} profile)",
        "",
        f"Checkpoint `{model['path']}`, measured {env['timestamp_utc']} on `{dev['type']}`.",
        "",
        f"Environment `{env['id']}`: {env['summary']}. Every figure below was measured there; "
        "`benchmark.json` repeats the id in each figure.",
        "",
    ]
    if dev.get("note"):
        out += [f"> **{dev['note']}**", ""]

    cuda = env.get("cuda")
    env_rows = [
        ["host", env["hostname"]],
        ["platform", env["platform"]],
        [
            "CPU",
            f"{env['cpu']['model']}: {env['cpu']['usable_cores']} usable of "
            f"{env['cpu']['logical_cores']} logical cores, torch threads "
            f"{env['cpu']['torch_threads']}, ISA {env['cpu']['isa']}",
        ],
        ["memory", _mib(env["memory_total_bytes"]) + " MiB"],
        ["load (1 min) at start", str(env.get("load_average_1m"))],
        [
            "GPU",
            f"{cuda['name']} (compute {cuda['capability']}, {_mib(cuda['total_memory_bytes'])} "
            f"MiB), driver {cuda['driver']}, CUDA {cuda['cuda_runtime']}"
            if cuda
            else "none used",
        ],
        ["versions", ", ".join(f"{k} {v}" for k, v in env["versions"].items())],
    ]
    out += ["## Environment", "", *_table(["", ""], env_rows), ""]

    out += [
        "## Model",
        "",
        *_table(
            ["parameters", "trainable", "checkpoint", "sha256"],
            [
                [
                    f"{model['parameters_total']:,}",
                    f"{model['parameters_trainable']:,}",
                    f"{model['checkpoint_bytes']:,} bytes ({_mib(model['checkpoint_bytes'])} MiB)",
                    f"`{(model['checkpoint_sha256'] or 'not recorded')[:16]}`",
                ]
            ],
        ),
        "",
        f"Input: {inp['source']} windows, grid {inp['grid'][0]}x{inp['grid'][1]} "
        f"(from {inp['grid_source']}), levels {inp['levels']}, history {inp['history']}.",
        "",
    ]

    def rows_for(section: str, key: str) -> list[list[str]]:
        rows = []
        for f in figures:
            if f["section"] != section:
                continue
            if "error" in f:
                rows.append([f["precision"], str(f["batch_size"]), f["error"], "", "", "", ""])
                continue
            rows.append(
                [
                    f["precision"],
                    str(f["batch_size"]),
                    _ms(f[key]["median"]),
                    _ms(f[key]["p95"]),
                    f"{f['samples_per_s']:,.2f}",
                    _mib(f["cuda_peak_bytes"]),
                    _mib(f["cpu_rss_peak_bytes"]),
                ]
            )
        return rows

    header = ["precision", "batch", "median (ms)", "p95 (ms)", "samples/s", "peak CUDA (MiB)",
              "peak RSS (MiB)"]
    out += [
        "## Inference latency per rollout step",
        "",
        f"{settings['warmup']} warm-up roll-outs, then {settings['repeats']} roll-outs of "
        f"{settings['rollout_steps']} steps; median and p95 over all timed steps. samples/s = "
        "batch / median step latency.",
        "",
        *_table(header, rows_for("inference", "step_latency_s")),
        "",
        "## Training step (roll-out, loss, backward, AdamW)",
        "",
        f"{settings['warmup']} warm-up and {settings['train_steps']} timed optimiser steps of a "
        f"{settings['train_rollout_steps']}-step roll-out on a copy of the checkpoint. "
        "samples/s = batch / median step time.",
        "",
        *_table(header, rows_for("training", "step_time_s")),
        "",
    ]

    amp = report["amp_comparison"]
    if amp:
        out += [
            "## AMP: bf16 autocast against fp32",
            "",
            *_table(
                ["section", "batch", "fp32 (ms)", "bf16 (ms)", "speedup", "CUDA peak ratio"],
                [
                    [
                        r["section"],
                        str(r["batch_size"]),
                        _ms(r["fp32"]),
                        _ms(r["bf16_autocast"]),
                        f"{r['speedup']:.2f}x",
                        "n/a" if r["cuda_peak_ratio"] is None else f"{r['cuda_peak_ratio']:.2f}",
                    ]
                    for r in amp
                ],
            ),
            "",
            "speedup = fp32 median / bf16 median (above 1: autocast is faster).",
            "",
        ]
    else:
        out += ["AMP comparison not run (one precision measured).", ""]

    out += [
        "## Memory",
        "",
        f"- peak CPU RSS of the process (`ru_maxrss`): {_mib(memory['cpu_rss_peak_bytes'])} MiB; "
        f"RSS at the end: {_mib(memory['cpu_rss_now_bytes'])} MiB.",
        "- peak CUDA memory (`torch.cuda.max_memory_allocated`, reset per measurement): "
        + (
            f"{_mib(memory['cuda_peak_bytes'])} MiB."
            if memory["cuda_peak_bytes"] is not None
            else f"n/a ({memory['note']})."
        ),
        "- peak RSS in the tables is the process's high-water mark at the end of that "
        "measurement (inference runs first, so it grows section by section).",
        "",
    ]
    if report.get("notes"):
        out += ["## Notes", "", *(f"- {note}" for note in report["notes"])]
    return "\n".join(out).rstrip() + "\n"
