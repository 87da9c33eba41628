"""Freed memory handed back to the operating system between the steps of a streamed evaluation.

Each step of ``evaluate --model`` (a batch of rollouts, a group of climatology sums, a chunk of
scores) allocates and frees fields of tens of MB. glibc's allocator serves arrays below its
mmap threshold from its heaps, and that threshold rises to the size of the largest array freed
so far (up to 32 MiB), so after the first steps most fields live in the heaps, where freed
space stays part of the process and gets fragmented: the resident size then creeps up with the
number of steps, that is with the length of the test period, though nothing is kept.
:func:`release_freed_memory` returns the freed pages after each step (``malloc_trim``), and
:func:`map_large_arrays` makes arrays of a few MiB and more separate mappings that go back to
the system as soon as they are freed. Both do nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from typing import Any

__all__ = ["map_large_arrays", "release_freed_memory"]

#: glibc's ``mallopt`` parameter for the mmap threshold.
_M_MMAP_THRESHOLD = -3
#: Arrays at least this large get their own mapping (glibc's fixed threshold, not its
#: adaptive one).
_MMAP_BYTES = 4 * 2**20


@functools.cache
def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018 - both exist only in glibc
    except (OSError, AttributeError):
        return None
    return libc


def release_freed_memory() -> None:
    """Hand the pages that freed arrays left in the allocator's heaps back to the system."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def map_large_arrays(threshold: int = _MMAP_BYTES) -> None:
    """Serve allocations of ``threshold`` bytes and more from their own mappings, returned to
    the system when freed (for the rest of the process)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, int(threshold))
