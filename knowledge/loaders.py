"""Files to LangChain `Document`s, with a clear error for anything that is not a readable document.

Each format uses a maintained loader (langchain-community over pypdf, docx2txt, BeautifulSoup);
the checks before it turn the usual bad inputs into one-line errors a user can act on.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from langchain_core.documents import Document

from common.errors import BadInput


class LoadError(BadInput):
    """A file that cannot be ingested; the message says why."""


def _decode_text(data: bytes) -> str:
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise LoadError("looks like binary data, not text (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LoadError(
            f"is not valid UTF-8 text (byte {error.start}); save it as UTF-8 and try again"
        ) from None


def _plain(data: bytes, path: Path) -> list[Document]:
    return [Document(page_content=_decode_text(data))]


_BOILERPLATE = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form"]
_BLOCKS = ["p", "div", "li", "br", "tr", "pre", "section", "article", "table", "dd", "dt"]


def _html(data: bytes, path: Path) -> list[Document]:
    """HTML as text with its h1-h3 headings kept as markdown `#` lines, so the chunker can
    cut it into sections like a markdown file (headings with inline markup stay whole)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode_text(data), "html.parser")
    for tag in soup(_BOILERPLATE) + soup.select("[role=navigation], a.headerlink"):
        tag.decompose()
    root = soup.body or soup
    for level in (1, 2, 3):
        for heading in root.find_all(f"h{level}"):
            heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for block in root.find_all(_BLOCKS):
        block.append("\n")
    text = re.sub(r"\n\s*\n\s*", "\n\n", root.get_text(""))
    return [Document(page_content=text.strip())]


def _csv(data: bytes, path: Path) -> list[Document]:
    text = _decode_text(data)
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as error:
        raise LoadError(f"is not valid CSV: {error}") from None
    return [
        Document(
            page_content="\n".join(f"{key}: {value}" for key, value in row.items() if key),
            metadata={"row": number},
        )
        for number, row in enumerate(rows, start=1)
    ]


def _pdf(data: bytes, path: Path) -> list[Document]:
    from langchain_community.document_loaders import PyPDFLoader

    if not data.startswith(b"%PDF"):
        raise LoadError("is not a PDF (no %PDF header)")
    try:
        pages = PyPDFLoader(str(path)).load()
    except Exception as error:  # pypdf raises many types for damaged files
        raise LoadError(f"is a damaged PDF: {error}") from None
    return [
        Document(
            page_content=page.page_content, metadata={"page": page.metadata.get("page", 0) + 1}
        )
        for page in pages
    ]


def _docx(data: bytes, path: Path) -> list[Document]:
    from langchain_community.document_loaders import Docx2txtLoader

    if not data.startswith(b"PK"):
        raise LoadError("is not a .docx document (not a zip archive)")
    try:
        return [Document(page_content=d.page_content) for d in Docx2txtLoader(str(path)).load()]
    except Exception as error:
        raise LoadError(f"is a damaged .docx document: {error}") from None


@dataclass(frozen=True)
class Loader:
    """How one format is read. A `zipped` format is a zip archive: its unpacked size is
    checked (`KBOT_MAX_UNPACKED_MB`) before the loader opens it."""

    read: Callable[[bytes, Path], list[Document]]
    zipped: bool = False


LOADERS: dict[str, Loader] = {
    ".txt": Loader(_plain),
    ".md": Loader(_plain),
    ".markdown": Loader(_plain),
    ".rst": Loader(_plain),
    ".html": Loader(_html),
    ".htm": Loader(_html),
    ".csv": Loader(_csv),
    ".pdf": Loader(_pdf),
    ".docx": Loader(_docx, zipped=True),
}


def file_kind(path: Path) -> str:
    """The format of a file by its name; Sphinx's `page.rst.txt` sources count as reST."""
    name = path.name.lower()
    return ".rst" if name.endswith(".rst.txt") else path.suffix.lower()


@dataclass(frozen=True)
class FileLimits:
    """How large a document may be: on disk, and unpacked for zip-based formats (docx)."""

    max_bytes: int = 50_000_000
    max_unpacked_bytes: int = 200_000_000


DEFAULT_LIMITS = FileLimits()


def _check_unpacked_size(data: bytes, limit: int) -> None:
    """Refuse a zip whose members unpack to more than `limit` bytes (a decompression bomb:
    a 307 KB docx may hold 314 MB of XML). The sizes come from the archive's directory, and
    Python's zipfile reads no more of a member than its stated size."""
    try:
        unpacked = sum(member.file_size for member in zipfile.ZipFile(io.BytesIO(data)).infolist())
    except zipfile.BadZipFile as error:
        raise LoadError(f"is a damaged archive: {error}") from None
    if unpacked > limit:
        raise LoadError(
            f"unpacks to {unpacked / 1e6:,.0f} MB, over the {limit / 1e6:,.0f} MB limit "
            "(setting KBOT_MAX_UNPACKED_MB)"
        )


def read_checked(path: Path, limits: FileLimits) -> bytes:
    """The file's bytes, after the checks every format shares."""
    suffix = file_kind(path)
    if suffix not in LOADERS:
        raise LoadError(
            f"unsupported file type {suffix or '(none)'!r}; supported: "
            + ", ".join(sorted(LOADERS))
        )
    if not path.is_file():
        raise LoadError("does not exist or is not a file")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise LoadError(
            f"is {size / 1e6:.1f} MB, over the {limits.max_bytes / 1e6:.0f} MB limit "
            "(setting KBOT_MAX_FILE_MB)"
        )
    data = path.read_bytes()
    if not data.strip():
        raise LoadError("is empty")
    if LOADERS[suffix].zipped and data.startswith(b"PK"):
        _check_unpacked_size(data, limits.max_unpacked_bytes)
    return data


def load_file(path: Path, data: bytes) -> list[Document]:
    """Documents of one file (one per page, CSV row, or the whole text); never empty."""
    documents = [d for d in LOADERS[file_kind(path)].read(data, path) if d.page_content.strip()]
    if not documents:
        raise LoadError("holds no text")
    return documents


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files named, plus the supported files under folders named (hidden ones skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and file_kind(p) in LOADERS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files.append(path)
    return files
