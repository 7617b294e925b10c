"""The one table of strategy options: name, type, domain and parent rule.

:class:`~alertlab.engine.params.StrategyConfig` validates against it, the optimizer's search
space (:mod:`alertlab.optimize.space`) checks ranges and choices against it and conditions
children on their parent, and the CLI help quotes its domain texts. Change a rule here, once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Option:
    """One exit/entry option of the engine.

    ``kind``: ``float``, ``int`` or ``ladder`` (a take-profit ladder text). ``ok``: the domain test
    of one numeric value, ``domain``: its text for messages. ``parent``: the option that must be on
    for this one to have any effect (it is dropped or rejected otherwise). ``searchable``: False for
    run settings that the optimizer keeps fixed for a whole study.
    """

    name: str
    kind: Literal["float", "int", "ladder"]
    domain: str
    ok: Callable[[float], bool] = lambda x: True
    parent: str | None = None
    searchable: bool = True


_TABLE = (
    Option("tp", "float", "must be > 1 (a multiple of the entry price)", lambda x: x > 1),
    Option("tp_ladder", "ladder", "'M:W,...' with multiples M > 1 and fractions W in (0, 1] summing to <= 1"),
    Option("sl", "float", "must be in (0, 1) (0.5 = stop at -50%)", lambda x: 0 < x < 1),
    Option("breakeven_at", "float", "must be > 1", lambda x: x > 1),
    Option("breakeven_offset", "float", "must be > -1", lambda x: x > -1, parent="breakeven_at"),
    Option("trail", "float", "must be in (0, 1)", lambda x: 0 < x < 1),
    Option(
        "trail_activation", "float", "must be >= 1 (1 = trail from entry)", lambda x: x >= 1, parent="trail"
    ),
    Option("time_stop_hours", "float", "must be > 0", lambda x: x > 0),
    Option("entry_delay_bars", "int", "must be an integer >= 0", lambda x: x >= 0 and x == int(x)),
    Option("dip", "float", "must be in (0, 1) (0.2 = limit 20% below the entry open)", lambda x: 0 < x < 1),
    Option("dip_window_min", "float", "must be > 0", lambda x: x > 0, parent="dip"),
    Option("fee_bps", "float", "must be in [0, 10000)", lambda x: 0 <= x < 10_000, searchable=False),
    Option("slippage_bps", "float", "must be in [0, 10000)", lambda x: 0 <= x < 10_000, searchable=False),
)

OPTIONS: dict[str, Option] = {o.name: o for o in _TABLE}
"""Every strategy option by name, in grid (Cartesian product) order."""

SEARCHABLE: tuple[str, ...] = tuple(o.name for o in _TABLE if o.searchable)
"""Options the optimizer may search (the rest are fixed run settings, plus ``intrabar``)."""

EXCLUSIVE: tuple[tuple[str, str], ...] = (("tp", "tp_ladder"),)
"""Pairs of options that cannot both be on."""

NUMERIC: tuple[str, ...] = tuple(o.name for o in _TABLE if o.kind != "ladder")


def check_number(name: str, x: Any) -> None:
    """Raise ``ValueError("<name>=<x> <domain>")`` unless ``x`` is a finite number in the option's domain."""
    opt = OPTIONS[name]
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(float(x)):
        raise ValueError(f"{name}={x!r} {opt.domain}")
    if opt.kind == "int" and x != int(x):
        raise ValueError(f"{name}={x!r} must be an integer")
    if not opt.ok(x):
        raise ValueError(f"{name}={x} {opt.domain}")
