"""What a candle source gives the run: the pool it priced a token from, and raw bar rows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Pool:
    """The market a token's bars come from (``address`` empty for sources priced per token)."""

    address: str
    side: str  # base | quote | hint (given by the alert) | token (source prices the token itself)


@dataclass
class BarRows:
    """Bars as received, with where each came from (cache file and index in its list)."""

    ts: list[int | None] = field(default_factory=list)
    open: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    volume: list[float] = field(default_factory=list)
    response: list[str] = field(default_factory=list)
    item: list[int] = field(default_factory=list)
    fetched_at: int | None = None  # latest receipt time (epoch s) of the responses read

    def saw(self, fetched_at: int) -> None:
        self.fetched_at = fetched_at if self.fetched_at is None else max(self.fetched_at, fetched_at)

    def add(self, ts: int | None, values: list, response: Path, item: int) -> None:
        self.ts.append(ts)
        for name, v in zip(("open", "high", "low", "close", "volume"), values, strict=True):
            getattr(self, name).append(_num(v))
        self.response.append(str(response))
        self.item.append(item)

    def __len__(self) -> int:
        return len(self.ts)


def _num(v: object) -> float:
    """A JSON number or numeric string as float; anything else NaN (the ingest quarantines it)."""
    if isinstance(v, bool) or v is None:
        return math.nan
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def as_ts(v: object) -> int | None:
    """An epoch-seconds bar time, or None when it is not a whole number."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return None
