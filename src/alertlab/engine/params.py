"""Strategies, grids and the numeric parameter matrix the kernels read.

A :class:`Strategy` holds one value per exit rule: what one simulated configuration is. A
:class:`StrategyGrid` holds a list of values per option; :meth:`StrategyGrid.expand` enumerates
the Cartesian product as strategies. Both are pydantic models typed with the option table
(:mod:`alertlab.engine.options`), so each domain is written once. :func:`strategy_from` picks
one or the other from a mapping (files, command lines). :func:`encode_params` turns strategies
into a float64 matrix, one row per strategy, NaN = rule off, which is all the Numba kernels see
(column indices are the ``C_*`` constants below).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from alertlab.engine.enums import IntrabarPolicy
from alertlab.engine.options import DEPENDENTS, EXCLUSIVE, OPTIONS
from alertlab.util.configfile import read_mapping

MAX_LEVELS = 16  # take-profit ladder levels a parameter row can hold
LADDER_SUM_TOL = 1e-9  # ladder fractions may sum to 1 + this (float noise from user input)

# parameter-matrix columns (NaN = rule off)
C_SL = 0  # stop-loss multiple of P
C_BE_AT = 1  # breakeven activation multiple
C_BE_OFF = 2  # breakeven offset X: stop at P * (1 + X)
C_TRAIL = 3  # trailing fraction
C_TRAIL_ACT = 4  # trailing activation multiple
C_TIME_S = 5  # time stop in seconds after the fill bar's ts
C_DELAY = 6  # entry delay in bars (0 = immediate)
C_DIP = 7  # dip limit fraction below the entry bar's open
C_DIP_WIN_S = 8  # dip window in seconds (NaN = the whole window)
C_FEE = 9  # fee per side, fraction
C_SLIP = 10  # slippage per side, fraction
C_NLEV = 11  # number of ladder levels (0 = no take profit)
C_REST = 12  # fraction that no ladder level sells (rides to the other exits)
C_LEV = 13  # C_LEV + k: multiple of ladder level k (ascending)
C_W = C_LEV + MAX_LEVELS  # C_W + k: fraction of ladder level k
N_PARAM_COLS = C_W + MAX_LEVELS

PARAM_COLUMNS: tuple[str, ...] = (
    "sl",
    "breakeven_at",
    "breakeven_offset",
    "trail",
    "trail_activation",
    "time_stop_s",
    "entry_delay_bars",
    "dip",
    "dip_window_s",
    "fee",
    "slippage",
    "n_levels",
    "rest",
    *(f"level_{k}" for k in range(MAX_LEVELS)),
    *(f"fraction_{k}" for k in range(MAX_LEVELS)),
)


# grid options in Cartesian-product order (tp_ladder sits right after tp): the option table's order
GRID_FIELDS: tuple[str, ...] = tuple(OPTIONS)


def _fmt(x: float) -> str:
    """Shortest exact text of a float (``2`` rather than ``2.0``)."""
    r = repr(float(x))
    return r[:-2] if r.endswith(".0") else r


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _ladder_pairs_from_text(spec: str) -> list[tuple[float, float]]:
    pairs = []
    for part in spec.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        bits = part.split(":")
        if len(bits) != 2:
            raise ValueError(f"tp_ladder level {part!r}: expected MULTIPLE:FRACTION, e.g. 2:0.5")
        try:
            pairs.append((float(bits[0]), float(bits[1])))
        except ValueError:
            raise ValueError(f"tp_ladder level {part!r}: not numbers") from None
    return pairs


def _ladder_pairs_from_seq(spec: Sequence) -> list[tuple[float, float]]:
    pairs = []
    for item in spec:
        if isinstance(item, str) or not isinstance(item, Sequence) or len(item) != 2:
            raise ValueError(f"tp_ladder level {item!r}: expected a (multiple, fraction) pair")
        if not (_is_number(item[0]) and _is_number(item[1])):
            raise ValueError(f"tp_ladder level {item!r}: not numbers")
        pairs.append((float(item[0]), float(item[1])))
    return pairs


def parse_ladder(spec: str | Sequence) -> list[tuple[float, float]]:
    """Parse one ladder (``"2:0.5,4:0.25"`` or ``[(2, 0.5), (4, 0.25)]``) into sorted validated pairs.

    Rules: multiples > 1, fractions in (0, 1], no repeated multiple, at most ``MAX_LEVELS`` levels,
    fractions summing to <= 1 (+1e-9). Whatever the levels leave unsold rides to the other exits.
    """
    pairs = _ladder_pairs_from_text(spec) if isinstance(spec, str) else _ladder_pairs_from_seq(spec)
    if not pairs:
        raise ValueError("tp_ladder is empty")
    if len(pairs) > MAX_LEVELS:
        raise ValueError(f"tp_ladder has {len(pairs)} levels; at most {MAX_LEVELS} are supported")
    for m, w in pairs:
        if not (math.isfinite(m) and m > 1):
            raise ValueError(f"tp_ladder multiple {m} must be > 1 (a multiple of the entry price)")
        if not (math.isfinite(w) and 0 < w <= 1):
            raise ValueError(f"tp_ladder fraction {w} must be in (0, 1]")
    pairs.sort()
    ms = [m for m, _ in pairs]
    if len(set(ms)) != len(ms):
        raise ValueError(f"tp_ladder repeats a multiple: {ms}")
    total = sum(w for _, w in pairs)
    if total > 1 + LADDER_SUM_TOL:
        raise ValueError(f"tp_ladder fractions sum to {total:.12g} > 1")
    return pairs


def ladder_text(pairs: Sequence[tuple[float, float]]) -> str:
    """Canonical text of a parsed ladder: ``"2:0.5,4:0.25,10:0.25"``."""
    return ",".join(f"{_fmt(m)}:{_fmt(w)}" for m, w in pairs)


def ladder_rows(pairs: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray, float]:
    """Multiples, fractions and riding rest of a ladder as the kernels use them.

    Fractions summing to within 1e-9 of 1 are rescaled to sum to exactly 1 (rest 0), so a full
    ladder closes the position instead of leaving a 1e-12 sliver riding to the horizon.
    """
    m = np.array([p[0] for p in pairs], dtype=np.float64)
    w = np.array([p[1] for p in pairs], dtype=np.float64)
    total = float(w.sum())
    if abs(total - 1.0) <= LADDER_SUM_TOL:
        return m, w / total, 0.0
    return m, w, 1.0 - total


TP_EXCLUSIVE = "give tp or tp_ladder, not both (tp M is the one-level ladder 'M:1')"
"""The take-profit rule: one of ``tp`` and ``tp_ladder``, never both (files, flags and spaces)."""


def _one_ladder(v: Any) -> Any:
    """One ladder (text or (multiple, fraction) pairs) → its canonical text; other input as is."""
    if isinstance(v, str) or (isinstance(v, list | tuple) and v and _is_pair(v[0])):
        return ladder_text(parse_ladder(v))
    if isinstance(v, list | tuple):
        raise ValueError("tp_ladder: expected 'M:W,...' or a list of (M, W) pairs")
    return v


def _is_pair(x: Any) -> bool:
    return isinstance(x, list | tuple) and len(x) == 2 and _is_number(x[0])


def _is_ladder_list(v: Any) -> bool:
    """True for a list of ladders (a grid axis), False for one ladder given as pairs."""
    return isinstance(v, list | tuple) and bool(v) and not _is_pair(v[0])


# Field types: the option table's entries as pydantic metadata (the domain lives there, once).
Tp = Annotated[float, OPTIONS["tp"]]
Ladder = Annotated[str, BeforeValidator(_one_ladder)]
Sl = Annotated[float, OPTIONS["sl"]]
BreakevenAt = Annotated[float, OPTIONS["breakeven_at"]]
BreakevenOffset = Annotated[float, OPTIONS["breakeven_offset"]]
Trail = Annotated[float, OPTIONS["trail"]]
TrailActivation = Annotated[float, OPTIONS["trail_activation"]]
TimeStopHours = Annotated[float, OPTIONS["time_stop_hours"]]
EntryDelayBars = Annotated[int, OPTIONS["entry_delay_bars"]]
Dip = Annotated[float, OPTIONS["dip"]]
DipWindowMin = Annotated[float, OPTIONS["dip_window_min"]]
FeeBps = Annotated[float, OPTIONS["fee_bps"]]
SlippageBps = Annotated[float, OPTIONS["slippage_bps"]]


def _default(name: str) -> Any:
    return OPTIONS[name].default


def _exclusive_first(data: Any, ladder_check: Any) -> Any:
    """``tp`` and ``tp_ladder`` together are rejected before anything else (a ladder that is also
    malformed is named in the same message, so no check is skipped)."""
    if isinstance(data, dict) and data.get("tp") is not None and data.get("tp_ladder") is not None:
        msg = TP_EXCLUSIVE
        try:
            ladder_check(data["tp_ladder"])
        except ValueError as exc:
            msg += f"; also {exc}"
        raise ValueError(msg)
    return data


def _check_rules(values: dict[str, list | None]) -> None:
    """The rules between options, for a strategy (one value each) or every combination of a grid.

    ``values``: option → its values (None = rule off).
    """
    for a, b in EXCLUSIVE:
        if values[a] is not None and values[b] is not None:
            raise ValueError(TP_EXCLUSIVE)
    for name, parent in DEPENDENTS.items():
        vals = values[name]
        if values[parent] is None and vals is not None and vals != [_default(name)]:
            raise ValueError(f"{name} needs {parent}")
    be_at, be_off = values["breakeven_at"], values["breakeven_offset"]
    if be_at is not None and be_off is not None:
        hi_off, lo_at = max(be_off), min(be_at)
        if 1 + hi_off >= lo_at:
            raise ValueError(
                f"breakeven stop P*(1+{hi_off}) must lie below its activation {lo_at}*P "
                "for every grid combination"
            )
    if values["dip"] is not None and max(values["entry_delay_bars"] or [0]) > 0:
        raise ValueError(
            "dip and entry_delay_bars cannot be combined (a limit order placed after a "
            "delay is ambiguous); use one entry model"
        )


def _describe(values: dict[str, Any], intrabar: str) -> str:
    """One line of a strategy or a grid; lists (grid axes) show in braces (``tp {2, 3, 5}``)."""

    def v(x: Any, unit: str = "") -> str:
        if isinstance(x, list):
            return "{" + ", ".join(_fmt(float(e)) if _is_number(e) else str(e) for e in x) + "}" + unit
        return (_fmt(float(x)) if _is_number(x) else str(x)) + unit

    g = values.get
    parts: list[str] = []
    if g("dip") is not None:
        win = f" for {v(g('dip_window_min'), ' min')}" if g("dip_window_min") is not None else ""
        parts.append(f"limit buy {v(g('dip'))} below the entry open{win}")
    if g("entry_delay_bars") != 0:
        parts.append(f"entry delay {v(g('entry_delay_bars'))} bar(s)")
    if g("tp") is not None:
        parts.append(f"tp {v(g('tp'))}")
    if g("tp_ladder") is not None:
        parts.append(f"tp ladder {v(g('tp_ladder'))}")
    if g("sl") is not None:
        parts.append(f"sl {v(g('sl'))}")
    if g("breakeven_at") is not None:
        off = f" (+{v(g('breakeven_offset'))})" if g("breakeven_offset") != 0.0 else ""
        parts.append(f"breakeven at {v(g('breakeven_at'))}{off}")
    if g("trail") is not None:
        act = f" from {v(g('trail_activation'))}" if g("trail_activation") != 1.0 else ""
        parts.append(f"trail {v(g('trail'))}{act}")
    if g("time_stop_hours") is not None:
        parts.append(f"time stop {v(g('time_stop_hours'), ' h')}")
    exits = ("tp", "tp_ladder", "sl", "breakeven_at", "trail", "time_stop_hours")
    if all(g(k) is None for k in exits):
        parts.append("hold to horizon (no exit rule given)")
    parts += [
        f"fees {v(g('fee_bps'), ' bps')}",
        f"slippage {v(g('slippage_bps'), ' bps')}",
        f"{intrabar} intrabar",
    ]
    return " · ".join(parts)


def _read_file(path: str | Path) -> dict[str, Any]:
    data = read_mapping(path, "strategy")
    if set(data) == {"strategy"} and isinstance(data["strategy"], dict):
        data = data["strategy"]
    return data


class Strategy(BaseModel):
    """One exit strategy: one value per option, what one simulated configuration is.

    Prices are multiples of the entry reference price P. The domains are the option table's
    (:mod:`alertlab.engine.options`); options:

    * ``tp`` (> 1): sell everything at ``tp·P``; shorthand for a one-level ladder of fraction 1.
    * ``tp_ladder``: ``"2:0.5,4:0.25,10:0.25"`` or ``[(2, 0.5), ...]`` — sell fraction w at m·P;
      the unsold rest rides. Exclusive with ``tp``.
    * ``sl`` in (0, 1): stop at ``sl·P`` (0.5 = −50 %).
    * ``breakeven_at`` (> 1) [``breakeven_offset`` X, default 0, −1 < X < breakeven_at − 1]: once the
      peak reached ``breakeven_at·P`` the stop is ``P·(1+X)``.
    * ``trail`` in (0, 1) [``trail_activation`` ≥ 1, default 1]: once the peak reached
      ``trail_activation·P`` the stop is ``peak·(1 − trail)``.
    * ``time_stop_hours`` (> 0): sell the rest at the open of the first traded bar whose ts ≥ fill ts + H
      (by timestamps, so mixed bar intervals are fine).
    * ``entry_delay_bars`` N (≥ 0): buy at the open of the first traded bar at or after window bar N
      (latency model).
    * ``dip`` in (0, 1) [``dip_window_min`` > 0, default: the whole window]: limit buy at
      ``E·(1 − dip)``. Cannot be combined with ``entry_delay_bars`` > 0 (a delayed limit order is
      ambiguous: rejected with an error).
    * ``fee_bps`` (default 30) and ``slippage_bps`` (default 50) per side, in [0, 10000).
    * ``intrabar``: ``pessimistic`` | ``optimistic`` | ``ohlc``.
    * ``fill_on_zero_volume`` (default False): treat every bar as traded. By default a no-trade bar
      (volume 0 and open = high = low = close) triggers and fills nothing (see the kernel); set this
      for sources that report no volume.

    >>> Strategy(tp=3, sl=0.5).describe()
    'tp 3 · sl 0.5 · fees 30 bps · slippage 50 bps · pessimistic intrabar'
    """

    model_config = ConfigDict(extra="forbid")

    tp: Tp | None = _default("tp")
    tp_ladder: Ladder | None = _default("tp_ladder")
    sl: Sl | None = _default("sl")
    breakeven_at: BreakevenAt | None = _default("breakeven_at")
    breakeven_offset: BreakevenOffset = _default("breakeven_offset")
    trail: Trail | None = _default("trail")
    trail_activation: TrailActivation = _default("trail_activation")
    time_stop_hours: TimeStopHours | None = _default("time_stop_hours")
    entry_delay_bars: EntryDelayBars = _default("entry_delay_bars")
    dip: Dip | None = _default("dip")
    dip_window_min: DipWindowMin | None = _default("dip_window_min")
    fee_bps: FeeBps = _default("fee_bps")
    slippage_bps: SlippageBps = _default("slippage_bps")
    intrabar: IntrabarPolicy = "pessimistic"
    fill_on_zero_volume: bool = False

    @model_validator(mode="before")
    @classmethod
    def _before(cls, data: Any) -> Any:
        if isinstance(data, dict):
            grid = [k for k, v in data.items() if k in OPTIONS and _is_grid_value(k, v)]
            if grid:
                raise ValueError(
                    f"{grid[0]}: a list of values is a grid; use StrategyGrid (or strategy_from) for grids"
                )
        return _exclusive_first(data, _one_ladder)

    @model_validator(mode="after")
    def _rules(self) -> Strategy:
        _check_rules({k: None if (x := getattr(self, k)) is None else [x] for k in OPTIONS})
        return self

    def ladder(self) -> list[tuple[float, float]] | None:
        """The (multiple, fraction) levels (``tp`` as ``[(tp, 1)]``), or None without a take profit."""
        if self.tp is not None:
            return [(float(self.tp), 1.0)]
        if self.tp_ladder is not None:
            return parse_ladder(self.tp_ladder)
        return None

    def describe(self) -> str:
        """The strategy in one line, as it runs: ``tp 3 · sl 0.5 · fees 30 bps · slippage 50 bps ·
        pessimistic intrabar``; without any exit rule ``hold to horizon (no exit rule given)``."""
        return _describe({k: getattr(self, k) for k in OPTIONS}, self.intrabar)

    @classmethod
    def from_file(cls, path: str | Path) -> Strategy:
        """Load from JSON, YAML or TOML (by suffix); a top-level ``strategy`` table is accepted."""
        return cls(**_read_file(path))


def _is_grid_value(name: str, v: Any) -> bool:
    return _is_ladder_list(v) if name == "tp_ladder" else isinstance(v, list | tuple)


def _grid_default(name: str) -> Any:
    d = _default(name)
    return Field(default=None) if d is None else Field(default_factory=lambda: [d])


class StrategyGrid(BaseModel):
    """A grid of strategies: every option holds a list of values, their Cartesian product the grid.

    Options, domains and rules are :class:`Strategy`'s; the rules between options must hold for
    every combination. A scalar given for an option is a fixed value (a list of one); options with
    two or more values are the grid's :meth:`axes`. ``intrabar`` and ``fill_on_zero_volume`` are
    run settings (one value, not an axis). ``tp_ladder`` takes a list of ladders (one ladder alone,
    as text or pairs, is a fixed value). Dumps write a one-value list as the value itself, so a
    dump reads back as the same grid.

    >>> g = StrategyGrid(tp=[2, 3, 5], sl=[0.3, 0.5])
    >>> g.n_combinations, g.expand()[1].describe()
    (6, 'tp 2 · sl 0.5 · fees 30 bps · slippage 50 bps · pessimistic intrabar')
    """

    model_config = ConfigDict(extra="forbid")

    tp: list[Tp] | None = _grid_default("tp")
    tp_ladder: list[Ladder] | None = _grid_default("tp_ladder")
    sl: list[Sl] | None = _grid_default("sl")
    breakeven_at: list[BreakevenAt] | None = _grid_default("breakeven_at")
    breakeven_offset: list[BreakevenOffset] = _grid_default("breakeven_offset")
    trail: list[Trail] | None = _grid_default("trail")
    trail_activation: list[TrailActivation] = _grid_default("trail_activation")
    time_stop_hours: list[TimeStopHours] | None = _grid_default("time_stop_hours")
    entry_delay_bars: list[EntryDelayBars] = _grid_default("entry_delay_bars")
    dip: list[Dip] | None = _grid_default("dip")
    dip_window_min: list[DipWindowMin] | None = _grid_default("dip_window_min")
    fee_bps: list[FeeBps] = _grid_default("fee_bps")
    slippage_bps: list[SlippageBps] = _grid_default("slippage_bps")
    intrabar: IntrabarPolicy = "pessimistic"
    fill_on_zero_volume: bool = False

    @model_validator(mode="before")
    @classmethod
    def _before(cls, data: Any) -> Any:
        data = _exclusive_first(data, _grid_ladders)
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for k, v in data.items():
            if k not in OPTIONS or v is None:
                continue
            if not _is_grid_value(k, v):
                out[k] = [v]
            elif not v:
                raise ValueError(f"{k}: an empty list is not a grid")
            else:
                out[k] = list(v)
        return out

    @model_validator(mode="after")
    def _rules(self) -> StrategyGrid:
        for k in OPTIONS:
            vals = getattr(self, k)
            if vals is not None and len(set(vals)) != len(vals):
                what = "ladders" if k == "tp_ladder" else "values"
                raise ValueError(f"{k}: repeated {what} in grid {vals}")
        _check_rules({k: getattr(self, k) for k in OPTIONS})
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        d = handler(self)
        for k in OPTIONS:
            if isinstance(d.get(k), list) and len(d[k]) == 1:
                d[k] = d[k][0]
        return d

    def axes(self) -> dict[str, list]:
        """The options with two or more values, in product order (``GRID_FIELDS``), with their values."""
        return {k: list(v) for k in GRID_FIELDS if (v := getattr(self, k)) is not None and len(v) > 1}

    @property
    def n_combinations(self) -> int:
        return math.prod(len(v) for v in self.axes().values())

    def expand(self) -> list[Strategy]:
        """The strategies of the Cartesian product (last option varies fastest, ``GRID_FIELDS`` order)."""
        fixed = {k: v[0] for k in OPTIONS if (v := getattr(self, k)) is not None}
        settings = {"intrabar": self.intrabar, "fill_on_zero_volume": self.fill_on_zero_volume}
        axes = self.axes()
        return [
            Strategy(**{**fixed, **dict(zip(axes, combo, strict=True)), **settings})
            for combo in itertools.product(*axes.values())
        ]

    def params(self) -> np.ndarray:
        """The engine's parameter matrix of :meth:`expand` (see :func:`encode_params`)."""
        return encode_params(self.expand())

    def describe(self) -> str:
        """The grid in one line; axes show their values in braces (``tp {2, 3, 5} · sl 0.5 · …``)."""
        values = {k: v if v is None or len(v) > 1 else v[0] for k in OPTIONS for v in [getattr(self, k)]}
        return _describe(values, self.intrabar)

    @classmethod
    def from_file(cls, path: str | Path) -> StrategyGrid:
        """Load from JSON, YAML or TOML (by suffix); a top-level ``strategy`` table is accepted."""
        return cls(**_read_file(path))


