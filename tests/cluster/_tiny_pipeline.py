"""A tiny KFP pipeline for the submit tests, compiled by the real KFP compiler.

No ``from __future__ import annotations`` here: KFP reads the parameter types from the
annotations at decoration time and needs them as objects, not strings.
"""

from pathlib import Path

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11-slim")
def echo(variant: str, max_trials: int, gate: float, dry: bool, variants: list) -> str:
    """Joins its inputs (never run: the tests only upload the compiled file)."""
    return f"{variant}{max_trials}{gate}{dry}{variants}"


@dsl.pipeline(name="tiny-sweep")
def tiny_sweep(variant: str, max_trials: int = 4, gate: float = 0.5, dry: bool = False,
               variants: list = ["medium-res"]) -> None:  # noqa: B006 - a KFP default value
    """Parameters of each KFP type: STRING (required), NUMBER_INTEGER, NUMBER_DOUBLE, BOOLEAN,
    LIST."""
    echo(variant=variant, max_trials=max_trials, gate=gate, dry=dry, variants=variants)


def compile_to(path: Path) -> Path:
    """Compile :func:`tiny_sweep` into ``path``."""
    compiler.Compiler().compile(tiny_sweep, str(path))
    return path
