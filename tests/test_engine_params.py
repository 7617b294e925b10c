"""Strategy / StrategyGrid validation (the option table's domains), grids, files and the parameter matrix."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from pydantic import ValidationError

from alertlab.engine import (
    N_PARAM_COLS,
    Strategy,
    StrategyGrid,
    encode_params,
    load_strategy,
    plain_tpsl_rows,
    strategy_from,
)
from alertlab.engine.options import OPTIONS, check_number
from alertlab.engine.params import (
    C_BE_AT,
    C_DIP_WIN_S,
    C_FEE,
    C_LEV,
    C_NLEV,
    C_REST,
    C_SL,
    C_SLIP,
    C_TIME_S,
    C_W,
)


@pytest.mark.parametrize(
    ("opts", "msg"),
    [
        ({"sl": 1.0}, "sl=1.0 must be in (0, 1)"),
        ({"sl": 0}, "sl=0"),
        ({"tp": 1.0}, "tp=1.0 must be > 1"),
        ({"trail": 1.5}, "trail"),
        ({"trail": 0.2, "trail_activation": 0.9}, "trail_activation"),
        ({"trail_activation": 2.0}, "trail_activation needs trail"),
        ({"breakeven_at": 1.0}, "breakeven_at"),
        ({"breakeven_offset": 0.1}, "breakeven_offset needs breakeven_at"),
        ({"breakeven_at": 1.5, "breakeven_offset": 0.5}, "must lie below its activation"),
        ({"breakeven_at": [1.5, 3], "breakeven_offset": [0, 0.6]}, "every grid combination"),
        ({"tp": 2, "tp_ladder": "3:1"}, "give tp or tp_ladder, not both"),
        ({"tp_ladder": "2:0.6,3:0.5"}, "sum to"),
        ({"tp_ladder": "1:0.5"}, "must be > 1"),
        ({"tp_ladder": "2:0"}, "fraction 0.0"),
        ({"tp_ladder": "2:0.5,2:0.5"}, "repeats"),
        ({"tp_ladder": "2-0.5"}, "MULTIPLE:FRACTION"),
        ({"tp_ladder": "a:b"}, "not numbers"),
        ({"dip": 0.2, "entry_delay_bars": 2}, "cannot be combined"),
        ({"dip_window_min": 5}, "dip_window_min needs dip"),
        ({"dip": 1.2}, "dip"),
        ({"entry_delay_bars": -1}, "entry_delay_bars"),
        ({"entry_delay_bars": 1.5}, "integer"),
        ({"time_stop_hours": 0}, "time_stop_hours"),
        ({"fee_bps": -1}, "fee_bps"),
        ({"tp": []}, "empty list"),
        ({"tp": [2, 2]}, "repeated"),
        ({"tpp": 2}, "Extra inputs"),
        ({"intrabar": "median"}, "intrabar"),
        ({"sl": float("nan")}, "sl=nan"),
    ],
)
def test_validation_errors(opts, msg):
    with pytest.raises(ValidationError, match=None) as ei:
        strategy_from(opts)
    assert msg in str(ei.value)


def test_ladder_forms_and_round_trip():
    a = Strategy(tp_ladder="10:0.25, 2:0.5,4:0.25")
    b = Strategy(tp_ladder=[(2, 0.5), (4, 0.25), (10, 0.25)])
    assert a.tp_ladder == b.tp_ladder == "2:0.5,4:0.25,10:0.25"
    g = StrategyGrid(tp_ladder=["2:1", [(3, 0.5), (6, 0.5)]], sl=[0.5, 0.7])
    assert g.tp_ladder == ["2:1", "3:0.5,6:0.5"] and g.n_combinations == 4
    assert StrategyGrid(tp_ladder=[(3, 0.5), (6, 0.5)]).tp_ladder == ["3:0.5,6:0.5"]  # one ladder: fixed
    g2 = StrategyGrid(tp=[2, 3.5], trail=0.1, trail_activation=[1, 1.5], intrabar="ohlc")
    for c in (a, g, g2):
        assert type(c)(**c.model_dump()) == c
        assert type(c)(**json.loads(c.model_dump_json())) == c
        assert strategy_from(c.model_dump()) == c


def test_strategy_is_scalar_and_grid_holds_lists():
    with pytest.raises(ValidationError, match="tp: a list of values is a grid"):
        Strategy(tp=[2, 3])
    with pytest.raises(ValidationError, match="a list of values is a grid"):
        Strategy(tp_ladder=["2:1", "3:1"])
    g = StrategyGrid(tp=[2, 3], sl=0.5)
    assert g.tp == [2.0, 3.0] and g.sl == [0.5] and g.fee_bps == [30.0] and g.axes() == {"tp": [2.0, 3.0]}
    # a dump writes one-value lists as the value (run records read as the options were given)
    d = g.model_dump()
    assert d["tp"] == [2.0, 3.0] and d["sl"] == 0.5 and d["fee_bps"] == 30.0 and d["tp_ladder"] is None
    assert g.describe() == "tp {2, 3} · sl 0.5 · fees 30 bps · slippage 50 bps · pessimistic intrabar"
    assert g.expand()[1].describe() == "tp 3 · sl 0.5 · fees 30 bps · slippage 50 bps · pessimistic intrabar"
    assert isinstance(strategy_from({"tp": 2, "sl": [0.3, 0.5]}), StrategyGrid)
    assert isinstance(strategy_from({"tp": 2, "tp_ladder": None}), Strategy)
    assert np.array_equal(g.params(), encode_params(g.expand()), equal_nan=True)


def test_domains_come_from_the_option_table():
    """Messages quote the table's domain text, written from the same bounds pydantic enforces."""
    assert OPTIONS["sl"].domain == "must be in (0, 1) (0.5 = stop at -50%)"
    assert OPTIONS["fee_bps"].domain == "must be in [0, 10000)"
    assert OPTIONS["entry_delay_bars"].domain == "must be an integer >= 0"
    assert OPTIONS["trail_activation"].domain == "must be >= 1 (1 = trail from entry)"
    for name, opt in OPTIONS.items():
        if opt.kind == "ladder":
            continue
        for bound in (opt.gt, opt.lt):  # open ends are rejected, by the model and by check_number
            if bound is None:
                continue
            with pytest.raises(ValueError, match=f"{name}=.* {re.escape(opt.domain)}"):
                check_number(name, bound)
            key = "sl" if name == "sl" else name
            with pytest.raises(ValidationError, match=re.escape(opt.domain)):
                StrategyGrid(**{key: [bound]})
        for bound in (opt.ge, opt.le):
            if bound is not None:
                check_number(name, bound)
    assert Strategy(entry_delay_bars=2.0).entry_delay_bars == 2
    assert Strategy(tp=np.float64(2.5)).tp == 2.5
    for bad in ("2", True, float("inf")):
        with pytest.raises(ValidationError, match="tp="):
            Strategy(tp=bad)


