"""Questions each chunk answers, written when it is ingested (doc2query: Nogueira et al.,
2019), for the `questions` retrieval mode: users ask questions, and a question is worded like
other questions, which a passage is not.

They are kept per document version in the collection's folder (one JSON file: the questions of
each chunk, in reading order), so they survive restarts, follow a document's replacement and
deletion, and stay valid when the collection changes embedder. The mode searches BM25 over
each chunk's text with its questions appended, as doc2query does, fused with the dense hits as
`hybrid` fuses plain BM25.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path

from common.files import write_atomically
from knowledge.manifest import CollectionFolder
from knowledge.results import Progress

_STATE = "written"
# A chunk's text -> questions it answers.
WriteQuestions = Callable[[str], list[str]]
# source -> (content hash, chunk texts in reading order), as `chunks_by_source` gives them.
Versions = Mapping[str, tuple[str, list[str]]]


class ChunkQuestions:
    """The questions written for one collection's chunks, in its folder's `questions`."""

    def __init__(self, collection: CollectionFolder) -> None:
        self.collection = collection
        self.folder = collection.questions

    def _path(self, source: str, file_hash: str) -> Path:
        key = hashlib.sha256(f"{source}\0{file_hash}".encode()).hexdigest()[:32]
        return self.folder / f"{key}.json"

    def read(self, hashes: Mapping[str, str]) -> dict[tuple[str, int], list[str]]:
        """Questions by (source, chunk index) for the documents (source: content hash) that
        have them."""
        found: dict[tuple[str, int], list[str]] = {}
        for source, file_hash in hashes.items():
            path = self._path(source, file_hash)
            if path.is_file():
                for index, questions in enumerate(json.loads(path.read_text())):
                    found[(source, index)] = questions
        return found

    def signature(self) -> str:
        """Which questions are written, as of the last `write_missing` ("" before it): one
        small file to read per search."""
        state = self.folder / _STATE
        return state.read_text() if state.is_file() else ""

    def missing(self, versions: Versions) -> int:
        """Chunks of `versions` with no questions written yet."""
        return sum(
            len(texts)
            for source, (file_hash, texts) in versions.items()
            if not self._path(source, file_hash).is_file()
        )

    def write_missing(
        self, versions: Versions, write: WriteQuestions, progress: Progress | None = None
    ) -> int:
        """Write questions for every chunk of the versions that have none yet (a document at a
        time, each file whole or not at all, so a kill loses at most one document's work), and
        drop those of versions no longer committed. Returns the chunks written for."""
        self.collection.made(self.folder)
        keep = {self._path(s, h).name for s, (h, _) in versions.items()}
        for stale in self.folder.glob("*.json"):
            if stale.name not in keep:
                stale.unlink(missing_ok=True)
        missing = [
            (path, texts)
            for source, (file_hash, texts) in versions.items()
            if not (path := self._path(source, file_hash)).is_file()
        ]
        total, done = sum(len(texts) for _, texts in missing), 0
        for path, texts in missing:
            questions = []
            for text in texts:
                if progress:
                    progress(done / total, f"questions for chunk {done + 1} of {total}")
                questions.append(write(text))
                done += 1
            write_atomically(path, json.dumps(questions))
        written = sorted(path.name for path in self.folder.glob("*.json"))
        digest = hashlib.sha256("".join(written).encode()).hexdigest()[:8]
        write_atomically(self.folder / _STATE, digest)
        if progress:
            progress(1.0, f"questions written for {done} chunks")
        return done
