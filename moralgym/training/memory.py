"""Give freed tensor memory back to the operating system, so that a run's resident memory follows what it uses.

PyTorch's CPU tensors come from the C allocator. glibc's ``malloc`` serves a large block with ``mmap`` (returned to
the system on ``free``) only above a threshold that it *raises* each time such a block is freed, up to 32 MiB; after
the first update's activations are freed, later ones of the same sizes come from the heap, which glibc keeps. A
training process then holds the freed activations of earlier updates on top of the live ones: three quick-start
episodes peaked at 2,418 MiB with glibc's default and 1,768 MiB with this module's threshold (docs/benchmarks.md,
"Memory of the quick start"). Fixing the threshold
(``mallopt(M_MMAP_THRESHOLD, ...)``, which also stops its adjustment) keeps every block above it returnable.

Blocks under the threshold still come from the heap; :func:`trim_heap` (``malloc_trim``) hands its free pages back
between phases (after each update, before the evaluation), where the next phase would not reuse them.

The threshold is a trade: every block above it costs a system call and a page fault per fresh page each time it is
allocated. With 1 MiB the float32 quick start spent a fifth of its training time in the kernel; in bfloat16 the
update's activations (about 3 MiB per tensor) sit just under 4 MiB, and the quick start trains with
``mmap_threshold_mib: 4`` (``moralgym train`` sets the config's value, then 1 MiB before the evaluation, whose
many KV blocks peak lower with it).

Only glibc has ``mallopt`` and ``malloc_trim``; elsewhere (macOS, musl) nothing changes. A
``MALLOC_MMAP_THRESHOLD_`` set in the environment is the user's choice and is left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

__all__ = [
    "DEFAULT_MMAP_THRESHOLD",
    "ENVIRONMENT_THRESHOLD",
    "MIB",
    "mmap_threshold_in_effect",
    "return_freed_memory",
    "trim_heap",
]

#: Blocks from 1 MiB up are mapped on their own. Smaller blocks (most of the decoder's per-step tensors) stay on
#: the heap, where mapping each would cost a system call and fresh pages per allocation.
MIB = 1 << 20
DEFAULT_MMAP_THRESHOLD = MIB
_M_MMAP_THRESHOLD = -3  # from glibc's <malloc.h>
#: glibc reads this at start-up; when it is set, :func:`return_freed_memory` leaves the threshold to it.
ENVIRONMENT_THRESHOLD = "MALLOC_MMAP_THRESHOLD_"


def _libc_function(name: str) -> object | None:
    """``name`` from the C library, or None where there is no such function (not glibc)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c")), name)
    except (OSError, AttributeError, TypeError):
        return None


def return_freed_memory(threshold: int = DEFAULT_MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process; returns whether it was set (False on a
    C library without ``mallopt``, or when ``MALLOC_MMAP_THRESHOLD_`` is set in the environment)."""
    if ENVIRONMENT_THRESHOLD in os.environ:
        return False
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(threshold)))


def mmap_threshold_in_effect(threshold: int = DEFAULT_MMAP_THRESHOLD) -> dict[str, Any]:
    """What :func:`return_freed_memory` with ``threshold`` leaves in force, for a run's record: the environment's
    ``MALLOC_MMAP_THRESHOLD_`` when set, else ``threshold`` where ``mallopt`` exists, else the C library's own."""
    if ENVIRONMENT_THRESHOLD in os.environ:
        return {"mmap_threshold": os.environ[ENVIRONMENT_THRESHOLD], "source": ENVIRONMENT_THRESHOLD}
    if _libc_function("mallopt") is None:
        return {"mmap_threshold": None, "source": "the C library's default (no mallopt)"}
    return {"mmap_threshold": int(threshold), "source": "mallopt"}


def trim_heap() -> bool:
    """Give the heap's free pages back to the system (``malloc_trim(0)``, a few milliseconds); returns whether any
    were (False without glibc)."""
    malloc_trim = _libc_function("malloc_trim")
    if malloc_trim is None:
        return False
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return bool(malloc_trim(0))
