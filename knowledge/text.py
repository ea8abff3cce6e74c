"""English text as everything here reads it: sentences, words, stop words and stemmed terms.

The reader's choice of sentences (`knowledge/reading.py`), extractive summaries, Q/A
generation (`adapters/qa.py`) and BM25 (`knowledge/lexical.py`) read text through this one
module, so a word counts the same way in each."""

from __future__ import annotations

import re

import Stemmer

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]?[A-Z0-9])")
WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+")
# Words that say nothing about which sentence answers a question ("What was the name of ..."),
# nor whether a written question is about its sentence (`adapters/qa.py`): one list for both,
# the union of the two that each used to keep (the reader's held all of Q/A's, and the modal
# verbs, "being", "about", "but", "no" and "also" besides).
_STOPWORD_TEXT = """
a an the of in on at to for by with from about as into and or but not no is are was were be
been being has have had do does did what which who whom whose when where why how that this
these those it its they them their he his she her there than then so can could would should
will shall may might must also
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Snowball's English stemmer, one for all (BM25's tokens too). PyStemmer stems each word
# whole while holding the GIL, so threads may share it.
STEMMER = Stemmer.Stemmer("english")


def split_sentences(text: str) -> list[str]:
    """Sentences in reading order; line breaks end sentences too (headings, list items)."""
    found = []
    for line in text.splitlines():
        for sentence in _SENTENCE_END.split(line.strip()):
            sentence = sentence.strip(" -*#>\t")
            if WORD.search(sentence):
                found.append(sentence)
    return found


def terms(text: str) -> set[str]:
    """The stems of `text`'s content words ("runs", "running" -> "run")."""
    words = [w.lower() for w in WORD.findall(text)]
    return set(STEMMER.stemWords([w for w in words if w not in STOPWORDS]))
