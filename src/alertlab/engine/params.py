"""Strategy configuration: validation, grids and the numeric parameter matrix the kernels read.

A :class:`StrategyConfig` names every exit rule of the engine. Every numeric option (and
``tp_ladder``) accepts one value or a list of values; a config with at least one list is a grid
whose Cartesian product :meth:`StrategyConfig.expand` enumerates. :func:`encode_params` turns
scalar configs into a float64 matrix, one row per parameter set, NaN = rule off, which is all the
Numba kernels see (column indices are the ``C_*`` constants below).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from alertlab.engine.enums import IntrabarPolicy
from alertlab.engine.options import EXCLUSIVE, OPTIONS, check_number
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

Num = float | list[float]


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


def _as_list(v: Any) -> list:
    return v if isinstance(v, list) else [v]


class StrategyConfig(BaseModel):
    """One exit strategy, or a grid of them (any numeric option given as a list).

    Prices are multiples of the entry reference price P. Options:

    * ``tp`` (> 1): sell everything at ``tp·P``; shorthand for a one-level ladder of fraction 1.
    * ``tp_ladder``: ``"2:0.5,4:0.25,10:0.25"`` or ``[(2, 0.5), ...]`` — sell fraction w at m·P;
      the unsold rest rides. A list of ladders is a grid. Exclusive with ``tp``.
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
    * ``intrabar``: ``pessimistic`` | ``optimistic`` | ``ohlc`` (scalar; not a grid axis).
    * ``fill_on_zero_volume`` (default False): treat every bar as traded. By default a no-trade bar
      (volume 0 and open = high = low = close) triggers and fills nothing (see the kernel); set this
      for sources that report no volume. Scalar; not a grid axis.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    tp: Num | None = None
    tp_ladder: str | list | None = None
    sl: Num | None = None
    breakeven_at: Num | None = None
    breakeven_offset: Num = 0.0
    trail: Num | None = None
    trail_activation: Num = 1.0
    time_stop_hours: Num | None = None
    entry_delay_bars: int | list[int] = 0
    dip: Num | None = None
    dip_window_min: Num | None = None
    fee_bps: Num = 30.0
    slippage_bps: Num = 50.0
    intrabar: IntrabarPolicy = "pessimistic"
    fill_on_zero_volume: bool = False

    # ---------------------------------------------------------------- validation
    @model_validator(mode="before")
    @classmethod
    def _one_take_profit(cls, data: Any) -> Any:
        """``tp`` and ``tp_ladder`` together are rejected before anything else (a ladder that is
        also malformed is named in the same message, so no check is skipped)."""
        if isinstance(data, dict) and data.get("tp") is not None and data.get("tp_ladder") is not None:
            msg = TP_EXCLUSIVE
            try:
                cls._norm_ladder(data["tp_ladder"])
            except ValueError as exc:
                msg += f"; also {exc}"
            raise ValueError(msg)
        return data

    @classmethod
    def check_option(cls, name: str, value: Any) -> None:
        """Validate one option value alone (``ValueError`` with the model's message); for search spaces."""
        if name == "tp_ladder":
            cls._norm_ladder(value)
            return
        if name not in OPTIONS:
            raise ValueError(f"unknown strategy option {name!r}")
        check_number(name, value)

    @field_validator(
        "tp",
        "sl",
        "breakeven_at",
        "breakeven_offset",
        "trail",
        "trail_activation",
        "time_stop_hours",
        "entry_delay_bars",
        "dip",
        "dip_window_min",
        "fee_bps",
        "slippage_bps",
    )
    @classmethod
    def _check_numbers(cls, v: Any, info) -> Any:
        if v is None:
            return v
        vals = _as_list(v)
        if not vals:
            raise ValueError(f"{info.field_name}: an empty list is not a grid")
        for x in vals:
            check_number(info.field_name, x)
        if isinstance(v, list) and len(set(vals)) != len(vals):
            raise ValueError(f"{info.field_name}: repeated values in grid {vals}")
        return v

    @field_validator("tp_ladder", mode="before")
    @classmethod
    def _norm_ladder(cls, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, str):
            return ladder_text(parse_ladder(v))
        if isinstance(v, tuple):
            v = list(v)
        if not isinstance(v, list) or not v:
            raise ValueError("tp_ladder: expected 'M:W,...', a list of (M, W) pairs, or a list of ladders")
        first = v[0]
        is_single = isinstance(first, list | tuple) and len(first) == 2 and _is_number(first[0])
        if is_single:
            return ladder_text(parse_ladder(v))
        out = [ladder_text(parse_ladder(x)) for x in v]
        if len(set(out)) != len(out):
            raise ValueError(f"tp_ladder: repeated ladders in grid {out}")
        return out

    @model_validator(mode="after")
    def _cross(self) -> StrategyConfig:
        for a, b in EXCLUSIVE:
            if getattr(self, a) is not None and getattr(self, b) is not None:
                raise ValueError(TP_EXCLUSIVE)
        for name, opt in OPTIONS.items():
            unset_parent = opt.parent is not None and getattr(self, opt.parent) is None
            if unset_parent and getattr(self, name) != type(self).model_fields[name].default:
                raise ValueError(f"{name} needs {opt.parent}")
        if self.breakeven_at is not None:
            hi_off, lo_at = max(_as_list(self.breakeven_offset)), min(_as_list(self.breakeven_at))
            if 1 + hi_off >= lo_at:
                raise ValueError(
                    f"breakeven stop P*(1+{hi_off}) must lie below its activation {lo_at}*P "
                    "for every grid combination"
                )
        if self.dip is not None and max(_as_list(self.entry_delay_bars)) > 0:
            raise ValueError(
                "dip and entry_delay_bars cannot be combined (a limit order placed after a "
                "delay is ambiguous); use one entry model"
            )
        return self

    # ---------------------------------------------------------------- grids
    @property
    def is_grid(self) -> bool:
        """True when any option holds a list of values."""
        return any(isinstance(getattr(self, f), list) for f in GRID_FIELDS)

    def grid_axes(self) -> dict[str, list]:
        """The options given as lists, in product order, with their values."""
        return {f: list(getattr(self, f)) for f in GRID_FIELDS if isinstance(getattr(self, f), list)}

    @property
    def n_combinations(self) -> int:
        return math.prod(len(v) for v in self.grid_axes().values())

    def expand(self) -> list[StrategyConfig]:
        """Scalar configs of the Cartesian product (last option varies fastest, ``GRID_FIELDS`` order)."""
        axes = self.grid_axes()
        if not axes:
            return [self.model_copy()]
        base = self.model_dump()
        out = []
        for combo in itertools.product(*axes.values()):
            d = dict(base)
            d.update(zip(axes.keys(), combo, strict=True))
            out.append(StrategyConfig(**d))
        return out

    def ladder(self) -> list[tuple[float, float]] | None:
        """The (multiple, fraction) levels of a scalar config (``tp`` as ``[(tp, 1)]``), or None."""
        if self.is_grid:
            raise ValueError("ladder() needs a scalar config; call expand() first")
        if self.tp is not None:
            return [(float(cast(float, self.tp)), 1.0)]  # scalar: not is_grid
        if self.tp_ladder is not None:
            return parse_ladder(self.tp_ladder)
        return None

    # ---------------------------------------------------------------- text
    def describe(self) -> str:
        """The strategy in one line, as it runs: ``tp 3 · sl 0.5 · fees 30 bps · slippage 50 bps ·
        pessimistic intrabar``; without any exit rule ``hold to horizon (no exit rule given)``.
        Grid axes show their values in braces (``tp {2, 3, 5}``)."""

        def v(x: Any, unit: str = "") -> str:
            if isinstance(x, list):
                return "{" + ", ".join(_fmt(float(e)) if _is_number(e) else str(e) for e in x) + "}" + unit
            return (_fmt(float(x)) if _is_number(x) else str(x)) + unit

        parts: list[str] = []
        if self.dip is not None:
            win = f" for {v(self.dip_window_min, ' min')}" if self.dip_window_min is not None else ""
            parts.append(f"limit buy {v(self.dip)} below the entry open{win}")
        if self.entry_delay_bars != 0:
            parts.append(f"entry delay {v(self.entry_delay_bars)} bar(s)")
        if self.tp is not None:
            parts.append(f"tp {v(self.tp)}")
        if self.tp_ladder is not None:
            parts.append(f"tp ladder {v(self.tp_ladder)}")
        if self.sl is not None:
            parts.append(f"sl {v(self.sl)}")
        if self.breakeven_at is not None:
            off = f" (+{v(self.breakeven_offset)})" if self.breakeven_offset != 0.0 else ""
            parts.append(f"breakeven at {v(self.breakeven_at)}{off}")
        if self.trail is not None:
            act = f" from {v(self.trail_activation)}" if self.trail_activation != 1.0 else ""
            parts.append(f"trail {v(self.trail)}{act}")
        if self.time_stop_hours is not None:
            parts.append(f"time stop {v(self.time_stop_hours, ' h')}")
        exits = (
            self.tp is not None
            or self.tp_ladder is not None
            or self.sl is not None
            or self.breakeven_at is not None
            or self.trail is not None
            or self.time_stop_hours is not None
        )
        if not exits:
            parts.append("hold to horizon (no exit rule given)")
        parts += [
            f"fees {v(self.fee_bps, ' bps')}",
            f"slippage {v(self.slippage_bps, ' bps')}",
            f"{self.intrabar} intrabar",
        ]
        return " · ".join(parts)

    # ---------------------------------------------------------------- files
    @classmethod
    def from_file(cls, path: str | Path) -> StrategyConfig:
        """Load a config from JSON, YAML or TOML (by suffix); a top-level ``strategy`` table is accepted."""
        data = read_mapping(path, "strategy")
        if set(data) == {"strategy"} and isinstance(data["strategy"], dict):
            data = data["strategy"]
        return cls(**data)


