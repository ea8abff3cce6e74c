"""Messages shown to people: one short line, with no server paths in it."""

from __future__ import annotations

import re
from datetime import datetime

# An absolute path in a message: only its last part is shown, after "…/" so that it is not
# taken for a plain name, and the server's folders are not shown.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.])(?:/[^/\s'\"]+)+/([^/\s'\"]+)")


def one_line(message: str, limit: int = 300) -> str:
    """A message as one short line, with no server paths in it."""
    line = " ".join(_ABSOLUTE_PATH.sub(r"…/\1", message).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


_MARKUP = re.compile(r"([\\`*_\[\]<>#|~!])")


def literal_markdown(text: str) -> str:
    """`text` shown as it is where Markdown is rendered: a document's or a user's words may
    hold markup (links, images, emphasis) that must not act on the page."""
    return _MARKUP.sub(r"\\\1", text)


def counted(number: int, noun: str) -> str:
    """`number` with `noun` in the right form: "1 chunk", "3 chunks", "0 tokens"."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


# Markup that reads as noise in a plain-text snippet: heading marks, list bullets, quote marks,
# emphasis, code fences and table rules.
_LINE_MARKUP = re.compile(
    r"^\s*(?:#{1,6}\s+|[-*+]\s+|>\s*|```\w*|\|?[\s:|-]*-{3,}[\s:|-]*\|?\s*$)", re.M
)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)(?=\S)(.+?)(?<=\S)\1")


def plain_snippet(text: str, limit: int = 300) -> str:
    """A passage of a document (often Markdown) as one line of plain text, cut at a word
    with "…" when longer than `limit`."""
    text = _EMPHASIS.sub(r"\2", _LINK.sub(r"\1", _LINE_MARKUP.sub("", text)))
    lines = [" ".join(line.replace("|", " ").split()) for line in text.splitlines()]
    # A line with no closing mark (a heading, a table row) is kept apart from the next.
    text = (
        "".join(line + (" " if line[-1] in ".!?:;," else " · ") for line in lines if line)
        .removesuffix(" · ")
        .strip()
    )
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"


def friendly_time(iso: str) -> str:
    """An ISO timestamp as people read it: "6 Dec 2026, 06:10 UTC" (the text as it is when it
    is not one)."""
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    zone = " UTC" if moment.utcoffset() is not None and not moment.utcoffset() else ""
    return f"{moment.day} {moment:%b %Y, %H:%M}{zone}"
