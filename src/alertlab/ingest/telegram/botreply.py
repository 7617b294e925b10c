"""Bot replies (Rick, Phanes, …): which senders are bots, and what their replies say.

A bot reply enriches the call it replies to with ``ticker``, ``price_at_alert``,
``mcap_at_alert`` and a chain hint. Numbers: ``$155K``, ``$1.2M``, ``$3B``, ``**$144.4K**``,
``$1,234.5``, and the subscript-zero notation ``$0.0₄1443`` (= 0.00001443: the subscript counts the zeros after the decimal point). Labels: ``MC``/
``MCap``/``Market Cap`` (preferred) else ``FDV`` else Rick's head-line ``[$155K/…]`` for the
market cap; ``USD``/``Price`` for the price. Ticker: the first cashtag ``$ABC`` (not a number),
else ``(ABC)`` on the first line. Chain: Rick's ``🌐 Base @ Uniswap V2`` line, ``Chain: …``,
``#ETH``-style tags and the chain segment of links it posts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from alertlab.ingest.telegram.addresses import Found, chain_hints_in, clean, scan_message

# Bot names (display name or @username, compared lower-cased with non-alphanumerics removed; a
# trailing "bot" is also tried without). One source of truth, documented in the README.
DEFAULT_BOTS: tuple[str, ...] = (
    "rick",
    "rickburpbot",
    "phanes",
    "phanesgreenbot",
    "phanesredbot",
    "phanesbluebot",
    "phanesgoldbot",
    "maestro",
    "maestrosniperbot",
    "bananagun",
    "bananagunsniper",
    "bonkbot",
    "trojan",
    "solanatrojanbot",
    "gmgn",
    "gmgnsolbot",
    "sectbot",
    "dexscreener",
    "birdeye",
    "unibot",
    "soulsniper",
    "soulscannerbot",
)

_SUB = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
NUM = r"[0-9][0-9,]*(?:\.[0-9]*)?(?:[₀-₉]+[0-9]+)?"
_VALUE = r"[^\S\n]*[:=]?[^\S\n]*[*_`]*\$?[*_`]*[^\S\n]*(" + NUM + r")[^\S\n]*([KkMmBb](?![a-z]))?"
MC_RE = re.compile(r"(?i)\b(?:MC|MCap|Market[^\S\n]*Cap)\b" + _VALUE)
FDV_RE = re.compile(r"(?i)\bFDV\b" + _VALUE)
PRICE_RE = re.compile(r"(?i)\b(?:USD|Price)\b" + _VALUE)
HEAD_MC_RE = re.compile(r"\[[^\S\n]*\$?(" + NUM + r")[^\S\n]*([KkMmBb])?[^\S\n]*/")
CASHTAG_RE = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9_.]{0,19})(?![\w.])")
PAREN_TICKER_RE = re.compile(r"\(\s*\$?([A-Za-z][A-Za-z0-9_.]{0,19})\s*\)")
SCALE = {"k": 1e3, "m": 1e6, "b": 1e9}


def norm_name(name: str | None) -> str:
    """Lower-case alphanumerics of a name or @username."""
    return re.sub(r"[^0-9a-z]", "", (name or "").lower())


def bot_set(names: str | None) -> frozenset[str]:
    """The ``--bots`` list (comma-separated; ``default`` expands to :data:`DEFAULT_BOTS`)."""
    if names is None:
        return frozenset(DEFAULT_BOTS)
    out: set[str] = set()
    for part in names.split(","):
        if part.strip().lower() == "default":
            out |= set(DEFAULT_BOTS)
        elif norm_name(part):
            out.add(norm_name(part))
    return frozenset(out)


def is_bot(name: str | None, bots: frozenset[str]) -> bool:
    """Whether a sender name / via_bot username names a bot of the list."""
    n = norm_name(name)
    if not n:
        return False
    return n in bots or (n.endswith("bot") and n[:-3] in bots) or (n.endswith("botbot") and n[:-6] in bots)


def parse_number(num: str, suffix: str | None = None) -> float | None:
    """``1,234.5`` / ``0.0₄1443`` + optional K/M/B → float (None when unparsable)."""
    s = num.replace(",", "")
    m = re.match(r"^([0-9]+)\.([0-9]*)([₀-₉]+)([0-9]+)$", s)
    if m:  # 0.0₄1443 = 0.00001443: the subscript is the number of zeros after the decimal point
        zeros = int(m.group(3).translate(_SUB))
        s = f"{m.group(1)}.{'0' * zeros}{m.group(4)}"
    try:
        v = float(s.rstrip("."))
    except ValueError:
        return None
    return v * SCALE.get((suffix or "").lower(), 1.0)


@dataclass
class BotInfo:
    """What a bot reply says about a token."""

    ticker: str | None
    price: float | None
    mcap: float | None
    chain: str | None
    tokens: list[Found]
    pools: list[Found]

    @property
    def empty(self) -> bool:
        return not (self.ticker or self.price or self.mcap or self.chain or self.tokens)


def _first(rx: re.Pattern, text: str) -> float | None:
    for m in rx.finditer(text):
        v = parse_number(m.group(1), m.group(2))
        if v is not None and v > 0:
            return v
    return None


def parse_bot_reply(text: str, links: list[str], code: list[str] | None = None) -> BotInfo:
    """Ticker, price, market cap, chain and addresses of a bot's message."""
    text = clean(text).replace("**", "").replace("__", "")
    scan = scan_message(text, links, code)
    # the token a bot names; its pair-or-token links are pools when it also names a token
    tokens = scan.tokens or [f for f in scan.either if f.chain == "solana" and f.address.endswith("pump")]
    pools = scan.pools + [f for f in scan.either if f not in tokens]
    chain = None
    hints = chain_hints_in(text)
    if hints:
        chain = hints[0]
    elif scan.chain_hints:
        chain = scan.chain_hints[0]
    mcap = _first(MC_RE, text) or _first(FDV_RE, text) or _first(HEAD_MC_RE, text.split("\n", 1)[0])
    price = _first(PRICE_RE, text)
    ticker = None
    m = CASHTAG_RE.search(text)
    if m:
        ticker = m.group(1)
    else:
        m = PAREN_TICKER_RE.search(text.split("\n", 1)[0])
        if m:
            ticker = m.group(1)
    return BotInfo(ticker, price, mcap, chain, tokens, pools)
