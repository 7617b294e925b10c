"""Search space: parsing, validation, Optuna sampling (incl. conditional options), grid, normalise."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import optuna
import pytest

from alertlab.optimize.space import (
    DEFAULT_SPACE,
    DEFAULT_SPACE_SPEC,
    OPTION_NAMES,
    SearchSpace,
    load_space,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

BRIEF_SPACE = {
    "tp": {"low": 1.5, "high": 10, "log": True},
    "sl": {"low": 0.3, "high": 0.9},
    "trail": {"choices": [None, 0.2, 0.3]},
    "trail_activation": {"low": 1, "high": 3, "when": "trail"},
    "entry_delay_bars": {"low": 0, "high": 3, "int": True},
    "breakeven_at": {"choices": [2.0, None]},
}


def run_study(space: SearchSpace, sampler, n_trials: int) -> list[dict]:
    seen: list[dict] = []

    def objective(trial):
        seen.append(space.suggest(trial))
        return 0.0

    optuna.create_study(sampler=sampler).optimize(objective, n_trials=n_trials)
    return seen


def test_parse_brief_example():
    sp = SearchSpace.from_dict(BRIEF_SPACE)
    assert set(sp.names) == set(BRIEF_SPACE)
    assert sp.names.index("trail") < sp.names.index("trail_activation")
    assert sp["tp"].kind == "float" and sp["tp"].log and sp["tp"].low == 1.5 and sp["tp"].high == 10.0
    assert sp["entry_delay_bars"].kind == "int" and (
        sp["entry_delay_bars"].low,
        sp["entry_delay_bars"].high,
    ) == (0, 3)
    assert sp["trail"].choices == (None, 0.2, 0.3)
    assert sp["trail_activation"].when == "trail"
    assert SearchSpace.from_dict(sp.to_dict()) == sp
    assert SearchSpace.from_dict({"space": BRIEF_SPACE}) == sp
    # integer options are integer ranges even without "int": true
    assert (
        SearchSpace.from_dict({"entry_delay_bars": {"low": 0, "high": 2}})["entry_delay_bars"].kind == "int"
    )


def test_suggest_covers_every_option_and_respects_ranges_and_conditions():
    sp = SearchSpace.from_dict(BRIEF_SPACE | {"time_stop_hours": 24, "dip": "off"})
    seen = run_study(sp, optuna.samplers.RandomSampler(seed=1), 150)
    for cfg in seen:
        assert set(cfg) == set(OPTION_NAMES)
        assert 1.5 <= cfg["tp"] <= 10 and 0.3 <= cfg["sl"] <= 0.9
        assert cfg["entry_delay_bars"] in (0, 1, 2, 3) and isinstance(cfg["entry_delay_bars"], int)
        assert cfg["trail"] in (None, 0.2, 0.3)
        assert cfg["breakeven_at"] in (2.0, None) and cfg["tp_ladder"] is None
        assert (cfg["trail_activation"] is None) == (cfg["trail"] is None)
        if cfg["trail_activation"] is not None:
            assert 1 <= cfg["trail_activation"] <= 3
        assert cfg["time_stop_hours"] == 24 and cfg["dip"] is None
        assert cfg["dip_window_min"] is None  # not in the space: off
    assert {c["trail"] for c in seen} == {None, 0.2, 0.3}
    assert {c["entry_delay_bars"] for c in seen} == {0, 1, 2, 3}
    tps = np.log([c["tp"] for c in seen])  # log scale: about half the draws below the geometric mid
    assert 0.3 < np.mean(tps < (np.log(1.5) + np.log(10)) / 2) < 0.7


def test_conditional_options_with_tpe_and_chained_conditions():
    sp = SearchSpace.from_dict(
        {
            "trail_activation": {"low": 1, "high": 3, "when": "trail"},  # child listed first
            "breakeven_offset": {"low": 0.0, "high": 0.1, "when": "breakeven_at"},
            "breakeven_at": {"choices": [None, 2.0], "when": "trail"},
            "trail": {"choices": ["off", 0.25]},
        }
    )
    names = sp.names
    assert names.index("trail") < names.index("breakeven_at") < names.index("breakeven_offset")
    seen = run_study(sp, optuna.samplers.TPESampler(seed=0, n_startup_trials=5), 40)
    for c in seen:
        assert (c["trail_activation"] is None) == (c["trail"] is None)
        if c["trail"] is None:
            assert c["breakeven_at"] is None and c["breakeven_offset"] is None
        assert (c["breakeven_offset"] is None) == (c["breakeven_at"] is None)
    assert any(c["breakeven_offset"] is not None for c in seen)


def test_grid_enumerates_the_full_product_with_gridsampler():
    sp = SearchSpace.from_dict(
        {
            "sl": {"low": 0.3, "high": 0.5, "step": 0.05},
            "entry_delay_bars": {"low": 0, "high": 4, "step": 2},
            "trail": {"choices": [None, 0.2]},
            "time_stop_hours": 12,
        }
    )
    grid = sp.grid()
    assert grid == {"sl": [0.3, 0.35, 0.4, 0.45, 0.5], "entry_delay_bars": [0, 2, 4], "trail": [None, 0.2]}
    n = math.prod(len(v) for v in grid.values())
    seen = run_study(sp, optuna.samplers.GridSampler(grid, seed=0), n)
    got = {(c["sl"], c["entry_delay_bars"], c["trail"]) for c in seen}
    assert got == set(itertools.product(*grid.values()))
    assert all(c["time_stop_hours"] == 12 for c in seen)
    with pytest.raises(ValueError, match="step"):
        DEFAULT_SPACE.grid()  # continuous tp / sl
    assert SearchSpace.from_dict({"tp": {"low": 2, "high": 4, "int": True}}).grid() == {"tp": [2, 3, 4]}
    # conditional options are enumerated in full: grid points with the parent off repeat a config
    cond = SearchSpace.from_dict(
        {
            "trail": {"choices": [None, 0.2]},
            "trail_activation": {"low": 1, "high": 2, "step": 0.5, "when": "trail"},
        }
    )
    seen = run_study(cond, optuna.samplers.GridSampler(cond.grid(), seed=0), 6)
    got = [(c["trail"], c["trail_activation"]) for c in seen]
    assert set(got) == {(None, None), (0.2, 1.0), (0.2, 1.5), (0.2, 2.0)} and got.count((None, None)) == 3


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"take_profit": {"low": 2, "high": 3}}, "valid options: tp, tp_ladder, sl"),
        ({"fee_bps": 30}, "fixed run setting"),
        ({"tp": {"low": 5, "high": 5}}, "low .* must be < high"),
        ({"tp": {"low": 5, "high": 2}}, "low .* must be < high"),
        ({"breakeven_offset": {"low": -0.1, "high": 0.1, "log": True}}, "log range needs low > 0"),
        ({"tp": {"low": 2, "high": 3, "choices": [2]}}, "cannot be combined"),
        ({"tp": {"low": 2}}, "give 'low' and 'high'"),
        ({"tp": {"low": 2, "high": 3, "lo": 1}}, "unknown key"),
        ({"tp": {"choices": []}}, "non-empty"),
        ({"tp": {"choices": [2, 2.0]}}, "duplicate"),
        ({"tp": {"low": 2, "high": 3, "step": 0.4}}, "not a multiple of step"),
        ({"tp": {"low": 2, "high": 3, "step": 0.5, "log": True}}, "cannot be combined"),
        ({"tp": {"low": 2, "high": "x"}}, "finite number"),
        ({"sl": {"low": 0.5, "high": 1.2}}, r"sl=1.2 must be in \(0, 1\)"),
        ({"tp": {"choices": [0.5, 3]}}, "tp=0.5 must be > 1"),
        ({"trail": {"choices": [True]}}, "trail"),
        ({"entry_delay_bars": {"low": 0.5, "high": 3}}, "integer"),
        ({"entry_delay_bars": {"low": 0, "high": 3, "int": False}}, "integer option"),
        ({"entry_delay_bars": {"choices": [1.5]}}, "integer"),
        ({"tp_ladder": {"low": 1, "high": 2}}, "takes 'choices'"),
        ({"tp_ladder": {"choices": ["2:0.5,x"]}}, "tp_ladder level 'x'"),
        ({"tp_ladder": {"choices": ["0.5:0.5"]}}, "tp_ladder multiple 0.5 must be > 1"),
        ({"tp_ladder": {"choices": ["2:0.7,3:0.7"]}}, "sum to"),
        ({"trail_activation": {"low": 1, "high": 2, "when": "trail"}}, "not in the space"),
        ({"trail": {"choices": [0.2], "when": "trail"}}, "itself"),
        (
            {
                "trail": {"choices": [None, 0.2], "when": "sl"},
                "sl": {"choices": [None, 0.5], "when": "trail"},
            },
            "cycle",
        ),
        ({}, "empty"),
    ],
)
def test_validation_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        SearchSpace.from_dict(spec)


def test_normalise():
    sp = SearchSpace.from_dict(
        {
            "breakeven_at": {"low": 2, "high": 8, "log": True},
            "sl": {"low": 0.2, "high": 0.6},
            "time_stop_hours": {"choices": [48, None, 6, 12]},
            "tp_ladder": {"choices": ["3:1", "2:0.5,4:0.5"]},
            "trail_activation": {"low": 1, "high": 2, "when": "trail"},
            "trail": {"choices": [None, 0.3]},
            "dip": 0.1,
        }
    )
    names = sp.names
    rows = [
        {
            "breakeven_at": 4.0,
            "sl": 0.5,
            "time_stop_hours": 12,
            "tp_ladder": "2:0.5,4:0.5",
            "trail": 0.3,
            "trail_activation": 1.5,
        },
        {
            "breakeven_at": 2.0,
            "sl": 0.2,
            "time_stop_hours": None,
            "tp_ladder": "3:1",
            "trail": None,
            "dip": 0.1,
        },
    ]
    x = sp.normalise(rows)
    assert x.shape == (2, len(names))
    col = {n: x[:, i] for i, n in enumerate(names)}
    np.testing.assert_allclose(
        col["breakeven_at"], [0.5, 0.0]
    )  # log scale: 4 is the geometric middle of 2..8
    np.testing.assert_allclose(col["sl"], [0.75, 0.0])
    assert col["time_stop_hours"][0] == 0.5 and np.isnan(col["time_stop_hours"][1])  # 6 < 12 < 48
    np.testing.assert_allclose(col["tp_ladder"], [1.0, 0.0])  # strings in listed order
    assert col["trail_activation"][0] == 0.5 and np.isnan(col["trail_activation"][1])
    assert col["trail"][0] == 0.0 and np.isnan(col["trail"][1])  # single on-choice
    assert col["dip"][1] == 0.0 and np.isnan(col["dip"][0])  # fixed option; absent -> NaN
    with pytest.raises(ValueError, match="not one of the choices"):
        sp.normalise([{"time_stop_hours": 7}])


def test_space_that_can_turn_on_tp_and_tp_ladder_is_rejected():
    """The engine's take-profit rule holds for spaces too (one rule, in Strategy)."""
    for spec in (
        {"tp": {"low": 2, "high": 5}, "tp_ladder": {"choices": ["2:0.5,4:0.5", None]}},
        {"tp": 3.0, "tp_ladder": "2:0.5,4:0.5"},
        {"tp": {"choices": [None, 3.0]}, "tp_ladder": {"choices": ["2:1"]}},
    ):
        with pytest.raises(ValueError, match="give tp or tp_ladder, not both"):
            SearchSpace.from_dict(spec)
    # one of them fixed off is fine; a one-level ladder "M:1" is tp M
    assert SearchSpace.from_dict({"tp": None, "tp_ladder": {"choices": ["3:1", "2:0.5,4:0.5"]}})
    assert SearchSpace.from_dict({"tp": {"low": 2, "high": 5}, "tp_ladder": "off"})
    # the option domains are the engine's: the same value fails in both with the same words
    with pytest.raises(ValueError, match=r"breakeven_offset=-1.5 must be > -1"):
        SearchSpace.from_dict({"breakeven_at": 2.0, "breakeven_offset": -1.5})


