"""How a pipeline step ends: one line for a user error, a fast exit for a finished task, and
the Markdown summary that the exit handler writes for the whole run.

Re-exported by :mod:`aurora_mlops.kfp.steps` (the components import them from there).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aurora_mlops.errors import AuroraMLOpsError, ValidationFailed

__all__ = ["failure_summary", "reported"]


@contextlib.contextmanager
def reported(step: str) -> Iterator[None]:
    """Turn a user-caused error inside a step into one line and exit code 1 (no traceback).

    The line (``aurora-mlops: error: [STEP] message``) is what ``pipeline run --local`` shows
    when the step fails, and what a reader of the pod's log looks for.
    """
    try:
        yield
    except AuroraMLOpsError as e:
        print(f"aurora-mlops: error: [{step}] {e}", file=sys.stderr, flush=True)
        if isinstance(e, ValidationFailed):
            for problem in e.problems:
                print(f"  {problem}", file=sys.stderr, flush=True)
        raise SystemExit(e.exit_code) from e
    if _in_kfp_executor():
        atexit.register(_exit_without_teardown)


def _in_kfp_executor() -> bool:
    """Whether this process is a KFP task (``python -m kfp.dsl.executor_main``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == "kfp.dsl.executor_main"


def _exit_without_teardown() -> None:
    """End a finished task's process without the interpreter's teardown.

    With torch, aurora and mlflow loaded, Python's shutdown takes 1.5-4 s on 2 cores: 12 % of
    a local pipeline run. Registered once the step succeeded, this hook runs first at exit
    (atexit is last-in, first-out), after KFP wrote the outputs: it flushes stdio and logging
    and calls ``os._exit``, with code 1 when an uncaught exception is ending the process.
    """
    failed = getattr(sys, "last_value", None) is not None
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
    os._exit(1 if failed else 0)


def failure_summary(status: dict[str, Any], out: str | Path) -> str:
    """Markdown summary of how the pipeline ended (the exit handler's step).

    Args:
        status: KFP's ``PipelineTaskFinalStatus`` as a dict (``state``, ``pipeline_task_name``,
            ``error_code``, ``error_message``, ``pipeline_job_resource_name``).
        out: Markdown file to write.

    Returns:
        The summary text.
    """
    state = str(status.get("state") or "UNKNOWN")
    lines = [f"# Pipeline {status.get('pipeline_job_resource_name') or ''}: {state}", ""]
    if state not in ("SUCCEEDED", "SUCCESS"):
        lines += [f"- failed step: `{status.get('pipeline_task_name') or 'unknown'}`",
                  f"- error code: {status.get('error_code')}",
                  f"- message: {status.get('error_message') or 'none given'}", "",
                  "The failing step's own log ends with a line starting `aurora-mlops: error:`."]
    text = "\n".join(lines) + "\n"
    Path(out).write_text(text, encoding="utf-8")
    return text
