"""The memory budget: one setting that bounds the peak RSS of ingest, window cutting and the runs.

Bulk work reads it instead of sizing itself by the input: DuckDB gets ``memory_limit`` from it, chunked
Arrow readers and the window cutter size their batches from it. Set by ``alertlab --memory-gb G`` or
``$ALERTLAB_MEMORY_GB`` (default 2 GB).
"""

from __future__ import annotations

import os

DEFAULT_MEMORY_GB = 2.0
MIN_MEMORY_GB = 0.25

_override: float | None = None


def set_memory_budget_gb(gb: float | None) -> None:
    """Set the budget for this process (``None`` restores ``$ALERTLAB_MEMORY_GB`` / the default)."""
    global _override
    if gb is not None and not gb >= MIN_MEMORY_GB:
        raise ValueError(f"memory budget must be at least {MIN_MEMORY_GB} GB, got {gb}")
    _override = gb


def memory_budget_gb() -> float:
    """The budget in GB: the process override, else ``$ALERTLAB_MEMORY_GB``, else 2."""
    if _override is not None:
        return _override
    env = os.environ.get("ALERTLAB_MEMORY_GB", "").strip()
    if env:
        try:
            gb = float(env)
        except ValueError:
            raise ValueError(f"$ALERTLAB_MEMORY_GB must be a number of GB, got {env!r}") from None
        if not gb >= MIN_MEMORY_GB:
            raise ValueError(f"$ALERTLAB_MEMORY_GB must be at least {MIN_MEMORY_GB}, got {env!r}")
        return gb
    return DEFAULT_MEMORY_GB


def memory_budget_bytes() -> int:
    """The budget in bytes."""
    return int(memory_budget_gb() * 1024**3)


def duckdb_memory_limit(share: float = 0.6) -> str:
    """A DuckDB ``memory_limit`` value: ``share`` of the budget (the rest is Python/Arrow headroom)."""
    return f"{max(64, int(memory_budget_gb() * share * 1024))}MB"
