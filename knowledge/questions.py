"""Questions each chunk answers, written when it is ingested (doc2query: Nogueira et al.,
2019), for the `questions` retrieval mode: users ask questions, and a question is worded like
other questions, which a passage is not.

They are kept per document version among the collection's records (`records.py`; one JSON
record: the questions of each chunk, in reading order), so every replica reads the same ones,
they survive restarts, follow a document's replacement and deletion, and stay valid when the
collection changes embedder. The mode searches BM25 over
each chunk's text with its questions appended, as doc2query does, fused with the dense hits as
`hybrid` fuses plain BM25.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping

from knowledge.manifest import CollectionFolder
from knowledge.results import Progress

_STATE = "written"
# A chunk's text -> questions it answers.
WriteQuestions = Callable[[str], list[str]]
# source -> (content hash, chunk texts in reading order), as `chunks_by_source` gives them.
Versions = Mapping[str, tuple[str, list[str]]]


class ChunkQuestions:
    """The questions written for one collection's chunks: its `questions/` records."""

    def __init__(self, collection: CollectionFolder) -> None:
        self.collection = collection
        self.records = collection.records
        self.prefix = collection.questions

    def _entry(self, source: str, file_hash: str) -> str:
        key = hashlib.sha256(f"{source}\0{file_hash}".encode()).hexdigest()[:32]
        return f"{self.prefix}{key}.json"

    def written(self) -> list[str]:
        """The entries of the document versions that have questions."""
        return [e for e in self.records.entries(self.prefix) if e.endswith(".json")]

    def read(self, hashes: Mapping[str, str]) -> dict[tuple[str, int], list[str]]:
        """Questions by (source, chunk index) for the documents (source: content hash) that
        have them."""
        found: dict[tuple[str, int], list[str]] = {}
        for source, file_hash in hashes.items():
            record = self.records.read(self._entry(source, file_hash))
            if record is not None:
                for index, questions in enumerate(json.loads(record[1])):
                    found[(source, index)] = questions
        return found

    def signature(self) -> str:
        """Which questions are written, as of the last `write_missing` ("" before it): one
        small record to read per search."""
        record = self.records.read(self.prefix + _STATE)
        return record[1] if record else ""

    def missing(self, versions: Versions) -> int:
        """Chunks of `versions` with no questions written yet."""
        written = set(self.written())
        return sum(
            len(texts)
            for source, (file_hash, texts) in versions.items()
            if self._entry(source, file_hash) not in written
        )

    def write_missing(
        self, versions: Versions, write: WriteQuestions, progress: Progress | None = None
    ) -> int:
        """Write questions for every chunk of the versions that have none yet (a document at a
        time, each record whole or not at all, so a kill loses at most one document's work),
        and drop those of versions no longer committed. Returns the chunks written for."""
        self.collection.require()
        keep = {self._entry(s, h) for s, (h, _) in versions.items()}
        written = self.written()
        for stale in written:
            if stale not in keep:
                self.records.delete(stale)
        missing = [
            (entry, texts)
            for source, (file_hash, texts) in versions.items()
            if (entry := self._entry(source, file_hash)) not in written
        ]
        total, done = sum(len(texts) for _, texts in missing), 0
        for entry, texts in missing:
            questions = []
            for text in texts:
                if progress:
                    progress(done / total, f"questions for chunk {done + 1} of {total}")
                questions.append(write(text))
                done += 1
            self.records.write(entry, json.dumps(questions))
        digest = hashlib.sha256("".join(self.written()).encode()).hexdigest()[:8]
        self.records.write(self.prefix + _STATE, digest)
        if progress:
            progress(1.0, f"questions written for {done} chunks")
        return done