def test_deprecated_strategy_config_alias():
    from alertlab.engine import StrategyConfig

    with pytest.warns(DeprecationWarning, match="Strategy"):
        assert StrategyConfig(tp=2) == Strategy(tp=2)
    with pytest.warns(DeprecationWarning):
        assert StrategyConfig(tp=[2, 3]) == StrategyGrid(tp=[2, 3])


def test_expand_order_and_scalars():
    g = StrategyGrid(tp=[2, 3], sl=[0.5, 0.6, 0.7], fee_bps=[0, 30])
    ex = g.expand()
    assert len(ex) == 12 == g.n_combinations
    assert [(c.tp, c.sl, c.fee_bps) for c in ex[:3]] == [(2, 0.5, 0), (2, 0.5, 30), (2, 0.6, 0)]
    assert all(isinstance(c, Strategy) for c in ex)
    assert len({(c.tp, c.sl, c.fee_bps) for c in ex}) == 12
    assert StrategyGrid(tp=2).expand() == [Strategy(tp=2)]


def test_from_file_all_formats(tmp_path):
    want = StrategyGrid(tp=[2, 3], sl=0.5, trail=0.2, intrabar="optimistic")
    (tmp_path / "s.json").write_text(
        json.dumps({"tp": [2, 3], "sl": 0.5, "trail": 0.2, "intrabar": "optimistic"})
    )
    (tmp_path / "s.yaml").write_text("tp: [2, 3]\nsl: 0.5\ntrail: 0.2\nintrabar: optimistic\n")
    (tmp_path / "s.toml").write_text(
        '[strategy]\ntp = [2, 3]\nsl = 0.5\ntrail = 0.2\nintrabar = "optimistic"\n'
    )
    for name in ("s.json", "s.yaml", "s.toml"):
        assert StrategyGrid.from_file(tmp_path / name) == want
        assert load_strategy(tmp_path / name) == want
    (tmp_path / "one.yaml").write_text("tp: 3\nsl: 0.5\n")
    assert (
        load_strategy(tmp_path / "one.yaml")
        == Strategy.from_file(tmp_path / "one.yaml")
        == Strategy(tp=3, sl=0.5)
    )
    (tmp_path / "s.ini").write_text("")
    with pytest.raises(ValueError, match="unknown config format"):
        Strategy.from_file(tmp_path / "s.ini")
    (tmp_path / "bad.yaml").write_text("sl: 2\n")
    with pytest.raises(ValidationError, match="sl=2"):
        Strategy.from_file(tmp_path / "bad.yaml")


def test_encode_params_units_and_ladder():
    cfgs = [
        Strategy(tp=3, sl=0.5, fee_bps=25, slippage_bps=100),
        Strategy(tp_ladder="4:0.25,2:0.5", breakeven_at=1.5, time_stop_hours=2, dip=0.1, dip_window_min=15),
        Strategy(tp_ladder="2:0.3333333333,3:0.3333333333,4:0.3333333334"),
    ]
    p = encode_params(cfgs)
    assert p.shape == (3, N_PARAM_COLS) and p.dtype == np.float64
    assert p[0, C_SL] == 0.5 and p[0, C_FEE] == 0.0025 and p[0, C_SLIP] == 0.01
    assert p[0, C_NLEV] == 1 and p[0, C_LEV] == 3 and p[0, C_W] == 1 and p[0, C_REST] == 0
    assert np.isnan(p[0, C_BE_AT]) and np.isnan(p[0, C_TIME_S])
    assert (
        p[1, C_NLEV] == 2
        and list(p[1, C_LEV : C_LEV + 2]) == [2, 4]
        and list(p[1, C_W : C_W + 2]) == [0.5, 0.25]
    )
    assert p[1, C_REST] == 0.25 and p[1, C_TIME_S] == 7200 and p[1, C_DIP_WIN_S] == 900
    assert p[2, C_REST] == 0 and p[2, C_W : C_W + 3].sum() == pytest.approx(1, abs=1e-15)
    assert list(plain_tpsl_rows(p)) == [True, False, False]
    assert plain_tpsl_rows(
        encode_params(
            [
                Strategy(tp_ladder="3:1"),
                Strategy(sl=0.3),
                Strategy(tp=2, entry_delay_bars=1),
                Strategy(),
            ]
        )
    ).tolist() == [True, True, False, True]
    with pytest.raises(ValueError, match="not a Strategy"):
        encode_params([StrategyGrid(tp=[2, 3])])  # type: ignore[list-item]
