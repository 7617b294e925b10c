"""Options of a study (:class:`OptimizeOptions`) and the study constants shared by its parts."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PositiveFloat, model_validator

from alertlab.optimize.evaluate import (
    OBJECTIVES,
    EngineSettings,
)
from alertlab.optimize.space import DEFAULT_SPACE, SearchSpace

SAMPLERS = ("random", "tpe", "grid")
OBJECTIVE_NAMES = tuple(OBJECTIVES)
StrictPosInt = Annotated[int, Field(ge=1)]


def _even(v: int) -> int:
    if v % 2:
        raise ValueError(f"must be an even integer >= 2 (CSCV splits the blocks in halves), got {v}")
    return v


IDENTITY_ATTR = "alertlab"
RESULT_ATTR = "result"
STUDY_FORMAT = 1
CONSTRAINT_KEY = "violation"
CLUSTER_WORKERS = (
    "--cluster evaluates trial batches on the cluster from one driver process: use --workers 1 "
    "(drivers on other machines can share the study through a server --storage)"
)


class OptimizeOptions(BaseModel):
    """Everything a study is configured with, validated on construction (pydantic).

    ``trials``: the total number of trials the study ends with (resumes included; a grid is capped
    at its size; a trial lost with a killed worker is failed and queued again, and only its rerun
    counts, see :func:`~alertlab.optimize.storage.fail_stale_trials`). ``batch_size``: trials per engine call (None: 32 for TPE, else up to 256 limited
    to ~2M (trial × alert) cells). ``folds``/``anchored``/``train_days``/``test_days``: see
    :func:`~alertlab.optimize.folds.make_folds` (at least one out-of-sample fold is required).
    ``min_trades``/``max_dd``: feasibility on every training fold. ``neighbours``: k of the
    neighbourhood stability. ``stale_after``: seconds without heartbeat after which a RUNNING trial
    of another machine is failed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    space: SearchSpace = DEFAULT_SPACE
    objective: Literal[OBJECTIVE_NAMES] = "avg_ret"  # type: ignore[valid-type]
    sampler: Literal["random", "tpe", "grid"] = "tpe"
    trials: StrictPosInt = 200
    seed: int | None = 0
    batch_size: StrictPosInt | None = None
    folds: Annotated[int, Field(ge=0)] = 4
    anchored: bool = False
    train_days: PositiveFloat | None = None
    test_days: PositiveFloat | None = None
    min_trades: Annotated[int, Field(ge=0)] = 20
    max_dd: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    settings: EngineSettings = Field(default_factory=EngineSettings)
    pbo_blocks: Annotated[int, Field(ge=2), AfterValidator(_even)] = 16
    neighbours: StrictPosInt = 5
    workers: StrictPosInt = 1
    stale_after: PositiveFloat = 600.0

    @model_validator(mode="after")
    def _consistent(self) -> OptimizeOptions:
        if self.folds == 0 and self.train_days is None:
            raise ValueError(
                "the optimizer needs out-of-sample folds: use --folds >= 1 or --train-days/--test-days"
            )
        if (self.train_days is None) != (self.test_days is None):
            raise ValueError("give both --train-days and --test-days, or neither")
        if self.sampler == "grid":
            self.grid_size()  # raises for continuous ranges
        return self

    def grid_size(self) -> int:
        return math.prod(len(v) for v in self.space.grid().values())

    def target(self) -> int:
        """Trials the study ends with: ``trials``, capped at the grid size for the grid sampler."""
        return min(int(self.trials), self.grid_size()) if self.sampler == "grid" else int(self.trials)

    def batch_for(self, n_alerts: int) -> int:
        if self.batch_size is not None:
            return int(self.batch_size)
        if self.sampler == "tpe":
            return 32
        return int(min(256, max(16, 2_000_000 // max(n_alerts, 1))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space.to_dict(),
            "objective": self.objective,
            "sampler": self.sampler,
            "trials": int(self.trials),
            "seed": self.seed,
            "batch_size": self.batch_size,
            "folds": int(self.folds),
            "anchored": bool(self.anchored),
            "train_days": self.train_days,
            "test_days": self.test_days,
            "min_trades": int(self.min_trades),
            "max_dd": self.max_dd,
            **self.settings.as_dict(),
            "pbo_blocks": int(self.pbo_blocks),
            "neighbours": int(self.neighbours),
            "workers": int(self.workers),
            "stale_after": float(self.stale_after),
        }