def _grid_ladders(v: Any) -> Any:
    return [_one_ladder(x) for x in v] if _is_ladder_list(v) else _one_ladder(v)


def strategy_from(data: Mapping[str, Any]) -> Strategy | StrategyGrid:
    """A :class:`StrategyGrid` when any option holds a list of values, else a :class:`Strategy`.

    How files and command lines are read: ``{"tp": [2, 3], "sl": 0.5}`` is a grid of two.
    """
    d = dict(data)
    if any(k in OPTIONS and _is_grid_value(k, v) for k, v in d.items()):
        return StrategyGrid(**d)
    return Strategy(**d)


def load_strategy(path: str | Path) -> Strategy | StrategyGrid:
    """A strategy or grid file (JSON, YAML or TOML; see :func:`strategy_from`)."""
    return strategy_from(_read_file(path))


def StrategyConfig(**options: Any) -> Strategy | StrategyGrid:  # noqa: N802 (the old class name)
    """Deprecated: use :class:`Strategy` (one value per option) or :class:`StrategyGrid` (lists).

    Kept for scripts written against the old single class; returns :func:`strategy_from`'s pick.
    """
    warnings.warn(
        "StrategyConfig is deprecated: use Strategy (one strategy) or StrategyGrid (lists of values)",
        DeprecationWarning,
        stacklevel=2,
    )
    return strategy_from(options)


