"""Validated run configuration shared by every command: data selection and window rules."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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
    """Bar interval I, horizon H and entry rules of the alert windows.

    Nominal entry = alert ts rounded up to a multiple of I; the entry bar is the first bar
    with ts >= nominal entry; a lag over ``max_entry_lag_s`` (default 5·I) marks the alert stale.
    """

    model_config = ConfigDict(extra="forbid")

    interval_s: int = Field(60, gt=0)
    horizon_hours: float = Field(48.0, gt=0)
    max_entry_lag_s: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> WindowSpec:
        if self.horizon_s < self.interval_s:
            raise ValueError(f"horizon {self.horizon_hours}h is shorter than one {self.interval_s}s bar")
        return self

    @property
    def horizon_s(self) -> int:
        return int(round(self.horizon_hours * 3600))

    @property
    def entry_lag_s(self) -> int:
        return 5 * self.interval_s if self.max_entry_lag_s is None else self.max_entry_lag_s
