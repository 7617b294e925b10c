"""Telegram messages → alert rows, then the ordinary alert ingest (one source of truth for
normalisation, quarantine, dedup, stable ids and ``is_first_call``).

What becomes an alert (see also the README section "From Telegram"):

* A message naming one or more token addresses (:mod:`.addresses`) is a call: one alert per
  distinct (chat, message, token). ``ts`` = ``date_unixtime`` (HTML: the ``div.date`` title);
  edited messages keep their original date.
* Caller: the sender's name, ``caller_id`` = ``from_id``. Channel posts: the ``author``
  signature when present, else the channel name. Forwarded messages (``--forwarded``):
  ``original`` (default) = the original's name (``forwarded_from``), ``sender`` = whoever
  forwarded it, ``skip`` = not taken; ``forwarded`` is true and ``ts`` is the forward's time.
* Bots (:data:`.botreply.DEFAULT_BOTS` or ``--bots``, by sender name or ``via_bot``): a bot reply
  is never a call; it enriches the call it replies to (ticker, price, market cap, chain, the token
  behind a pair link). A bot reply to a message without an address that names a token makes that
  message a call of its human sender. A message a human sent *via* an inline bot is that human's
  call. A bot post that is not a reply (or replies to a message outside the export) is quarantined.
* Chains: Solana/Tron from the address; an EVM address takes the chain of its own link, else a
  bot reply's chain line, else the single chain the message hints (links, ``#bsc``, ``on base``,
  ``ETH``), else ``--evm-chain``, else it is quarantined (``evm address without chain hint``).
* A pair-or-token link (dexscreener, photon ``/lp/``) is the pool hint when the message or a bot
  reply names the token; alone it is quarantined (a pump.fun mint, ending in ``pump``, is a token).
  The pool hint is stored when the call names exactly one token.
* Not taken, counted by reason: service messages, messages without an address, bot replies
  (enrichment), bot messages without a token, skipped forwards. Quarantined with file, message
  id and reason: invalid addresses (lower-cased mints…), unresolvable chains or callers,
  unparsable dates. Solana transaction signatures / EVM tx hashes are ignored (counted).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from alertlab.ingest import chains as ch
from alertlab.ingest.alerts import ingest_alert_table
from alertlab.ingest.quality import IngestReport, file_sha256
from alertlab.ingest.telegram.addresses import Found, Scan, scan_message
from alertlab.ingest.telegram.botreply import BotInfo, bot_set, is_bot, parse_bot_reply
from alertlab.ingest.telegram.html_export import file_order, is_html_export, read_html_file
from alertlab.ingest.telegram.json_export import is_json_export, read_json_export
from alertlab.ingest.telegram.model import Chat, Message
from alertlab.store import Home
from alertlab.util.progress import bar

FORWARDED_MODES = ("original", "sender", "skip")
RECENT_MESSAGES = 5_000  # non-call messages remembered per chat for bot replies that quote them (bounded)
MIN_BOT_MCAP = 1000.0  # a parsed market cap below $1000 is dropped (the alert rule reads < 1000 as millions)

SKIP_SERVICE = "service message"
SKIP_NO_ADDRESS = "no address"
SKIP_BOT_REPLY = "bot reply (enrichment)"
SKIP_BOT_NO_TOKEN = "bot message without a token"
SKIP_FORWARD = "forwarded (skipped: --forwarded skip)"
R_EVM_NO_HINT = "evm address without chain hint"
R_EVM_SEVERAL = "evm address with several chain hints"
R_PAIR_ONLY = "only a pair-or-token link (dexscreener/photon): cannot tell the token"
R_BOT_POST = "bot post that is not a reply (caller unknown)"
R_BOT_ORPHAN = "bot reply to a message not in the export (caller unknown)"
R_NO_SENDER = "message without a sender name"
R_HIDDEN_FWD = "forwarded from a hidden account (caller unknown)"
R_DATE = "missing or unparsable message date"


@dataclass
class TelegramReport:
    """Outcome of one ``ingest telegram``: the alert ingest plus message accounting."""

    ingest: IngestReport
    files: list[str]
    ignored_files: list[str]
    chats: int
    messages: int
    call_messages: int
    skipped: dict[str, int]
    tx_signatures_ignored: int
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return asdict(self)


@dataclass
class _Call:
    msg: Message
    caller: str
    caller_id: str | None
    forwarded: bool
    scan: Scan
    infos: list[BotInfo]
    from_bot: bool = False  # a bot reply named the token of a message without an address


def collect_exports(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """(JSON exports, HTML pages in export order, ignored files) named by ``paths`` (folders walked)."""
    jsons: list[Path] = []
    htmls: list[Path] = []
    ignored: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"no such file or directory: {p}")
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            for f in found:
                r = f.resolve()
                if r in seen:
                    continue
                seen.add(r)
                if f.suffix.lower() == ".json":
                    (jsons if is_json_export(f) else ignored).append(r)
                elif is_html_export(f):
                    htmls.append(r)
        else:
            r = p.resolve()
            if r in seen:
                continue
            seen.add(r)
            if p.suffix.lower() == ".json":
                if not is_json_export(p):
                    raise ValueError(
                        f"{p}: not a Telegram Desktop JSON export (no 'messages' or 'chats' at the top)"
                    )
                jsons.append(r)
            elif p.suffix.lower() in (".html", ".htm"):
                htmls.append(r)
            else:
                raise ValueError(
                    f"{p}: unsupported file type (expected a Telegram export: result.json or messages*.html)"
                )
    htmls.sort(key=file_order)
    return jsons, htmls, [i for i in ignored if i.suffix.lower() == ".json"]


class _ChatCalls:
    """Call extraction over one chat's message stream (bot replies follow their calls)."""

    def __init__(
        self,
        chat: Chat,
        bots: frozenset[str],
        evm_chain: str | None,
        forwarded: str,
        skipped: Counter,
        rows: list[dict],
        rejects: list[dict],
        stats: Counter,
    ) -> None:
        self.chat, self.bots, self.evm_chain, self.forwarded = chat, bots, evm_chain, forwarded
        self.skipped, self.rows, self.rejects, self.stats = skipped, rows, rejects, stats
        self.calls: dict[int, _Call] = {}
        self.files: dict[int, str] = {}
        # non-call messages a later bot reply may turn into calls: (message, caller, caller_id, forwarded,
        # file, counted as "no address")
        self.recent: OrderedDict[int, tuple[Message, str | None, str | None, bool, str, bool]] = OrderedDict()
        self.channel = (chat.type or "").endswith("channel")

    # ---------------------------------------------------------------- messages
    def _reject(self, msg: Message, reason: str, file: str, extra: dict | None = None) -> None:
        raw = {"chat": self.chat.name, "chat_id": self.chat.chat_id, **msg.summary(), **(extra or {})}
        self.rejects.append(
            {
                "source_file": file,
                "source_row": msg.id,
                "reason": reason,
                "raw": json.dumps(raw, ensure_ascii=False, default=str),
            }
        )

    def _caller(self, msg: Message) -> tuple[str | None, str | None]:
        """The signature (``author``, only channel posts and anonymous admins have one), else the sender,
        else (channel posts) the channel name."""
        if msg.author:
            return msg.author, msg.sender_id
        if msg.sender:
            return msg.sender, msg.sender_id
        if self.channel or (msg.sender_id or "").startswith("channel"):
            return self.chat.name, msg.sender_id
        return None, msg.sender_id

    def feed(self, msg: Message, file: str) -> None:
        self.stats["messages"] += 1
        if msg.service:
            self.skipped[SKIP_SERVICE] += 1
            return
        sender_bot = is_bot(msg.sender, self.bots) and not msg.is_forward
        if sender_bot:
            self._bot_message(msg, file)
            return
        if msg.is_forward and self.forwarded == "skip":
            self.skipped[SKIP_FORWARD] += 1
            return
        scan = scan_message(msg.text, msg.links, msg.code)
        self.stats["tx_signatures"] += scan.tx_signatures
        who = self._who(msg, scan, file)
        if who is None:
            return
        caller, caller_id = who
        for cand, why in scan.invalid:
            self._reject(msg, why, file, {"candidate": cand})
        if not scan.has_address:
            self._remember(msg, caller, caller_id, file, scan)
            return
        if not caller:
            self._reject(
                msg, R_HIDDEN_FWD if msg.is_forward and self.forwarded == "original" else R_NO_SENDER, file
            )
            return
        if msg.ts is None:
            self._reject(msg, R_DATE, file)
            return
        infos = []
        if msg.via_bot and is_bot(msg.via_bot, self.bots):
            infos.append(parse_bot_reply(msg.text, msg.links, msg.code))
        kept = dataclasses.replace(msg, text=msg.text[:500], code=[], links=[])  # scanned already
        self.calls[msg.id] = _Call(kept, caller, caller_id, msg.is_forward, scan, infos)
        self.files[msg.id] = file

    def _who(self, msg: Message, scan: Scan, file: str) -> tuple[str | None, str | None] | None:
        """Caller and caller id of a message (``--forwarded original``: the forward's origin); None
        for a forwarded bot post, which is quarantined (with an address) or counted as skipped here."""
        if not (msg.is_forward and self.forwarded == "original"):
            return self._caller(msg)
        caller, caller_id = msg.forwarded_from, msg.forwarded_from_id
        if caller and is_bot(caller, self.bots):
            if scan.has_address:
                self._reject(msg, R_BOT_POST, file)
            else:
                self.skipped[SKIP_BOT_NO_TOKEN] += 1
            return None
        return caller, caller_id

    def _remember(
        self, msg: Message, caller: str | None, caller_id: str | None, file: str, scan: Scan
    ) -> None:
        """Keep a message without an address for a while: a later bot reply may name its token."""
        if not scan.invalid:
            self.skipped[SKIP_NO_ADDRESS] += 1
        light = dataclasses.replace(msg, text=msg.text[:80], code=[], links=[])  # bounded memory
        self.recent[msg.id] = (light, caller, caller_id, msg.is_forward, file, not scan.invalid)
        if len(self.recent) > RECENT_MESSAGES:
            self.recent.popitem(last=False)

    def _bot_message(self, msg: Message, file: str) -> None:
        info = parse_bot_reply(msg.text, msg.links, msg.code)
        target = msg.reply_to
        if target is not None and target in self.calls:
            self.calls[target].infos.append(info)
            self.skipped[SKIP_BOT_REPLY] += 1
        elif target is not None and target in self.recent and info.tokens:
            human, caller, caller_id, fwd, human_file, counted = self.recent.pop(target)
            if counted:  # it was counted as "no address": it is a call after all
                self.skipped[SKIP_NO_ADDRESS] -= 1
            if not caller or human.ts is None:
                self._reject(human, R_NO_SENDER if not caller else R_DATE, human_file)
                return
            self.calls[target] = _Call(human, caller, caller_id, fwd, Scan(), [info], from_bot=True)
            self.files[target] = human_file
            self.skipped[SKIP_BOT_REPLY] += 1
        elif info.tokens:
            self._reject(msg, R_BOT_ORPHAN if target is not None else R_BOT_POST, file)
        else:
            self.skipped[SKIP_BOT_REPLY if target is not None else SKIP_BOT_NO_TOKEN] += 1

    # ---------------------------------------------------------------- rows
    def finish(self) -> None:
        for mid in sorted(self.calls):
            self._emit(self.calls[mid], self.files[mid])
        self.calls.clear()
        self.recent.clear()

    def _emit(self, call: _Call, file: str) -> None:
        msg, scan = call.msg, call.scan
        assert msg.ts is not None  # messages without a date are rejected before they become calls
        bot_tokens = [f for info in call.infos for f in info.tokens]
        tokens: list[Found] = list(scan.tokens)
        pools: list[Found] = list(scan.pools)
        if tokens:
            pools += scan.either
        elif bot_tokens:
            seen: set[str] = set()
            tokens = []
            for f in bot_tokens:  # first mention of each address, in order
                if f.address not in seen:
                    seen.add(f.address)
                    tokens.append(f)
            pools += scan.either
        else:
            tokens = [f for f in scan.either if f.chain == ch.SOLANA and f.address.endswith("pump")]
            rest = [f for f in scan.either if f not in tokens]
            if not tokens:
                self._reject(msg, R_PAIR_ONLY, file, {"links": [f.address for f in rest]})
                return
            pools += rest
        pools += [f for info in call.infos for f in info.pools]
        pool_ids = list(
            dict.fromkeys(f.address for f in pools if f.address not in {t.address for t in tokens})
        )
        self.stats["call_messages"] += 1
        for f in tokens:
            infos = [
                i
                for i in call.infos
                if any(t.address == f.address for t in i.tokens) or (not i.tokens and len(tokens) == 1)
            ]
            chain = f.chain
            if chain is None:  # an EVM address without its own link
                bot_chain = next((i.chain for i in infos if i.chain in ch.EVM_CHAINS), None)
                if bot_chain:
                    chain = bot_chain
                elif len(scan.chain_hints) == 1:
                    chain = scan.chain_hints[0]
                elif len(scan.chain_hints) > 1:
                    self._reject(msg, R_EVM_SEVERAL, file, {"token": f.address, "hints": scan.chain_hints})
                    continue
                elif self.evm_chain:
                    chain = self.evm_chain
                else:
                    self._reject(msg, R_EVM_NO_HINT, file, {"token": f.address})
                    continue
            mcap = next((i.mcap for i in infos if i.mcap and i.mcap >= MIN_BOT_MCAP), None)
            self.rows.append(
                {
                    "caller": call.caller,
                    "caller_id": call.caller_id,
                    "chain": chain,
                    "token": f.address,
                    "ts": int(msg.ts) * 1000,
                    "ticker": next((i.ticker for i in infos if i.ticker), None),
                    "price_at_alert": next((i.price for i in infos if i.price), None),
                    "mcap_at_alert": mcap,
                    "chat_id": self.chat.chat_id,
                    "message_id": str(msg.id),
                    "source": f"telegram:{self.chat.name}" if self.chat.name else "telegram",
                    "forwarded": "true" if call.forwarded else "false",
                    "pool": pool_ids[0] if len(tokens) == 1 and pool_ids else None,
                    "source_file": file,
                    "source_row": msg.id,
                    "raw": json.dumps(
                        {"chat": self.chat.name, "chat_id": self.chat.chat_id, **msg.summary()},
                        ensure_ascii=False,
                        default=str,
                    ),
                }
            )