def encode_params(strategies: Sequence[Strategy]) -> np.ndarray:
    """Float64 matrix ``(len(strategies), N_PARAM_COLS)``, one row per strategy; NaN = rule off.

    Units are converted for the kernels: bps → fractions, hours/minutes → seconds. Ladder levels
    are stored ascending with their fractions (see :func:`ladder_rows`). ``intrabar`` is not part of
    the matrix: it is an argument of :func:`~alertlab.engine.simulate`.
    """
    out = np.full((len(strategies), N_PARAM_COLS), np.nan)
    for r, c in enumerate(strategies):
        if not isinstance(c, Strategy):
            raise ValueError(f"item {r} is a {type(c).__name__}, not a Strategy; encode a grid's expand()")
        row = out[r]
        row[C_SL] = np.nan if c.sl is None else c.sl
        if c.breakeven_at is not None:
            row[C_BE_AT], row[C_BE_OFF] = c.breakeven_at, c.breakeven_offset
        if c.trail is not None:
            row[C_TRAIL], row[C_TRAIL_ACT] = c.trail, c.trail_activation
        row[C_TIME_S] = np.nan if c.time_stop_hours is None else c.time_stop_hours * 3600.0
        row[C_DELAY] = c.entry_delay_bars
        if c.dip is not None:
            row[C_DIP] = c.dip
            row[C_DIP_WIN_S] = np.nan if c.dip_window_min is None else c.dip_window_min * 60.0
        row[C_FEE] = c.fee_bps / 1e4
        row[C_SLIP] = c.slippage_bps / 1e4
        lad = c.ladder()
        if lad is None:
            row[C_NLEV], row[C_REST] = 0, 1.0
        else:
            m, w, rest = ladder_rows(lad)
            row[C_NLEV], row[C_REST] = len(m), rest
            row[C_LEV : C_LEV + len(m)] = m
            row[C_W : C_W + len(w)] = w
    return out


