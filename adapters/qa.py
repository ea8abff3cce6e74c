"""Question/answer pairs from documents, written by the model, for training on the same
documents that RAG retrieves from.

Each pair starts from a sentence taken verbatim from a chunk, and the model only writes the
question for it: a small model cannot be trusted to state facts, but it can phrase a question.
A reply that is not a question, shares no words with its sentence or repeats a worked example
gets a second try with other examples, then the sentence is skipped.

Where a reader is given, the answer becomes the short span of the sentence that the reader
picks out for the question (reading that sentence alone), as a person writing reading
questions would; and a round trip keeps only pairs whose question, asked through retrieval
and the reader, comes back with that answer: a generic question ("What is it?") that finds
some other passage is dropped.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from knowledge.text import STOPWORDS, WORD, split_sentences

Messages = list[dict[str, str]]  # chat messages {"role", "content"}
Ask = Callable[[Messages], str]  # messages in, the model's reply out
Progress = Callable[[float, str], None]
Span = Callable[[str, str], str | None]  # (question, sentence) -> the answer's span, if any
RoundTrip = Callable[[str, str], bool]  # (question, answer) -> recovered from the collection?

_INSTRUCTION = {
    "role": "system",
    "content": "Turn each sentence into one question that it answers.",
}


def _examples(*pairs: tuple[str, str]) -> Messages:
    turns = [_INSTRUCTION]
    for sentence, question in pairs:
        turns += [{"role": "user", "content": sentence}, {"role": "assistant", "content": question}]
    return turns


# Worked examples as earlier turns: SmolLM2-135M wrote a usable question for 9 of 10 sentences
# this way, and for 2 of 10 from the instruction alone. It sometimes copies an example's
# question instead, so a second set with other topics gets a second try (13 of 15 sentences
# for either set alone, 15 of 15 for both).
EXAMPLE_SETS: tuple[Messages, ...] = (
    _examples(
        (
            "The Eiffel Tower was completed in 1889 for the World's Fair.",
            "When was the Eiffel Tower completed?",
        ),
        (
            "Glass is mostly made from silica sand, which is melted at high temperature.",
            "What is glass mostly made from?",
        ),
    ),
    _examples(
        (
            "Marie Curie won the Nobel Prize in Chemistry in 1911.",
            "Which prize did Marie Curie win in 1911?",
        ),
        (
            "The river Thames flows through London into the North Sea.",
            "Where does the river Thames flow?",
        ),
    ),
)


def sentences(text: str, min_words: int = 4, max_words: int = 60) -> list[str]:
    """The chunk's sentences that can stand alone as an answer: long enough to hold a fact,
    short enough to be one. Line breaks end sentences too (headings, list items)."""
    return [
        sentence
        for sentence in split_sentences(text)
        if min_words <= len(WORD.findall(sentence)) <= max_words and sentence[-1:] in ".!?"
    ]


def spread(items: Sequence[Any], count: int) -> list[Any]:
    """`count` items evenly spread over `items`, first one included, order kept."""
    if count >= len(items):
        return list(items)
    return [items[round(i * len(items) / count)] for i in range(count)]


def content_words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)} - STOPWORDS


def clean_question(reply: str, sentence: str) -> str | None:
    """The model's question, or None when the reply is not a usable question about
    `sentence`."""
    line = next((part.strip() for part in reply.splitlines() if part.strip()), "")
    line = re.sub(r"^(question|q)\s*[:.)-]\s*", "", line, flags=re.IGNORECASE).strip(" \"'“”")
    if not line.endswith("?") or not 3 <= len(line.split()) <= 40:
        return None
    if line.rstrip("?").lower() in sentence.lower():
        return None
    words = content_words(line)
    if not words & content_words(sentence) or _copies_an_example(words):
        return None
    return line


def _copies_an_example(words: set[str]) -> bool:
    return any(
        words <= content_words(turn["content"])
        for examples in EXAMPLE_SETS
        for turn in examples
        if turn["role"] == "assistant"
    )


def write_question(sentence: str, ask: Ask) -> str | None:
    for examples in EXAMPLE_SETS:
        reply = ask([*examples, {"role": "user", "content": sentence}])
        if question := clean_question(reply, sentence):
            return question
    return None


def chunk_questions(text: str, count: int, write: Callable[[str], str | None]) -> list[str]:
    """Questions `text` answers: `write`'s question for each of up to `count` of its
    sentences, spread over it (those it writes none for are left out)."""
    return [q for sentence in spread(sentences(text), count) if (q := write(sentence))]


def span_in(answer: str, sentence: str) -> str | None:
    """`answer` as it is written in `sentence` (case and spacing aside), or None when the
    sentence does not hold it."""
    words = answer.strip(" .").split()
    if not words or not content_words(answer):
        return None
    pattern = r"\s+".join(re.escape(word) for word in words)
    found = re.search(pattern, sentence, flags=re.IGNORECASE)
    return found.group(0) if found else None


def generate_pairs(
    chunks: Iterable[tuple[str, str]],
    ask: Ask,
    per_chunk: int = 2,
    max_chunks: int = 100,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    span: Span | None = None,
    round_trip: RoundTrip | None = None,
    counts: dict[str, int] | None = None,
) -> list[dict[str, str]]:
    """Pairs `{"question", "answer", "sentence", "source"}` from (source, text) chunks: up to
    `per_chunk` sentences of each of up to `max_chunks` chunks spread over the collection.
    The answer is the sentence, or its span that `span` finds; `round_trip` drops pairs.
    `counts` (if given) receives how many questions were written and dropped."""
    chosen = spread(list(chunks), max_chunks)
    pairs: list[dict[str, str]] = []
    seen: set[str] = set()
    counts = counts if counts is not None else {}
    counts.update(written=0, short=0, dropped_by_round_trip=0)
    for number, (source, text) in enumerate(chosen, start=1):
        if cancel is not None and cancel.is_set():
            break
        for sentence in spread(sentences(text), per_chunk):
            question = write_question(sentence, ask)
            if not question or question.lower() in seen:
                continue
            seen.add(question.lower())
            counts["written"] += 1
            answer = (span(question, sentence) if span else None) or sentence
            counts["short"] += answer != sentence
            if round_trip and not round_trip(question, answer):
                counts["dropped_by_round_trip"] += 1
                continue
            pairs.append(
                {"question": question, "answer": answer, "sentence": sentence, "source": source}
            )
        if progress:
            progress(number / len(chosen), f"chunk {number} of {len(chosen)}: {len(pairs)} pairs")
    return pairs
