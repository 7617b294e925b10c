"""How ``--help`` names option values: words a user understands, never Python types.

Typer (0.2x) prints each option's Python type as its placeholder (``<bool>`` after a flag,
``<str>``, ``<list[str]>``, ``<%Y-%m-%d>``). :func:`install` replaces that with: nothing after a
flag, the value's shape for known options (``--tp M[,M…]``, ``--from YYYY-MM-DD``), and ``N`` /
``X`` / ``TEXT`` / ``PATH`` by type otherwise. An explicit ``metavar=`` on an option still wins.
"""

from __future__ import annotations

from typing import Any

VALUE_NAMES: dict[str, str] = {
    "--home": "DIR",
    "--from": "YYYY-MM-DD",
    "--to": "YYYY-MM-DD",
    "--caller": "NAME",
    "--chain": "CHAIN",
    "--token": "ADDRESS",
    "--strategy-config": "FILE",
    "--space": "FILE",
    "--storage": "URL|FILE",
    "--study": "NAME",
    "--tp": "M[,M…]",
    "--tp-ladder": "M:W,…[;…]",
    "--sl": "M[,M…]",
    "--breakeven-at": "M[,M…]",
    "--breakeven-offset": "X[,X…]",
    "--trail": "PCT[,PCT…]",
    "--trail-activation": "M[,M…]",
    "--time-stop-hours": "H[,H…]",
    "--entry-delay-bars": "N[,N…]",
    "--dip": "PCT[,PCT…]",
    "--dip-window": "MIN[,MIN…]",
    "--fee-bps": "BPS",
    "--slippage-bps": "BPS",
    "--intrabar": "POLICY",
    "--sampler": "NAME",
    "--objective": "METRIC",
    "--rank-by": "COLUMN",
    "--interval-seconds": "SECONDS",
    "--horizon-hours": "HOURS",
    "--max-entry-lag-s": "SECONDS",
    "--capital": "AMOUNT",
    "--stake": "AMOUNT",
    "--stake-pct": "FRACTION",
}
"""Placeholder of an option's value, by its long name (the same flag means the same thing everywhere)."""

_BY_TYPE = {"int": "N", "float": "X", "str": "TEXT", "path": "PATH", "Path": "PATH", "datetime": "DATE"}


def value_name(param: Any) -> str | None:
    """Placeholder for ``param`` in the help table (None: nothing, as after a flag)."""
    if getattr(param, "metavar", None) is not None:
        return param.metavar
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None
    for opt in getattr(param, "opts", ()):
        if opt in VALUE_NAMES:
            return VALUE_NAMES[opt]
    name = getattr(getattr(param, "type", None), "name", "") or ""
    name = {"integer": "int", "text": "str"}.get(name, name)
    if getattr(param, "param_type_name", "") == "argument":
        return None  # the argument's own name says it (PATHS...)
    return _BY_TYPE.get(name, "VALUE")


def _display_type_rich(self: Any, ctx: Any = None) -> str | None:
    """Replacement for typer's ``display_type_rich``: the placeholder from :func:`value_name`."""
    return value_name(self)


def install() -> None:
    """Make every Typer option of this process use :func:`value_name` in ``--help``."""
    try:
        from typer.core import TyperArgument, TyperOption
    except ImportError:  # pragma: no cover - very old typer prints click's own placeholders
        return
    for cls in (TyperOption, TyperArgument):
        if hasattr(cls, "display_type_rich") and not getattr(cls, "_alertlab_help", False):
            setattr(cls, "display_type_rich", _display_type_rich)  # noqa: B010 - patching typer's class
            setattr(cls, "_alertlab_help", True)  # noqa: B010
