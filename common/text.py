"""Messages shown to people: one short line, with no server paths in it."""

from __future__ import annotations

import re

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