def plain_tpsl_rows(params: np.ndarray) -> np.ndarray:
    """Boolean mask of rows the TP/SL first-passage path can serve exactly.

    Plain = at most one take-profit level selling everything, an optional fixed stop loss, immediate
    entry, and no breakeven, trailing, time stop, dip or delay.
    """
    p = np.asarray(params, dtype=np.float64)
    nlev = p[:, C_NLEV]
    one_full = (nlev == 1) & (p[:, C_W] == 1.0) & (p[:, C_REST] == 0.0)
    none = (nlev == 0) & (p[:, C_REST] == 1.0)
    delay_ok = np.isnan(p[:, C_DELAY]) | (p[:, C_DELAY] == 0)
    off = np.isnan(p[:, [C_BE_AT, C_TRAIL, C_TIME_S, C_DIP]]).all(axis=1)
    return (one_full | none) & delay_ok & off


def validate_params(params: np.ndarray) -> np.ndarray:
    """Check a raw parameter matrix (e.g. built by an optimizer) and return it as C-contiguous float64."""
    p = np.ascontiguousarray(params, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != N_PARAM_COLS:
        raise ValueError(f"params must be (n_params, {N_PARAM_COLS}); got {p.shape}")
    nlev = p[:, C_NLEV]
    if np.any(np.isnan(nlev)) or np.any((nlev < 0) | (nlev > MAX_LEVELS) | (nlev != np.round(nlev))):
        raise ValueError("params: n_levels must be an integer in [0, MAX_LEVELS]")
    if np.any(np.isnan(p[:, C_FEE])) or np.any(np.isnan(p[:, C_SLIP])) or np.any(np.isnan(p[:, C_REST])):
        raise ValueError("params: fee, slippage and rest must be set (not NaN)")
    delay = p[:, C_DELAY]
    if np.any(~np.isnan(delay) & ((delay < 0) | (delay != np.round(delay)))):
        raise ValueError("params: entry_delay_bars must be a non-negative integer")
    if np.any(~np.isnan(p[:, C_DIP]) & ~np.isnan(delay) & (delay > 0)):
        raise ValueError("params: dip and entry_delay_bars cannot be combined")
    for r in range(p.shape[0]):
        k = int(nlev[r])
        lv, w = p[r, C_LEV : C_LEV + k], p[r, C_W : C_W + k]
        if np.any(~(lv > 1)) or np.any(np.diff(lv) <= 0) or np.any(~((w > 0) & (w <= 1))):
            raise ValueError(
                f"params row {r}: ladder multiples must be > 1 and ascending, fractions in (0, 1]"
            )
    return p
