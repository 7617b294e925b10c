"""Search space of exit-strategy parameters for the optimiser (Optuna).

A space maps engine option names to how each is searched::

    {"tp": {"low": 1.5, "high": 10, "log": true},          # float range (log scale)
     "sl": {"low": 0.3, "high": 0.9, "step": 0.05},        # float range on a grid
     "entry_delay_bars": {"low": 0, "high": 3, "int": true},
     "trail": {"choices": [null, 0.2, 0.3]},                # null = rule off
     "trail_activation": {"low": 1, "high": 3, "when": "trail"},  # only when trail is on
     "time_stop_hours": 24}                                 # fixed value (or null)

``tp_ladder`` (``{"choices": ["3:1", "2:0.5,4:0.5"]}``) is searched instead of ``tp``, never beside
it: a space that can turn both on is rejected (the engine's rule, ``give tp or tp_ladder, not
both``); a one-level ladder ``"M:1"`` is ``tp`` M.

Range keys: ``low``, ``high`` and optional ``log``, ``step``, ``int``; or ``choices``; either may
carry ``when: <option>`` — the option is sampled only when that option is on (not None) and is
None otherwise. A bare value fixes the option. In ``choices`` the strings ``"off"``, ``"none"``
and ``"null"`` (any case) also mean rule off, because TOML has no null. Options not in the space
are None (rule off). ``fee_bps``, ``slippage_bps`` and ``intrabar`` are run settings, not
searchable. Files: ``.json``, ``.yaml``/``.yml``, ``.toml``; the mapping may sit at the top level
or under a ``space`` key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from alertlab.engine.options import OPTIONS, SEARCHABLE, check_number
from alertlab.engine.params import TP_EXCLUSIVE, parse_ladder
from alertlab.util.configfile import read_mapping

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

_OFF_STRINGS = frozenset({"off", "none", "null"})
FIXED_SETTINGS = (*(n for n, o in OPTIONS.items() if not o.searchable), "intrabar", "fill_on_zero_volume")


OPTION_NAMES: tuple[str, ...] = SEARCHABLE
"""Searchable engine options, in the engine's option-table order (:mod:`alertlab.engine.options`)."""
INT_OPTIONS = frozenset(n for n in SEARCHABLE if OPTIONS[n].kind == "int")
STR_OPTIONS = frozenset(n for n in SEARCHABLE if OPTIONS[n].kind == "ladder")


def _check_value(name: str, v: Any) -> None:
    """The engine's own domain rule for one value of an option (None = rule off)."""
    if v is None:
        return
    if name in STR_OPTIONS:
        if not isinstance(v, str):
            raise ValueError(f"{name} must be a string like '2:0.5,4:0.5', got {v!r}")
        try:
            parse_ladder(v)
        except ValueError as e:
            raise ValueError(f"bad tp_ladder {v!r}: {e}") from None
        return
    check_number(name, v)


def _can_be_on(p: Param) -> bool:
    if p.kind == "fixed":
        return p.value is not None
    if p.kind == "choice":
        return any(c is not None for c in p.choices)
    return True


def _check_exclusive(parsed: Mapping[str, Param]) -> None:
    """The engine's take-profit rule (``tp`` or ``tp_ladder``, not both) applied to a whole space:
    a space in which both can be on at once is rejected up front (its trials would only fail)."""
    if (
        "tp" in parsed
        and "tp_ladder" in parsed
        and _can_be_on(parsed["tp"])
        and _can_be_on(parsed["tp_ladder"])
    ):
        raise ValueError(f"{TP_EXCLUSIVE}: the space can turn both on; keep one, or fix the other to null")


