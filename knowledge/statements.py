"""A chunk as the statements a reader can quote, each carrying what gives it meaning.

Prose gives sentences (with the sentence before where one leans on it: "It was built in
1889."). Structured text gives its own units: a list item with its heading or the line that
introduces the list ("Opening hours > Monday: closed"), a table row with its column names
("Stop: Hospital; First bus: 06:07"), a code block whole, after the line that introduces it.
Headings say where a statement stands; they are never statements themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from knowledge.text import WORD, split_sentences

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)[\s#]*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(.*\S)\s*$")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
# A reST or setext title's underline (or overline): one punctuation character repeated.
_RULE = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")
_RULE_LEVELS = {"=": 1, "-": 2}
# A line at least this long that ends without a full stop was wrapped: the next line goes on.
_WRAPPED = 50
# A sentence opening with one of these leans on the one before it ("It was built in 1889.").
_REFERRING = frozenset(
    ["it", "its", "this", "these", "that", "those", "they", "their", "them"]
    + ["he", "his", "she", "her", "such", "there", "then"]
)


@dataclass(frozen=True)
class Statement:
    text: str
    section: str  # the headings it stands under, outermost first ("" where the chunk has none)


def needs_previous(sentence: str) -> bool:
    words = WORD.findall(sentence)
    return bool(words) and (words[0].lower() in _REFERRING or len(words) < 4)


def statements(text: str, section: str = "") -> list[Statement]:
    """The statements of `text` in reading order; `section` is where the text starts (the
    chunk's section), extended by the headings inside it."""
    return _Reader(section).read(text)


def row_statement(text: str) -> str:
    """A record of "name: value" lines (a CSV row) as one statement; empty cells say nothing
    and are left out."""
    lines = (line.strip() for line in text.splitlines())
    return "; ".join(line for line in lines if line and not line.endswith(":"))


class _Reader:
    """One pass over the lines, remembering the headings, the table header and the line that
    introduces a list or a code block."""

    def __init__(self, section: str) -> None:
        self.outer = [part for part in section.split(" > ") if part]
        self.headings: list[tuple[int, str]] = []
        self.found: list[Statement] = []
        self.paragraph: list[str] = []
        self.lead = ""  # a line ending in ":" that introduces what follows
        self.header: list[str] | None = None
        self.code: list[str] | None = None
        self.in_item = False  # the last line was a list item: an indented line goes on with it

    @property
    def section(self) -> str:
        if not self.headings:
            return " > ".join(self.outer)
        # A chunk holds its own heading, which its section already names: the headings inside
        # replace the section's from their level on.
        level = self.headings[0][0]
        return " > ".join([*self.outer[: level - 1], *(title for _, title in self.headings)])

    def _heading(self, level: int, title: str) -> None:
        self.headings = [h for h in self.headings if h[0] < level]
        self.headings.append((level, title))
        self.lead, self.header = "", None

    def read(self, text: str) -> list[Statement]:
        for line in text.splitlines():
            self._line(line)
        self._end_paragraph()
        self._end_code()  # a block never closed
        return self.found

    def _line(self, line: str) -> None:
        in_item, self.in_item = self.in_item, False
        if self.code is not None:
            if _FENCE.match(line):
                self._end_code()
            else:
                self.code.append(line)
            return
        if _FENCE.match(line):
            self._end_paragraph()
            self.code = []
        elif heading := _HEADING.match(line):
            self._end_paragraph()
            self._heading(len(heading.group(1)), heading.group(2).strip())
        elif rule := _RULE.match(line.strip()):
            if len(self.paragraph) == 1:  # the title above it
                self._heading(_RULE_LEVELS.get(rule.group(1), 3), self.paragraph.pop())
            else:
                self._end_paragraph()
        elif row := _TABLE_ROW.match(line):
            self._end_paragraph()
            self._table_row(line, [cell.strip() for cell in row.group(1).split("|")])
        elif item := _LIST_ITEM.match(line):
            self._end_paragraph()
            self._add(self._introduced(item.group(1)))
            self.in_item = True
        elif not line.strip():
            self._end_paragraph()
            self.header = None
        elif in_item and line[:1].isspace():
            self._continue_item(line.strip())
            self.in_item = True
        else:
            self.header = None
            self.paragraph.append(line.strip())

    def _table_row(self, line: str, cells: list[str]) -> None:
        if _TABLE_RULE.match(line):
            return
        if self.header is None:
            self.header = cells
            return
        # A row may have fewer or more cells than the header: the extra ones go unnamed.
        names = self.header + [""] * max(0, len(cells) - len(self.header))
        named = [
            f"{name}: {cell}" if name else cell for name, cell in zip(names, cells, strict=False)
        ]
        self._add("; ".join(part for part, cell in zip(named, cells, strict=True) if cell))

    def _end_code(self) -> None:
        """The code block read so far, whole, with what introduces it."""
        code = "\n".join(self.code or []).strip()
        if code:  # an empty block says nothing, whatever introduces it
            self._add(self._introduced(code, code=True))
        self.code = None

    def _continue_item(self, line: str) -> None:
        """A list item's wrapped line."""
        last = self.found.pop()
        self.found.append(Statement(f"{last.text} {line}", last.section))

    def _end_paragraph(self) -> None:
        """The paragraph's sentences. Its lines are one text where they were wrapped; a short
        line stands alone (a label, an address, a line of a timetable)."""
        if not self.paragraph:
            return
        blocks: list[str] = []
        for line in self.paragraph:
            previous = blocks[-1] if blocks else ""
            wrapped = len(previous) >= _WRAPPED and not previous.endswith((".", "!", "?", ":"))
            if wrapped:
                blocks[-1] = f"{previous} {line}"
            else:
                blocks.append(line)
        self.paragraph = []
        sentences = [s for block in blocks for s in split_sentences(block)]
        # A last sentence ending in ":" introduces what follows, and is given with it.
        self.lead = sentences.pop() if sentences and sentences[-1].endswith(":") else ""
        for index, sentence in enumerate(sentences):
            text = sentence
            if index and needs_previous(sentence):
                text = f"{sentences[index - 1]} {sentence}"
            self._add(text)

    def _introduced(self, text: str, code: bool = False) -> str:
        """A list item or code block with what introduces it: the line before that ends in
        ":" ("Run: kestrel-cli update"), else its innermost heading ("Fees > Lost card: 5
        euros")."""
        if code and self.lead:
            return f"{self.lead} {text}"
        context = self.lead.rstrip(":").strip()
        if not context:
            titles = [title for _, title in self.headings] or self.outer
            context = titles[-1] if titles else ""
        return f"{context} > {text}" if context else text

    def _add(self, text: str) -> None:
        if WORD.search(text):
            self.found.append(Statement(text, self.section))
