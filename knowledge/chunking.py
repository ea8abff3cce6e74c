"""Documents to chunks, following the document's own structure where it has one.

Markdown, reST and HTML are first cut at their section headings (so a chunk rarely spans two
sections and carries its section title), then packed to `chunk_size` characters with
langchain-text-splitters' recursive splitter using separators of that format.

Each chunk records where it was cut from (`part`, `start`, `gap` in its metadata), so that a
document's text can be put together again from its chunks exactly (`join_chunks`): section
parts are not verbatim slices of the file (the heading splitter rewrites lines), so a chunk is
placed by its offset in its part, not in the file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import (
    Language,
    MarkdownHeaderTextSplitter,
    RecursiveCharacterTextSplitter,
)

# The least text taken as a chunk repeating the end of the one before it: shorter matches
# ("a", "the ") happen by chance.
_LEAST_OVERLAP = 10
_HEADINGS = [("h1", "h1"), ("h2", "h2"), ("h3", "h3")]
_MD_HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3")]
# A reST title: a text line underlined (and maybe overlined) by one repeated punctuation char.
_RST_TITLE = re.compile(r"^(?P<title>\S[^\n]*)\n(?P<rule>([=\-~^\"'`#*+:.])\3{2,})\s*$", re.M)


def _section_name(metadata: dict) -> str:
    return " > ".join(metadata[key] for _, key in _HEADINGS if metadata.get(key))


def _markdown_sections(text: str) -> list[Document]:
    splitter = MarkdownHeaderTextSplitter(_MD_HEADINGS, strip_headers=False)
    return splitter.split_text(text)


def _rst_sections(text: str) -> list[Document]:
    """Cut reST at its section titles; the title becomes the section name."""
    sections: list[Document] = []
    starts = [(m.start(), m.group("title").strip()) for m in _RST_TITLE.finditer(text)]
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, ""))
    for (start, title), (end, _) in zip(starts, [*starts[1:], (len(text), "")], strict=True):
        body = text[start:end]
        if body.strip():
            sections.append(Document(page_content=body, metadata={"h1": title} if title else {}))
    return sections


def _merge_small(sections: list[Document], min_chars: int) -> list[Document]:
    """Join a section shorter than `min_chars` (a lone title, a label) to the next one, so no
    chunk is a fragment; the merged part keeps the name of its larger section."""
    merged: list[Document] = []
    for section in sections:
        previous = merged[-1] if merged else None
        if previous is not None and len(previous.page_content) < min_chars:
            larger = max(previous, section, key=lambda d: len(d.page_content))
            merged[-1] = Document(
                page_content=previous.page_content.rstrip() + "\n\n" + section.page_content,
                metadata=larger.metadata,
            )
        else:
            merged.append(section)
    return merged


_SECTIONERS = {
    ".md": (_markdown_sections, Language.MARKDOWN),
    ".markdown": (_markdown_sections, Language.MARKDOWN),
    # Titles are already cut off; reST's own separators would split a title from its rule.
    ".rst": (_rst_sections, None),
    # The HTML loader writes headings as markdown `#` lines.
    ".html": (_markdown_sections, Language.MARKDOWN),
    ".htm": (_markdown_sections, Language.MARKDOWN),
}


@dataclass(frozen=True)
class PlacedChunk:
    """A chunk's text and where it was cut from: the number of its section part (counted over
    all the documents of its file, in reading order), its offset in that part, and the text
    the splitter left out before it (whitespace) where it does not overlap the chunk before.
    `part` and `start` are None for chunks stored before they were recorded."""

    text: str
    part: int | None = None
    start: int | None = None
    gap: str = ""

    @classmethod
    def of(cls, text: str, metadata: Mapping[str, Any]) -> PlacedChunk:
        """A stored chunk, placed by its metadata where that records it."""
        return cls(text, metadata.get("part"), metadata.get("start"), metadata.get("gap", ""))


def _placed_pieces(
    packer: RecursiveCharacterTextSplitter, text: str, part: int
) -> list[PlacedChunk]:
    """The non-blank pieces `packer` cuts `text` (part number `part`) into, stripped, each
    placed by the start index the splitter reports. The splitter finds that index by
    searching, so each one is checked; should one not hold, no piece of `text` is placed
    (`join_chunks` then guesses)."""
    pieces: list[tuple[str, int]] = []
    for document in packer.create_documents([text]):
        piece = document.page_content
        if piece.strip():
            leading = len(piece) - len(piece.lstrip())
            pieces.append((piece.strip(), document.metadata["start_index"] + leading))
    if not all(start >= 0 and text.startswith(piece, start) for piece, start in pieces):
        return [PlacedChunk(piece) for piece, _ in pieces]
    placed: list[PlacedChunk] = []
    covered = 0
    for piece, start in pieces:
        gap = text[covered:start] if placed else ""
        placed.append(PlacedChunk(piece, part, start, gap))
        covered = max(covered, start + len(piece))
    return placed


def chunk_documents(
    documents: list[Document], suffix: str, chunk_size: int, chunk_overlap: int
) -> list[Document]:
    """Split a file's documents into chunks with `section`/`page`, `chunk_index`,
    `chunk_hash` and (see `PlacedChunk`) `part`, `start`, `gap` metadata, in reading order."""
    sectioner, language = _SECTIONERS.get(suffix, (None, None))
    overlap = min(chunk_overlap, chunk_size // 2)
    if language is None:
        packer = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=overlap, add_start_index=True
        )
    else:
        packer = RecursiveCharacterTextSplitter.from_language(
            language, chunk_size=chunk_size, chunk_overlap=overlap, add_start_index=True
        )
    chunks: list[Document] = []
    parts_done = 0
    for document in documents:
        parts = sectioner(document.page_content) if sectioner else [document]
        for part in _merge_small(parts, chunk_size // 4):
            section = _section_name(part.metadata)
            for piece in _placed_pieces(packer, part.page_content, parts_done):
                metadata = {k: v for k, v in document.metadata.items() if k != "title"}
                if section:
                    metadata["section"] = section
                if piece.part is not None:
                    metadata |= {"part": piece.part, "start": piece.start}
                    if piece.gap:
                        metadata["gap"] = piece.gap
                chunks.append(Document(page_content=piece.text, metadata=metadata))
            parts_done += 1
    for index, chunk in enumerate(chunks):
        chunk.metadata["chunk_index"] = index
        chunk.metadata["chunk_hash"] = hashlib.sha256(chunk.page_content.encode()).hexdigest()
    return chunks


def join_chunks(chunks: Sequence[str] | Sequence[PlacedChunk]) -> str:
    """A document's text again from its chunks in reading order, each sentence once and
    whole. Placed chunks (all of them) are joined by where they start; otherwise, as for
    chunks stored before those places were recorded, the overlaps are guessed."""
    placed = [c for c in chunks if isinstance(c, PlacedChunk) and c.start is not None]
    if placed and len(placed) == len(chunks):
        return _join_placed(placed)
    return _join_guessed([c if isinstance(c, str) else c.text for c in chunks])


def _join_placed(chunks: Sequence[PlacedChunk]) -> str:
    """Chunks of one part add what lies beyond the text covered so far (after the gap the
    splitter left, if any); a new part starts after a blank line."""
    whole, part, covered = "", None, 0
    for chunk in chunks:
        assert chunk.start is not None
        end = chunk.start + len(chunk.text)
        if chunk.part != part:
            whole = f"{whole}\n\n{chunk.text}" if whole else chunk.text
            part, covered = chunk.part, end
        elif end > covered:
            whole += chunk.gap + chunk.text[max(covered - chunk.start, 0) :]
            covered = end
    return whole


def _join_guessed(texts: Sequence[str]) -> str:
    """Where a chunk begins with the end of the one before (the splitter's overlap), that
    text is kept once; chunks that do not overlap (sections) are joined by a blank line."""
    whole = ""
    for text in texts:
        longest = min(len(whole), len(text))
        overlap = next(
            (k for k in range(longest, _LEAST_OVERLAP - 1, -1) if whole.endswith(text[:k])), 0
        )
        if overlap:
            whole += text[overlap:]
        else:
            whole = f"{whole}\n\n{text}" if whole else text
    return whole
