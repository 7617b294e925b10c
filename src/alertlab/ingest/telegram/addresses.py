"""Token addresses, pool hints and chain hints in a Telegram message's text and links.

Rules (see the README section "From Telegram"):

* Zero-width characters, soft hyphens and bidi/layout marks are stripped before matching.
* EVM: ``0x`` + 40 hex digits (stored lower-cased); ``0x`` + 64 hex is a transaction hash (ignored).
* Solana: a run of 32–44 letters/digits that is base58 decoding to exactly 32 bytes and has both
  upper- and lower-case letters. A run without upper-case letters is a lower-cased mint
  (base58 is case-sensitive; never repaired) → rejected; non-base58 or not-32-byte runs → rejected.
  Runs of 64–90 base58 characters are transaction signatures (ignored, counted). Pure hex runs of
  40/64 characters (hashes) are ignored. Valid Tron addresses (base58check) count as ``tron``.
* Links: dexscreener ``/{chain}/{address}`` and photon ``/lp/{address}`` name a pair *or* a token
  (resolved by the caller: a token named elsewhere in the message or by a bot reply makes it the
  pool hint); geckoterminal ``/{network}/pools/{address}`` is a pool, ``/tokens/{address}`` a token;
  birdeye ``/token/{address}?chain=``, gmgn ``/{chain}/token/{address}``, pump.fun
  ``/{address}`` or ``/coin/{address}``, solscan ``/token/{address}`` and
  etherscan/bscscan/basescan (and arbiscan, polygonscan) ``/token|address/{address}`` are tokens;
  ``/tx/`` links are transactions (ignored). The chain segment of a link is that address's chain
  and also a chain hint for the message. Addresses inside other links are taken only when valid.
* Chain words: ``#bsc``, ``on base``, ``chain: eth``, Rick's ``🌐 Base @ …`` line, and the
  upper-case words ``ETH``/``BSC``/``BNB``/``BASE``/``ARB``… (not after ``$``) hint an EVM chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from alertlab.ingest import chains as ch

INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
URL_RE = re.compile(
    r"(?:https?://|(?<![\w./-])(?:www\.)?(?=(?:dexscreener\.com|birdeye\.so|gmgn\.ai|pump\.fun|geckoterminal\.com"
    r"|solscan\.io|etherscan\.io|bscscan\.com|basescan\.org|arbiscan\.io|polygonscan\.com|photon-\w+\.tinyastro\.io)/))"
    r"[^\s<>\"'()\[\]]+",
    re.I,
)
EVM_RE = re.compile(r"(?<![0-9A-Za-z])0x[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?(?![0-9A-Za-z])")
RUN_RE = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{32,90}(?![0-9A-Za-z])")
LONG_RUN_RE = re.compile(r"[0-9A-Za-z]{32}")
HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
B58_RE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]+$")

# chain slugs used in links that the shared alias table does not know
LINK_CHAINS = {
    "sol": ch.SOLANA,
    "ether": ch.ETHEREUM,
    "polygon_pos": "polygon",
    "arbitrum-one": "arbitrum",
    "arb": "arbitrum",
    "bnb": ch.BSC,
    "base-mainnet": ch.BASE,
}
EXPLORERS = {
    "etherscan.io": ch.ETHEREUM,
    "bscscan.com": ch.BSC,
    "basescan.org": ch.BASE,
    "arbiscan.io": "arbitrum",
    "polygonscan.com": "polygon",
    "solscan.io": ch.SOLANA,
}
PHOTON_CHAINS = {"sol": ch.SOLANA, "base": ch.BASE, "eth": ch.ETHEREUM, "bsc": ch.BSC, "tron": ch.TRON}
HINT_WORDS = {
    "ETH": ch.ETHEREUM,
    "ETHEREUM": ch.ETHEREUM,
    "ERC20": ch.ETHEREUM,
    "BSC": ch.BSC,
    "BNB": ch.BSC,
    "BEP20": ch.BSC,
    "BASE": ch.BASE,
    "ARB": "arbitrum",
    "ARBITRUM": "arbitrum",
    "POLYGON": "polygon",
    "MATIC": "polygon",
    "AVAX": "avalanche",
    "BLAST": "blast",
    "LINEA": "linea",
    "SONIC": "sonic",
    "ABSTRACT": "abstract",
    "UNICHAIN": "unichain",
    "BERACHAIN": "berachain",
}
WORD_HINT_RE = re.compile(r"(?<![$\w])(" + "|".join(HINT_WORDS) + r")(?!\w)")
TAG_HINT_RE = re.compile(r"#([A-Za-z][\w-]{1,20})")
ON_HINT_RE = re.compile(r"(?i)\b(?:on|chain|network)\s*[:\-]?\s+([A-Za-z][\w-]{1,20})\b")
GLOBE_HINT_RE = re.compile(r"🌐\s*([^@\n|]{2,30}?)\s*(?:@|\||\n|$)")


def clean(text: str) -> str:
    """Text without zero-width/layout characters (they hide inside pasted addresses)."""
    return INVISIBLE.sub("", text)


def chain_of(slug: str | None) -> str | None:
    """Canonical chain for a link or word slug (``sol`` → solana, ``eth`` → ethereum…), else None."""
    if not slug:
        return None
    s = slug.strip().lower()
    c = LINK_CHAINS.get(s) or ch.normalize_chain(s)
    return c if c in ch.EVM_CHAINS or c in (ch.SOLANA, ch.TRON, ch.TON) else None


@dataclass(frozen=True)
class Found:
    """One address: ``kind`` is ``token``, ``pool`` or ``either`` (pair-or-token link)."""

    address: str
    kind: str
    chain: str | None  # known from the address shape or its link


@dataclass
class Scan:
    """Everything found in one message."""

    tokens: list[Found] = field(default_factory=list)
    pools: list[Found] = field(default_factory=list)
    either: list[Found] = field(default_factory=list)
    chain_hints: list[str] = field(default_factory=list)  # EVM chains hinted, in order of appearance
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (candidate, reason)
    tx_signatures: int = 0

    def add(self, f: Found) -> None:
        bucket = {"token": self.tokens, "pool": self.pools, "either": self.either}[f.kind]
        if all(x.address != f.address for x in bucket):
            bucket.append(f)

    def hint(self, chain: str | None) -> None:
        if chain in ch.EVM_CHAINS and chain not in self.chain_hints:
            self.chain_hints.append(chain)

    @property
    def has_address(self) -> bool:
        return bool(self.tokens or self.either)


def classify_run(run: str) -> tuple[str, str | None]:
    """A 32–90 character alphanumeric run → (``solana``/``tron``/``tx``/``ignore``/``invalid``, reason)."""
    n = len(run)
    if HEX_RE.match(run) and n in (40, 64):
        return "ignore", None
    if 64 <= n <= 90:
        return ("tx", None) if B58_RE.match(run) else ("ignore", None)
    if n > 44:
        return "ignore", None
    has_digit = any(c.isdigit() for c in run)
    has_upper = any(c.isupper() for c in run)
    has_lower = any(c.islower() for c in run)
    if not (has_digit or (has_upper and has_lower)):
        return "ignore", None  # a long word, not an address
    if ch.is_tron_address(run):
        return "tron", None
    if not has_upper:
        return "invalid", "lower-cased Solana address (base58 is case-sensitive; not repaired)"
    if not has_lower:
        return "invalid", "upper-cased Solana address (base58 is case-sensitive; not repaired)"
    if not B58_RE.match(run):
        return "invalid", "invalid Solana address (not base58: contains 0, O, I or l)"
    raw = ch.b58decode(run)
    if raw is None or len(raw) != 32:
        return "invalid", f"invalid Solana address (base58 of {0 if raw is None else len(raw)} bytes, not 32)"
    return "solana", None


def _address_found(addr: str, kind: str, chain: str | None) -> Found | None:
    """A link's address segment → Found (None when it is no address)."""
    addr = addr.strip()
    if ch.is_evm_address(addr):
        if chain in (ch.SOLANA, ch.TRON, ch.TON):
            return None  # an EVM-shaped segment in a non-EVM chain's link: not this chain's address
        return Found(addr.lower(), kind, chain if chain in ch.EVM_CHAINS else None)
    if chain in ch.EVM_CHAINS:
        return None
    what, _ = classify_run(addr) if 32 <= len(addr) <= 90 and addr.isalnum() else ("ignore", None)
    if what == "solana":
        return Found(addr, kind, ch.SOLANA)
    if what == "tron":
        return Found(addr, kind, ch.TRON)
    return None


