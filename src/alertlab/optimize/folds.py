"""Walk-forward folds by alert time, with an embargo so no trade straddles train and test.

Spans are half-open ``[from, to)`` in epoch **milliseconds** (alert ``ts_ms``); an alert belongs
to a span when its ``ts_ms`` is inside it. Schemes (``t0`` = first alert, ``t1`` = last alert + 1 ms):

* **k folds, no day lengths** — ``[t0, t1)`` is cut into ``k + 1`` equal spans ``S_0 … S_k``;
  fold ``j`` (0-based) tests on ``S_{j+1}`` and trains on ``S_j`` (rolling: one span, as long as
  the test span) or on ``S_0 … S_j`` (anchored: from the first alert).
* **train_days and test_days** — test spans of ``test_days`` tile forward from
  ``t0 + train_days + embargo`` up to ``t1`` (the last one may be shorter); each trains on the
  ``train_days`` before its embargo gap (rolling) or on everything before it (anchored).
  ``k`` (if > 0) keeps only the **last** ``k`` folds, the most recent regimes.
* **k = 0 / None, no day lengths** — one split: every alert is train, no test (in-sample only;
  use it to fit on everything, never to report out-of-sample numbers).

Embargo: the ``embargo_s`` seconds right before each test span are cut off the train span
(``train_to = test_from - embargo``); alerts in that gap are in neither. With an embargo of at
least the window horizon, every train trade has ended before the first test alert. Folds whose
train or test span holds no alert, or whose train span the embargo swallows, raise ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: half-open ms spans and the alert indices inside them."""

    fold: int
    train_from: int
    train_to: int
    test_from: int
    test_to: int
    train_idx: np.ndarray = field(repr=False)
    test_idx: np.ndarray = field(repr=False)

    @property
    def n_train(self) -> int:
        return int(self.train_idx.size)

    @property
    def n_test(self) -> int:
        return int(self.test_idx.size)

    def as_dict(self) -> dict:
        """Span bounds and counts (JSON-friendly, for run metadata)."""
        return {
            "fold": self.fold,
            "train_from": self.train_from,
            "train_to": self.train_to,
            "test_from": self.test_from,
            "test_to": self.test_to,
            "n_train": self.n_train,
            "n_test": self.n_test,
        }


def _idx(ts: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.flatnonzero((ts >= lo) & (ts < hi)).astype(np.int64)


def _days_ms(name: str, days: float) -> int:
    ms = int(round(float(days) * _MS_PER_DAY))
    if not np.isfinite(days) or ms <= 0:
        raise ValueError(f"{name} must be > 0 days, got {days!r}")
    return ms


def make_folds(
    alert_ts_ms: np.ndarray,
    k: int | None = None,
    train_days: float | None = None,
    test_days: float | None = None,
    anchored: bool = False,
    embargo_s: int = 0,
) -> list[Fold]:
    """Walk-forward folds over alerts by time (see the module docstring for the schemes).

    ``alert_ts_ms``: alert times (int epoch ms, any order; indices refer to this array).
    ``k``: number of folds (equal spans) or, with day lengths, a cap keeping the last ``k``.
    ``train_days``/``test_days``: explicit span lengths, both or neither. ``anchored``: train
    from the first alert instead of a rolling window. ``embargo_s``: gap (seconds, >= 0) cut
    from the end of each train span before its test span — use at least the window horizon.
    """
    ts = _check_ts(alert_ts_ms)
    if k is not None and (int(k) != k or k < 0):
        raise ValueError(f"k must be an integer >= 0 or None, got {k!r}")
    k = int(k or 0)
    if int(embargo_s) != embargo_s or embargo_s < 0:
        raise ValueError(f"embargo_s must be an integer >= 0, got {embargo_s!r}")
    emb = int(embargo_s) * 1000
    if (train_days is None) != (test_days is None):
        raise ValueError("give both train_days and test_days, or neither (then k equal spans are used)")
    t0, t1 = int(ts.min()), int(ts.max()) + 1
    if train_days is not None:
        assert test_days is not None  # both or neither, checked above
        spans = _day_spans(t0, t1, train_days, test_days, anchored, emb)
        if k > 0:
            spans = spans[-k:]
    elif k == 0:
        return [Fold(0, t0, t1, t1, t1, np.arange(ts.size, dtype=np.int64), np.zeros(0, dtype=np.int64))]
    else:
        spans = _equal_spans(t0, t1, k, anchored, emb)
    return [_fold(ts, j, span, embargo_s) for j, span in enumerate(spans)]


Span = tuple[int, int, int, int]  # (train_from, train_to, test_from, test_to), epoch ms, half-open


def _check_ts(alert_ts_ms: np.ndarray) -> np.ndarray:
    ts = np.asarray(alert_ts_ms)
    if ts.ndim != 1 or ts.size == 0:
        raise ValueError("alert_ts_ms must be a non-empty 1-d array")
    if not np.issubdtype(ts.dtype, np.integer):
        raise ValueError(f"alert_ts_ms must be integer epoch milliseconds, got dtype {ts.dtype}")
    return ts.astype(np.int64)


def _day_spans(t0: int, t1: int, train_days: float, test_days: float, anchored: bool, emb: int) -> list[Span]:
    """Consecutive test spans of ``test_days`` after a first train span of ``train_days`` + embargo."""
    tr, te = _days_ms("train_days", train_days), _days_ms("test_days", test_days)
    first = t0 + tr + emb
    if first >= t1:
        raise ValueError(
            f"train_days={train_days} + embargo leave no test span: alerts cover only "
            f"{(t1 - t0) / _MS_PER_DAY:.3g} days"
        )
    spans: list[Span] = []
    test_from = first
    while test_from < t1:
        test_to = min(test_from + te, t1)
        train_to = test_from - emb
        spans.append((t0 if anchored else train_to - tr, train_to, test_from, test_to))
        test_from = test_to
    return spans


def _equal_spans(t0: int, t1: int, k: int, anchored: bool, emb: int) -> list[Span]:
    """``k`` folds over ``k + 1`` equal spans: fold j trains on span j (or 0..j) and tests on j + 1."""
    if t1 - t0 < k + 1:
        raise ValueError(f"alerts span {t1 - t0} ms: too short to cut into k+1={k + 1} spans")
    b = [t0 + (t1 - t0) * i // (k + 1) for i in range(k + 2)]
    return [(t0 if anchored else b[j], b[j + 1] - emb, b[j + 1], b[j + 2]) for j in range(k)]


def _fold(ts: np.ndarray, j: int, span: Span, embargo_s: int) -> Fold:
    a, b_, c, d = span
    if b_ <= a:
        raise ValueError(
            f"fold {j}: the embargo ({embargo_s} s) is longer than the train span "
            f"({(c - a) / 1000:.0f} s); use fewer folds, longer train_days or a shorter embargo"
        )
    tr_idx, te_idx = _idx(ts, a, b_), _idx(ts, c, d)
    if tr_idx.size == 0 or te_idx.size == 0:
        which = "train" if tr_idx.size == 0 else "test"
        lo, hi = (a, b_) if which == "train" else (c, d)
        raise ValueError(
            f"fold {j}: {which} span [{lo}, {hi}) ms holds no alert; use fewer folds or longer spans"
        )
    return Fold(j, a, b_, c, d, tr_idx, te_idx)
