"""Telegram Desktop HTML exports (``messages.html``, ``messages2.html``, …), parsed with selectolax.

Shapes (Telegram Desktop's HTML writer): each message is ``div.message`` with ``id="messageN"``
(``div.message.service`` for service messages and date separators, negative ids); its
``div.body`` holds ``div.pull_right.date.details`` whose ``title`` is the time
``dd.mm.yyyy HH:MM:SS UTC+hh:mm``, ``div.from_name`` (``Name`` or ``Name via @bot``; a *joined*
message omits it: the previous sender is carried forward), ``div.forwarded.body`` (the
original's ``div.from_name`` and the forwarded text; a joined forward omits the name),
``div.reply_to`` with a ``GoToMessage(N)`` link, ``div.text`` (``<code>``, ``<pre>``, ``<a href>``,
``<br>``) and ``div.signature.details`` (a channel post's author). The chat name is the page
header. HTML exports carry no sender or chat ids.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from alertlab.ingest.telegram.model import Chat, Message

DATE_RE = re.compile(r"(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2}):(\d{2})(?: UTC([+-])(\d{2}):?(\d{2}))?")
GOTO_RE = re.compile(r"GoToMessage\((\d+)\)")
FILE_RE = re.compile(r"^messages(\d*)\.html$", re.I)


def is_html_export(path: Path) -> bool:
    """``messages.html`` / ``messagesN.html``."""
    return bool(FILE_RE.match(path.name))


def file_order(path: Path) -> tuple[str, int]:
    """Sort key: folder, then page number (messages.html = 1, messages2.html = 2, …, messages10.html = 10)."""
    m = FILE_RE.match(path.name)
    return str(path.parent), int(m.group(1) or 1) if m else 0


def parse_date(title: str | None) -> int | None:
    """``dd.mm.yyyy HH:MM:SS UTC+hh:mm`` → epoch seconds (no offset = UTC); None if unparsable."""
    m = DATE_RE.search(title or "")
    if not m:
        return None
    d, mo, y, h, mi, s = (int(x) for x in m.groups()[:6])
    off = 0
    if m.group(7):
        off = (int(m.group(8)) * 60 + int(m.group(9))) * (1 if m.group(7) == "+" else -1)
    try:
        t = dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.timezone(dt.timedelta(minutes=off)))
    except ValueError:
        return None
    return int(t.timestamp())


def _children(node, cls: str) -> list:
    """Direct ``div`` children having all the classes in ``cls`` (space-separated)."""
    want = set(cls.split())
    out = []
    child = node.child
    while child is not None:
        if child.tag == "div" and want <= set((child.attributes.get("class") or "").split()):
            out.append(child)
        child = child.next
    return out


def _first(node, cls: str):
    found = _children(node, cls) if node is not None else []
    return found[0] if found else None


def _text_parts(node) -> tuple[str, list[str], list[str]]:
    if node is None:
        return "", [], []
    out, code, links = [], [], []
    for c in node.iter(include_text=True):
        tag = c.tag
        if tag == "-text":
            out.append(c.text(deep=False))
        elif tag == "br":
            out.append("\n")
        elif tag in ("code", "pre"):
            txt = c.text(deep=True)
            code.append(txt)
            out.append(f"\n{txt}\n")
        elif tag == "a":
            href = c.attributes.get("href") or ""
            if (
                href
                and not href.startswith("#")
                and not (c.attributes.get("onclick") or "").startswith("return Show")
            ):
                label = c.text(deep=True)
                if label.strip() != href.strip():  # a text link; a bare URL is read from the text
                    links.append(href)
                out.append(f"\n{label}\n")
            else:
                out.append(c.text(deep=True))
        else:
            out.append(c.text(deep=True).replace("\u2028", "\n"))
    return "".join(out), code, links


def _name_via(node) -> tuple[str | None, str | None]:
    if node is None:
        return None, None
    raw = " ".join(node.text(deep=False).split())
    name, _, via = raw.partition(" via @")
    return (name or None), ("@" + via if via else None)


def read_html_file(
    path: Path, on_bytes: Callable[[int], None] | None = None
) -> Iterator[tuple[Chat, Message]]:
    """``(chat, message)`` pairs of one HTML page in order (senders of joined messages carried)."""
    html = path.read_text(encoding="utf-8", errors="replace")
    tree = LexborHTMLParser(html)
    head = tree.css_first("div.page_header div.text")
    name = " ".join(head.text(deep=True).split()) if head is not None else path.parent.name
    chat = Chat(key=name, name=name, type=None, chat_id=None, file=str(path))
    prev_sender, prev_via, prev_fwd = None, None, None
    for node in tree.css("div.message"):
        classes = (node.attributes.get("class") or "").split()
        nid = node.attributes.get("id") or ""
        try:
            mid = int(nid.removeprefix("message"))
        except ValueError:
            continue
        body = _first(node, "body")
        if "service" in classes:
            prev_sender, prev_via, prev_fwd = None, None, None
            yield (
                chat,
                Message(
                    id=mid,
                    service=True,
                    ts=None,
                    date_raw=None,
                    sender=None,
                    sender_id=None,
                    author=None,
                    forwarded_from=None,
                    forwarded_from_id=None,
                    is_forward=False,
                    reply_to=None,
                    via_bot=None,
                    edited=False,
                    text="",
                ),
            )
            continue
        date = _first(body, "date")
        title = date.attributes.get("title") if date is not None else None
        sender, via = _name_via(_first(body, "from_name"))
        if sender is None and "joined" in classes:
            sender, via = prev_sender, prev_via
        fwd = _first(body, "forwarded body")
        fwd_name = None
        if fwd is not None:
            fwd_name, _ = _name_via(_first(fwd, "from_name"))
            if fwd_name is None and "joined" in classes:
                fwd_name = prev_fwd
        reply = None
        rt = _first(body, "reply_to")
        if rt is not None:
            m = GOTO_RE.search(rt.html or "")
            reply = int(m.group(1)) if m else None
        holder = fwd if fwd is not None else body
        text, code, links = _text_parts(_first(holder, "text"))
        sig = _first(holder, "signature") or _first(body, "signature")
        author = " ".join(sig.text(deep=True).split()) if sig is not None else None
        yield (
            chat,
            Message(
                id=mid,
                service=False,
                ts=parse_date(title),
                date_raw=title,
                sender=sender,
                sender_id=None,
                author=author or None,
                forwarded_from=fwd_name,
                forwarded_from_id=None,
                is_forward=fwd is not None,
                reply_to=reply,
                via_bot=via,
                edited=False,
                text=text,
                code=code,
                links=links,
            ),
        )
        prev_sender, prev_via, prev_fwd = sender, via, fwd_name
    if on_bytes is not None:
        on_bytes(path.stat().st_size)
