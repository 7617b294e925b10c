"""Memory-mapped window arrays under the memory budget: which pages a pass may keep resident.

The path cache opens its bar arrays memory-mapped (``np.load(mmap_mode="r")``): a run pages in only
the bars it touches. Touched pages of a mapping count in the process's resident set until they are
released, so a pass over 100,000 windows would otherwise end up holding every bar it read. Passes
over many windows (metrics kernel, grids, optimizer batches) therefore go in alert ranges of at most
:func:`bars_per_pass` bars and call :func:`release` between ranges: the pages leave the process
(``madvise(MADV_DONTNEED)``; they stay in the OS page cache, so reading them again costs a minor
fault, not a disk read). Arrays held in RAM are never touched by :func:`release`.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable

import numpy as np

from alertlab.util.memory import memory_budget_bytes

# Share of the budget the bar pages of one pass may occupy (the rest: outputs, Arrow, Python).
PASS_SHARE = 0.4
# Bytes of mapped bar data one bar costs a pass: the 5-6 float64/int64 arrays a kernel reads, plus
# the pages the kernel maps around them (read-around).
BYTES_PER_BAR = 64


def mapping_of(a: object) -> mmap.mmap | None:
    """The ``mmap`` an array's memory comes from (following views), or None for an in-RAM array."""
    seen = 0
    while a is not None and seen < 64:
        if isinstance(a, mmap.mmap):
            return a
        a = getattr(a, "base", None)
        seen += 1
    return None


def is_mapped(a: object) -> bool:
    """True when ``a`` (or the array it views) is backed by a memory-mapped file."""
    return mapping_of(a) is not None


def release(arrays: Iterable[object]) -> int:
    """Drop the resident pages of the memory-mapped ``arrays`` from this process; returns how many
    mappings were released (in-RAM arrays are skipped). Safe for read-only file mappings only,
    which is what the path cache opens."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    done: set[int] = set()
    for a in arrays:
        m = mapping_of(a)
        if m is None or id(m) in done or advice is None or m.closed:
            continue
        try:
            m.madvise(advice)
        except (OSError, ValueError):  # an empty or closed mapping: nothing resident
            continue
        done.add(id(m))
    return len(done)


def bars_per_pass() -> int:
    """How many bars one pass over mapped windows may touch before it releases its pages."""
    return max(1, int(memory_budget_bytes() * PASS_SHARE) // BYTES_PER_BAR)


def bar_ranges(counts: np.ndarray, max_bars: int) -> list[tuple[int, int]]:
    """Split positions ``0..len(counts)`` into consecutive ranges of at most ``max_bars`` bars each
    (a single position with more bars gets a range of its own)."""
    n = len(counts)
    if n == 0:
        return []
    work = np.cumsum(np.asarray(counts, np.int64))
    if int(work[-1]) <= max_bars:
        return [(0, n)]
    out: list[tuple[int, int]] = []
    a0 = 0
    while a0 < n:
        base = int(work[a0 - 1]) if a0 else 0
        a1 = int(np.searchsorted(work, base + max_bars, side="right"))
        a1 = max(a1, a0 + 1)
        out.append((a0, a1))
        a0 = a1
    return out


def pass_groups(
    offsets: np.ndarray, alert_idx: np.ndarray, max_bars: int | None = None
) -> list[np.ndarray] | None:
    """Positions into ``alert_idx`` for passes of at most ``max_bars`` bars (default
    :func:`bars_per_pass`), or None when one pass holds them all.

    Positions are grouped in storage order (the order of the windows in the cache files), so a pass
    touches contiguous pages only (a pass over time-ordered alerts would touch every window's
    neighbours through the kernel's read-around); each group is sorted ascending.
    """
    offsets = np.asarray(offsets)
    idx = np.asarray(alert_idx, np.int64)
    counts = offsets[idx + 1] - offsets[idx]
    cap = bars_per_pass() if max_bars is None else max_bars
    if int(counts.sum()) <= cap:
        return None
    order = np.argsort(idx, kind="stable")
    return [np.sort(order[a:b]) for a, b in bar_ranges(counts[order], cap)]
