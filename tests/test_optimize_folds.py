"""Walk-forward folds: spans, embargo, anchored vs rolling, validation, against a loop reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alertlab.optimize.folds import Fold, make_folds

DAY = 86_400_000


def ref_equal_span_folds(ts: list[int], k: int, anchored: bool, embargo_s: int):
    """The k-equal-spans scheme written plainly: list of (train alert ids, test alert ids), or None
    when some fold would have an empty (or embargo-swallowed) span."""
    t0, t1 = min(ts), max(ts) + 1
    edges = [t0 + (t1 - t0) * i // (k + 1) for i in range(k + 2)]
    out = []
    for j in range(k):
        test_from, test_to = edges[j + 1], edges[j + 2]
        train_to = test_from - embargo_s * 1000
        train_from = t0 if anchored else edges[j]
        if train_to <= train_from:
            return None
        train = [i for i, t in enumerate(ts) if train_from <= t < train_to]
        test = [i for i, t in enumerate(ts) if test_from <= t < test_to]
        if not train or not test:
            return None
        out.append((train, test))
    return out


def check_invariants(folds: list[Fold], ts: np.ndarray, anchored: bool, embargo_s: int) -> None:
    emb = embargo_s * 1000
    t0 = int(ts.min())
    prev_test_to = None
    seen_test = set()
    for j, f in enumerate(folds):
        assert f.fold == j
        assert f.train_from < f.train_to <= f.test_from <= f.test_to
        assert f.test_from - f.train_to == emb  # the embargo gap, exactly
        tr, te = ts[f.train_idx], ts[f.test_idx]
        assert ((tr >= f.train_from) & (tr < f.train_to)).all()
        assert ((te >= f.test_from) & (te < f.test_to)).all()
        # every alert inside a span is in its index array (nothing lost)
        assert f.n_train == int(((ts >= f.train_from) & (ts < f.train_to)).sum())
        assert f.n_test == int(((ts >= f.test_from) & (ts < f.test_to)).sum())
        assert not set(f.train_idx.tolist()) & set(f.test_idx.tolist())
        assert tr.max() < te.min() and tr.max() < f.test_from - emb  # train strictly before, embargoed
        gap = np.flatnonzero((ts >= f.train_to) & (ts < f.test_from))
        assert not set(gap.tolist()) & (set(f.train_idx.tolist()) | set(f.test_idx.tolist()))
        if anchored:
            assert f.train_from == t0
        assert not seen_test & set(f.test_idx.tolist())  # test sets never overlap across folds
        seen_test |= set(f.test_idx.tolist())
        if prev_test_to is not None:
            assert f.test_from == prev_test_to  # test spans tile time
        prev_test_to = f.test_to


def test_hand_example_rolling_and_anchored():
    ts = np.arange(100, dtype=np.int64) * 1000  # one alert a second, t1 = 99_001
    edges = [99_001 * i // 5 for i in range(6)]
    assert edges == [0, 19800, 39600, 59400, 79200, 99001]
    roll = make_folds(ts, k=4, embargo_s=5)
    assert len(roll) == 4
    f = roll[1]
    assert (f.train_from, f.train_to, f.test_from, f.test_to) == (19800, 34600, 39600, 59400)
    assert ts[f.train_idx].tolist() == list(range(20_000, 35_000, 1000))  # 15 alerts
    assert ts[f.test_idx].tolist() == list(range(40_000, 60_000, 1000))  # 20 alerts
    anch = make_folds(ts, k=4, anchored=True, embargo_s=5)
    assert anch[1].train_from == 0 and anch[1].n_train == 35
    assert [x.n_test for x in anch] == [x.n_test for x in roll] == [20, 20, 20, 20]
    assert anch[3].test_to == 99_001 and anch[3].test_idx[-1] == 99  # last alert is tested
    # alerts 35..39 s sit in fold 1's embargo gap: in neither set
    assert not {35, 36, 37, 38, 39} & (set(f.train_idx.tolist()) | set(f.test_idx.tolist()))
    check_invariants(roll, ts, False, 5)
    check_invariants(anch, ts, True, 5)
    assert f.as_dict() == {
        "fold": 1, "train_from": 19800, "train_to": 34600, "test_from": 39600, "test_to": 59400,
        "n_train": 15, "n_test": 20,
    }  # fmt: skip


def test_single_split_when_no_folds():
    ts = np.array([5, 1, 9, 3], dtype=np.int64)
    for k in (None, 0):
        (f,) = make_folds(ts, k=k)
        assert f.train_idx.tolist() == [0, 1, 2, 3] and f.n_test == 0
        assert (f.train_from, f.train_to, f.test_from, f.test_to) == (1, 10, 10, 10)


def test_day_length_folds_rolling_anchored_and_cap():
    rng = np.random.default_rng(0)
    ts = np.sort(rng.integers(0, 40 * DAY, 3000)).astype(np.int64)
    t0, t1 = int(ts.min()), int(ts.max()) + 1
    emb_s = 6 * 3600
    roll = make_folds(ts, train_days=10, test_days=5, embargo_s=emb_s)
    assert roll[0].test_from == t0 + 10 * DAY + emb_s * 1000
    assert roll[-1].test_to == t1
    for f in roll:
        assert f.train_to - f.train_from == 10 * DAY  # rolling window of fixed length
    for f in roll[:-1]:
        assert f.test_to - f.test_from == 5 * DAY
    assert 0 < roll[-1].test_to - roll[-1].test_from <= 5 * DAY
    n_expected = -(-(t1 - roll[0].test_from) // (5 * DAY))
    assert len(roll) == n_expected
    check_invariants(roll, ts, False, emb_s)
    anch = make_folds(ts, train_days=10, test_days=5, anchored=True, embargo_s=emb_s)
    assert all(f.train_from == t0 for f in anch)
    assert [f.n_train for f in anch] == sorted(f.n_train for f in anch)  # anchored train grows
    check_invariants(anch, ts, True, emb_s)
    last2 = make_folds(ts, k=2, train_days=10, test_days=5, embargo_s=emb_s)
    assert [(f.test_from, f.test_to) for f in last2] == [(f.test_from, f.test_to) for f in roll[-2:]]
    assert [f.fold for f in last2] == [0, 1]
    frac = make_folds(ts, train_days=2.5, test_days=0.5)
    assert frac[0].train_to - frac[0].train_from == int(2.5 * DAY)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 60),
    st.integers(1, 6),
    st.booleans(),
    st.sampled_from([0, 60, 3600, 86_400]),
)
def test_equal_span_folds_match_reference(seed, n, k, anchored, embargo_s):
    rng = np.random.default_rng(seed)
    # clustered alert times with gaps, duplicates and bar-boundary timestamps
    spread = rng.integers(0, 20 * DAY, n)
    on_day_boundary = rng.integers(0, 3, n) * DAY
    ts = np.where(rng.random(n) < 0.7, spread, on_day_boundary).astype(np.int64)
    if n > 3:
        ts[rng.integers(0, n, 2)] = ts[0]  # duplicates
    ref = ref_equal_span_folds(ts.tolist(), k, anchored, embargo_s)
    if ref is None:
        with pytest.raises(ValueError):
            make_folds(ts, k=k, anchored=anchored, embargo_s=embargo_s)
        return
    folds = make_folds(ts, k=k, anchored=anchored, embargo_s=embargo_s)
    assert len(folds) == k
    for f, (tr, te) in zip(folds, ref, strict=True):
        assert f.train_idx.tolist() == tr and f.test_idx.tolist() == te
    check_invariants(folds, ts, anchored, embargo_s)
    if not anchored:
        for f in folds:  # rolling: the train window is one span, as long as the test span (±1 ms)
            assert abs((f.train_to - f.train_from + embargo_s * 1000) - (f.test_to - f.test_from)) <= 1


def test_validation_errors():
    ts = np.arange(100, dtype=np.int64) * 1000
    with pytest.raises(ValueError, match="non-empty"):
        make_folds(np.array([], dtype=np.int64), k=2)
    with pytest.raises(ValueError, match="integer"):
        make_folds(ts.astype(float), k=2)
    with pytest.raises(ValueError, match="embargo"):
        make_folds(ts, k=4, embargo_s=30)  # spans are ~20 s
    with pytest.raises(ValueError, match="both"):
        make_folds(ts, k=2, train_days=1)
    with pytest.raises(ValueError, match="k must"):
        make_folds(ts, k=-1)
    with pytest.raises(ValueError, match="embargo_s"):
        make_folds(ts, k=2, embargo_s=-5)
    with pytest.raises(ValueError, match="too short"):
        make_folds(np.array([7, 7], dtype=np.int64), k=3)
    with pytest.raises(ValueError, match="no test span"):
        make_folds(ts, train_days=1, test_days=1)  # alerts cover 99 s only
    with pytest.raises(ValueError, match="> 0 days"):
        make_folds(ts * DAY, train_days=0, test_days=1)
    gappy = np.concatenate([np.arange(10), np.arange(90, 100)]).astype(np.int64) * DAY
    with pytest.raises(ValueError, match="holds no alert"):
        make_folds(gappy, k=4)
