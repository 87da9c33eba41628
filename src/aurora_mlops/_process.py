"""Process lifetime helpers shared by the local sweep runner and the warm step server."""

from __future__ import annotations

import contextlib
import signal

__all__ = ["die_with_parent"]


def die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``); elsewhere,
    nothing (best effort)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