@dataclass(frozen=True)
class Param:
    """How one option is searched: ``kind`` is ``"float"``, ``"int"``, ``"choice"`` or ``"fixed"``."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    value: Any = None
    when: str | None = None

    def distribution(self) -> BaseDistribution | None:
        """The Optuna distribution this option is sampled from, one to one (None when fixed)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "fixed":
            return None
        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        lo, hi = self.bounds
        if self.kind == "int":
            return IntDistribution(int(lo), int(hi), log=self.log, step=int(self.step or 1))
        return FloatDistribution(lo, hi, log=self.log, step=self.step)

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of a range option."""
        if self.low is None or self.high is None:
            raise ValueError(f"{self.name}: a {self.kind} option has no range")
        return self.low, self.high

    def grid_values(self) -> list:
        """Values a grid search enumerates for this option."""
        if self.kind == "fixed":
            return [self.value]
        if self.kind == "choice":
            return list(self.choices)
        lo, hi = self.bounds
        if self.kind == "int":
            step = int(self.step or 1)
            return list(range(int(lo), int(hi) + 1, step))
        if self.step is None:
            raise ValueError(
                f"{self.name}: a continuous range cannot be grid-searched; give it a 'step' or 'choices'"
            )
        n = int(round((hi - lo) / self.step))
        return [float(round(lo + i * self.step, 12)) for i in range(n + 1)]

    def to_dict(self) -> Any:
        if self.kind == "fixed":
            return self.value
        d: dict[str, Any] = {}
        if self.kind == "choice":
            d["choices"] = list(self.choices)
        else:
            d.update(low=self.low, high=self.high)
            if self.log:
                d["log"] = True
            if self.step is not None:
                d["step"] = self.step
            if self.kind == "int":
                d["int"] = True
        if self.when:
            d["when"] = self.when
        return d


_SPEC_KEYS = frozenset({"low", "high", "log", "step", "int", "choices", "when"})


def _off(v: Any) -> Any:
    return None if isinstance(v, str) and v.strip().lower() in _OFF_STRINGS else v


def _parse_param(name: str, spec: Any) -> Param:
    if name in FIXED_SETTINGS:
        raise ValueError(f"{name!r} is a fixed run setting, not a searchable option")
    if name not in SEARCHABLE:
        raise ValueError(f"unknown option {name!r}; valid options: {', '.join(OPTION_NAMES)}")
    if not isinstance(spec, Mapping):
        value = _off(spec)
        _check_value(name, value)
        return Param(name, "fixed", value=value)
    bad = set(spec) - _SPEC_KEYS
    if bad:
        raise ValueError(f"{name}: unknown key(s) {sorted(bad)}; allowed: {sorted(_SPEC_KEYS)}")
    when = spec.get("when")
    if when is not None and not isinstance(when, str):
        raise ValueError(f"{name}: 'when' must name another option, got {when!r}")
    if "choices" in spec:
        return _parse_choices(name, spec, when)
    return _parse_range(name, spec, when)


def _parse_choices(name: str, spec: Mapping[str, Any], when: str | None) -> Param:
    extra = set(spec) & {"low", "high", "log", "step", "int"}
    if extra:
        raise ValueError(f"{name}: 'choices' cannot be combined with {sorted(extra)}")
    raw = spec["choices"]
    if not isinstance(raw, list | tuple) or not raw:
        raise ValueError(f"{name}: 'choices' must be a non-empty list")
    choices: list[Any] = []
    for c in raw:
        c = _off(c)
        _check_value(name, c)
        if name in INT_OPTIONS and c is not None:
            c = int(c)
        if c in choices:
            raise ValueError(f"{name}: duplicate choice {c!r}")
        choices.append(c)
    return Param(name, "choice", choices=tuple(choices), when=when)


def _finite(name: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"{name}: '{key}' must be a finite number, got {v!r}")
    return v


def _check_step(name: str, low: float, high: float, step: Any, log: bool) -> None:
    if isinstance(step, bool) or not isinstance(step, int | float) or not step > 0:
        raise ValueError(f"{name}: 'step' must be > 0, got {step!r}")
    if log:
        raise ValueError(f"{name}: 'step' and 'log' cannot be combined (Optuna does not support it)")
    n = (high - low) / step
    if abs(n - round(n)) > 1e-9 * max(1.0, abs(n)):
        raise ValueError(f"{name}: (high - low) = {high - low:g} is not a multiple of step {step:g}")


def _parse_range(name: str, spec: Mapping[str, Any], when: str | None) -> Param:
    if "low" not in spec or "high" not in spec:
        raise ValueError(f"{name}: give 'low' and 'high', or 'choices', or a fixed value")
    if name in STR_OPTIONS:
        raise ValueError(f"{name}: a string option takes 'choices', not a range")
    low, high = _finite(name, "low", spec["low"]), _finite(name, "high", spec["high"])
    if low >= high:
        raise ValueError(f"{name}: low ({low}) must be < high ({high})")
    log = bool(spec.get("log", False))
    if log and low <= 0:
        raise ValueError(f"{name}: a log range needs low > 0, got {low}")
    step = spec.get("step")
    if name in INT_OPTIONS and spec.get("int") is False:
        raise ValueError(f"{name} is an integer option; it cannot have 'int: false'")
    if step is not None:
        _check_step(name, low, high, step, log)
    is_int = name in INT_OPTIONS or bool(spec.get("int", False))
    if is_int:
        for key, v in (("low", low), ("high", high), ("step", step)):
            if v is not None and v != int(v):
                raise ValueError(f"{name}: integer range needs integer '{key}', got {v!r}")
    cast = int if is_int else float
    low, high = cast(low), cast(high)
    step = cast(step) if step is not None else None
    _check_value(name, low)
    _check_value(name, high)
    return Param(name, "int" if is_int else "float", low=low, high=high, log=log, step=step, when=when)


def _parents_first(parsed: dict[str, Param]) -> list[str]:
    """Option names ordered so that every ``when`` parent precedes its children (cycles rejected)."""
    for p in parsed.values():
        if p.when is None:
            continue
        if p.when == p.name:
            raise ValueError(f"{p.name}: 'when' cannot name the option itself")
        if p.when not in parsed:
            raise ValueError(
                f"{p.name}: 'when' names {p.when!r}, which is not in the space "
                f"(options in the space: {', '.join(parsed)})"
            )
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"conditional options form a cycle: {' -> '.join((*chain, name))}")
        state[name] = 1
        parent = parsed[name].when
        if parent is not None:
            visit(parent, (*chain, name))
        state[name] = 2
        order.append(name)

    for name in parsed:
        visit(name, ())
    return order


def _norm_one(p: Param, v: Any) -> float:
    if v is None:
        return float("nan")
    if p.kind == "fixed":
        return 0.0
    if p.kind == "choice":
        if v not in p.choices:
            raise ValueError(f"{p.name}={v!r} is not one of the choices {list(p.choices)}")
        on = [c for c in p.choices if c is not None]
        if all(isinstance(c, int | float) and not isinstance(c, bool) for c in on):
            on = sorted(on)
        return on.index(v) / (len(on) - 1) if len(on) > 1 else 0.0
    lo, hi = p.bounds
    if p.log:
        if v <= 0:
            raise ValueError(f"{p.name}={v!r} cannot be placed on a log range")
        return (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (float(v) - lo) / (hi - lo)


@dataclass(frozen=True)
class SearchSpace:
    """An ordered set of :class:`Param` (parents before the options conditional on them)."""

    params: tuple[Param, ...]

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> SearchSpace:
        """Parse and validate a space mapping (see the module docstring)."""
        if not isinstance(spec, Mapping):
            raise ValueError(f"a search space must be a mapping of option -> spec, got {type(spec).__name__}")
        if set(spec) == {"space"} and isinstance(spec["space"], Mapping):
            spec = spec["space"]
        if not spec:
            raise ValueError("the search space is empty")
        parsed = {str(name): _parse_param(str(name), s) for name, s in spec.items()}
        _check_exclusive(parsed)
        order = _parents_first(parsed)
        return cls(tuple(parsed[n] for n in order))

    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        """Read a space from a ``.json``, ``.yaml``/``.yml`` or ``.toml`` file."""
        path = Path(path)
        data = read_mapping(path, "space")
        try:
            return cls.from_dict(data)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    @property
    def names(self) -> list[str]:
        """Option names in the space, parents before their conditional children."""
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The canonical spec (JSON-friendly); ``from_dict(to_dict())`` gives the same space."""
        return {p.name: p.to_dict() for p in self.params}

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample one configuration: a value (or None = rule off) for every searchable option."""
        out: dict[str, Any] = dict.fromkeys(OPTION_NAMES)
        for p in self.params:
            if p.when is not None and out[p.when] is None:
                continue
            out[p.name] = _suggest(trial, p.name, p.distribution(), p.value)
        return out

    def grid(self) -> dict[str, list]:
        """Search space for ``optuna.samplers.GridSampler`` (choices and stepped ranges).

        Fixed options are not sampled and so are left out. Conditional options are enumerated
        in full, so grid points whose parent is off repeat the same configuration; callers may
        skip repeats by comparing :meth:`suggest` results.
        """
        return {p.name: p.grid_values() for p in self.params if p.kind != "fixed"}

    def normalise(self, values: list[dict[str, Any]]) -> np.ndarray:
        """Place configurations in [0, 1]^D (columns = :attr:`names`) for neighbourhood stability.

        Ranges map linearly (log ranges in log space); choices map to their rank among the
        non-None choices (numbers sorted, strings in the listed order), spread over [0, 1];
        fixed options give 0. None (rule off, or not sampled) gives NaN.
        """
        out = np.empty((len(values), len(self.params)))
        for i, cfg in enumerate(values):
            for j, p in enumerate(self.params):
                out[i, j] = _norm_one(p, cfg.get(p.name))
        return out


def _suggest(trial: optuna.Trial, name: str, d: BaseDistribution | None, fixed: Any) -> Any:
    """Ask ``trial`` for ``name`` from distribution ``d`` through Optuna's public suggest API."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if d is None:
        return fixed
    if isinstance(d, CategoricalDistribution):
        return trial.suggest_categorical(name, list(d.choices))
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    assert isinstance(d, FloatDistribution)
    return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)


