"""Comparing backends: question files, scores, the RAG+LoRA backend, generated Q/A pairs,
`kbot eval` and its report. The model, embedder, Chroma and training are all real."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from adapters.data import load_records
from bot.backends import BackendError, default_registry
from bot.evaluation.questions import QuestionFileError, load_questions
from bot.evaluation.runner import ask_all
from bot.evaluation.scoring import answer_scores, same_source
from bot.resources import Resources
from bot.service import ChatService
from bot.training import generate_questions
from tests.cli import kbot
from tests.documents import FACT_QA

SPECS = "base,rag:{c},lora:{a},full:{f},rag+lora:{c}:{a}"


@pytest.fixture(scope="module")
def fact_docs(resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The invented facts as documents, one per file, in collection "eval-facts"."""
    folder = tmp_path_factory.mktemp("fact-docs")
    for number, (_, sentence) in enumerate(FACT_QA):
        (folder / f"fact{number}.txt").write_text(sentence + "\n")
    result = resources.knowledge.ingest("eval-facts", sorted(folder.iterdir()))
    assert result.errors == []
    return "eval-facts"


@pytest.fixture(scope="module")
def questions_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each fact asked as a question, with its short answer and its source document."""
    short = ["Orla Fennimore", "bright orange", "purple quinces", "the Heron"]
    path = tmp_path_factory.mktemp("questions") / "facts-questions.jsonl"
    path.write_text(
        "".join(
            json.dumps({"question": q, "answers": [answer], "source": f"fact{n}.txt"}) + "\n"
            for n, ((q, _), answer) in enumerate(zip(FACT_QA, short, strict=True))
        )
    )
    return path


# Question files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ('{"question": "Q?", "answer": "A"}\n{"question": "Q2?"\n', r"line 2: broken JSON"),
        ('{"question": "Q?", "answer": "A"}\n\n{"question": "Q3?"}\n', r"line 3: missing \"answer"),
        ('{"answer": "A"}\n', r"line 1: \"question\" must be a non-empty string"),
        ('{"question": "Q?", "answers": []}\n', r"line 1: \"answers\" must be a non-empty list"),
        ('{"question": "Q?", "answers": ["A", 3]}\n', r"line 1: \"answers\[\]\" must be"),
        ('["Q?", "A"]\n', r"line 1: expected a JSON object"),
        ("\n\n", r"has no questions"),
    ],
)
def test_bad_question_files_name_the_line(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "questions.jsonl"
    path.write_text(content)
    with pytest.raises(QuestionFileError, match=error):
        load_questions(path)


def test_binary_huge_and_missing_question_files_are_clear_errors(tmp_path: Path) -> None:
    binary = tmp_path / "q.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(QuestionFileError, match="not UTF-8"):
        load_questions(binary)
    huge = tmp_path / "huge.jsonl"
    huge.write_text('{"question": "Q?", "answer": "A"}\n' * 100)
    with pytest.raises(QuestionFileError, match="the limit is"):
        load_questions(huge, max_bytes=1000)
    with pytest.raises(QuestionFileError, match="Cannot read"):
        load_questions(tmp_path / "missing.jsonl")


def test_scores_follow_squad_and_sources_match_by_path_suffix() -> None:
    assert answer_scores("The Heron.", ["Heron"]) == {"em": 1.0, "f1": 1.0, "contains": 1.0}
    scores = answer_scores("It is called the Heron, a ship.", ["the Heron", "Heron II"])
    assert scores["em"] == 0.0 and scores["contains"] == 1.0 and 0 < scores["f1"] < 1
    assert answer_scores("Orange", ["bright orange"])["contains"] == 0.0
    assert same_source("fact1.txt", "/data/docs/fact1.txt")
    assert same_source("docs/fact1.txt", "/data/docs/fact1.txt")
    assert not same_source("act1.txt", "/data/docs/fact1.txt")
    assert not same_source("other/fact1.txt", "/data/docs/fact1.txt")


def test_backend_specs_are_parsed_and_checked() -> None:
    registry = default_registry()
    backend, options = registry.parse_spec("rag+lora:docs:my-adapter")
    assert backend.id == "rag+lora" and options == {"collection": "docs", "adapter": "my-adapter"}
    assert registry.parse_spec("base")[1] == {}
    assert registry.parse_spec("rag:docs:bm25")[1] == {"collection": "docs", "mode": "bm25"}
    with pytest.raises(BackendError, match=r"expected 'rag:COLLECTION:\[MODE\]'"):
        registry.parse_spec("rag")
    with pytest.raises(BackendError, match="malformed"):
        registry.parse_spec("rag:docs:bm25:more")
    with pytest.raises(BackendError, match="Unknown backend 'rug'"):
        registry.parse_spec("rug:docs")
    with pytest.raises(BackendError, match="empty value"):
        registry.parse_spec("lora:")


# Comparing ------------------------------------------------------------------------------


class _ReportTable(HTMLParser):
    """The first column of the report's score table, as a reader sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.in_scores = self.in_body = False
        self.cells: list[str] = []
        self.first_cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table" and ("id", "scores") in attrs:
            self.in_scores = True
        if self.in_scores and tag == "tbody":
            self.in_body = True
        if self.in_body and tag == "tr":
            self.cells = []
        if self.in_body and tag == "td":
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None
        if self.in_body and tag == "tr":
            self.first_cells.append(self.cells[0])
        if tag == "table":
            self.in_scores = self.in_body = False