def _stream(jsons: list[Path], htmls: list[Path], on_bytes) -> Iterator[tuple[str, Chat, Message, str]]:
    """(chat stream key, chat, message, file): a JSON chat, or the pages of one HTML export folder."""
    for f in jsons:
        for chat, msg in read_json_export(f, on_bytes):
            yield f"{f}|{chat.key}", chat, msg, str(f)
    for f in htmls:
        for chat, msg in read_html_file(f, on_bytes):
            yield f"{f.parent}|{chat.key}", chat, msg, str(f)


def extract_calls(
    paths: Sequence[str | Path],
    *,
    bots: str | None = None,
    evm_chain: str | None = None,
    forwarded: str = "original",
    progress: bool = False,
):
    """Read the exports → (alert rows, reject rows, skipped counts, stats, files, ignored files)."""
    if forwarded not in FORWARDED_MODES:
        raise ValueError(f"--forwarded must be one of {', '.join(FORWARDED_MODES)}, not {forwarded!r}")
    if evm_chain is not None:
        c = ch.normalize_chain(evm_chain)
        if c not in ch.EVM_CHAINS:
            raise ValueError(
                f"--evm-chain {evm_chain!r} is not an EVM chain (one of {', '.join(sorted(ch.EVM_CHAINS))})"
            )
        evm_chain = c
    botset = bot_set(bots)
    jsons, htmls, ignored = collect_exports(paths)
    if not jsons and not htmls:
        raise ValueError(
            f"no Telegram exports (result.json with messages/chats, messages*.html) found in "
            f"{[str(p) for p in paths]}"
        )
    rows: list[dict] = []
    rejects: list[dict] = []
    skipped: Counter = Counter()
    stats: Counter = Counter()
    chats: set[str] = set()
    total = sum(f.stat().st_size for f in [*jsons, *htmls])
    with bar("read telegram exports (bytes)", total=total, enabled=progress) as pb:
        current: _ChatCalls | None = None
        current_key = None
        for key, chat, msg, file in _stream(jsons, htmls, pb.advance):
            if current is None or current_key != key:
                if current is not None:
                    current.finish()
                current, current_key = (
                    _ChatCalls(chat, botset, evm_chain, forwarded, skipped, rows, rejects, stats),
                    key,
                )
                chats.add(chat.chat_id or chat.name or key)  # the same chat in several exports counts once
            current.feed(msg, file)
        if current is not None:
            current.finish()
    return (
        rows,
        rejects,
        skipped,
        stats,
        [str(f) for f in [*jsons, *htmls]],
        [str(f) for f in ignored],
        len(chats),
    )