@dataclass
class _Link:
    """One URL taken apart, and the scan its addresses go to."""

    url: str
    host: str
    segs: list[str]
    query: dict[str, list[str]]
    scan: Scan

    def seg_after(self, *names: str) -> str | None:
        """The path segment right after the first segment named one of ``names``."""
        for i, s in enumerate(self.segs[:-1]):
            if s.lower() in names:
                return self.segs[i + 1]
        return None

    def hint(self, chain: str | None) -> str | None:
        self.scan.hint(chain)
        return chain

    def add(self, addr: str | None, kind: str, chain: str | None) -> None:
        """Record a valid address; an invalid Solana/Tron-like run is recorded as invalid, with why."""
        if not addr:
            return
        f = _address_found(addr, kind, chain)
        if f is None:
            what, why = classify_run(addr) if addr.isalnum() and 32 <= len(addr) <= 44 else ("ignore", None)
            if what == "invalid":
                assert why is not None  # classify_run always gives "invalid" a reason
                self.scan.invalid.append((addr, why))
            return
        self.scan.add(f)


def _dexscreener(k: _Link) -> None:
    k.add(k.segs[1], "either", k.hint(chain_of(k.segs[0])))


def _geckoterminal(k: _Link) -> None:
    c = k.hint(chain_of(k.segs[0]))
    kind = {"pools": "pool", "tokens": "token"}.get(k.segs[1].lower())
    if kind:
        k.add(k.segs[2], kind, c)