@pytest.mark.slow
def test_kbot_eval_scores_every_backend_and_writes_the_report(
    resources: Resources,
    fact_docs: str,
    lora: str,
    full: str,
    questions_file: Path,
    tmp_path: Path,
) -> None:
    specs = SPECS.format(c=fact_docs, a=lora, f=full)
    report = tmp_path / "report" / "compare.html"
    result = kbot(
        "eval",
        "--questions",
        str(questions_file),
        "--backends",
        specs,
        "--json",
        "--report",
        str(report),
        "--max-new-tokens",
        "48",
        "--temperature",
        "0",
        home=resources.settings.home,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    rows = {row["backend"]: row for row in data["backends"]}
    assert list(rows) == specs.split(",")
    scores = {spec: row["scores"] for spec, row in rows.items()}
    base, rag, trained = scores["base"], scores[f"rag:{fact_docs}"], scores[f"lora:{lora}"]
    # The invented facts are unknown to the base model; retrieval and training both teach them.
    for better in (rag, trained, scores[f"rag+lora:{fact_docs}:{lora}"]):
        assert better["f1"] > base["f1"] and better["contains"] > base["contains"]
    assert rag["hit_at_k"] == 1.0 and base["hit_at_k"] is None
    for row in scores.values():
        assert row["questions"] == 4 and 0 < row["latency_p50_s"] <= row["latency_p95_s"]
        assert row["tokens_per_s"] > 0

    costs = {spec: row["costs"] for spec, row in rows.items()}
    assert costs["base"] == {}
    assert costs[f"rag:{fact_docs}"]["index_bytes"] > 0
    assert costs[f"rag:{fact_docs}"]["ingest_seconds"] > 0
    meta = resources.artifacts.meta(lora)
    assert costs[f"lora:{lora}"]["trainable_params"] == meta.trainable_params
    assert costs[f"full:{full}"]["artifact_bytes"] > 10 * costs[f"lora:{lora}"]["artifact_bytes"]
    assert costs[f"rag+lora:{fact_docs}:{lora}"]["train_seconds"] == meta.train_seconds
    assert len(data["answers"]) == 5 * 4

    html = report.read_text()
    table = _ReportTable()
    table.feed(html)
    assert table.first_cells == specs.split(",")
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', html)) == 2
    assert "http" not in html.split("<body>")[1]  # self-contained: nothing to fetch


@pytest.mark.slow
def test_eval_rejects_unknown_adapters_and_bad_question_files_before_running(
    resources: Resources, fact_docs: str, questions_file: Path, tmp_path: Path
) -> None:
    def kbot_eval(questions: Path, backends: str) -> subprocess.CompletedProcess:
        return kbot(
            "eval",
            "--questions",
            str(questions),
            "--backends",
            backends,
            home=resources.settings.home,
        )

    result = kbot_eval(questions_file, f"base,lora:nope,rag:{fact_docs}")
    assert result.returncode == 2 and "nope" in result.stderr and result.stdout == ""
    result = kbot_eval(questions_file, "base,rag:../etc")
    assert result.returncode == 2 and "Invalid collection name" in result.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "Q?", "answer": "A"}\n{"question": \n')
    result = kbot_eval(broken, "base")
    assert result.returncode == 2 and "broken.jsonl, line 2: broken JSON" in result.stderr


@pytest.mark.slow
def test_rag_lora_is_a_backend_of_its_own(
    resources: Resources, fact_docs: str, lora: str, full: str
) -> None:
    service = ChatService(resources)
    reply = list(
        service.reply(
            "What colour is the Tollow bridge?",
            backend="rag+lora",
            options={"collection": fact_docs, "adapter": lora, "k": 2},
        )
    )[-1]
    assert "orange" in reply.answer.lower()
    assert Path(reply.sources[0]["source"]).name == "fact1.txt" and len(reply.sources) == 2
    with pytest.raises(BackendError, match="a full artifact, not a lora one"):
        options = {"collection": fact_docs, "adapter": full}
        list(service.reply("hi", backend="rag+lora", options=options))


@pytest.mark.slow
def test_ask_all_answers_one_question_with_every_backend_side_by_side(
    resources: Resources, fact_docs: str, lora: str
) -> None:
    specs = ["base", f"rag:{fact_docs}", f"lora:{lora}"]
    snapshots = list(ask_all(ChatService(resources), "Which fruit does Emberfield export?", specs))
    final = snapshots[-1]
    assert [reply.backend for reply in final] == specs and all(r.done for r in final)
    assert "quince" not in final[0].answer.lower()
    assert all("quince" in reply.answer.lower() for reply in final[1:])
    assert final[1].sources and not final[2].sources
    # Streamed: the first backend's answer grows before the second starts.
    assert any(s[0].answer and not s[0].done for s in snapshots)


# Documents to training data -------------------------------------------------------------


@pytest.mark.slow
def test_generated_pairs_come_from_the_collection_text(resources: Resources, tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "varnu.md").write_text(
        "# Lake Varnu\n\nGlimmerfish live only in the cold waters of lake Varnu. At night the "
        "glimmerfish glow a deep cobalt blue.\n\n## Boats\n\nThe ferry across lake Varnu "
        "leaves every morning at seven from the northern pier.\n"
    )
    (folder / "kettles.txt").write_text(
        "Copper kettles from Brassmoor whistle in the key of F sharp. Brassmoor smiths polish "
        "every kettle with lemon juice before it is sold.\n"
    )
    resources.knowledge.ingest("qa-source", sorted(folder.iterdir()))
    progress: list[float] = []
    counts: dict[str, int] = {}
    path, pairs = generate_questions(
        resources,
        "qa-source",
        per_chunk=2,
        progress=lambda f, _: progress.append(f),
        counts=counts,
    )
    assert path == resources.settings.questions_dir / "qa-source.jsonl"
    assert len(pairs) >= 3 and progress[-1] == 1.0
    assert counts["written"] == len(pairs) + counts["dropped_by_round_trip"]
    chunks = resources.knowledge.chunks("qa-source")
    for pair in pairs:
        assert pair["question"].endswith("?")
        # Every pair's sentence is in the chunk text of the source it names, and its answer
        # is a span of that sentence.
        assert any(pair["sentence"] in text for source, text in chunks if source == pair["source"])
        assert pair["answer"] in pair["sentence"]
    # The reader picks short answers out of the sentences: most are not whole sentences.
    short = [p for p in pairs if len(p["answer"]) < len(p["sentence"])]
    assert len(short) * 2 >= len(pairs), pairs
    assert {Path(p["source"]).name for p in pairs} == {"varnu.md", "kettles.txt"}
    # The file is both a question set for `kbot eval` and training data for `kbot train`.
    assert [q.question for q in load_questions(path)] == [p["question"] for p in pairs]
    assert len(load_records(path)) == len(pairs)


@pytest.mark.slow
def test_cli_qa_names_an_unknown_collection(resources: Resources) -> None:
    result = kbot("qa", "--collection", "nope", home=resources.settings.home)
    assert result.returncode == 2 and "Unknown collection 'nope'" in result.stderr
