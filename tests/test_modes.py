"""Retrieval modes on the real embedder and Chroma: dense, BM25 and hybrid (both fused)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.evaluation.questions import question_of
from bot.evaluation.runner import best_modes, compare, in_modes
from bot.resources import Resources
from bot.service import ChatService
from knowledge.knowledge_base import KnowledgeBase
from tests.cli import kbot
from tests.documents import ingest_texts

# A code that only a keyword match finds (the embedder likes the look-alike codes of stock.txt
# better), and a question worded unlike its answer: BM25 prefers tyres.txt, a shorter text that
# shares one of its words by chance, as bicycle.txt shares another.
DOCUMENTS = {
    "shipping.txt": "Shipping log for March: crate twelve held ZX-4471-Q and two boxes of nails.",
    "stock.txt": "Stock count: ZX4417Q, ZX4714Q and XZ7441Q are on the top shelf.",
    "fittings.txt": "Valve fittings: the outlet pipe of the new valves takes a brass fitting.",
    "bicycle.txt": "Repairing a punctured bike wheel: take out the inner tube, find the hole, "
    "patch it and inflate it again.",
    "car.txt": "Changing a car wheel: loosen the nuts, jack up the car and swap the wheel.",
    "tyres.txt": "Our flat-pack furniture ships with a tyre-shaped cushion; mount the legs first.",
    "kitchen.txt": "Kitchen tips: sharpen knives weekly and keep the chopping boards dry.",
}
KEYWORD = "ZX-4471-Q"
PARAPHRASE = "How can I fix a flat on my bike?"


@pytest.fixture()
def collection(resources: Resources, tmp_path: Path) -> tuple[KnowledgeBase, str]:
    knowledge = resources.knowledge
    return knowledge, ingest_texts(knowledge, tmp_path / "workshop", DOCUMENTS, "modes")


def top(knowledge: KnowledgeBase, name: str, query: str, mode: str, k: int = 1) -> list[str]:
    return [hit.source for hit in knowledge.search(name, query, k, mode)]


def test_hybrid_finds_both_keyword_matches_and_paraphrases(collection) -> None:
    knowledge, name = collection
    assert top(knowledge, name, KEYWORD, "dense") == ["stock.txt"]  # dense alone fails
    assert top(knowledge, name, KEYWORD, "bm25") == ["shipping.txt"]
    assert top(knowledge, name, KEYWORD, "hybrid") == ["shipping.txt"]
    assert top(knowledge, name, PARAPHRASE, "bm25") == ["tyres.txt"]  # BM25 alone fails
    assert top(knowledge, name, PARAPHRASE, "dense") == ["bicycle.txt"]
    assert top(knowledge, name, PARAPHRASE, "hybrid") == ["bicycle.txt"]
    wheels = knowledge.search(name, "wheel tube nuts", 5, "bm25")
    assert {hit.source for hit in wheels} == {"bicycle.txt", "car.txt"}
    assert [hit.score for hit in wheels] == sorted((hit.score for hit in wheels), reverse=True)
    assert top(knowledge, name, "the quokka of xylophones", "bm25", k=5) == []  # no word known
    many = knowledge.search_many(name, [KEYWORD, PARAPHRASE], 1, "hybrid")
    assert [[hit.source for hit in hits] for hits in many] == [["shipping.txt"], ["bicycle.txt"]]


def test_bm25_follows_deletion_replacement_and_restarts(
    collection, resources: Resources, tmp_path: Path
) -> None:
    knowledge, name = collection
    assert top(knowledge, name, "crate twelve nails", "bm25") == ["shipping.txt"]
    knowledge.forget(name, "shipping.txt")
    assert "shipping.txt" not in top(knowledge, name, KEYWORD, "bm25", k=5)
    assert top(knowledge, name, KEYWORD, "hybrid") == ["stock.txt"]

    changed = tmp_path / "kitchen.txt"
    changed.write_text("Kitchen tips: the spare ZX-4471-Q seal is kept in the cutlery drawer.")
    knowledge.ingest(name, [(changed, "kitchen.txt")])
    hits = knowledge.search(name, KEYWORD, 5, "bm25")
    assert [hit.source for hit in hits] == ["kitchen.txt"] and "cutlery" in hits[0].text
    assert top(knowledge, name, "sharpen knives chopping boards", "bm25", k=5) == []

    saved = sorted((knowledge.root / "collections" / name / "bm25").iterdir())
    assert len(saved) == 1  # the index of the version now committed, and no other
    restarted = KnowledgeBase(knowledge.root, knowledge.embedder)  # a new app on the same data
    for query in (KEYWORD, PARAPHRASE, "outlet pipe valves"):
        assert restarted.search(name, query, 3, "bm25") == knowledge.search(name, query, 3, "bm25")
    assert sorted((knowledge.root / "collections" / name / "bm25").iterdir()) == saved


def test_a_collection_keeps_its_mode_and_a_conversation_may_override_it(
    collection, resources: Resources
) -> None:
    knowledge, name = collection
    home = resources.settings.home
    listed = kbot("collections", "--set-mode", name, "bm25", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    row = {"collection": name, "documents": 7, "chunks": 7, "mode": "bm25"}
    assert row | {"embedder": "all-MiniLM-L6-v2"} in json.loads(listed.stdout)
    assert knowledge.mode(name) == "bm25"
    assert top(knowledge, name, PARAPHRASE, mode="") == ["tyres.txt"]  # the collection's mode
    retrieved = kbot(
        "retrieve", PARAPHRASE, "--collection", name, "--mode", "dense", "-k", "1", "--json",
        home=home,
    )  # fmt: skip
    assert [hit["source"] for hit in json.loads(retrieved.stdout)] == ["bicycle.txt"]
    wrong = kbot("collections", "--set-mode", name, "fuzzy", home=home)
    assert wrong.returncode != 0 and "Unknown retrieval mode 'fuzzy'" in wrong.stderr

    service = ChatService(resources)
    *_, reply = service.reply(KEYWORD, (), "rag", {"collection": name, "mode": "dense", "k": 1})
    assert [source["source"] for source in reply.sources] == ["stock.txt"]
    *_, reply = service.reply(KEYWORD, (), "rag", {"collection": name, "k": 1})
    assert [source["source"] for source in reply.sources] == ["shipping.txt"]


def test_kbot_eval_compares_retrieval_modes_side_by_side(
    collection, resources: Resources, tmp_path: Path
) -> None:
    knowledge, name = collection
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"question": KEYWORD, "answer": "crate twelve", "source": "shipping.txt"}) + "\n"
    )
    specs = f"rag:{name}:dense,rag:{name}:bm25"
    evaluated = kbot(
        "eval", "--questions", str(questions), "--backends", specs, "--json",
        home=resources.settings.home,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert [b["backend"] for b in report["backends"]] == specs.split(",")
    first_source = {
        a["backend"]: a["sources"][0] if a["sources"] else None for a in report["answers"]
    }
    assert first_source == {f"rag:{name}:dense": "stock.txt", f"rag:{name}:bm25": "shipping.txt"}


@pytest.mark.slow
def test_hyde_searches_near_an_answer_the_model_writes(collection, resources: Resources) -> None:
    knowledge, name = collection
    answer = resources.hypothetical_answer(PARAPHRASE)
    assert answer.strip()
    question_vector, answer_vector = knowledge.embedder.embed_documents([PARAPHRASE, answer])
    between = np.add(question_vector, answer_vector)
    expected = knowledge.search_vector(name, between / np.linalg.norm(between), 3)
    hyde = knowledge.search(name, PARAPHRASE, 3, "hyde")
    assert [h.source for h in hyde] == [h.source for h in expected]
    assert [h.score for h in hyde] == pytest.approx([h.score for h in expected], abs=1e-3)
    assert [h.score for h in hyde] != [h.score for h in knowledge.search(name, PARAPHRASE, 3)]
    retrieved = kbot(
        "retrieve", PARAPHRASE, "--collection", name, "--mode", "hyde", "-k", "3", "--json",
        home=resources.settings.home,
    )  # fmt: skip
    assert [hit["source"] for hit in json.loads(retrieved.stdout)] == [h.source for h in hyde]
    without_a_model = KnowledgeBase(knowledge.root, knowledge.embedder)
    with pytest.raises(ValueError, match="hyde mode needs a model"):
        without_a_model.search(name, PARAPHRASE, 3, "hyde")


def test_a_comparison_picks_each_collections_best_mode(
    collection, resources: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    knowledge, name = collection
    monkeypatch.setattr(resources.settings, "top_k", 1)  # RAG reads the first chunk only
    monkeypatch.setattr(resources.settings, "max_new_tokens", 12)  # what is found counts here
    service = ChatService(resources)
    specs = in_modes(service.registry, ["base", f"rag:{name}"], ["dense", "bm25"])
    assert specs == ["base", f"rag:{name}:dense", f"rag:{name}:bm25"]
    assert in_modes(service.registry, specs, ["hybrid"]) == specs  # modes already chosen
    record = {"question": KEYWORD, "answer": "crate twelve", "source": "shipping.txt"}
    comparison = compare(service, [question_of(record, 1)], specs)
    hits = {r.contender.spec: r.scores()["hit_at_k"] for r in comparison.results}
    assert hits == {"base": None, f"rag:{name}:dense": 0.0, f"rag:{name}:bm25": 1.0}
    assert best_modes(comparison) == {name: "bm25"}


@pytest.mark.slow
def test_questions_mode_matches_questions_the_model_wrote_for_each_chunk(
    collection, resources: Resources, tmp_path: Path
) -> None:
    knowledge, name = collection
    with pytest.raises(ValueError, match="no questions written yet"):
        knowledge.search(name, PARAPHRASE, 1, "questions")
    steps: list[str] = []
    knowledge.set_mode(name, "questions", lambda fraction, label: steps.append(label))
    assert knowledge.mode(name) == "questions" and "questions for chunk 7 of 7" in steps
    questions = knowledge._questions(name)
    written = {
        source: questions
        for (source, _), questions in knowledge._questions(name)
        .read({d["source"]: d["hash"] for d in knowledge.documents(name)})
        .items()
    }
    assert sorted(written) == sorted(DOCUMENTS) and all(
        q.endswith("?") for questions in written.values() for q in questions
    )
    assert top(knowledge, name, KEYWORD, "questions") == ["shipping.txt"]
    assert top(knowledge, name, PARAPHRASE, "questions") == ["bicycle.txt"]

    added = tmp_path / "boat.txt"
    added.write_text("Sanding a rowing boat: strip the old varnish before the spring regatta.")
    knowledge.ingest(name, [(added, "boat.txt")])  # the collection's mode writes its questions
    assert len(questions.written()) == len(DOCUMENTS) + 1
    knowledge.forget(name, "shipping.txt")
    assert "shipping.txt" not in top(knowledge, name, KEYWORD, "questions", k=8)
    # A new app on the same data, with no model: the questions are read, not written.
    restarted = KnowledgeBase(
        knowledge.root, knowledge.embedder, embedder_name=knowledge.embedder_name
    )
    for query in (KEYWORD, PARAPHRASE, "valve fitting"):
        assert top(restarted, name, query, "questions", 3) == top(
            knowledge, name, query, "questions", 3
        )


def test_questions_mode_finds_a_chunk_by_words_only_its_questions_hold(
    resources: Resources, tmp_path: Path
) -> None:
    # Questions given here rather than by the model, to know which words only they hold.
    def write_questions(text: str) -> list[str]:
        return ["Which part stops the gasket leaking?"] if "valve" in text else []

    knowledge = KnowledgeBase(tmp_path / "kb", resources.embedder, write_questions=write_questions)
    name = ingest_texts(knowledge, tmp_path / "docs", DOCUMENTS, "asked")
    knowledge.questions_max_chunks = len(DOCUMENTS) - 1  # a bound on the model's work
    with pytest.raises(ValueError, match="KBOT_QUESTIONS_MAX_CHUNKS"):
        knowledge.set_mode(name, "questions")
    assert knowledge.mode(name) == "dense"  # unchanged
    knowledge.questions_max_chunks = len(DOCUMENTS)
    knowledge.set_mode(name, "questions")
    assert top(knowledge, name, "gasket leaking", "bm25") == []  # no chunk holds these words
    assert top(knowledge, name, "gasket leaking", "questions") == ["fittings.txt"]
    assert top(knowledge, name, "gasket leaking", "hybrid") != ["fittings.txt"]