def _birdeye(k: _Link) -> None:
    c = chain_of(k.query["chain"][0] if k.query.get("chain") else None) or (
        chain_of(k.segs[0]) if len(k.segs) >= 3 else None
    )
    k.hint(c)
    k.add(k.seg_after("token"), "token", c)
    k.add(k.seg_after("pair"), "pool", c)


def _gmgn(k: _Link) -> None:
    c = k.hint(chain_of(k.segs[0]) if k.segs else None)
    tok = k.seg_after("token")
    k.add(tok.rsplit("_", 1)[-1] if tok else None, "token", c)


def _photon(k: _Link) -> None:
    c = k.hint(PHOTON_CHAINS.get(k.host.split(".")[0].removeprefix("photon-"), ch.SOLANA))
    lp = k.seg_after("lp")
    if lp:
        k.add(lp, "either", c)
    elif k.segs:
        k.add(k.segs[-1], "token", c)


def _pumpfun(k: _Link) -> None:
    k.add(k.seg_after("coin") or (k.segs[-1] if k.segs else None), "token", ch.SOLANA)


def _explorer(k: _Link) -> None:
    c = k.hint(EXPLORERS[k.host])
    if k.segs and k.segs[0].lower() == "tx":
        k.scan.tx_signatures += 1
    else:
        k.add(k.seg_after("token", "address"), "token", c)


def _any_link(k: _Link) -> None:
    """Other links (buy bots, charts): only valid addresses, never a reject."""
    for m in EVM_RE.finditer(k.url):
        if len(m.group()) == 42:
            k.scan.add(Found(m.group().lower(), "token", None))
    for m in RUN_RE.finditer(k.url):
        what, _ = classify_run(m.group())
        if what in ("solana", "tron"):
            k.scan.add(Found(m.group(), "token", what))


