"""The one table of strategy options: name, type, domain, default and parent rule.

:class:`~alertlab.engine.params.Strategy` and :class:`~alertlab.engine.params.StrategyGrid` type
their fields with these entries (``Annotated[float, OPTIONS["tp"]]``: pydantic validates the
bounds), the optimizer's search space (:mod:`alertlab.optimize.space`) checks ranges and choices
against it and conditions children on their parent, the study's run settings validate costs with
it, and the CLI help quotes its domain texts. Change a rule here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError, core_schema


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Option:
    """One exit/entry option of the engine, usable as pydantic metadata: ``Annotated[float, OPTIONS["sl"]]``.

    ``kind``: ``float``, ``int`` or ``ladder`` (a take-profit ladder text, validated by
    :func:`~alertlab.engine.params.parse_ladder`). ``gt``/``ge``/``lt``/``le``: the numeric domain,
    enforced by pydantic's own float/int constraints (NaN and infinities rejected); ``note``: the
    hint after the domain in messages. ``default``: the value when not given (None = rule off).
    ``parent``: the option that must be on for this one to have any effect (it is dropped or
    rejected otherwise). ``searchable``: False for run settings the optimizer keeps fixed.
    """

    name: str
    kind: Literal["float", "int", "ladder"]
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    note: str = ""
    default: Any = None
    parent: str | None = None
    searchable: bool = True
    text: str = ""  # domain text of a ladder option (numeric domains are written from the bounds)

    @property
    def domain(self) -> str:
        """The rule in words, as messages and help quote it: ``must be in (0, 1) (0.5 = stop at -50%)``."""
        if self.kind == "ladder":
            return self.text
        lo = _end(self.gt, "({}", self.ge, "[{}")
        hi = _end(self.lt, "{})", self.le, "{}]")
        if lo and hi:
            rule = f"in {lo}, {hi}"
        else:
            rule = " ".join(
                f"{op} {_num(v)}"
                for op, v in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
                if v is not None
            )
        rule = f"an integer {rule}" if self.kind == "int" else rule
        return f"must be {rule}" + (f" {self.note}" if self.note else "")

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        """pydantic's float/int schema with this option's bounds; errors read ``sl=1.0 must be in (0, 1) …``."""
        if self.kind == "ladder":
            return handler(source)
        if self.kind == "int":
            inner: core_schema.CoreSchema = core_schema.int_schema(
                gt=_int(self.gt), ge=_int(self.ge), lt=_int(self.lt), le=_int(self.le)
            )
        else:
            inner = core_schema.float_schema(
                allow_inf_nan=False, gt=self.gt, ge=self.ge, lt=self.lt, le=self.le
            )
        name, domain = self.name, self.domain

        def explain(value: Any, nxt: core_schema.ValidatorFunctionWrapHandler) -> Any:
            if isinstance(value, np.integer | np.floating):
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PydanticCustomError("option", "{name}={value} {domain}", _ctx(name, value, domain))
            try:
                return nxt(value)
            except ValidationError as exc:
                if exc.errors()[0]["type"] == "int_from_float":
                    raise PydanticCustomError(
                        "option", "{name}={value} must be an integer", _ctx(name, value, domain)
                    ) from None
                shown = repr(value) if isinstance(value, float) else str(value)
                raise PydanticCustomError(
                    "option", "{name}={value} {domain}", {"name": name, "value": shown, "domain": domain}
                ) from None

        return core_schema.no_info_wrap_validator_function(explain, inner)


def _end(strict: float | None, open_: str, inclusive: float | None, closed: str) -> str | None:
    """One end of an interval (``"(0"``, ``"1]"``…), or None when unbounded on that side."""
    if strict is not None:
        return open_.format(_num(strict))
    return None if inclusive is None else closed.format(_num(inclusive))


def _int(x: float | None) -> int | None:
    return None if x is None else int(x)


def _ctx(name: str, value: Any, domain: str) -> dict[str, str]:
    return {"name": name, "value": repr(value), "domain": domain}


_TABLE = (
    Option("tp", "float", gt=1, note="(a multiple of the entry price)"),
    Option(
        "tp_ladder",
        "ladder",
        text="'M:W,...' with multiples M > 1 and fractions W in (0, 1] summing to <= 1",
    ),
    Option("sl", "float", gt=0, lt=1, note="(0.5 = stop at -50%)"),
    Option("breakeven_at", "float", gt=1),
    Option("breakeven_offset", "float", gt=-1, default=0.0, parent="breakeven_at"),
    Option("trail", "float", gt=0, lt=1),
    Option("trail_activation", "float", ge=1, note="(1 = trail from entry)", default=1.0, parent="trail"),
    Option("time_stop_hours", "float", gt=0),
    Option("entry_delay_bars", "int", ge=0, default=0),
    Option("dip", "float", gt=0, lt=1, note="(0.2 = limit 20% below the entry open)"),
    Option("dip_window_min", "float", gt=0, parent="dip"),
    Option("fee_bps", "float", ge=0, lt=10_000, default=30.0, searchable=False),
    Option("slippage_bps", "float", ge=0, lt=10_000, default=50.0, searchable=False),
)

OPTIONS: dict[str, Option] = {o.name: o for o in _TABLE}
"""Every strategy option by name, in grid (Cartesian product) order."""

SEARCHABLE: tuple[str, ...] = tuple(o.name for o in _TABLE if o.searchable)
"""Options the optimizer may search (the rest are fixed run settings, plus ``intrabar``)."""

EXCLUSIVE: tuple[tuple[str, str], ...] = (("tp", "tp_ladder"),)
"""Pairs of options that cannot both be on."""

NUMERIC: tuple[str, ...] = tuple(o.name for o in _TABLE if o.kind != "ladder")

DEPENDENTS: dict[str, str] = {o.name: o.parent for o in _TABLE if o.parent is not None}
"""Child option → the parent rule it needs (it has no effect while the parent is off)."""


@cache
def _adapter(name: str) -> TypeAdapter:
    opt = OPTIONS[name]
    return TypeAdapter(Annotated[int if opt.kind == "int" else float, opt])


def check_number(name: str, x: Any) -> None:
    """Raise ``ValueError("<name>=<x> <domain>")`` unless ``x`` is a finite number in the option's domain."""
    try:
        _adapter(name).validate_python(x)
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"]) from None