ROW_COLUMNS = [
    "caller",
    "caller_id",
    "chain",
    "token",
    "ts",
    "ticker",
    "price_at_alert",
    "mcap_at_alert",
    "chat_id",
    "message_id",
    "source",
    "forwarded",
    "pool",
    "source_file",
    "source_row",
    "raw",
]


def ingest_telegram(
    home: Home,
    paths: Sequence[str | Path],
    *,
    bots: str | None = None,
    evm_chain: str | None = None,
    forwarded: str = "original",
    progress: bool = False,
) -> TelegramReport:
    """Ingest Telegram Desktop exports (JSON or HTML; files or folders) as alerts (module docstring)."""
    rows, rejects, skipped, stats, files, ignored, n_chats = extract_calls(
        paths, bots=bots, evm_chain=evm_chain, forwarded=forwarded, progress=progress
    )
    table = pd.DataFrame(rows, columns=ROW_COLUMNS).astype(object)
    for c in ("ts", "price_at_alert", "mcap_at_alert"):
        table[c] = table[c].astype(str).where(table[c].notna(), None)
    rej = pd.DataFrame(rejects, columns=["source_file", "source_row", "reason", "raw"])
    per_file = Counter(r["source_file"] for r in rows)
    details: dict[str, dict[str, dict[str, Any]]] = {
        f: {"telegram": {"alert_rows": per_file.get(f, 0)}} for f in files
    }
    details[files[0]]["telegram"].update(
        skipped={k: v for k, v in skipped.items() if v},
        messages=stats["messages"],
        options={"bots": bots, "evm_chain": evm_chain, "forwarded": forwarded},
    )
    hashes = {f: file_sha256(Path(f)) for f in files}
    rep = ingest_alert_table(
        home,
        table,
        files[0],
        rejects=rej,
        files=files,
        file_hashes=hashes,
        file_details=details,
        kind="telegram",
    )
    return TelegramReport(
        ingest=rep,
        files=files,
        ignored_files=ignored,
        chats=n_chats,
        messages=stats["messages"],
        call_messages=stats["call_messages"],
        skipped={k: v for k, v in sorted(skipped.items(), key=lambda kv: -kv[1]) if v},
        tx_signatures_ignored=stats["tx_signatures"],
        options={"bots": sorted(bot_set(bots)), "evm_chain": evm_chain, "forwarded": forwarded},
    )