DEFAULT_SPACE_SPEC: dict[str, Any] = {
    "tp": {"low": 1.5, "high": 20.0, "log": True},
    "sl": {"low": 0.3, "high": 0.9},
    "trail": {"choices": [None, 0.15, 0.25, 0.35, 0.5]},
    "trail_activation": {"low": 1.0, "high": 4.0, "when": "trail"},
    "breakeven_at": {"choices": [None, 1.5, 2.0, 3.0]},
    "time_stop_hours": {"choices": [None, 6, 12, 24, 48]},
}
"""Default space: take-profit 1.5–20× (log), stop-loss at 0.3–0.9× entry, optional trailing stop
(15–50 % off the peak) armed once price reaches 1–4× entry, optional move-to-breakeven at
1.5/2/3×, optional time stop at 6/12/24/48 h. Everything else off."""

DEFAULT_SPACE = SearchSpace.from_dict(DEFAULT_SPACE_SPEC)


def load_space(source: str | Path | Mapping[str, Any] | SearchSpace | None) -> SearchSpace:
    """A :class:`SearchSpace` from a mapping, a file path, an existing space, or None (default)."""
    if source is None:
        return DEFAULT_SPACE
    if isinstance(source, SearchSpace):
        return source
    if isinstance(source, Mapping):
        return SearchSpace.from_dict(source)
    return SearchSpace.from_file(source)