def test_files_and_loading(tmp_path):
    sp = SearchSpace.from_dict(BRIEF_SPACE)
    (tmp_path / "s.json").write_text(json.dumps(BRIEF_SPACE))
    (tmp_path / "s.yaml").write_text(
        "tp: {low: 1.5, high: 10, log: true}\nsl: {low: 0.3, high: 0.9}\n"
        "trail: {choices: [null, 0.2, 0.3]}\ntrail_activation: {low: 1, high: 3, when: trail}\n"
        "entry_delay_bars: {low: 0, high: 3, int: true}\nbreakeven_at: {choices: [2.0, null]}\n"
    )
    (tmp_path / "s.toml").write_text(
        "[space]\ntp = {low = 1.5, high = 10, log = true}\nsl = {low = 0.3, high = 0.9}\n"
        'trail = {choices = ["off", 0.2, 0.3]}\ntrail_activation = {low = 1, high = 3, when = "trail"}\n'
        'entry_delay_bars = {low = 0, high = 3, int = true}\nbreakeven_at = {choices = [2.0, "None"]}\n'
    )
    for name in ("s.json", "s.yaml", "s.toml"):
        assert SearchSpace.from_file(tmp_path / name) == sp
        assert load_space(str(tmp_path / name)) == sp
    (tmp_path / "s.ini").write_text("x")
    with pytest.raises(ValueError, match="unsupported"):
        SearchSpace.from_file(tmp_path / "s.ini")
    (tmp_path / "bad.json").write_text(json.dumps({"tpp": {"low": 2, "high": 3}}))
    with pytest.raises(ValueError, match="bad.json: unknown option 'tpp'"):
        SearchSpace.from_file(tmp_path / "bad.json")
    assert load_space(None) is DEFAULT_SPACE
    assert load_space(sp) is sp and load_space(BRIEF_SPACE) == sp


