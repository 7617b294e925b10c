"""Synthetic memecoin market with callers of planted skill, written in the real ingest formats.

The demo must exercise the real pipeline, so :func:`make_demo` writes what a user would bring:
an alerts CSV in the messy style of a real Telegram-bot export and one candle CSV per token
(``<chain>_<token>_<YYYYMMDD-HHMM>_<YYYYMMDD-HHMM>.csv``, header
``timestamp,open,high,low,close,volume``, unix seconds at bar open), plus a truth CSV with each
caller's planted skill so a leaderboard can be checked against the answer.

The market (everything seeded, byte-for-byte deterministic for a spec):

* Tokens on solana / bsc / ethereum, starting prices log-uniform in [1e-9, 0.02], log-price random
  walks with a slow bleed, heavy-tailed jumps and volatility that is highest right after the first
  call. Every call brings a buying spike that bots front-run (mostly priced in at the follower's
  entry, then given back within the hour); on top of it each alert adds an event to its token's
  log-price: a pump, a dump, or nothing. A pump starts with a shakeout dip, runs in 2-4 legs with
  deep pullbacks and extra volatility (peaks are rough, so a tight trailing stop gets shaken out)
  up to a multiple of at least 1.2x on an exponential tail (thinner beyond 8x), then gives part of
  it back. Some tokens rug (-90 % to -99.9 % in one bar) and then mostly die.
* Callers have a planted ``skill`` in [0, 1] that raises the chance (:func:`p_pump`) and the size
  (:func:`pump_scale`) of a pump after their calls, lowers the chance that their first call on a
  token rugs (:func:`p_rug`) and makes them early: skilled callers mostly make a token's first
  call, weak ones mostly follow hours later, after the move. A few "lucky" callers have only 3-4
  calls, all but one forced to pump, so a raw hit rate ranks them first while an honest (Wilson
  lower bound) ranking does not.
* Calibrated to look like real Telegram memecoin calls, not a brochure. Default spec, 48 h windows,
  measured through ``alertlab demo``: over all ok alerts the median ATH multiple is ~1.45x, ~32 %
  of calls reach 2x, ~10 % 5x and ~4 % 10x, the median end return is about -70 % (most calls
  bleed) and the median drawdown before a 2x is about -15 %. The planted best callers hit 2x on
  ~50 % of calls (median ATH ~2x, p95 ~15x), the worst on ~10-20 %. ``backtest --tp 3 --sl 0.5``
  (30 bps fees, 50 bps slippage, pessimistic) nets about 0 % per trade over all alerts, +30-45 %
  on the best callers and -25 to -40 % on the worst; the best of a 240-point trailing-stop grid
  makes ~+20 % per trade in sample, carried by a few runners. There is an edge, and it is small.
* Quirks, on purpose: dead stretches (flat ``open=high=low=close`` bars with volume 0), missing
  bars (absent rows), several callers on one token, alerts exactly on a bar boundary, alerts near
  the end of a token's data (truncated windows), tokens with no candles at all (status missing)
  and tokens whose first bar comes hours after the alert (stale).
* Alerts CSV (unless ``clean``): chains spelled ``Solana/SOL/solana/""``, ``BSC/bsc``,
  ``eth/ethereum``; mixed-case EVM addresses; mcap in dollars, in millions or empty; price often
  empty or ``0.0``; a second bot reply repeating some calls; a few malformed rows (empty caller,
  unparsable time, bad address) for the quarantine. ``clean=True`` drops all of that (for
  benchmarks) while keeping the very same market and valid alerts.

Generation is vectorised numpy over per-token blocks of bars (chunks of tokens, so a 30M-bar
benchmark market stays within a few GB); :func:`make_market_arrays` returns the same data as
DataFrames without writing files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from alertlab.store.atomic import atomic_dir, atomic_file

CHAINS = ("solana", "bsc", "ethereum")
ALERT_COLUMNS = [
    "caller_name",
    "mint",
    "ticker",
    "mcap_at_alert",
    "alert_ts_ms",
    "chain",
    "price_at_alert",
    "chat_id",
    "message_id",
]
CANDLE_COLUMNS = ["chain", "token", "ts", "open", "high", "low", "close", "volume"]
CANDLE_HEADER = "timestamp,open,high,low,close,volume\n"

_CHAIN_P = (0.80, 0.12, 0.08)
_SPELLINGS = {0: ("Solana", "SOL", "solana", ""), 1: ("BSC", "bsc"), 2: ("eth", "ethereum")}
_SPELL_P = {0: (0.40, 0.35, 0.10, 0.15), 1: (0.5, 0.5), 2: (0.5, 0.5)}
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_HEX = "0123456789abcdef"
_HOUR = 3600.0
_MINUTE = 60.0
_CHUNK_TOKENS = 512  # tokens per generation block: bounds memory; part of the seed → output mapping
_STREAM_CALLERS, _STREAM_PLAN, _STREAM_EXPORT, _STREAM_BARS = 1, 2, 3, 4
_BAD_TIMES = ("yesterday", "2025-02-30 25:61", "n/a", "12:34 pm")

# Market dynamics (per-minute scale; converted to the bar interval).
_SIGMA_RANGE = (0.0025, 0.007)  # per-minute log-price volatility, log-uniform per token
_BLEED_48H = (0.0, 1.1)  # drift: log-price lost per 48 h, uniform per token
_JUMP_P, _JUMP_SCALE = 0.002, 6.0  # per-bar probability and size (in sigmas) of a jump
_CALL_VOL = (1.2, 6.0)  # volatility x (1 + A exp(-h / D)), h = hours since the token's first call
# Events after a call (calibrated: see the module docstring for the magnitudes they produce).
_PUMP_P = 0.82  # p_pump = P * skill
_PUMP_S0, _PUMP_S1 = 0.30, 0.75  # pump_scale = S0 + S1 * skill
_PUMP_FLOOR, _PUMP_CAP = 1.2, 120.0  # pump multiple = floor * exp(Exp(pump_scale)), capped
_PUMP_KNEE = (8.0, 0.6)  # above 8x the log-multiple's excess is scaled by 0.6
_EARLY_NOISE = 0.35  # spread of the skill-based order that decides who calls a token first
_PUMP_VOL = 0.012  # per-minute log volatility added while a pump runs (fading after its peak)
_SHAKEOUT = (0.0, 0.45)  # log depth of the dip before a pump takes off, uniform
_PULLBACK = (0.35, 0.7)  # a pump runs in 2-4 legs; pullbacks give back this share of the (log) gain
_SPIKE_SCALE = 0.18  # every call: a front-run buying spike, log-amplitude ~ Exp(scale), fully given back


def p_pump(skill: np.ndarray | float) -> np.ndarray:
    """Probability that an alert by a caller of this skill is followed by a pump."""
    return _PUMP_P * np.asarray(skill, dtype=np.float64)


def pump_scale(skill: np.ndarray | float) -> np.ndarray:
    """Scale of the exponential tail of a pump's log-multiple above the pump floor (larger = bigger pumps)."""
    return _PUMP_S0 + _PUMP_S1 * np.asarray(skill, dtype=np.float64)


