"""What a comparison report is built from: entries, the ``--entry`` syntax, ``--from-dir``.

An entry is one variant scored on one dataset: the ``--out`` directory of ``aurora-mlops
evaluate`` (required), of ``aurora-mlops benchmark`` and of ``aurora-mlops tune`` (optional).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from aurora_mlops.errors import ConfigError
from aurora_mlops.variants import VARIANTS

__all__ = [
    "BENCH_FILE",
    "ENTRY_SYNTAX",
    "EVAL_FILE",
    "SWEEP_FILE",
    "ReportEntry",
    "discover_entries",
    "parse_entry",
]

logger = logging.getLogger(__name__)

#: What ``--entry`` looks like (repeated in every parse error).
ENTRY_SYNTAX = "VARIANT[:DATASET]=EVAL_DIR[,bench=DIR][,sweep=DIR]"
#: The file each kind of directory must hold.
EVAL_FILE, BENCH_FILE, SWEEP_FILE = "metrics.json", "benchmark.json", "best.json"

_DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True, kw_only=True)
class ReportEntry:
    """One variant on one dataset.

    Attributes:
        variant: Registry name of the variant (``medium-res`` ...).
        dataset: Label of the test set (``era5``, ``hres-t0``, ``cams``, ``sample`` ...), or
            ``None`` when there is only one per variant; letters, digits and ``_ . + -``.
        eval_dir: Output directory of ``aurora-mlops evaluate`` (holds ``metrics.json``).
        bench_dir: Output directory of ``aurora-mlops benchmark`` (``benchmark.json``), if any.
        sweep_dir: Work directory of ``aurora-mlops tune`` (``best.json``), if any.
    """

    variant: str
    dataset: str | None
    eval_dir: Path
    bench_dir: Path | None = None
    sweep_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(
                f"unknown variant {self.variant!r} in a report entry: choose one of "
                f"{', '.join(VARIANTS)}"
            )
        if self.dataset is not None and not _DATASET.match(self.dataset):
            raise ConfigError(
                f"dataset label {self.dataset!r} must start with a letter or digit and hold only "
                "letters, digits and _ . + -"
            )

    @property
    def label(self) -> str:
        """``variant / dataset`` (or the variant alone), as tables and plots name the entry."""
        return self.variant if self.dataset is None else f"{self.variant} / {self.dataset}"


def parse_entry(text: str) -> ReportEntry:
    """Parse one ``--entry`` value (:data:`ENTRY_SYNTAX`; paths cannot contain commas).

    Raises:
        ConfigError: The text does not follow the syntax, or names an unknown variant.
    """
    head, sep, rest = text.partition("=")
    parts = rest.split(",")
    if not sep or not head or not parts[0]:
        raise ConfigError(f"--entry {text!r} must look like {ENTRY_SYNTAX}")
    variant, colon, dataset = head.partition(":")
    if colon and not dataset:
        raise ConfigError(f"--entry {text!r} has an empty DATASET after ':'; drop the ':' or "
                          f"name the dataset ({ENTRY_SYNTAX})")
    optional: dict[str, Path] = {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if key not in ("bench", "sweep") or not eq or not value:
            raise ConfigError(
                f"--entry {text!r}: {part!r} is not bench=DIR or sweep=DIR ({ENTRY_SYNTAX})"
            )
        if key in optional:
            raise ConfigError(f"--entry {text!r} names {key}= twice")
        optional[key] = Path(value)
    return ReportEntry(
        variant=variant,
        dataset=dataset or None,
        eval_dir=Path(parts[0]),
        bench_dir=optional.get("bench"),
        sweep_dir=optional.get("sweep"),
    )


def _split_name(name: str) -> tuple[str | None, str | None]:
    """``medium-res-era5`` -> (``medium-res``, ``era5``); no variant prefix -> (None, None)."""
    for variant in sorted(VARIANTS, key=len, reverse=True):
        if name == variant:
            return variant, None
        if name.startswith(variant + "-"):
            return variant, name[len(variant) + 1 :]
    return None, None


def _first_with(candidates: list[Path], file: str) -> Path | None:
    return next((d for d in dict.fromkeys(candidates) if (d / file).is_file()), None)


def discover_entries(root: str | Path) -> tuple[list[ReportEntry], list[str]]:
    """Entries from the conventional layout under ``root`` (what ``make run`` writes).

    Every ``ROOT/eval/<name>/metrics.json`` is one entry, where ``<name>`` is
    ``<variant>`` or ``<variant>-<dataset>`` (any other name: the variant is read from
    ``metrics.json`` and the name is the dataset label). Its benchmark is
    ``ROOT/bench/<name>/benchmark.json``, else ``ROOT/bench/<variant>/benchmark.json``; its sweep
    ``ROOT/sweeps/<name>/best.json``, else ``ROOT/sweeps/<variant>/best.json``.

    Returns:
        The entries (sorted by directory name) and one note per ``eval/`` subdirectory skipped.

    Raises:
        ConfigError: ``ROOT/eval`` is missing or holds no evaluation.
    """
    root = Path(root)
    eval_root = root / "eval"
    if not eval_root.is_dir():
        raise ConfigError(
            f"{root} has no eval/ directory: --from-dir expects "
            f"ROOT/eval/<variant>[-<dataset>]/{EVAL_FILE}"
        )
    entries: list[ReportEntry] = []
    notes: list[str] = []
    for d in sorted(p for p in eval_root.iterdir() if p.is_dir()):
        if not (d / EVAL_FILE).is_file():
            notes.append(f"Skipped {d}: it holds no {EVAL_FILE}.")
            logger.warning("skipping %s: no %s", d, EVAL_FILE)
            continue
        variant, dataset = _split_name(d.name)
        if variant is None:
            variant, dataset = _variant_of(d / EVAL_FILE), d.name
        entries.append(ReportEntry(
            variant=variant,
            dataset=dataset,
            eval_dir=d,
            bench_dir=_first_with([root / "bench" / d.name, root / "bench" / variant], BENCH_FILE),
            sweep_dir=_first_with([root / "sweeps" / d.name, root / "sweeps" / variant],
                                  SWEEP_FILE),
        ))
    if not entries:
        raise ConfigError(
            f"no evaluation found under {eval_root}: expected <variant>[-<dataset>]/{EVAL_FILE}"
        )
    return entries, notes


def _variant_of(path: Path) -> str:
    try:
        variant = json.loads(path.read_text(encoding="utf-8")).get("variant")
    except (OSError, ValueError, AttributeError) as e:
        raise ConfigError(f"{path} is not a readable metrics.json ({e}); re-run "
                          "`aurora-mlops evaluate` into that directory") from e
    if not isinstance(variant, str):
        raise ConfigError(f"{path} names no variant; re-run `aurora-mlops evaluate` into that "
                          "directory")
    return variant