def test_default_space():
    assert DEFAULT_SPACE.to_dict() == DEFAULT_SPACE_SPEC
    assert set(DEFAULT_SPACE.names) == {
        "tp",
        "sl",
        "trail",
        "trail_activation",
        "breakeven_at",
        "time_stop_hours",
    }
    for name in ("trail", "breakeven_at", "time_stop_hours"):
        assert None in DEFAULT_SPACE[name].choices
    seen = run_study(DEFAULT_SPACE, optuna.samplers.RandomSampler(seed=3), 60)
    assert any(c["trail"] is None for c in seen) and any(c["trail"] is not None for c in seen)
    assert all((c["trail_activation"] is None) == (c["trail"] is None) for c in seen)
    x = DEFAULT_SPACE.normalise(seen)
    on = ~np.isnan(x)
    assert ((x[on] >= 0) & (x[on] <= 1)).all()


def test_params_map_one_to_one_to_optuna_distributions():
    space = SearchSpace.from_dict(
        {
            "tp": {"low": 1.5, "high": 10, "log": True},
            "sl": {"low": 0.3, "high": 0.9, "step": 0.1},
            "entry_delay_bars": {"low": 0, "high": 3, "int": True},
            "trail": {"choices": [None, 0.2, 0.3]},
            "trail_activation": {"low": 1, "high": 3, "when": "trail"},
            "time_stop_hours": 24,
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen: set[str] = set()
    for _ in range(20):
        t = study.ask()
        space.suggest(t)
        for name, dist in t.distributions.items():
            assert dist == space[name].distribution(), name
            seen.add(name)
    assert seen == {"tp", "sl", "entry_delay_bars", "trail", "trail_activation"}
    assert space["time_stop_hours"].distribution() is None
