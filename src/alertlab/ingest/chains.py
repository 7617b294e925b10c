"""Chain spellings, address validation and token normalisation.

Rules (used by alert and candle ingestion alike):

* Chains are canonicalised case-insensitively after trimming: ``Solana/SOL/solana`` → ``solana``,
  ``BSC/BNB/BEP20/Binance Smart Chain`` → ``bsc``, ``eth/ethereum/ERC20/mainnet`` → ``ethereum``,
  ``base`` → ``base``, ``Tron/TRON/TRX/TRC20`` → ``tron``, ``TON/toncoin`` → ``ton`` (more EVM
  spellings in :data:`CHAIN_ALIASES`). Any other non-empty spelling is kept trimmed and lower-cased
  (with inner whitespace collapsed to ``-``); it must then match ``[a-z0-9][a-z0-9_-]*`` (≤ 32
  chars, it names a directory of the candle store) or the row is rejected.
* Addresses are validated for their chain: Solana = base58 that decodes to exactly 32 bytes (kept
  case-sensitive); EVM chains = ``0x`` + 40 hex digits (lower-cased; EIP-55 checksums are not
  verified); Tron = base58check, 25 bytes starting with 0x41 with a valid double-SHA256 checksum;
  TON = raw ``<workchain>:<64 hex>`` or the 48-character user-friendly base64 form with a valid
  CRC16. Unknown chains accept any printable address without whitespace (3–128 characters); a
  ``0x`` + 40-hex address on an unknown chain is lower-cased like an EVM one.
* An empty chain is inferred from the address: Solana base58 (32 bytes) → ``solana``; a valid Tron
  address → ``tron``; ``0x`` + 40 hex → EVM, which names no single chain, so the caller resolves it
  (alert ingestion asks the candle store, see :func:`infer_chain`).
* A wrong chain label is corrected when the address settles it (:func:`correct_chain`): a call
  labelled ``bsc``/``ethereum``/… whose address is not valid there but is a Solana mint (base58,
  32 bytes) or a Tron address is on that chain. Nothing else is guessed: an EVM address under a
  non-EVM label names no single chain, and an address valid nowhere stays invalid.
"""

from __future__ import annotations

import base64
import hashlib
import re

SOLANA, BSC, ETHEREUM, BASE, TRON, TON = "solana", "bsc", "ethereum", "base", "tron", "ton"
EVM = "evm"  # pseudo-chain returned by infer_chain for an EVM address whose chain is unknown