_SITES: tuple[tuple[Callable[[_Link], bool], Callable[[_Link], None]], ...] = (
    (lambda k: k.host.endswith("dexscreener.com") and len(k.segs) >= 2, _dexscreener),
    (lambda k: k.host.endswith("geckoterminal.com") and len(k.segs) >= 3, _geckoterminal),
    (lambda k: k.host.endswith("birdeye.so"), _birdeye),
    (lambda k: k.host.endswith("gmgn.ai"), _gmgn),
    (lambda k: k.host.endswith("tinyastro.io") and k.host.startswith("photon"), _photon),
    (lambda k: k.host == "pump.fun" or k.host.endswith(".pump.fun"), _pumpfun),
    (lambda k: k.host in EXPLORERS, _explorer),
)
"""Known sites, in order: the first whose test matches reads the link; else :func:`_any_link`."""


def parse_link(url: str, scan: Scan) -> None:
    """Record what one URL names into ``scan``."""
    u = url.strip().rstrip(".,;:!?)")
    if not re.match(r"(?i)https?://", u):
        u = "https://" + u
    try:
        parts = urlsplit(u)
    except ValueError:
        return
    host = (parts.hostname or "").lower().removeprefix("www.")
    link = _Link(u, host, [s for s in parts.path.split("/") if s], parse_qs(parts.query), scan)
    read = next((f for test, f in _SITES if test(link)), _any_link)
    read(link)


def chain_hints_in(text: str) -> list[str]:
    """EVM chains hinted by words: ``#bsc``, ``on base``, ``chain: eth``, ``🌐 Base @``, ``ETH``."""
    out: list[str] = []
    for rx in (GLOBE_HINT_RE, TAG_HINT_RE, ON_HINT_RE):
        for m in rx.finditer(text):
            c = chain_of(m.group(1))
            if c in ch.EVM_CHAINS and c not in out:
                out.append(c)
    for m in WORD_HINT_RE.finditer(text):
        c = HINT_WORDS[m.group(1)]
        if c not in out:
            out.append(c)
    return out


def _scan_text(piece: str, scan: Scan) -> None:
    """Bare addresses in text without links: EVM hex (42 chars, else a tx hash), Solana/Tron runs,
    transaction signatures (counted), and invalid address-like runs (recorded once, with why)."""
    for m in EVM_RE.finditer(piece):
        if len(m.group()) == 42:
            scan.add(Found(m.group().lower(), "token", None))
        else:
            scan.tx_signatures += 1
    for m in RUN_RE.finditer(piece):
        run = m.group()
        if run.lower().startswith("0x") and HEX_RE.match(run[2:]):
            continue
        what, why = classify_run(run)
        if what in ("solana", "tron"):
            scan.add(Found(run, "token", what))
        elif what == "tx":
            scan.tx_signatures += 1
        elif what == "invalid" and all(c != run for c, _ in scan.invalid):
            assert why is not None  # classify_run always gives "invalid" a reason
            scan.invalid.append((run, why))


def scan_message(text: str, links: list[str], code: list[str] | None = None) -> Scan:
    """Addresses, pools and chain hints of one message: ``text`` is its plain text (code runs
    separated by newlines), ``links`` the hrefs of its text links, ``code`` its code/pre runs."""
    scan = Scan()
    text = clean(text)
    if not links and not code and not LONG_RUN_RE.search(text):
        return scan  # fast path: every address, link address and signature is a 32+ alphanumeric run
    for href in links:
        parse_link(clean(href), scan)
    for m in URL_RE.finditer(text):
        parse_link(m.group(), scan)
    bare = URL_RE.sub(" ", text)
    for piece in [bare, *(clean(c) for c in code or [])]:
        _scan_text(piece, scan)
    for c in chain_hints_in(bare):
        scan.hint(c)
    # an address named both as a token and by a pair-or-token link is a token
    tokens = {f.address for f in scan.tokens}
    scan.either = [f for f in scan.either if f.address not in tokens]
    scan.pools = [f for f in scan.pools if f.address not in tokens]
    return scan
