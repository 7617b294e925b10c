"""Validated run configuration shared by every command: data selection and window rules."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alertlab.windows.model import DEFAULT_MIN_COVERAGE

DEFAULT_MAX_ENTRY_LAG_S = 300
DEFAULT_WICK_GUARD = 10.0  # see README "Bad-tick guard": real bad ticks are 500x+, genuine wicks <= ~3x


class Selection(BaseModel):
    """Which alerts a run reads. Dates are UTC and inclusive; callers match case-insensitively."""

    model_config = ConfigDict(extra="forbid")

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    callers: list[str] = Field(default_factory=list)
    chains: list[str] = Field(default_factory=list)

    @field_validator("callers", "chains")
    @classmethod
    def _strip(cls, v: list[str]) -> list[str]:
        return [s.strip() for s in v if s and s.strip()]

    @model_validator(mode="after")
    def _order(self) -> Selection:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"--from {self.date_from} is after --to {self.date_to}")
        return self


class WindowSpec(BaseModel):
    """How alert windows are cut (the fields below are the cache key, except ``min_coverage``).

    * ``interval_s``: None (default) keeps every bar at the data's own resolution (a file that
      switches from 5-minute to hourly bars gives 5-minute bars, then hourly ones). An explicit
      ``I`` aggregates bars finer than I up to I-slots (by the slot their open falls in) and keeps
      coarser bars as they are (never split, never dropped).
    * Entry bar = the first *traded* bar (not volume 0 with open = high = low = close) that opens
      at or after the call; stale when it opens more than max(``max_entry_lag_s``, that bar's
      duration) after the call.
    * ``wick_guard``: the bad-tick guard's factor k (None = off); see ``alertlab.windows.guard``.
    * ``min_coverage``: truncated windows count (leaderboard, backtests, optimizer) only when their
      coverage is at least this share of the horizon. Not part of the cache key.
    """

    model_config = ConfigDict(extra="forbid")

    interval_s: int | None = Field(None, gt=0)
    horizon_hours: float = Field(48.0, gt=0)
    max_entry_lag_s: int = Field(DEFAULT_MAX_ENTRY_LAG_S, ge=0)
    wick_guard: float | None = Field(DEFAULT_WICK_GUARD)
    min_coverage: float = Field(DEFAULT_MIN_COVERAGE, ge=0.0, le=1.0)

    @field_validator("max_entry_lag_s", mode="before")
    @classmethod
    def _lag_default(cls, v: object) -> object:
        return DEFAULT_MAX_ENTRY_LAG_S if v is None else v

    @field_validator("wick_guard")
    @classmethod
    def _k(cls, v: float | None) -> float | None:
        if v is not None and not (v > 1.0 and v < float("inf")):
            raise ValueError(
                f"--wick-guard k must be a finite number > 1 (got {v}); use --no-wick-guard to turn it off"
            )
        return v

    @model_validator(mode="after")
    def _check(self) -> WindowSpec:
        if self.interval_s is not None and self.horizon_s < self.interval_s:
            raise ValueError(f"horizon {self.horizon_hours}h is shorter than one {self.interval_s}s bar")
        return self

    @property
    def horizon_s(self) -> int:
        return int(round(self.horizon_hours * 3600))

    @property
    def entry_lag_s(self) -> int:
        return int(self.max_entry_lag_s)