CHAIN_ALIASES: dict[str, str] = {
    "solana": SOLANA,
    "sol": SOLANA,
    "spl": SOLANA,
    "bsc": BSC,
    "bnb": BSC,
    "bep20": BSC,
    "bep-20": BSC,
    "binance": BSC,
    "binance smart chain": BSC,
    "bnb chain": BSC,
    "bnb smart chain": BSC,
    "binance-smart-chain": BSC,
    "eth": ETHEREUM,
    "ethereum": ETHEREUM,
    "erc20": ETHEREUM,
    "erc-20": ETHEREUM,
    "mainnet": ETHEREUM,
    "base": BASE,
    "tron": TRON,
    "trx": TRON,
    "trc20": TRON,
    "trc-20": TRON,
    "ton": TON,
    "toncoin": TON,
    "arbitrum": "arbitrum",
    "arb": "arbitrum",
    "arbitrum one": "arbitrum",
    "polygon": "polygon",
    "matic": "polygon",
    "pol": "polygon",
    "avalanche": "avalanche",
    "avax": "avalanche",
    "optimism": "optimism",
    "op": "optimism",
    "blast": "blast",
    "linea": "linea",
    "zksync": "zksync",
    "scroll": "scroll",
    "mantle": "mantle",
    "fantom": "fantom",
    "ftm": "fantom",
    "sonic": "sonic",
    "cronos": "cronos",
    "abstract": "abstract",
    "berachain": "berachain",
    "unichain": "unichain",
}
EVM_CHAINS = frozenset(
    {
        ETHEREUM,
        BSC,
        BASE,
        "arbitrum",
        "polygon",
        "avalanche",
        "optimism",
        "blast",
        "linea",
        "zksync",
        "scroll",
        "mantle",
        "fantom",
        "sonic",
        "cronos",
        "abstract",
        "berachain",
        "unichain",
    }
)

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_B58_RE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]+$")
_EVM_RE = re.compile(r"^0[xX][0-9a-fA-F]{40}$")
_TON_RAW_RE = re.compile(r"^-?\d{1,3}:[0-9a-fA-F]{64}$")
_TON_B64_RE = re.compile(r"^[A-Za-z0-9_\-+/]{48}$")
_GENERIC_RE = re.compile(r"^[!-~]{3,128}$")  # printable ASCII, no whitespace
_CHAIN_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def normalize_chain(value: object) -> str | None:
    """Canonical chain name for a spelling; ``None`` for empty/missing values."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    s = " ".join(str(value).split()).lower()
    if not s:
        return None
    return CHAIN_ALIASES.get(s, s.replace(" ", "-"))


def is_valid_chain_name(chain: str) -> bool:
    """A canonical chain name usable as a directory: ``[a-z0-9][a-z0-9_-]*``, at most 32 chars."""
    return bool(_CHAIN_NAME_RE.match(chain))


def b58decode(s: str) -> bytes | None:
    """Base58 (Bitcoin alphabet) decoding; ``None`` when ``s`` is not base58."""
    if not s or not _B58_RE.match(s):
        return None
    n = 0
    for ch in s:
        n = n * 58 + _B58_INDEX[ch]
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(s) - len(s.lstrip("1"))) + body


def is_solana_address(s: str) -> bool:
    """Base58, 32–44 characters, decoding to exactly 32 bytes (an ed25519 public key / PDA)."""
    if not 32 <= len(s) <= 44:
        return False
    raw = b58decode(s)
    return raw is not None and len(raw) == 32


def is_evm_address(s: str) -> bool:
    """``0x`` followed by 40 hex digits (any case)."""
    return bool(_EVM_RE.match(s))


def is_tron_address(s: str) -> bool:
    """Tron base58check address: 34 chars, 25 bytes, prefix 0x41, double-SHA256 checksum."""
    if len(s) != 34 or not s.startswith("T"):
        return False
    raw = b58decode(s)
    if raw is None or len(raw) != 25 or raw[0] != 0x41:
        return False
    return hashlib.sha256(hashlib.sha256(raw[:21]).digest()).digest()[:4] == raw[21:]


def _crc16_xmodem(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def is_ton_address(s: str) -> bool:
    """TON raw form ``wc:<64 hex>`` or user-friendly 48-char base64(url) with a valid CRC16."""
    if _TON_RAW_RE.match(s):
        return True
    if not _TON_B64_RE.match(s):
        return False
    try:
        raw = base64.b64decode(s.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError:
        return False
    return len(raw) == 36 and _crc16_xmodem(raw[:34]) == int.from_bytes(raw[34:], "big")


def normalize_token(chain: str, token: str) -> str:
    """Token as stored: trimmed; EVM-style (``0x`` + 40 hex) addresses lower-cased, others as-is."""
    t = token.strip()
    if chain in EVM_CHAINS or (chain not in (SOLANA, TRON, TON) and is_evm_address(t)):
        return t.lower()
    return t


def validate_address(chain: str, token: str) -> str | None:
    """``None`` when ``token`` (already normalised) is a valid address on ``chain``, else a reason."""
    if not token:
        return "empty token address"
    if chain == SOLANA:
        ok = is_solana_address(token)
    elif chain in EVM_CHAINS:
        ok = is_evm_address(token)
    elif chain == TRON:
        ok = is_tron_address(token)
    elif chain == TON:
        ok = is_ton_address(token)
    else:
        ok = bool(_GENERIC_RE.match(token))
    if ok:
        return None
    kind = " (EVM: 0x + 40 hex)" if chain in EVM_CHAINS else ""
    other = infer_chain(token)
    hint = f"; it looks like a{'n' if other == EVM else ''} {other} address" if other else ""
    return f"invalid {chain} address{kind}{hint}"


def correct_chain(chain: str, token: str) -> str | None:
    """The chain ``token`` must be on when it is invalid for the labelled ``chain`` but unambiguous.

    Returns ``solana`` or ``tron`` (the only chains an address alone proves), else ``None`` (the
    label stands, or the row is rejected by :func:`validate_address`).
    """
    t = token.strip()
    if validate_address(chain, normalize_token(chain, t)) is None:
        return None
    other = infer_chain(t)
    return other if other in (SOLANA, TRON) and other != chain else None


def infer_chain(token: str) -> str | None:
    """Chain implied by an address alone: ``solana``, ``tron``, :data:`EVM` (ambiguous) or ``None``."""
    t = token.strip()
    if is_evm_address(t):
        return EVM
    if is_tron_address(t):
        return TRON
    if is_solana_address(t):
        return SOLANA
    return None
