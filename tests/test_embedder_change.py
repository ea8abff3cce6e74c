"""Moving a collection to another embedding model while it keeps answering. Only one embedder
ships offline, so a second one is derived from it: the packaged model followed by a fixed
random projection to 256 dimensions, saved as a sentence-transformers folder (what a user
would point the setting at)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.resources import Resources
from common.errors import Refused
from knowledge.embeddings import packaged_embedder_dir
from knowledge.knowledge_base import KnowledgeBase
from knowledge.manifest import store_key
from tests.cli import ROOT
from tests.documents import ingest_texts, squad_train_paragraphs
from tests.test_modes import DOCUMENTS, KEYWORD, PARAPHRASE


@pytest.fixture(scope="module")
def projected(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from sentence_transformers import SentenceTransformer, models

    base = SentenceTransformer(str(packaged_embedder_dir()), device="cpu")
    projection = models.Dense(384, 256, bias=False, activation_function=torch.nn.Identity())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        projection.linear.weight.copy_(torch.randn(256, 384, generator=generator) / 384**0.5)
    folder = tmp_path_factory.mktemp("embedder") / "minilm-256"
    SentenceTransformer(modules=[*base, projection, models.Normalize()]).save(str(folder))
    return str(folder)


def fill(knowledge: KnowledgeBase, folder: Path, paragraphs: int) -> str:
    """A collection of the workshop documents and `paragraphs` SQuAD train paragraphs."""
    texts = dict(DOCUMENTS)
    for row in squad_train_paragraphs()[:paragraphs]:
        texts[f"{row['id']}.txt"] = row["text"]
    return ingest_texts(knowledge, folder, texts, "emb")


def index_of(knowledge: KnowledgeBase, name: str) -> str:
    return store_key(name, knowledge._committed(name))


@pytest.mark.slow
def test_a_collection_moves_to_another_embedder_while_it_answers(
    resources: Resources, projected: str, tmp_path: Path
) -> None:
    # Small embedding batches: the build reports progress (and is asked during) many times.
    knowledge = Resources(resources.settings.model_copy(update={"embed_batch_size": 4})).knowledge
    name = fill(knowledge, tmp_path / "docs", 80)
    before = index_of(knowledge, name)
    assert knowledge.store.dimensions(before) == {384}
    answers: list[list[str]] = []

    def ask() -> None:
        try:
            answers.append([h.source for h in knowledge.search(name, PARAPHRASE, 1, "dense")])
        except Exception as error:  # a query that fails during the change fails the test
            answers.append([repr(error)])

    # While the new index is built, a document is added and another forgotten, and at every
    # step of the build another thread asks (and must get its answer, not wait for the end).
    added = tmp_path / "scooter.txt"
    added.write_text("Scooter care: oil the folding hinge of the QV-9 scooter every month.")
    steps: list[float] = []

    def progress(fraction: float, label: str) -> None:
        if not steps:
            knowledge.ingest(name, [(added, "scooter.txt")])
            knowledge.forget(name, "kitchen.txt")
            with pytest.raises(Refused, match="already changing embedder"):
                knowledge.change_embedder(name, projected)  # a second change at once
        steps.append(fraction)
        asker = threading.Thread(target=ask)
        asker.start()
        asker.join(timeout=60)

    changed = knowledge.change_embedder(name, projected, progress)
    assert changed["changed"] and changed["embedder"] == projected
    assert len(steps) > 3 and len(answers) == len(steps)  # answered throughout
    assert all(a == ["bicycle.txt"] for a in answers)

    after = index_of(knowledge, name)
    assert after != before and knowledge.store.indexes(name) == [after]  # the old is gone
    assert knowledge.store.dimensions(after) == {256}  # one model's vectors only
    assert knowledge.store.count(after) == knowledge.stats(name)["chunks"]
    assert knowledge.embedder_name_of(name) == projected
    assert knowledge.search(name, PARAPHRASE, 1, "dense")[0].source == "bicycle.txt"
    assert knowledge.search(name, "QV-9 folding hinge", 1, "dense")[0].source == "scooter.txt"
    sources = {h.source for h in knowledge.search(name, "sharpen knives chopping boards", 5)}
    assert "kitchen.txt" not in sources
    assert knowledge.search(name, KEYWORD, 1, "hybrid")[0].source == "shipping.txt"

    # Later ingestion embeds with the collection's model; a restarted app reads it too.
    (tmp_path / "later.txt").write_text("The lathe in bay four needs a new drive belt.")
    knowledge.ingest(name, [(tmp_path / "later.txt", "later.txt")])
    assert knowledge.store.dimensions(after) == {256}
    restarted = Resources(resources.settings).knowledge
    assert restarted.search(name, "lathe drive belt", 1)[0].source == "later.txt"
    again = knowledge.change_embedder(name, projected)
    assert not again["changed"]


@pytest.mark.slow
def test_a_killed_change_leaves_the_old_index_serving(
    resources: Resources, projected: str, tmp_path: Path
) -> None:
    knowledge = resources.knowledge
    name = fill(knowledge, tmp_path / "docs", 60)
    before = index_of(knowledge, name)
    expected = knowledge.search(name, PARAPHRASE, 3)
    command = [sys.executable, "-m", "bot.cli", "collections", "--set-embedder", name,
               projected, "--home", str(resources.settings.home)]  # fmt: skip
    # Small batches: the build takes a while and stores its first chunks early.
    slow = os.environ | {"KBOT_EMBED_BATCH_SIZE": "2"}
    change = subprocess.Popen(command, cwd=ROOT, env=slow, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(knowledge.store.indexes(name)) < 2 and time.monotonic() < deadline:
        assert change.poll() is None, "the change ended before it could be killed"
        time.sleep(0.05)
    assert len(knowledge.store.indexes(name)) == 2  # the new index is being built
    change.send_signal(signal.SIGKILL)
    change.wait()

    assert index_of(knowledge, name) == before and knowledge.embedder_name_of(name) != projected
    assert knowledge.search(name, PARAPHRASE, 3) == expected  # the old index serves
    assert knowledge.store.dimensions(before) == {384}
    finished = knowledge.change_embedder(name, projected)
    assert finished["changed"] and knowledge.store.indexes(name) == [index_of(knowledge, name)]
    assert knowledge.search(name, PARAPHRASE, 1)[0].source == "bicycle.txt"


def test_a_model_that_cannot_load_changes_nothing(resources: Resources, tmp_path: Path) -> None:
    knowledge = resources.knowledge
    name = fill(knowledge, tmp_path / "docs", 0)
    before = index_of(knowledge, name)
    with pytest.raises(Exception, match="no-such-model"):
        knowledge.change_embedder(name, str(tmp_path / "no-such-model"))
    assert index_of(knowledge, name) == before and knowledge.store.indexes(name) == [before]
    assert knowledge.search(name, PARAPHRASE, 1)[0].source == "bicycle.txt"
