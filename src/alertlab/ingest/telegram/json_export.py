"""Telegram Desktop JSON exports, streamed with ijson (bounded memory for exports of any size).

Shapes (Telegram Desktop's JSON serializer): a single chat ``{name, type, id, messages: [...]}``
or a whole account ``{..., chats: {list: [chat, ...]}, left_chats: {list: [...]}}``. A message
has ``id``, ``type`` (``message``/``service``), ``date`` (local time, ignored),
``date_unixtime`` (epoch seconds as a string: the time used), ``from``/``from_id`` (``user…``,
``channel…``, ``chat…``; ``from`` may be null), ``author`` (channel signature),
``forwarded_from`` (name only; ``forwarded_from_id`` in newer versions), ``reply_to_message_id``,
``via_bot``, ``edited``, ``text`` (a string or a list of strings and ``{type, text}`` runs) and
``text_entities`` (always a list of ``{type, text[, href]}``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import ijson

from alertlab.ingest.telegram.model import Chat, Message

CODE_TYPES = {"code", "pre"}
LINK_TYPES = {"link", "text_link", "url", "text_url"}
CHAT_PREFIXES = ("", "chats.list.item", "left_chats.list.item")


def is_json_export(path: Path) -> bool:
    """Whether a .json file starts like a Telegram export (a ``messages`` or ``chats`` key at the top)."""
    try:
        with open(path, "rb") as fh:
            for prefix, event, value in ijson.parse(fh):
                if prefix == "" and event == "map_key" and value in ("messages", "chats", "left_chats"):
                    return True
                if prefix == "" and event == "end_map":
                    return False
    except (ijson.JSONError, OSError, UnicodeDecodeError):
        return False
    return False


def _runs(msg: dict) -> list[dict]:
    ents = msg.get("text_entities")
    if isinstance(ents, list) and ents:
        return [e for e in ents if isinstance(e, dict)]
    t = msg.get("text")
    if isinstance(t, str):
        return [{"type": "plain", "text": t}]
    if isinstance(t, list):
        return [e if isinstance(e, dict) else {"type": "plain", "text": str(e)} for e in t]
    return []


def text_parts(runs: list[dict]) -> tuple[str, list[str], list[str]]:
    """(plain text with code/link runs on their own lines, code runs, hrefs)."""
    out, code, links = [], [], []
    for r in runs:
        typ, txt = str(r.get("type", "plain")), str(r.get("text", "") or "")
        if typ in CODE_TYPES:
            code.append(txt)
            out.append(f"\n{txt}\n")
        elif typ in LINK_TYPES:
            if r.get("href"):
                links.append(str(r["href"]))
            out.append(f"\n{txt}\n")
        else:
            out.append(txt)
    return "".join(out), code, links


def _str(v) -> str | None:
    return None if v is None or v == "" else str(v)


def to_message(m: dict) -> Message:
    """One exported message dict → :class:`Message`."""
    try:
        ts = int(str(m.get("date_unixtime", "")).strip())
    except ValueError:
        ts = None
    text, code, links = text_parts(_runs(m))
    reply = m.get("reply_to_message_id")
    try:
        reply = int(reply) if reply is not None and m.get("reply_to_peer_id") is None else None
    except (TypeError, ValueError):
        reply = None
    raw_id = m.get("id")
    try:
        mid = int(raw_id) if raw_id is not None else -1
    except (TypeError, ValueError):
        mid = -1
    return Message(
        id=mid,
        service=m.get("type") == "service",
        ts=ts,
        date_raw=_str(m.get("date_unixtime")) or _str(m.get("date")),
        sender=_str(m.get("from"))
        or (
            "Deleted Account" if "from" in m and str(m.get("from_id", "")).startswith("user") else None
        ),  # as the HTML export names them
        sender_id=_str(m.get("from_id")),
        author=_str(m.get("author")),
        forwarded_from=_str(m.get("forwarded_from")),
        forwarded_from_id=_str(m.get("forwarded_from_id")),
        is_forward="forwarded_from" in m,
        reply_to=reply,
        via_bot=_str(m.get("via_bot")),
        edited="edited" in m,
        text=text,
        code=code,
        links=links,
    )


def read_json_export(
    path: Path, on_bytes: Callable[[int], None] | None = None
) -> Iterator[tuple[Chat, Message]]:
    """Stream ``(chat, message)`` pairs of a single-chat or account export, in file order.

    Only one message object is materialised at a time; chat fields written before ``messages``
    (as Telegram Desktop does) are known when its messages arrive. ``on_bytes(n)`` reports progress.
    """
    with open(path, "rb") as fh:
        parser = ijson.parse(fh, use_float=True)
        meta: dict[str, dict] = {}
        builder = None
        depth = 0
        last_pos = 0
        count = 0
        for prefix, event, value in parser:
            if builder is not None:
                builder.event(event, value)
                if event in ("start_map", "start_array"):
                    depth += 1
                elif event in ("end_map", "end_array"):
                    depth -= 1
                    if depth == 0:
                        chat_prefix = (
                            prefix[: -len(".messages.item")] if prefix.endswith(".messages.item") else ""
                        )
                        info = meta.get(chat_prefix, {})
                        cid = _str(info.get("id"))
                        chat = Chat(
                            key=cid or str(info.get("name")),
                            name=_str(info.get("name")),
                            type=_str(info.get("type")),
                            chat_id=cid,
                            file=str(path),
                        )
                        yield chat, to_message(builder.value)
                        builder = None
                        count += 1
                        if on_bytes is not None and count % 2000 == 0:
                            pos = fh.tell()
                            on_bytes(pos - last_pos)
                            last_pos = pos
                continue
            if event == "start_map" and (prefix == "messages.item" or prefix.endswith(".messages.item")):
                builder = ijson.ObjectBuilder()
                builder.event(event, value)
                depth = 1
                continue
            for cp in CHAT_PREFIXES:
                if event == "start_map" and prefix == cp:
                    meta[cp] = {}
                elif event in ("string", "number") and prefix in (
                    f"{cp}.name" if cp else "name",
                    f"{cp}.type" if cp else "type",
                    f"{cp}.id" if cp else "id",
                ):
                    meta.setdefault(cp, {})[prefix.rsplit(".", 1)[-1]] = value
        if on_bytes is not None:
            on_bytes(max(0, path.stat().st_size - last_pos))
