"""Names the engine shares with its callers: exit reasons and intrabar policies (defined here only).

``EXIT_REASONS[code]`` names a trade's exit code; ``no_fill`` is always last (summaries count the
reasons before it as ``exit_<reason>``). ``NO_TRADE`` (-1) marks an alert without a window.
"""

from __future__ import annotations

from typing import Literal, get_args

EXIT_REASONS: tuple[str, ...] = (
    "tp",
    "sl",
    "breakeven",
    "trail",
    "time",
    "horizon",
    "end_of_data",
    "no_fill",
)
TP, SL, BREAKEVEN, TRAIL, TIME, HORIZON, END_OF_DATA, NO_FILL = range(len(EXIT_REASONS))
NO_TRADE = -1  # alert without a window (not selected / status not simulated): no trade at all

IntrabarPolicy = Literal["pessimistic", "optimistic", "ohlc"]
"""How a bar that touches both a stop and a take-profit is resolved (see the kernel docstring)."""
INTRABAR_POLICIES: tuple[str, ...] = get_args(IntrabarPolicy)
PESS, OPT, OHLC = range(len(INTRABAR_POLICIES))
POLICIES = {name: code for code, name in enumerate(INTRABAR_POLICIES)}


def policy_code(intrabar: str) -> int:
    """Integer code of an intrabar policy name, with a clear error for unknown names."""
    try:
        return POLICIES[intrabar]
    except KeyError:
        raise ValueError(f"intrabar must be one of {INTRABAR_POLICIES}; got {intrabar!r}") from None
