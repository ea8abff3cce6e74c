"""App replicas on one Chroma server: each has its own KBOT_HOME (as on another machine), and
they see each other's ingestions, deletions, mode changes and written questions, take turns on
writes, and keep serving the committed version when one is killed in the middle of a write."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from filelock import Timeout
from langchain_core.embeddings import Embeddings

from bot.settings import Settings
from knowledge import records
from knowledge.embeddings import load_embedder
from knowledge.knowledge_base import KnowledgeBase
from knowledge.loaders import expand_paths
from knowledge.results import UnknownCollectionError
from tests.cli import kbot_process
from tests.documents import write_facts
from tests.test_knowledge import CONCURRENT_INGEST, KILL_DURING_WRITE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def embedder(settings: Settings) -> Embeddings:
    return load_embedder(settings.embedder, settings.embed_dtype, settings.embed_batch_size)


def replica(home: Path, embedder: Embeddings, url: str, **options: int) -> KnowledgeBase:
    return KnowledgeBase(home / "knowledge", embedder, chroma_url=url, **options)


def names(hits: list[dict]) -> list[str]:
    return [Path(hit["source"]).name for hit in hits]


@pytest.mark.slow
def test_replicas_see_each_others_ingestions_modes_removals_and_deletions(
    chroma_server: str, embedder: Embeddings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KBOT_CHROMA_URL", chroma_server)
    docs, home_a, home_b = tmp_path / "docs", tmp_path / "a", tmp_path / "b"
    write_facts(docs)

    def b(*args: str) -> subprocess.CompletedProcess:
        return kbot_process(*args, home=home_b)

    def b_json(*args: str) -> list[dict]:
        done = b(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    a = replica(home_a, embedder, chroma_server)
    a.ingest("facts", expand_paths([docs]))
    assert b_json("collections") == [
        {
            "collection": "facts",
            "documents": 7,
            "chunks": a.stats("facts")["chunks"],
            "mode": "hybrid",
            "embedder": "all-MiniLM-L6-v2",
        }
    ]
    search = ("retrieve", "What colour do glimmerfish glow at night?", "--collection", "facts")
    assert names(b_json(*search, "-k", "1")) == ["lake.md"]

    done = b("collections", "--set-mode", "facts", "bm25")
    assert done.returncode == 0, done.stderr
    assert a.mode("facts") == "bm25"
    a.search("facts", "glimmerfish", 3)  # A builds its BM25 index of this version

    done = b("forget", "--collection", "facts", "--source", "lake.md")
    assert done.returncode == 0, done.stderr
    assert len(a.documents("facts")) == 6
    assert "lake.md" not in [Path(h.source).name for h in a.search("facts", "glimmerfish", 7)]

    a.delete("facts")
    assert b_json("collections") == []
    gone = b(*search)
    assert gone.returncode != 0 and "Unknown collection 'facts'" in gone.stderr
    assert not list(home_b.rglob("*.sqlite3"))  # B keeps nothing of it but caches


@pytest.mark.slow
def test_questions_written_by_one_replica_serve_the_other(
    chroma_server: str, embedder: Embeddings, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_facts(docs)
    # Questions given here rather than by the model, to know which words only they hold.
    asked = {"lake.md": "Which lake creatures shine like lamps?"}

    def write_questions(text: str) -> list[str]:
        return [asked["lake.md"]] if "glimmerfish" in text else ["What else?"]

    a = KnowledgeBase(tmp_path / "a", embedder, chroma_url=chroma_server)
    a.write_questions = write_questions
    a.ingest("facts", expand_paths([docs]))
    a.set_mode("facts", "questions")
    b = KnowledgeBase(tmp_path / "b", embedder, chroma_url=chroma_server)
    assert b.mode("facts") == "questions"
    hits = b.search("facts", "shine like lamps", 1)  # words only the question holds
    assert Path(hits[0].source).name == "lake.md"
    assert [h.text for h in hits] == [h.text for h in a.search("facts", "shine like lamps", 1)]


@pytest.mark.slow
def test_two_replicas_ingesting_at_once_lose_and_duplicate_nothing(
    chroma_server: str, embedder: Embeddings, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_facts(docs)
    for i in range(6):
        (docs / f"extra{i}.txt").write_text(f"Extra fact {i}: the number {i} is lucky in Quillby.")
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CONCURRENT_INGEST,
                str(tmp_path / home),
                str(docs),
                chroma_server,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for home in ("a", "b")
    ]
    added = [int(w.communicate(timeout=300)[0].strip().splitlines()[-1]) for w in workers]
    expected = KnowledgeBase(tmp_path / "solo", embedder, chunk_size=400).ingest(
        "facts", expand_paths([docs])
    )
    assert sum(added) == expected.chunks_added
    kb = replica(tmp_path / "c", embedder, chroma_server)
    assert kb.store.count("facts") == expected.chunks_added
    stored = kb.store._collection("facts").get(include=["metadatas"])["metadatas"]
    keys = [(m["source"], m["chunk_index"]) for m in stored]
    assert len(keys) == len(set(keys))
    assert len(kb.documents("facts")) == len(expand_paths([docs]))


@pytest.mark.slow
def test_a_replica_killed_mid_ingestion_leaves_the_other_serving_the_committed_version(
    chroma_server: str, embedder: Embeddings, tmp_path: Path
) -> None:
    b = replica(tmp_path / "b", embedder, chroma_server, chunk_size=200)
    doc = tmp_path / "notes.txt"
    doc.write_text("The old password is heron.")
    b.ingest("facts", [(doc, "notes.txt")])
    doc.write_text("\n\n".join(f"New paragraph {i} says the password is otter." for i in range(40)))
    died = subprocess.run(
        [sys.executable, "-c", KILL_DURING_WRITE, str(tmp_path / "a"), str(doc), chroma_server],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert died.returncode == -9, died.stderr
    assert [h.text for h in b.search("facts", "password", 5)] == ["The old password is heron."]
    # The killed replica's lease on the collection runs out; then B's write sweeps the
    # half-written version away and puts the new one in whole.
    started = time.monotonic()
    result = b.ingest("facts", [(doc, "notes.txt")])
    assert time.monotonic() - started < records.LEASE_SECONDS + 30
    assert result.errors == [] and b.store.count("facts") == result.chunks_added
    assert all("otter" in h.text for h in b.search("facts", "password", 5))


def test_a_lease_lets_one_holder_in_at_a_time(
    chroma_server: str, embedder: Embeddings, tmp_path: Path
) -> None:
    table = replica(tmp_path / "a", embedder, chroma_server).store.records_table()
    inside, overlaps, entered = [0], [0], [0]

    def work() -> None:
        for _ in range(5):
            with records.Lease(table, "facts", ".lock"):
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                time.sleep(0.01)
                inside[0] -= 1
                entered[0] += 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert entered[0] == 20 and overlaps[0] == 0
    held = records.Lease(table, "facts", ".lock").acquire()
    with pytest.raises(Timeout):
        records.Lease(table, "facts", ".lock").acquire(timeout=0.2)
    held.release()
    records.Lease(table, "facts", ".lock").acquire(timeout=0.2).release()


def test_unknown_collections_on_a_server_are_named_in_the_error(
    chroma_server: str, embedder: Embeddings, tmp_path: Path
) -> None:
    kb = replica(tmp_path / "a", embedder, chroma_server)
    with pytest.raises(UnknownCollectionError, match="Unknown collection 'nope'"):
        kb.search("nope", "anything", 1)


def test_collections_an_earlier_version_kept_beside_a_server_move_into_it(
    chroma_server: str, embedder: Embeddings, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    write_facts(docs)
    kb = replica(tmp_path / "a", embedder, chroma_server)
    kb.ingest("facts", expand_paths([docs]))
    kb.set_mode("facts", "bm25")
    # As an earlier version left it: the chunks in the server, the records in KBOT_HOME.
    folder = records.FolderRecords(kb.root / "collections" / "facts")
    shared = kb.records.of("facts")
    for entry in ("manifest.json", "mode"):
        found = shared.read(entry)
        assert found is not None
        folder.write(entry, found[1])
    shared.remove_all()
    assert kb.collections() == []

    upgraded = replica(tmp_path / "a", embedder, chroma_server)
    assert upgraded.collections() == ["facts"] and upgraded.mode("facts") == "bm25"
    assert len(upgraded.documents("facts")) == 7
    assert Path(upgraded.search("facts", "glimmerfish", 1)[0].source).name == "lake.md"
    upgraded.delete("facts")  # and a deleted collection stays deleted after a restart
    assert replica(tmp_path / "a", embedder, chroma_server).collections() == []
