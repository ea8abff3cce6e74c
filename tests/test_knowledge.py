"""Knowledge collections with the real embedder and a real persistent Chroma in temp folders."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from bot.settings import Settings
from common.names import InvalidNameError
from knowledge import ingest
from knowledge.embeddings import load_embedder
from knowledge.knowledge_base import KnowledgeBase
from knowledge.loaders import FileLimits, expand_paths
from knowledge.results import UnknownCollectionError
from knowledge.text import split_sentences
from tests.cli import kbot
from tests.documents import write_bomb, write_facts, write_pdf

ROOT = Path(__file__).resolve().parents[1]


class CountingEmbedder(Embeddings):
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.embedded = 0
        self.fail_after: int | None = None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.fail_after is not None and self.embedded + len(texts) > self.fail_after:
            raise RuntimeError("embedding failed halfway")
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.fixture(scope="session")
def embedder(settings: Settings) -> Embeddings:
    return load_embedder(settings.embedder, settings.embed_dtype, settings.embed_batch_size)


@pytest.fixture
def counting(embedder: Embeddings) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture
def kb(request: pytest.FixtureRequest, tmp_path: Path, counting: CountingEmbedder) -> KnowledgeBase:
    """A knowledge base storing in KBOT_HOME (embedded Chroma) or, for the tests that
    parametrize it with "server", in a Chroma server: both keep the same contract."""
    url = request.getfixturevalue("chroma_server") if getattr(request, "param", "") else None
    return KnowledgeBase(
        tmp_path / "kb", counting, chunk_size=400, chunk_overlap=50, chroma_url=url
    )


# The store's contract, on the embedded store and on a Chroma server.
both_stores = pytest.mark.parametrize(
    "kb", ["", "server"], indirect=True, ids=["embedded", "server"]
)


def top_source(kb: KnowledgeBase, query: str, name: str = "facts") -> str:
    return Path(kb.search(name, query, 1)[0].source).name


@both_stores
def test_every_format_is_ingested_with_its_metadata(kb: KnowledgeBase, tmp_path: Path) -> None:
    paths = write_facts(tmp_path / "docs")
    result = kb.ingest("facts", paths)
    assert result.errors == [] and result.files == len(paths)
    assert result.chunks_added == kb.store.count("facts") > len(paths)
    hits = kb.search("facts", "In which year was the Tollow bridge finished?", 1)
    assert Path(hits[0].source).name == "bridges.pdf" and hits[0].location == "page 2"
    assert top_source(kb, "What colour do glimmerfish glow at night?") == "lake.md"
    assert top_source(kb, "Which key do Brassmoor kettles whistle in?") == "kettles.rst"
    assert top_source(kb, "What do saffron owls eat?") == "owls.html"
    assert top_source(kb, "Who is the captain of the Heron?") == "ships.csv"
    assert top_source(kb, "What bread does the Pennick bakery sell?") == "bakery.docx"
    stored = kb.store._collection("facts").get(include=["metadatas"])["metadatas"]
    for metadata in stored:
        assert {"source", "chunk_index", "chunk_hash", "file_hash", "ingested_at"} <= set(metadata)
    sections = {m.get("section") for m in stored if m["source"].endswith("owls.html")}
    assert any(s and "Saffron owls" in s for s in sections)


def test_with_a_chroma_server_the_chunks_live_in_the_server(
    chroma_server: str, counting: CountingEmbedder, tmp_path: Path
) -> None:
    import chromadb

    kb = KnowledgeBase(tmp_path / "kb", counting, chroma_url=chroma_server)
    result = kb.ingest("facts", write_facts(tmp_path / "docs"))
    port = int(chroma_server.rsplit(":", 1)[1])
    stored = chromadb.HttpClient(host="127.0.0.1", port=port).get_collection("kb-facts")
    assert stored.count() == result.chunks_added > 0
    assert not list((tmp_path / "kb" / "chroma").glob("*.sqlite3"))
    # Another knowledge base on the same server reads the same vectors.
    other = KnowledgeBase(tmp_path / "kb", counting, chroma_url=chroma_server)
    assert Path(other.search("facts", "glimmerfish at night", 1)[0].source).name == "lake.md"


def test_an_unreachable_chroma_server_is_a_clear_error(
    counting: CountingEmbedder, tmp_path: Path
) -> None:
    from common.errors import BadInput
    from tests.conftest import free_port

    with pytest.raises(BadInput, match="KBOT_CHROMA_URL=.*no Chroma server answers"):
        KnowledgeBase(tmp_path / "kb", counting, chroma_url=f"http://127.0.0.1:{free_port()}")


@both_stores
def test_scores_are_cosine_similarities_best_first(kb: KnowledgeBase, tmp_path: Path) -> None:
    kb.ingest("facts", write_facts(tmp_path / "docs"))
    hits = kb.search("facts", "zorblax festival in Quillby", 5)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and -1 <= scores[-1] <= scores[0] <= 1
    assert Path(hits[0].source).name == "quillby.txt" and scores[0] > 0.5


@both_stores
def test_reingesting_unchanged_files_embeds_nothing(
    kb: KnowledgeBase, counting: CountingEmbedder, tmp_path: Path
) -> None:
    paths = write_facts(tmp_path / "docs")
    first = kb.ingest("facts", paths)
    embedded = counting.embedded
    again = kb.ingest("facts", paths)
    assert counting.embedded == embedded
    assert (again.chunks_added, again.chunks_removed) == (0, 0)
    assert again.chunks_unchanged == first.chunks_added == kb.store.count("facts")


@both_stores
def test_stats_count_what_the_collection_costs(kb: KnowledgeBase, tmp_path: Path) -> None:
    paths = write_facts(tmp_path / "docs")
    result = kb.ingest("facts", paths)
    stats = kb.stats("facts")
    assert stats["documents"] == len(paths) and stats["chunks"] == result.chunks_added
    assert stats["source_bytes"] == sum(p.stat().st_size for p in paths)
    text_bytes = sum(len(text.encode()) for _, text in kb.chunks("facts"))
    assert stats["index_bytes"] == text_bytes + 4 * 384 * result.chunks_added  # MiniLM: 384
    assert stats["ingest_seconds"] > 0
    kb.ingest("facts", paths)  # unchanged: costs nothing more
    assert kb.stats("facts")["ingest_seconds"] == stats["ingest_seconds"]


@both_stores
def test_a_changed_file_replaces_its_chunks_and_reuses_unchanged_ones(
    kb: KnowledgeBase, counting: CountingEmbedder, tmp_path: Path
) -> None:
    doc = tmp_path / "guide.md"
    sections = [f"## Part {i}\n\nPart {i} is about topic number {i} of many." for i in range(6)]
    doc.write_text("\n\n".join(sections))
    first = kb.ingest("facts", [doc])
    before = counting.embedded
    doc.write_text("\n\n".join([*sections[:5], "## Part 5\n\nThe vault key hides under a stone."]))
    second = kb.ingest("facts", [doc])
    assert second.chunks_removed == first.chunks_added
    assert counting.embedded - before < second.chunks_added, "unchanged chunks were re-embedded"
    assert kb.store.count("facts") == second.chunks_added
    texts = [h.text for h in kb.search("facts", "where is the vault key", 10)]
    assert any("vault key" in t for t in texts)
    assert not any("topic number 5" in t for t in texts)


@both_stores
def test_forget_removes_a_source(kb: KnowledgeBase, tmp_path: Path) -> None:
    paths = write_facts(tmp_path / "docs")
    kb.ingest("facts", paths)
    total = kb.store.count("facts")
    removed = kb.forget("facts", str(paths[0]))
    assert kb.store.count("facts") == total - removed
    assert all(Path(h.source).name != "quillby.txt" for h in kb.search("facts", "zorblax", 10))
    with pytest.raises(LookupError, match="not in collection"):
        kb.forget("facts", str(paths[0]))


def test_bad_files_get_clear_errors_and_the_others_are_ingested(
    tmp_path: Path, counting: CountingEmbedder
) -> None:
    limits = FileLimits(max_bytes=40_000, max_unpacked_bytes=5_000_000)
    kb = KnowledgeBase(tmp_path / "kb", counting, file_limits=limits)
    good = write_facts(tmp_path / "docs")
    kb.ingest("facts", good[:2])
    before = kb.store.count("facts")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (bad / "empty.txt").write_text("")
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage")
    (bad / "binary.txt").write_bytes(os.urandom(4096))
    (bad / "huge.txt").write_text("word " * 10_000)
    (bad / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (bad / "fake.docx").write_text("not a zip")
    write_bomb(bad / "bomb.docx", unpacked_bytes=10_000_000)
    result = kb.ingest("facts", sorted(bad.iterdir()) + good[2:4])
    errors = {Path(e["path"]).name: e["error"] for e in result.errors}
    assert set(errors) == {p.name for p in bad.iterdir()}
    assert "unsupported file type '.png'" in errors["image.png"]
    assert "is empty" in errors["empty.txt"]
    assert "damaged PDF" in errors["broken.pdf"]
    assert "binary" in errors["binary.txt"] or "UTF-8" in errors["binary.txt"]
    assert "over the 0 MB limit" in errors["huge.txt"] and "KBOT_MAX_FILE_MB" in errors["huge.txt"]
    assert "not valid UTF-8" in errors["latin1.txt"]
    assert "not a .docx" in errors["fake.docx"]
    assert (
        "unpacks to 10 MB, over the 5 MB limit (setting KBOT_MAX_UNPACKED_MB)"
        in errors["bomb.docx"]
    )
    assert result.files == 2 and kb.store.count("facts") > before
    assert {Path(d["source"]).name for d in kb.documents("facts")} == {p.name for p in good[:4]}


@pytest.mark.parametrize(
    "name", ["a/b", "../etc", "..", "", "x" * 80, "name with space", "facts\n"]
)
def test_bad_collection_names_are_refused(kb: KnowledgeBase, tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidNameError, match="Invalid collection name"):
        kb.ingest(name, write_facts(tmp_path / "docs")[:1])
    assert not (tmp_path / "etc").exists()


@both_stores
def test_unknown_collections_are_named_in_the_error(kb: KnowledgeBase, tmp_path: Path) -> None:
    kb.ingest("facts", write_facts(tmp_path / "docs")[:1])
    with pytest.raises(UnknownCollectionError, match=r"Unknown collection 'nope'.*facts"):
        kb.search("nope", "anything", 3)


@both_stores
def test_an_exception_halfway_keeps_the_previous_version(
    kb: KnowledgeBase, counting: CountingEmbedder, tmp_path: Path
) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("The old password is heron.")
    kb.ingest("facts", [doc])
    doc.write_text("\n\n".join(f"New paragraph {i} says the password is otter." for i in range(40)))
    counting.fail_after = counting.embedded + 5
    result = kb.ingest("facts", [doc])
    assert result.errors and "embedding failed halfway" in result.errors[0]["error"]
    assert [h.text for h in kb.search("facts", "password", 5)] == ["The old password is heron."]
    assert kb.store.count("facts") == 1


KILL_DURING_WRITE = """
import os, signal, sys
from pathlib import Path
from knowledge.knowledge_base import KnowledgeBase
from knowledge.embeddings import load_embedder
from knowledge.store import ChromaStore