def encode_params(configs: Sequence[StrategyConfig]) -> np.ndarray:
    """Float64 matrix ``(len(configs), N_PARAM_COLS)`` of scalar configs; NaN = rule off.

    Units are converted for the kernels: bps → fractions, hours/minutes → seconds. Ladder levels
    are stored ascending with their fractions (see :func:`ladder_rows`). ``intrabar`` is not part of
    the matrix: it is an argument of :func:`~alertlab.engine.simulate`.
    """
    out = np.full((len(configs), N_PARAM_COLS), np.nan)
    for r, c in enumerate(configs):
        if c.is_grid:
            raise ValueError(f"config {r} is a grid; encode its expand() instead")
        row = out[r]
        row[C_SL] = np.nan if c.sl is None else c.sl
        if c.breakeven_at is not None:
            row[C_BE_AT], row[C_BE_OFF] = c.breakeven_at, c.breakeven_offset
        if c.trail is not None:
            row[C_TRAIL], row[C_TRAIL_ACT] = c.trail, c.trail_activation
        # c is scalar (not is_grid), so no field is a list here
        row[C_TIME_S] = np.nan if c.time_stop_hours is None else cast(float, c.time_stop_hours) * 3600.0
        row[C_DELAY] = c.entry_delay_bars
        if c.dip is not None:
            row[C_DIP] = c.dip
            row[C_DIP_WIN_S] = np.nan if c.dip_window_min is None else cast(float, c.dip_window_min) * 60.0
        row[C_FEE] = cast(float, c.fee_bps) / 1e4
        row[C_SLIP] = cast(float, c.slippage_bps) / 1e4
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
