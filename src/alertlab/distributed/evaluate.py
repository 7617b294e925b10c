"""The optimizer's evaluator with the engine pass of each trial batch on a Dask cluster."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from alertlab.distributed.tasks import Session
from alertlab.engine import Strategy, encode_params
from alertlab.engine.drivers import trade_returns
from alertlab.optimize.evaluate import Evaluator


class ClusterEvaluator(Evaluator):
    """:class:`~alertlab.optimize.evaluate.Evaluator` whose ``returns`` run as alert chunks ×
    config chunks on the cluster; folds, scores, constraints and daily returns are computed by the
    inherited local code from the same ``(configs, alerts)`` return matrix, so a study's values
    are bit-identical to a local run. Ask/tell stays in the driver (the study's storage)."""

    def __init__(self, *args: Any, session: Session, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = session

    def returns(self, configs: Sequence[Strategy]) -> np.ndarray:
        params = encode_params(list(configs))
        return trade_returns(
            self.w,
            params,
            self.order,
            self.settings.intrabar,
            self.settings.fill_on_zero_volume,
            simulate=self.session.simulate_cols,
        )
