"""Documents to chunks, following the document's own structure where it has one.

Markdown, reST and HTML are first cut at their section headings (so a chunk rarely spans two
sections and carries its section title), then packed to `chunk_size` characters with
langchain-text-splitters' recursive splitter using separators of that format.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

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


def chunk_documents(
    documents: list[Document], suffix: str, chunk_size: int, chunk_overlap: int
) -> list[Document]:
    """Split a file's documents into chunks with `section`/`page`, `chunk_index` and
    `chunk_hash` metadata, in reading order."""
    sectioner, language = _SECTIONERS.get(suffix, (None, None))
    overlap = min(chunk_overlap, chunk_size // 2)
    if language is None:
        packer = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=overlap)
    else:
        packer = RecursiveCharacterTextSplitter.from_language(
            language, chunk_size=chunk_size, chunk_overlap=overlap
        )
    chunks: list[Document] = []
    for document in documents:
        parts = sectioner(document.page_content) if sectioner else [document]
        for part in _merge_small(parts, chunk_size // 4):
            section = _section_name(part.metadata)
            for piece in packer.split_text(part.page_content):
                if not piece.strip():
                    continue
                metadata = {k: v for k, v in document.metadata.items() if k != "title"}
                if section:
                    metadata["section"] = section
                chunks.append(Document(page_content=piece.strip(), metadata=metadata))
    for index, chunk in enumerate(chunks):
        chunk.metadata["chunk_index"] = index
        chunk.metadata["chunk_hash"] = hashlib.sha256(chunk.page_content.encode()).hexdigest()
    return chunks


def join_chunks(texts: Sequence[str]) -> str:
    """A document's text again from its chunks in reading order. Where a chunk begins with the
    end of the one before (the splitter's overlap), that text is kept once, so no sentence is
    cut in two or repeated; chunks that do not overlap (sections) are joined by a blank line."""
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