def p_rug(skill: np.ndarray | float) -> np.ndarray:
    """Probability that a token rugs within its data, by the skill of its first caller."""
    return 0.06 + 0.34 * (1.0 - np.asarray(skill, dtype=np.float64))


@dataclass(frozen=True)
class DemoSpec:
    """Size and seed of a synthetic market. The same spec always produces the same bytes.

    ``history_hours``: candles per token, from a little before its first alert (<= 8 % of the
    history) to the end (each token's span is 88-100 % of it). ``clean``: canonical chain names and
    addresses, full-precision mcap/price, no duplicate or malformed alert rows (benchmarks); the
    market itself does not change.
    """

    seed: int = 7
    n_callers: int = 24
    n_tokens: int = 1500
    n_alerts: int = 3000
    days: int = 45
    interval_s: int = 60
    history_hours: float = 72.0
    start: str = "2025-09-01"
    clean: bool = False

    def __post_init__(self) -> None:
        if self.n_callers < 2:
            raise ValueError("n_callers must be >= 2")
        if self.n_tokens < 1 or self.n_alerts < self.n_tokens:
            raise ValueError("need 1 <= n_tokens <= n_alerts (every token is called at least once)")
        if self.days <= 0:
            raise ValueError("days must be > 0")
        if self.interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        if self.history_hours * _HOUR < 40 * self.interval_s or self.history_hours < 3:
            raise ValueError("history_hours must be >= 3 and cover at least 40 bars")
        pd.Timestamp(self.start)  # raises on an unparsable start

    @property
    def start_ms(self) -> int:
        ts = pd.Timestamp(self.start)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return int(ts.value // 1_000_000)

    @property
    def n_bars_max(self) -> int:
        return int(round(self.history_hours * _HOUR / self.interval_s))


@dataclass(frozen=True)
class DemoFiles:
    """Where :func:`make_demo` wrote the market.

    ``truth_csv`` columns: ``caller, skill, planted_rank`` (1 = best by planted skill), ``lucky``
    (3-4 calls, all but one forced pumps), ``n_calls`` (valid alerts in the CSV).
    """

    alerts_csv: Path
    candles_dir: Path
    truth_csv: Path


def _rng(spec: DemoSpec, stream: int, *sub: int) -> np.random.Generator:
    return np.random.default_rng([int(spec.seed) & 0xFFFFFFFF, stream, *sub])


def _round_sig(x: np.ndarray, digits: int) -> np.ndarray:
    """Round to ``digits`` significant digits (as a bot prints market caps)."""
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore"):
        mag = np.floor(np.log10(np.abs(np.where(x == 0, 1.0, x))))
    f = 10.0 ** (digits - 1 - mag)
    return np.round(x * f) / f


# ------------------------------------------------------------------------------------------ callers
_NAME_BASES = (
    "Moonshot Mike",
    "degen.sol",
    "Kuro",
    "Ape Lord",
    "Whale",
    "Satoshi's Cat",
    "pumpologist",
    "Nova",
    "Ricky Rugsafe",
    "Lambo Larry",
    "gem hunter",
    "Ziggy",
    "Captain Chad",
    "Mint Condition",
    "Jito Jane",
    "0xRaven",
    "Frogfather",
    "Alpha Ape",
    "Sniper",
    "rekt recovery",
    "Bagholder Bob",
    "Dr. Dip",
    "Vega",
    "Kaito",
    "Solstice",
    "Mochi",
    "Bonk Bishop",
    "Trench Rat",
    "Oracle",
    "Liquidity Lucy",
    "Max Pain",
    "the degen",
    "Zen Trader",
    "Turbo",
    "Glitch",
    "Phoenix",
    "Milo",
    "Cobra",
    "Nyx",
    "Atlas",
)
_NAME_DECOR = (
    "",
    "",
    "",
    " 🐳",
    " 💀🧲",
    " | @{h}Calls",
    " ✞ |Alpha|",
    " [Gold]",
    " 🚀",
    " (calls)",
    " || 100x or bust",
    " I verify @{h}",
    ".TV",
)


def _caller_names(rng: np.random.Generator, n: int) -> list[str]:
    bases = [_NAME_BASES[i] for i in rng.permutation(len(_NAME_BASES))]
    names: list[str] = []
    for i in range(n):
        base = bases[i % len(bases)] + ("" if i < len(bases) else f" {i // len(bases) + 1}")
        handle = "".join(ch for ch in base if ch.isalnum())
        names.append(base + _NAME_DECOR[int(rng.integers(len(_NAME_DECOR)))].format(h=handle))
    return names


def caller_truth(spec: DemoSpec) -> pd.DataFrame:
    """The planted callers: ``caller, skill, planted_rank, lucky, lucky_calls, weight, chat``.

    Depends only on ``seed`` and ``n_callers``. Regular callers get skills ``0.05 + 0.9 q**1.5`` for
    ``q`` evenly spaced over [0, 1] (jittered, shuffled): many mediocre callers, a few clearly good
    ones. ``min(3, n_callers // 6)`` lucky callers get a low skill and 3-4 calls on tokens nobody
    else calls, all but one forced to pump (the other flops), so a raw 2x rate of 67-75 % ranks them
    first (none when the spec is too small to place them).
    """
    rng = _rng(spec, _STREAM_CALLERS)
    n = spec.n_callers
    n_lucky = min(3, n // 6)
    n_reg = n - n_lucky
    names = _caller_names(rng, n)
    step = 1.0 / max(n_reg - 1, 1)
    q = np.linspace(1.0, 0.0, n_reg) if n_reg > 1 else np.array([0.6])
    q = np.clip(q + rng.uniform(-0.3, 0.3, n_reg) * step, 0.0, 1.0)
    reg = 0.05 + 0.9 * q**1.5  # few good callers, many mediocre ones: the top is spread out
    skill = np.concatenate([reg, rng.uniform(0.05, 0.3, n_lucky)])
    lucky = np.arange(n) >= n_reg
    perm = rng.permutation(n)
    skill, lucky = skill[perm], lucky[perm]
    lucky_calls = np.where(lucky, rng.integers(3, 5, n), 0)
    weight = rng.lognormal(0.0, 0.7, n)
    chat = rng.integers(0, 3, n)
    rank = np.empty(n, np.int64)
    rank[np.argsort(-skill, kind="stable")] = np.arange(1, n + 1)
    return pd.DataFrame(
        {
            "caller": names,
            "skill": skill,
            "planted_rank": rank,
            "lucky": lucky,
            "lucky_calls": lucky_calls,
            "weight": weight,
            "chat": chat,
        }
    )


def planted_ranking(spec: DemoSpec) -> list[str]:
    """Caller names ordered best first by planted skill (lucky callers included, by their low skill)."""
    t = caller_truth(spec)
    return t.sort_values("planted_rank")["caller"].tolist()


# ------------------------------------------------------------------------------------------ tokens
def _b58encode(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + "".join(reversed(out))


_PUMP_VALUE = 0
for _ch in "pump":
    _PUMP_VALUE = _PUMP_VALUE * 58 + _B58.index(_ch)


def _solana_mint(rng: np.random.Generator, pump: bool) -> str:
    """A valid 32-byte base58 key; pump.fun-style ones end in ``pump`` (as vanity-ground mints do)."""
    raw = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    if pump:
        q = int.from_bytes(raw, "big") % ((2**256 - _PUMP_VALUE) // 58**4)
        raw = (q * 58**4 + _PUMP_VALUE).to_bytes(32, "big")
    return _b58encode(raw)


def _evm_address(rng: np.random.Generator, four_meme: bool, mixed_case: bool) -> str:
    digits = rng.integers(0, 16, 40)
    s = "".join(_HEX[d] for d in digits)
    if four_meme:
        s = s[:36] + "4444"
    if mixed_case:
        up = rng.random(40) < 0.5
        s = "".join(c.upper() if u else c for c, u in zip(s, up, strict=True))
    return "0x" + s


_TICKER_PARTS = (
    "PEPE",
    "DOGE",
    "FROG",
    "CAT",
    "MOON",
    "WIF",
    "BONK",
    "APE",
    "CHAD",
    "GIGA",
    "TURBO",
    "MEOW",
    "RAT",
    "PUMP",
    "SOL",
    "BABY",
    "KING",
    "AI",
    "GROK",
    "TRUMP",
    "ELON",
    "HAT",
    "DOG",
    "NUB",
    "LOOPY",
    "SHIB",
    "FLOKI",
    "WOJAK",
)


def _ticker(rng: np.random.Generator) -> str:
    u = rng.random()
    if u < 0.5:
        return _TICKER_PARTS[int(rng.integers(len(_TICKER_PARTS)))]
    if u < 0.8:
        a, b = rng.integers(len(_TICKER_PARTS), size=2)
        return (_TICKER_PARTS[int(a)] + _TICKER_PARTS[int(b)])[:10]
    return "".join(chr(65 + int(x)) for x in rng.integers(0, 26, int(rng.integers(3, 7))))


@dataclass
class _Plan:
    """Everything about the market except the bars: tokens, alerts, events (small arrays)."""

    spec: DemoSpec
    callers: pd.DataFrame
    chain: np.ndarray  # int8 index into CHAINS, per token
    display: list[str]  # address as shown (EVM mixed case sometimes)
    canon: np.ndarray  # object: canonical token (EVM lower-cased)
    ticker: list[str]
    kind: np.ndarray  # int8: 0 normal, 1 late (truncated), 2 stale, 3 missing
    hist_start: np.ndarray  # int64 s, first bar ts (aligned to the interval)
    span: np.ndarray  # int64 bars of data per token
    log_p0: np.ndarray
    sigma: np.ndarray  # per-bar log volatility
    drift: np.ndarray  # per-bar log drift
    usd_vol: np.ndarray  # median USD volume per bar
    supply: np.ndarray
    rug_bar: np.ndarray  # int64 bar index of the rug (n_bars_max + 1 = no rug)
    rug_amt: np.ndarray  # log drop
    first_ms: np.ndarray  # per token
    # alerts, sorted by (token, ts)
    a_tok: np.ndarray
    a_rank: np.ndarray
    a_ms: np.ndarray
    a_caller: np.ndarray
    a_amp: np.ndarray  # log amplitude of the event (0 = none)
    a_delay: np.ndarray  # s from alert to event start
    a_rise: np.ndarray  # s of the ramp
    a_keep: np.ndarray  # share of the amplitude kept after the give-back
    a_tau: np.ndarray  # s, give-back time constant
    a_legs: np.ndarray  # legs of a pump's run (pullbacks between them)
    a_depth: np.ndarray  # pullback depth, as a share of the gain so far (log scale)
    a_dip: np.ndarray  # log depth of the shakeout before a pump takes off
    s_amp: np.ndarray  # log amplitude of the call's buying spike
    s_delay: np.ndarray  # s from alert to spike start
    s_rise: np.ndarray  # s of the spike's ramp
    s_tau: np.ndarray  # s, spike give-back time constant


def _plan(spec: DemoSpec) -> _Plan:
    rng = _rng(spec, _STREAM_PLAN)
    callers = caller_truth(spec)
    n_tok, n_al, iv = spec.n_tokens, spec.n_alerts, spec.interval_s
    H = spec.history_hours * _HOUR
    n_max = spec.n_bars_max

    # --- tokens: calls per token (>= 1, a few popular ones get many), chain, addresses
    counts = np.ones(n_tok, np.int64)
    if n_al > n_tok:
        w = rng.lognormal(0.0, 0.6, n_tok)
        counts += np.bincount(rng.choice(n_tok, n_al - n_tok, p=w / w.sum()), minlength=n_tok)
    chain = rng.choice(3, n_tok, p=_CHAIN_P).astype(np.int8)
    display: list[str] = []
    for c in chain:
        if c == 0:
            display.append(_solana_mint(rng, bool(rng.random() < 0.4)))
        else:
            display.append(_evm_address(rng, c == 1 and rng.random() < 0.5, bool(rng.random() < 0.5)))
    canon = np.array([d if c == 0 else d.lower() for d, c in zip(display, chain, strict=True)], dtype=object)
    if len(set(canon.tolist())) != n_tok:
        raise RuntimeError("token address collision (astronomically unlikely); use another seed")
    ticker = [_ticker(rng) for _ in range(n_tok)]

    # --- quirk tokens, chosen among single-call tokens: missing candles, stale start, late alert
    single = np.flatnonzero(counts == 1)
    n_missing = min(len(single) // 4, max(1, round(0.004 * n_tok)))
    n_stale = min(len(single) // 4, max(1, round(0.004 * n_tok)))
    n_late = min(len(single) // 4, max(2, round(0.02 * n_tok)))
    pick = rng.permutation(single)
    kind = np.zeros(n_tok, np.int8)
    kind[pick[:n_missing]] = 3
    kind[pick[n_missing : n_missing + n_stale]] = 2
    kind[pick[n_missing + n_stale : n_missing + n_stale + n_late]] = 1

    # --- alerts: token order, first-call times, follow-ups after the first call
    a_tok = np.repeat(np.arange(n_tok), counts)
    a_rank = np.arange(n_al) - np.repeat(np.cumsum(counts) - counts, counts)
    first_ms = spec.start_ms + rng.integers(0, int(spec.days * 86_400_000), n_tok)
    # follow-ups mostly come hours later, after the move (median 3 h at the default history)
    delay_ms = np.minimum(rng.lognormal(math.log(3 * _HOUR * H / (72 * _HOUR)), 0.8, n_al), 0.15 * H) * 1000.0
    delay_ms = np.where(a_rank == 0, 0.0, np.maximum(delay_ms, max(60.0, 2.0 * iv) * 1000.0)).astype(np.int64)
    order = np.lexsort((delay_ms, a_tok))  # follow-ups in time order within a token
    delay_ms = delay_ms[order]
    # distinct follow-up delays (equal draws would collide at the same ms)
    delay_ms = delay_ms + np.where(a_rank == 0, 0, a_rank)
    a_ms = first_ms[a_tok] + delay_ms
    snap = rng.random(n_al) < 0.05  # exactly on a bar boundary
    step_ms = iv * 1000
    a_ms = np.where(snap, -(-a_ms // step_ms) * step_ms, a_ms)
    first_ms = a_ms[a_rank == 0]  # after snapping

    # --- histories
    span = np.round(n_max * rng.uniform(0.88, 1.0, n_tok)).astype(np.int64)
    lead = rng.uniform(0.25 * _HOUR, max(0.5 * _HOUR, 0.08 * H), n_tok)
    span_s = span * iv
    late_left = np.where(  # time from the late alert to the end of the data: some within minutes
        rng.random(n_tok) < 0.2,
        rng.uniform(1, 15, n_tok) * _MINUTE,
        rng.uniform(_HOUR, min(40 * _HOUR, 0.55 * H), n_tok),
    )
    late_left = np.maximum(late_left, 2.0 * iv)
    lead = np.where(kind == 1, span_s - late_left, lead)
    first_s = first_ms / 1000.0
    hist_start = np.floor((first_s - lead) / iv).astype(np.int64) * iv
    stale_start = np.ceil((first_s + rng.uniform(2 * _HOUR, 8 * _HOUR, n_tok)) / iv).astype(np.int64) * iv
    hist_start = np.where(kind == 2, stale_start, hist_start)

    # --- per-token dynamics
    scale = iv / _MINUTE
    log_p0 = rng.uniform(math.log(1e-9), math.log(0.02), n_tok)
    sig_lo, sig_hi = np.log(_SIGMA_RANGE)
    sigma = np.exp(rng.uniform(sig_lo, sig_hi, n_tok)) * math.sqrt(scale)
    drift = -rng.uniform(*_BLEED_48H, n_tok) / (48 * 60) * scale
    usd_vol = rng.lognormal(math.log(400.0), 1.2, n_tok) * scale
    mcap0 = np.clip(rng.lognormal(math.log(150_000.0), 1.4, n_tok), 4_000, 60_000_000)

    # --- callers per alert: lucky callers' few calls land on normal tokens, the rest by weight
    cal = callers
    a_caller = np.full(n_al, -1, np.int64)
    eligible = np.flatnonzero((kind[a_tok] == 0) & (counts[a_tok] == 1))  # alone: no one else's dump
    if len(eligible) < 2 * int(cal["lucky_calls"].sum()):
        eligible = np.flatnonzero(kind[a_tok] == 0)
    lucky_idx = np.flatnonzero(cal["lucky"].to_numpy())
    lucky_n = cal["lucky_calls"].to_numpy()[lucky_idx]
    if lucky_n.sum() > len(eligible) // 2:
        lucky_n = np.zeros_like(lucky_n)
    slots = rng.choice(eligible, int(lucky_n.sum()), replace=False)
    a_caller[slots] = np.repeat(lucky_idx, lucky_n)
    flop = np.zeros(n_al, bool)  # one call of each lucky caller flops; the others are forced pumps
    flop[slots[(np.cumsum(lucky_n) - lucky_n)[lucky_n > 0]]] = True
    reg_idx = np.flatnonzero(~cal["lucky"].to_numpy())
    free = np.flatnonzero(a_caller < 0)
    n_min = min(30, len(free) // (2 * len(reg_idx)))
    w = cal["weight"].to_numpy()[reg_idx]
    reg_counts = n_min + rng.multinomial(len(free) - n_min * len(reg_idx), w / w.sum())
    # skilled callers tend to be early (the first call on a token), weak ones follow (and buy the top)
    copies = np.repeat(reg_idx, reg_counts)
    score = cal["skill"].to_numpy()[copies] + rng.normal(0.0, _EARLY_NOISE, len(copies))
    slots = free[np.lexsort((rng.random(len(free)), a_rank[free] > 0))]
    a_caller[slots] = copies[np.argsort(-score, kind="stable")]
    skill = cal["skill"].to_numpy()[a_caller]
    is_lucky = cal["lucky"].to_numpy()[a_caller]

    # --- events per alert
    pump = ((rng.random(n_al) < p_pump(skill)) | is_lucky) & ~flop
    log_mult = math.log(_PUMP_FLOOR) + rng.exponential(pump_scale(skill))
    log_mult = np.where(is_lucky, math.log(3.5) + rng.exponential(0.6, n_al), log_mult)
    knee = math.log(_PUMP_KNEE[0])  # a thinner tail beyond the knee: 50x+ runs are rare
    log_mult = np.where(log_mult > knee, knee + _PUMP_KNEE[1] * (log_mult - knee), log_mult)
    log_mult = np.minimum(log_mult, math.log(_PUMP_CAP))
    dump = ~pump & ((rng.random(n_al) < 0.35 + 0.4 * (1 - skill)) | flop)
    a_amp = np.where(pump, log_mult, np.where(dump, -rng.uniform(0.15, 1.4, n_al), 0.0))
    a_delay = np.where(
        pump, np.minimum(rng.exponential(35 * _MINUTE, n_al), 4 * _HOUR), rng.exponential(20 * _MINUTE, n_al)
    )
    a_rise = np.where(
        pump,
        np.clip(  # bigger runs take longer
            rng.lognormal(math.log(80 * _MINUTE), 0.8, n_al) * (0.5 + 0.5 * np.abs(a_amp)),
            8 * _MINUTE,
            16 * _HOUR,
        ),
        np.clip(rng.lognormal(math.log(3 * _HOUR), 0.7, n_al), 10 * _MINUTE, 24 * _HOUR),
    )
    a_rise = np.where(is_lucky, np.minimum(a_rise, 45 * _MINUTE), a_rise)  # a lucky moonshot is quick
    a_keep = np.where(pump, rng.uniform(0.0, 0.6, n_al), 1.0)
    a_tau = rng.lognormal(math.log(5 * _HOUR), 0.7, n_al)
    a_legs = rng.integers(2, 5, n_al)
    a_depth = np.where(pump, rng.uniform(*_PULLBACK, n_al), 0.0)
    a_dip = np.where(pump, rng.uniform(*_SHAKEOUT, n_al), 0.0)
    # the call's own buying spike (every alert): bots front-run the followers, so it is mostly
    # priced in at the entry bar's open, and given back within the hour
    s_amp = np.where(flop, 0.0, rng.exponential(_SPIKE_SCALE, n_al))  # a flop goes nowhere
    s_delay = rng.uniform(0.0, 20.0, n_al)
    s_rise = np.clip(rng.lognormal(math.log(45.0), 0.5, n_al), 10.0, 3 * _MINUTE)
    s_tau = np.clip(rng.lognormal(math.log(30 * _MINUTE), 0.6, n_al), 5 * _MINUTE, 4 * _HOUR)

    # --- rugs: by the first caller's skill; never on tokens holding a lucky call
    first_skill = skill[a_rank == 0]
    lucky_tok = np.zeros(n_tok, bool)
    lucky_tok[a_tok[is_lucky]] = True
    rugs = (rng.random(n_tok) < p_rug(first_skill)) & ~lucky_tok
    rug_s = first_s + 10 * _MINUTE + rng.exponential(16 * _HOUR, n_tok)
    rug_bar = np.floor((rug_s - hist_start) / iv).astype(np.int64)
    rug_bar = np.where(rugs & (rug_bar >= 1) & (rug_bar < span), rug_bar, n_max + 1)
    rug_amt = np.log1p(-rng.uniform(0.9, 0.999, n_tok))

    # price at the first alert ~ exp(log_p0) (start of the path), so supply = mcap0 / price
    supply = mcap0 / np.exp(log_p0)
    return _Plan(
        spec=spec,
        callers=callers,
        chain=chain,
        display=display,
        canon=canon,
        ticker=ticker,
        kind=kind,
        hist_start=hist_start,
        span=span,
        log_p0=log_p0,
        sigma=sigma,
        drift=drift,
        usd_vol=usd_vol,
        supply=supply,
        rug_bar=rug_bar,
        rug_amt=rug_amt,
        first_ms=first_ms,
        a_tok=a_tok,
        a_rank=a_rank,
        a_ms=a_ms,
        a_caller=a_caller,
        a_amp=a_amp,
        a_delay=a_delay,
        a_rise=a_rise,
        a_keep=a_keep,
        a_tau=a_tau,
        a_legs=a_legs,
        a_depth=a_depth,
        a_dip=a_dip,
        s_amp=s_amp,
        s_delay=s_delay,
        s_rise=s_rise,
        s_tau=s_tau,
    )


# ------------------------------------------------------------------------------------------ bars
def _interval_mask(
    n_rows: int, n_cols: int, row: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """(n_rows, n_cols) bool mask, True on ``[start, end)`` of each interval's row (clipped to the row)."""
    start = np.clip(start, 0, n_cols).astype(np.int64)
    end = np.clip(end, 0, n_cols).astype(np.int64)
    keep = end > start
    diff = np.zeros(n_rows * n_cols + 1, np.int32)
    np.add.at(diff, row[keep] * n_cols + start[keep], 1)
    np.add.at(diff, row[keep] * n_cols + end[keep], -1)
    return (np.cumsum(diff[:-1], dtype=np.int32) > 0).reshape(n_rows, n_cols)


def _random_stretches(
    rng: np.random.Generator,
    span: np.ndarray,
    n_cols: int,
    rate: float,
    median_s: float,
    sigma: float,
    min_bars: int,
    max_s: float,
    iv: int,
) -> np.ndarray:
    """Mask of Poisson(``rate``)-many random stretches per row, lognormal lengths, starts uniform in span."""
    k = rng.poisson(rate, len(span))
    row = np.repeat(np.arange(len(span)), k)
    start = (rng.random(len(row)) * span[row]).astype(np.int64)
    length = np.clip(
        rng.lognormal(math.log(median_s / iv), sigma, len(row)), min_bars, max(max_s / iv, min_bars)
    )
    return _interval_mask(len(span), n_cols, row, start, start + length.astype(np.int64))


def _chunk_bars(
    P: _Plan, rows: np.ndarray, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Bars of the tokens ``rows`` (all with candles): flat present bars, plus (alert index, open at alert)."""
    spec = P.spec
    iv, N, T = spec.interval_s, spec.n_bars_max, len(rows)
    rate_scale = spec.history_hours / 72.0
    col = np.arange(N, dtype=np.int64)
    ts = P.hist_start[rows, None] + col * iv
    since_h = (ts - (P.first_ms[rows, None] / 1000.0)) / _HOUR  # hours since the token's first call
    local = np.full(len(P.chain), -1, np.int64)
    local[rows] = np.arange(T)
    a_sel = np.flatnonzero(local[P.a_tok] >= 0)
    a_row = local[P.a_tok[a_sel]]
    a_s = P.a_ms[a_sel] / 1000.0
    a_bar = np.floor((a_s - P.hist_start[P.a_tok[a_sel]]) / iv).astype(np.int64)
    rug = P.rug_bar[rows, None]
    post_rug = col >= rug

    # call events on the log-price (pumps, dumps, buying spikes) and the extra volatility of a
    # running pump: a pump is rough, not a smooth ramp, so tight trailing stops get shaken out and
    # peaks are wicks, as in real runs
    ev = np.zeros((T, N))
    pvol = np.zeros((T, N))
    per_bar = math.sqrt(iv / _MINUTE)
    ranks = P.a_rank[a_sel]
    for k in np.unique(ranks):  # one alert per token per rank: fancy-index rows are unique
        m = ranks == k
        r, ai = a_row[m], a_sel[m]
        amp, rise = P.a_amp[ai, None], P.a_rise[ai, None]
        u = (ts[r] - a_s[m, None]) - P.a_delay[ai, None]
        x = np.clip(u / rise, 0.0, 1.0)
        fade = np.exp(-np.maximum(u - rise, 0.0) / P.a_tau[ai, None])
        keep = P.a_keep[ai, None]
        legs = np.sin(np.pi * P.a_legs[ai, None] * x) ** 2  # 0 at the top of each leg, 1 mid-way
        ramp = x * x * (3.0 - 2.0 * x) * (1.0 - P.a_depth[ai, None] * legs)
        ev[r] += amp * ramp * (keep + (1.0 - keep) * fade)
        # the shakeout: early holders dump on the call before the run (from the alert to a third of the ramp)
        y = np.clip((ts[r] - a_s[m, None]) / (P.a_delay[ai, None] + rise / 3.0), 0.0, 1.0)
        ev[r] -= P.a_dip[ai, None] * np.sin(np.pi * y) ** 2
        running = (u >= 0.0) & (amp > 0.0)
        pvol[r] += np.where(running, _PUMP_VOL * per_bar * np.where(u <= rise, 1.0, fade * fade), 0.0)
        u = (ts[r] - a_s[m, None]) - P.s_delay[ai, None]
        x = np.clip(u / P.s_rise[ai, None], 0.0, 1.0)
        fade = np.exp(-np.maximum(u - P.s_rise[ai, None], 0.0) / P.s_tau[ai, None])
        ev[r] += P.s_amp[ai, None] * (x * x * (3.0 - 2.0 * x)) * fade

    # latent log close: bleed + volatility (highest after the first call, low after a rug) + jumps
    boost, decay_h = _CALL_VOL
    sig = P.sigma[rows, None] * np.where(
        since_h >= 0, 1.0 + boost * np.exp(-np.maximum(since_h, 0.0) / decay_h), 0.85
    )
    sig *= np.where(post_rug, 0.35, 1.0)
    pvol *= np.where(post_rug, 0.35, 1.0)
    pvol += sig  # per-bar volatility of the path (sig alone: quiet-bar scale for jitter and volume)
    inc = rng.standard_normal((T, N))
    inc *= pvol
    inc[rng.random((T, N)) < _JUMP_P] *= _JUMP_SCALE
    inc += P.drift[rows, None]
    lat = np.cumsum(inc, axis=1)
    del inc
    lat += P.log_p0[rows, None]
    lat += np.where(post_rug, P.rug_amt[rows, None], 0.0)
    lat += ev
    del ev

    # protected bars (never dead, never missing): around every alert, and the rug bar with the one before
    after = max(int(_HOUR // iv), 6)
    has_rug = P.rug_bar[rows] <= N
    prot = _interval_mask(
        T,
        N,
        np.concatenate([a_row, np.flatnonzero(has_rug)]),
        np.concatenate([a_bar - 5, P.rug_bar[rows][has_rug] - 1]),
        np.concatenate([a_bar + after, P.rug_bar[rows][has_rug] + 1]),
    )
    pumping = P.a_amp[a_sel] > 0  # a running pump trades: no dead bars until an hour after its peak
    busy = _interval_mask(
        T,
        N,
        a_row[pumping],
        a_bar[pumping],
        a_bar[pumping] + ((P.a_delay[a_sel] + P.a_rise[a_sel])[pumping] + _HOUR).astype(np.int64) // iv,
    )
    span = P.span[rows]
    dead = _random_stretches(rng, span, N, 5.0 * rate_scale, 40 * _MINUTE, 1.2, 3, 8 * _HOUR, iv)
    fade = 0.02 + 0.15 * (1.0 - np.exp(-np.maximum(since_h, 0.0) / 36.0))
    dead |= rng.random((T, N)) < np.where(col > rug, 0.8, fade)
    dead &= ~(prot | busy)
    del busy
    missing = _random_stretches(rng, span, N, 3.0 * rate_scale, 8 * _MINUTE, 1.3, 1, 6 * _HOUR, iv)
    missing |= rng.random((T, N)) < 0.015
    missing &= ~prot
    missing |= col >= span[:, None]
    del fade, prot

    # observed OHLCV: dead bars repeat the last live close; open = previous close (small jitter)
    close = np.exp(lat)
    del lat
    last_live = np.maximum.accumulate(np.where(dead, 0, col), axis=1)
    close = np.take_along_axis(close, last_live, axis=1)
    del last_live
    opn = np.empty_like(close)
    opn[:, 0] = np.exp(P.log_p0[rows])
    opn[:, 1:] = close[:, :-1]
    jit = rng.random((T, N)) < 0.15
    opn[jit] *= np.exp(0.15 * sig[jit] * rng.standard_normal(int(jit.sum())))
    del jit
    opn = np.where(dead, close, opn)
    wick = np.abs(rng.standard_normal((T, N))) * 0.6
    wick[rng.random((T, N)) < 0.01] *= 6.0
    high = np.where(dead, close, np.maximum(opn, close) * np.exp(wick * pvol))
    wick = np.abs(rng.standard_normal((T, N))) * 0.6
    low = np.where(dead, close, np.minimum(opn, close) * np.exp(-wick * pvol))
    del wick, pvol
    activity = np.where(since_h >= 0, 0.25 + np.exp(-np.maximum(since_h, 0.0) / 18.0), 0.4)
    del since_h
    usd = P.usd_vol[rows, None] * rng.lognormal(0.0, 0.9, (T, N)) * activity
    usd *= 1.0 + 3.0 * np.abs(np.log(close / opn)) / sig
    volume = np.where(dead, 0.0, usd / (0.5 * (opn + close)))
    del usd, activity, sig, dead

    # printed like a data vendor's (10 significant digits); re-assert OHLC order after rounding
    opn, high, low, close = (_round_sig(x, 10) for x in (opn, high, low, close))
    high = np.maximum(high, np.maximum(opn, close))
    low = np.minimum(low, np.minimum(opn, close))
    volume = _round_sig(volume, 8)
    a_price = opn[a_row, np.clip(a_bar, 0, N - 1)]
    keep = ~missing
    n_keep = keep.sum(axis=1)
    bars = {
        "tok": np.repeat(rows.astype(np.int32), n_keep),
        "ts": ts[keep],
        "open": opn[keep],
        "high": high[keep],
        "low": low[keep],
        "close": close[keep],
        "volume": volume[keep],
    }
    return bars, a_sel, a_price


def _iter_bars(P: _Plan, a_price: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
    """Present bars block by block (``_CHUNK_TOKENS`` tokens each, sorted by token, ts); fills
    ``a_price`` (every alert's price at alert, the bar open) as the blocks go."""
    with_candles = np.flatnonzero(P.kind != 3)
    for c, lo in enumerate(range(0, len(with_candles), _CHUNK_TOKENS)):
        rows = with_candles[lo : lo + _CHUNK_TOKENS]
        bars, a_sel, price = _chunk_bars(P, rows, _rng(P.spec, _STREAM_BARS, c))
        a_price[a_sel] = price
        yield bars


def _bars(P: _Plan) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """All present bars (sorted by token, ts) and every alert's price at alert (bar open)."""
    a_price = np.exp(P.log_p0[P.a_tok])  # missing-candle tokens: the path's start price
    parts = list(_iter_bars(P, a_price))
    keys = ("tok", "ts", "open", "high", "low", "close", "volume")
    out = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in keys}
    return out, a_price


# ------------------------------------------------------------------------------------------ export
def _message_ids(rng: np.random.Generator, chat: np.ndarray, ts_ms: np.ndarray) -> np.ndarray:
    """Telegram-like message ids: increasing with time within a chat, with random gaps."""
    out = np.zeros(len(chat), np.int64)
    for c in np.unique(chat):
        idx = np.flatnonzero(chat == c)
        idx = idx[np.argsort(ts_ms[idx], kind="stable")]
        out[idx] = int(rng.integers(10_000, 200_000)) + np.cumsum(rng.integers(1, 40, len(idx)))
    return out


def _alerts_frame(P: _Plan, a_price: np.ndarray) -> pd.DataFrame:
    """The alerts as an export: typed and canonical when ``clean``, else the messy text export."""
    spec = P.spec
    rng = _rng(spec, _STREAM_EXPORT)
    n = len(P.a_tok)
    names = P.callers["caller"].to_numpy(object)[P.a_caller]
    chain = P.chain[P.a_tok]
    price = a_price * np.exp(rng.normal(0.0, 0.01, n))  # the bot's price, not exactly the bar's
    mcap = price * P.supply[P.a_tok]
    chat_ids = rng.integers(1_000_000_000, 9_999_999_999, 3)
    chat = chat_ids[P.callers["chat"].to_numpy()[P.a_caller]]
    msg = _message_ids(rng, chat, P.a_ms)
    ticker = np.asarray(P.ticker, dtype=object)[P.a_tok]
    order = np.lexsort((P.a_tok, -P.a_ms))  # newest first, like the real export
    if spec.clean:
        df = pd.DataFrame(
            {
                "caller_name": names,
                "mint": P.canon[P.a_tok],
                "ticker": ticker,
                "mcap_at_alert": mcap,
                "alert_ts_ms": P.a_ms.astype(np.int64),
                "chain": np.asarray(CHAINS, dtype=object)[chain],
                "price_at_alert": price,
                "chat_id": chat.astype(str).astype(object),
                "message_id": msg,
            }
        )
        return df.iloc[order].reset_index(drop=True)

    display = np.asarray(P.display, dtype=object)[P.a_tok]
    lower = (chain != 0) & (rng.random(n) < 0.3)
    mint = np.where(lower, P.canon[P.a_tok], display)
    spelled = np.empty(n, dtype=object)
    alt = np.empty(n, dtype=object)  # a different spelling, for the second bot reply
    for c, words in _SPELLINGS.items():
        idx = np.flatnonzero(chain == c)
        pick = rng.choice(len(words), len(idx), p=_SPELL_P[c])
        spelled[idx] = np.asarray(words, dtype=object)[pick]
        alt[idx] = np.asarray(words, dtype=object)[
            (pick + rng.integers(1, len(words), len(idx))) % len(words)
        ]
    u = rng.random(n)
    m = _round_sig(mcap, 3)
    mcap_s = np.where(  # dollars, millions (bots print "3.29M") or empty
        (u < 0.15) & (mcap >= 1e6),
        [repr(float(v)) for v in _round_sig(mcap / 1e6, 3)],
        np.where(u < 0.85, [repr(float(v)) for v in m], ""),
    )
    u = rng.random(n)
    price_s = np.where(u < 0.55, [f"{v:.5g}" for v in price], np.where(u < 0.8, "", "0.0"))
    rows = (
        pd.DataFrame(
            {
                "caller_name": names,
                "mint": mint,
                "ticker": ticker,
                "mcap_at_alert": mcap_s.astype(object),
                "alert_ts_ms": P.a_ms.astype(str).astype(object),
                "chain": spelled,
                "price_at_alert": price_s.astype(object),
                "chat_id": chat.astype(str).astype(object),
                "message_id": msg.astype(str).astype(object),
            }
        )
        .iloc[order]
        .reset_index(drop=True)
    )
    alt = alt[order]

    # second bot reply for ~6 % of calls: same call, other chain spelling, no mcap/price
    dup = rng.random(n) < 0.06
    dups = rows[dup].copy()
    dups["chain"] = alt[dup]
    dups["mcap_at_alert"] = ""
    dups["price_at_alert"] = ""
    pos = np.concatenate([np.arange(n, dtype=np.float64), np.flatnonzero(dup) + 0.5])
    out = pd.concat([rows, dups], ignore_index=True)

    # malformed copies: empty caller / unparsable time / bad address (cycled, at random places)
    n_bad = max(3, round(0.005 * n))
    src = rng.choice(n, n_bad, replace=False)
    bad = rows.iloc[src].copy().reset_index(drop=True)
    for j in range(n_bad):
        kind = j % 3
        if kind == 0:
            bad.loc[j, "caller_name"] = ""
        elif kind == 1:
            bad.loc[j, "alert_ts_ms"] = _BAD_TIMES[(j // 3) % len(_BAD_TIMES)]
        else:
            tok = str(bad.loc[j, "mint"])
            if tok.startswith("0x"):
                bad.loc[j, "mint"] = tok[:-2]  # 38 hex digits
            else:
                i = int(rng.integers(1, len(tok) - 1))
                bad.loc[j, "mint"] = tok[:i] + "0OIl"[j // 3 % 4] + tok[i + 1 :]  # not base58
    pos = np.concatenate([pos, rng.uniform(-0.5, n - 0.5, n_bad)])
    out = pd.concat([out, bad], ignore_index=True)
    return out.iloc[np.argsort(pos, kind="stable")].reset_index(drop=True)


def _candles_frame(P: _Plan, bars: dict[str, np.ndarray]) -> pd.DataFrame:
    with_candles = np.flatnonzero(P.kind != 3)
    code = np.full(len(P.chain), -1, np.int32)
    code[with_candles] = np.arange(len(with_candles), dtype=np.int32)
    tok = bars["tok"]
    return pd.DataFrame(
        {
            "chain": pd.Categorical.from_codes(P.chain[tok].astype(np.int8), categories=list(CHAINS)),
            "token": pd.Categorical.from_codes(code[tok], categories=list(P.canon[with_candles])),
            "ts": bars["ts"],
            "open": bars["open"],
            "high": bars["high"],
            "low": bars["low"],
            "close": bars["close"],
            "volume": bars["volume"],
        }
    )


def _truth_frame(P: _Plan) -> pd.DataFrame:
    t = P.callers[["caller", "skill", "planted_rank", "lucky"]].copy()
    t["n_calls"] = np.bincount(P.a_caller, minlength=len(t))
    return t.sort_values("planted_rank").reset_index(drop=True)


def make_market_arrays(spec: DemoSpec = DemoSpec()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The market without files: ``(alerts, candles)``.

    ``alerts`` has the export columns (:data:`ALERT_COLUMNS`): typed and canonical when
    ``spec.clean`` (``alert_ts_ms`` int64, ``mcap_at_alert``/``price_at_alert`` float64,
    ``message_id`` int64, lower-case chains, EVM lower-case), else the messy export as text exactly as
    :func:`make_demo` writes it. ``candles`` (:data:`CANDLE_COLUMNS`) holds every present bar sorted
    by (token, ts): ``chain`` and ``token`` are categoricals (canonical names; no per-row strings),
    ``ts`` int64 epoch seconds at bar open, prices and volume float64.
    """
    P = _plan(spec)
    bars, a_price = _bars(P)
    return _alerts_frame(P, a_price), _candles_frame(P, bars)


CANDLE_SCHEMA = pa.schema(
    [("chain", pa.string()), ("token", pa.string()), ("ts", pa.int64())]
    + [(k, pa.float64()) for k in ("open", "high", "low", "close", "volume")]
)


def write_market_parquet(spec: DemoSpec, candles_path: str | Path) -> tuple[pd.DataFrame, int]:
    """The market with its candles streamed to one Parquet file: ``(alerts, n_candle_rows)``.

    Same alerts and the same candle rows, in the same order, as :func:`make_market_arrays`, but
    written block by block (one row group per ``_CHUNK_TOKENS`` tokens, ``chain``/``token`` as
    plain strings), so memory is bounded by one block whatever the market's size.
    """
    P = _plan(spec)
    chains = np.asarray(CHAINS, dtype=object)
    a_price = np.exp(P.log_p0[P.a_tok])
    n_rows = 0
    with atomic_file(Path(candles_path)) as tmp, pq.ParquetWriter(tmp, CANDLE_SCHEMA) as writer:
        for bars in _iter_bars(P, a_price):
            tok = bars["tok"]
            # one string per token of the block, repeated by run length (not one object per row)
            starts = np.flatnonzero(np.r_[True, tok[1:] != tok[:-1]]) if len(tok) else np.zeros(0, int)
            ends = np.r_[starts[1:], len(tok)]
            names = pa.array(P.canon[tok[starts]].astype(str), pa.string())
            run = pa.array(np.repeat(np.arange(len(starts), dtype=np.int32), ends - starts))
            chain_names = pa.array(chains[P.chain[tok[starts]]].astype(str), pa.string())
            cols = {
                "chain": chain_names.take(run),
                "token": names.take(run),
                "ts": pa.array(bars["ts"], pa.int64()),
                **{k: pa.array(bars[k], pa.float64()) for k in ("open", "high", "low", "close", "volume")},
            }
            writer.write_table(pa.table(cols, schema=CANDLE_SCHEMA))
            n_rows += len(tok)
            del bars, cols
    return _alerts_frame(P, a_price), n_rows


def _fmt_minute(ts: int) -> str:
    return pd.Timestamp(int(ts), unit="s", tz="UTC").strftime("%Y%m%d-%H%M")


def make_demo(out_dir: str | Path, spec: DemoSpec = DemoSpec()) -> DemoFiles:
    """Write the market under ``out_dir``: ``alerts.csv``, ``candles/`` (one CSV per token), ``truth.csv``.

    Each path is replaced atomically, so a rerun never mixes files of two specs.
    """
    out_dir = Path(out_dir)
    P = _plan(spec)
    bars, a_price = _bars(P)
    files = DemoFiles(out_dir / "alerts.csv", out_dir / "candles", out_dir / "truth.csv")

    alerts = _alerts_frame(P, a_price)
    with atomic_file(files.alerts_csv) as tmp:
        alerts.to_csv(tmp, index=False, lineterminator="\n")
    truth = _truth_frame(P)
    with atomic_file(files.truth_csv) as tmp:
        truth.to_csv(tmp, index=False, lineterminator="\n")

    table = pa.table({k: bars[k] for k in ("ts", "open", "high", "low", "close", "volume")})
    tok = bars["tok"]
    starts = np.searchsorted(tok, np.arange(len(P.chain)), side="left")
    ends = np.searchsorted(tok, np.arange(len(P.chain)), side="right")
    span_s = spec.n_bars_max * spec.interval_s
    opts = pacsv.WriteOptions(include_header=False)
    with atomic_dir(files.candles_dir) as tmp_dir:
        for j in np.flatnonzero(P.kind != 3):
            addr = P.display[j] if not spec.clean else str(P.canon[j])
            h0 = int(P.hist_start[j])
            name = f"{CHAINS[P.chain[j]]}_{addr}_{_fmt_minute(h0)}_{_fmt_minute(h0 + span_s)}.csv"
            with open(tmp_dir / name, "wb") as fh:
                fh.write(CANDLE_HEADER.encode())
                pacsv.write_csv(table.slice(int(starts[j]), int(ends[j] - starts[j])), fh, opts)
    return files
