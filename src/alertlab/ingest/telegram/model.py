"""One Telegram message as the JSON and HTML readers both deliver it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Chat:
    """A chat of an export: ``key`` is its id (JSON) or its name (HTML exports carry no id)."""

    key: str
    name: str | None
    type: str | None
    chat_id: str | None
    file: str


@dataclass
class Message:
    """A message, reduced to what call extraction needs.

    ``ts`` is epoch seconds (``None`` when the date is missing or unparsable; ``date_raw`` keeps
    it for the reject). ``text`` is the plain text with code/pre/link runs on their own lines,
    ``code`` those runs, ``links`` the hrefs of text links.
    """

    id: int
    service: bool
    ts: int | None
    date_raw: str | None
    sender: str | None
    sender_id: str | None
    author: str | None
    forwarded_from: str | None
    forwarded_from_id: str | None
    is_forward: bool
    reply_to: int | None
    via_bot: str | None
    edited: bool
    text: str
    code: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-able summary kept with a rejected message."""
        return {
            "id": self.id,
            "date": self.date_raw,
            "from": self.sender,
            "from_id": self.sender_id,
            "author": self.author,
            "forwarded_from": self.forwarded_from,
            "reply_to": self.reply_to,
            "via_bot": self.via_bot,
            "text": self.text[:500],
        }