real_upsert = ChromaStore.upsert
def upsert_half_then_die(self, collection, ids, vectors, texts, metadatas):
    half = len(ids) // 2
    real_upsert(self, collection, ids[:half], vectors[:half], texts[:half], metadatas[:half])
    os.kill(os.getpid(), signal.SIGKILL)
ChromaStore.upsert = upsert_half_then_die
url = sys.argv[3] if len(sys.argv) > 3 else None  # a Chroma server's
kb = KnowledgeBase(Path(sys.argv[1]), load_embedder(), chunk_size=200, chroma_url=url)
kb.ingest("facts", [Path(sys.argv[2])])
"""


@pytest.mark.slow
def test_a_killed_ingestion_keeps_the_previous_version(kb: KnowledgeBase, tmp_path: Path) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("The old password is heron.")
    kb.ingest("facts", [doc])
    doc.write_text("\n\n".join(f"New paragraph {i} says the password is otter." for i in range(40)))
    died = subprocess.run(
        [sys.executable, "-c", KILL_DURING_WRITE, str(kb.root), str(doc)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert died.returncode == -9, died.stderr
    fresh = KnowledgeBase(kb.root, kb.embedder, chunk_size=200)
    assert [h.text for h in fresh.search("facts", "password", 5)] == ["The old password is heron."]
    # The next write sweeps the half-written version away, then the new one goes in whole.
    result = fresh.ingest("facts", [doc])
    assert result.errors == [] and fresh.store.count("facts") == result.chunks_added
    assert all("otter" in h.text for h in fresh.search("facts", "password", 5))


CONCURRENT_INGEST = """
import sys
from pathlib import Path
from knowledge.knowledge_base import KnowledgeBase
from knowledge.loaders import expand_paths
from knowledge.embeddings import load_embedder
url = sys.argv[3] if len(sys.argv) > 3 else None  # a Chroma server's
kb = KnowledgeBase(Path(sys.argv[1]), load_embedder(), chunk_size=400, chroma_url=url)
print(kb.ingest("facts", expand_paths([Path(sys.argv[2])])).chunks_added)
"""


@pytest.mark.slow
def test_two_processes_ingesting_at_once_lose_and_duplicate_nothing(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_facts(docs)
    for i in range(6):
        (docs / f"extra{i}.txt").write_text(f"Extra fact {i}: the number {i} is lucky in Quillby.")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_INGEST, str(kb.root), str(docs)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    added = [int(w.communicate(timeout=300)[0].strip().splitlines()[-1]) for w in workers]
    expected = KnowledgeBase(tmp_path / "solo", kb.embedder, chunk_size=400).ingest(
        "facts", expand_paths([docs])
    )
    assert sum(added) == expected.chunks_added
    assert kb.store.count("facts") == expected.chunks_added
    stored = kb.store._collection("facts").get(include=["documents", "metadatas"])
    keys = [(m["source"], m["chunk_index"]) for m in stored["metadatas"]]
    assert len(keys) == len(set(keys))
    assert len(kb.documents("facts")) == len(expand_paths([docs]))


@pytest.mark.slow
def test_a_running_app_sees_what_another_process_ingested(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    docs = write_facts(tmp_path / "docs")
    kb.ingest("facts", docs[:1])
    kb.search("facts", "zorblax", 1)  # this process now holds the index in memory
    subprocess.run(
        [sys.executable, "-c", CONCURRENT_INGEST, str(kb.root), str(docs[5])],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert top_source(kb, "What is the Tollow bridge made of?") == "bridges.pdf"


@pytest.mark.slow
def test_cli_ingest_retrieve_collections_forget(tmp_path: Path) -> None:
    home, docs = tmp_path / "home", tmp_path / "docs"
    write_facts(docs)
    (docs / "empty.txt").write_text("")
    result = kbot("ingest", str(docs), "--collection", "facts", "--json", home=home)
    data = json.loads(result.stdout)
    assert set(data) == {
        "collection",
        "files",
        "chunks_added",
        "chunks_unchanged",
        "chunks_removed",
        "errors",
    }
    assert data["files"] == 7 and data["chunks_added"] > 0 and result.returncode == 1
    assert [Path(e["path"]).name for e in data["errors"]] == ["empty.txt"]

    hits = json.loads(
        kbot(
            "retrieve",
            "Tollow bridge granite",
            "--collection",
            "facts",
            "-k",
            "2",
            "--json",
            home=home,
        ).stdout
    )
    assert len(hits) == 2 and set(hits[0]) >= {"source", "text", "score"}
    assert hits[0]["source"].endswith("bridges.pdf")

    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "text": "saffron owls"}\n{"id": 2, "text": "rye bread"}\n')
    lines = kbot(
        "retrieve", "--queries", str(queries), "--collection", "facts", "-k", "3", home=home
    ).stdout.splitlines()
    results = [json.loads(line) for line in lines]
    assert [r["id"] for r in results] == ["q1", 2] and all(len(r["results"]) == 3 for r in results)
    assert results[0]["results"][0]["source"].endswith("owls.html")

    listed = json.loads(kbot("collections", "--json", home=home).stdout)
    assert listed == [
        {
            "collection": "facts",
            "documents": 7,
            "chunks": data["chunks_added"],
            "mode": "hybrid",
            "embedder": "all-MiniLM-L6-v2",
        }  # fmt: skip
    ]
    forget = kbot("forget", "--collection", "facts", "--source", str(docs / "owls.html"), home=home)
    assert forget.returncode == 0, forget.stderr
    assert json.loads(kbot("collections", "--json", home=home).stdout)[0]["documents"] == 6
    bad = kbot("retrieve", "x", "--collection", "../up", home=home)
    assert bad.returncode == 2 and "Invalid collection name '../up'" in bad.stderr


THINGS = ["lighthouse", "kettle", "bridge", "glimmerfish", "lantern", "harbour", "owl"]


def write_sectioned_and_long(folder: Path) -> list[Path]:
    """A markdown almanac in sections of several paragraphs, and a long plain ledger whose
    second paragraph has words so long that its chunks overlap by a few characters only: there
    a guess at the overlaps would repeat text and cut sentences."""
    folder.mkdir(parents=True, exist_ok=True)
    sections = [
        f"## Season {s}\n\n"
        + "\n\n".join(
            " ".join(
                f"In season {s} log {p} entry {f} says the {THINGS[f % 7]} was seen on day "
                f"{s * 100 + p * 10 + f}."
                for f in range(4)
            )
            for p in range(3)
        )
        for s in range(3)
    ]
    almanac = folder / "almanac.md"
    almanac.write_text("# Almanac\n\n" + "\n\n".join(sections))
    plain = " ".join(
        f"Record {i} says the {THINGS[i % 7]} of bay {i * 7} was mended in spring."
        for i in range(30)
    )
    tagged = " ".join(
        f"Ledger {i} lists {THINGS[i % 7]}-repairs-of-the-northern-harbour-survey-office-volume-"
        f"{i} and {THINGS[(i + 3) % 7]}-inspections-of-the-southern-lighthouse-board-volume-{i}."
        for i in range(12)
    )
    ledger = folder / "ledger.txt"
    ledger.write_text(plain + "\n\n" + tagged)
    return [almanac, ledger]


def test_source_texts_put_each_sentence_back_once_in_order(
    kb: KnowledgeBase, tmp_path: Path
) -> None:
    paths = write_sectioned_and_long(tmp_path / "docs")
    kb.ingest("joined", paths)
    placed = kb.placed_chunks_by_source("joined")
    for _, chunks in placed.values():
        assert all(c.part is not None and c.start is not None for c in chunks)
    ledger = placed[str(paths[1].resolve())][1]
    overlapping = [b.start < a.start + len(a.text) for a, b in itertools.pairwise(ledger)]
    assert any(overlapping) and not all(overlapping)  # overlaps, and a gap between paragraphs
    texts = kb.source_texts("joined")
    assert [split_sentences(t) for t in texts] == [split_sentences(p.read_text()) for p in paths]


def test_source_texts_of_chunks_stored_without_places_guess_the_overlaps(
    kb: KnowledgeBase, counting: CountingEmbedder, tmp_path: Path, monkeypatch
) -> None:
    """Chunks stored before their places were recorded are joined by their overlaps; a changed
    file is chunked anew with places, its unchanged chunks keeping their vectors."""
    almanac, _ = write_sectioned_and_long(tmp_path / "docs")
    plain = tmp_path / "docs" / "plain.txt"
    plain.write_text(
        " ".join(f"Note {i} says the {THINGS[i % 7]} at pier {i} was painted." for i in range(40))
    )
    chunk_documents = ingest.chunk_documents

    def without_places(*args, **kwargs):
        chunks = chunk_documents(*args, **kwargs)
        for chunk in chunks:
            for key in ("part", "start", "gap"):
                chunk.metadata.pop(key, None)
        return chunks

    monkeypatch.setattr(ingest, "chunk_documents", without_places)
    kb.ingest("old", [almanac, plain])
    for _, chunks in kb.placed_chunks_by_source("old").values():
        assert all(c.part is None and c.start is None for c in chunks)
    texts = kb.source_texts("old")
    assert [split_sentences(t) for t in texts] == [
        split_sentences(p.read_text()) for p in (almanac, plain)
    ]
    monkeypatch.undo()
    before = counting.embedded
    plain.write_text(plain.read_text() + " A last note says the owl left.")
    changed = kb.ingest("old", [plain])
    assert counting.embedded - before < changed.chunks_added, "unchanged chunks were re-embedded"
    chunks = kb.placed_chunks_by_source("old")[str(plain.resolve())][1]
    assert all(c.start is not None for c in chunks)
    assert split_sentences(kb.source_texts("old")[1]) == split_sentences(plain.read_text())


def test_folders_recurse_and_skip_hidden_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.md").write_text("# Deep")
    (tmp_path / "a" / ".git").mkdir()
    (tmp_path / "a" / ".git" / "HEAD.txt").write_text("ref")
    (tmp_path / "a" / "logo.png").write_bytes(b"png")
    write_pdf(tmp_path / "a" / "p.pdf", ["x"])
    assert [p.name for p in expand_paths([tmp_path / "a"])] == ["deep.md", "p.pdf"]
