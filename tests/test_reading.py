"""What the reader sees: sentences chosen from retrieved chunks with the real embedder, the
prompt around them, and how evidence is shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from adapters.data import load_records
from adapters.reader import (
    ReadingQuestion,
    calibrate_decline_bias,
    declined_share,
    reader_records,
    write_squad_paragraphs,
)
from bot.app import _evidence_markdown, escape_markdown
from bot.service import history_messages
from bot.settings import Settings
from knowledge.embeddings import load_embedder
from knowledge.knowledge_base import KnowledgeBase
from knowledge.reading import NOT_IN_DOCUMENTS, Evidence, reader_messages, select_evidence
from knowledge.results import Hit
from knowledge.statements import row_statement, statements
from knowledge.text import split_sentences
from tests.cli import kbot

LIGHTHOUSE = (
    "The Korrin lighthouse stands on the northern cape. It was built in 1852 from grey "
    "granite.\nThe keeper is named Elspeth Varrow. The lamp is lit every evening at seven."
)


@pytest.fixture(scope="module")
def embedder(settings: Settings) -> Embeddings:
    return load_embedder(settings.embedder, settings.embed_dtype, settings.embed_batch_size)


def test_sentences_split_at_ends_and_line_breaks() -> None:
    assert split_sentences(LIGHTHOUSE) == [
        "The Korrin lighthouse stands on the northern cape.",
        "It was built in 1852 from grey granite.",
        "The keeper is named Elspeth Varrow.",
        "The lamp is lit every evening at seven.",
    ]


# A manual as people write them: headings, a wrapped paragraph, a list, a table, a command.
MANUAL = """# Heron kettle

## Descaling

Descale the kettle once a month with a mix of water and vinegar, then boil clean water twice
before you use it again.

## Error codes

- E1: the kettle is empty.
- E3: the lid is open, or the
  lid sensor is dirty.

## Power

| Model | Watts | Cord length |
|---|---|---|
| Heron S | 1800 | 75 cm |
| Heron L | 2200 | 1 m |

To reset the timer, run:

```
heron reset --timer
```
"""


def test_structured_text_gives_statements_with_what_gives_them_meaning() -> None:
    found = [(s.text, s.section) for s in statements(MANUAL)]
    assert found == [
        (
            "Descale the kettle once a month with a mix of water and vinegar, then boil clean "
            "water twice before you use it again.",
            "Heron kettle > Descaling",
        ),
        ("Error codes > E1: the kettle is empty.", "Heron kettle > Error codes"),
        (
            "Error codes > E3: the lid is open, or the lid sensor is dirty.",
            "Heron kettle > Error codes",
        ),
        ("Model: Heron S; Watts: 1800; Cord length: 75 cm", "Heron kettle > Power"),
        ("Model: Heron L; Watts: 2200; Cord length: 1 m", "Heron kettle > Power"),
        ("To reset the timer, run: heron reset --timer", "Heron kettle > Power"),
    ]  # no heading is a statement; the wrapped sentence is whole


def test_a_chunk_names_its_own_sections_once() -> None:
    chunk = "## Error codes\n\n- E1: the kettle is empty."
    (item,) = statements(chunk, "Heron kettle > Error codes")
    assert (item.text, item.section) == (
        "Error codes > E1: the kettle is empty.",
        "Heron kettle > Error codes",
    )
    title = "Error codes\n===========\n\nE1 means the kettle is empty."
    assert [(s.text, s.section) for s in statements(title, "Heron kettle")] == [
        ("E1 means the kettle is empty.", "Error codes")
    ]


def test_a_list_item_or_table_row_is_evidence_with_its_heading(embedder: Embeddings) -> None:
    hits = [Hit("heron.md", MANUAL, 0.5, location="Heron kettle")]
    (item,) = select_evidence(embedder, "Which error code means the kettle is empty?", hits, 1)
    assert (item.text, item.location) == (
        "Error codes > E1: the kettle is empty.",
        "Heron kettle > Error codes",
    )
    (row,) = select_evidence(embedder, "How many watts does the Heron L have?", hits, 1)
    assert row.text == "Model: Heron L; Watts: 2200; Cord length: 1 m"
    (command,) = select_evidence(embedder, "Which command resets the timer?", hits, 1)
    assert command.text.endswith("heron reset --timer")


def test_a_question_after_several_things_reads_each_of_them(embedder: Embeddings) -> None:
    hours = "# Opening hours\n\n- Monday: closed\n- Tuesday: 9:00-17:00\n- Sunday: closed\n"
    hits = [Hit("library.md", hours, 0.5, location="Library")]
    one = select_evidence(embedder, "When does the library open on Tuesday?", hits, 1)
    several = select_evidence(embedder, "Which days is the library closed?", hits, 1)
    assert len(one) == 1
    assert {e.text for e in several} == {
        "Opening hours > Monday: closed",
        "Opening hours > Sunday: closed",
    }


def test_a_table_row_leaves_out_its_empty_cells() -> None:
    assert row_statement("Horse: Bootmaker\nTrainer:\nTime: 1:52\n") == (
        "Horse: Bootmaker; Time: 1:52"
    )


def test_the_answering_sentence_is_chosen_with_its_source(embedder: Embeddings) -> None:
    hits = [
        Hit(
            "notes/weather.txt", "It rained all week in Quillby. The wind came from the west.", 0.4
        ),
        Hit("docs/lighthouse.md", LIGHTHOUSE, 0.3, location="Korrin"),
    ]
    (best,) = select_evidence(embedder, "Who is the keeper of the lighthouse?", hits, 1)
    assert best.text == "The keeper is named Elspeth Varrow."
    assert (best.source, best.passage, best.location) == ("docs/lighthouse.md", 2, "Korrin")


def test_a_sentence_that_leans_on_the_one_before_keeps_it(embedder: Embeddings) -> None:
    hits = [Hit("lighthouse.md", LIGHTHOUSE, 0.5)]
    (best,) = select_evidence(embedder, "When was the Korrin lighthouse built?", hits, 1)
    assert best.text == (
        "The Korrin lighthouse stands on the northern cape. It was built in 1852 from grey granite."
    )


def test_a_heading_that_matches_the_question_does_not_stand_for_its_section(
    embedder: Embeddings,
) -> None:
    text = (
        "# The Tallow ferry  \nThe Tallow ferry crosses the Brenn estuary. Its captain is Ilsa "
        "Morrow, and the crossing takes 35 minutes."
    )
    hits = [Hit("ferry.md", text, 0.5)]
    evidence = select_evidence(embedder, "Who is the captain of the Tallow ferry?", hits, 2)
    assert any("Ilsa Morrow" in e.text for e in evidence), evidence


def test_the_section_a_sentence_stands_in_counts_towards_it(embedder: Embeddings) -> None:
    hits = [
        Hit("kettles.md", "## Copper kettles\n\nThey usually live for 30 years.", 0.5),
        Hit("owls.md", "## Saffron owls\n\nThey can reach 15 years of age.", 0.5),
    ]
    question = "How long do saffron owls live?"
    (best,) = select_evidence(embedder, question, hits, 1)
    assert (best.text, best.location) == ("They can reach 15 years of age.", "Saffron owls")
    # Matched alone, the sentence that shares a word with the question wins.
    (alone,) = select_evidence(embedder, question, hits, 1, section_weight=0)
    assert alone.text == "They usually live for 30 years."


def test_count_zero_gives_the_whole_chunks(embedder: Embeddings) -> None:
    hits = [Hit("a.md", "First chunk.", 0.9), Hit("b.md", "Second chunk.", 0.8)]
    evidence = select_evidence(embedder, "anything", hits, 0)
    assert [e.text for e in evidence] == ["First chunk.", "Second chunk."]


def test_the_prompt_numbers_passages_and_asks_for_a_short_answer() -> None:
    evidence = [Evidence("The keeper is named\nElspeth Varrow.", "a.md", 2, 0.7)]
    system, user = reader_messages(" Who keeps it? ", evidence)
    assert system["role"] == "system" and NOT_IN_DOCUMENTS in system["content"]
    assert user["content"] == (
        "Passages:\n[2] The keeper is named Elspeth Varrow.\n\nQuestion: Who keeps it?"
    )


def test_evidence_is_shown_as_text_and_left_out_of_the_history() -> None:
    shown = escape_markdown("![pixel](http://evil.example/p.png) **bold** <b>x</b>")
    assert "![" not in shown and "](" not in shown and "**" not in shown and "<b>" not in shown
    evidence = [{"text": "The keeper is Elspeth.", "source": "/srv/docs/light.md", "passage": 1}]
    answer = "Elspeth Varrow" + _evidence_markdown(evidence)
    assert "light\\.md" in answer and "/srv/docs" not in answer
    history = [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": answer}]
    assert [m.content for m in history_messages(history)] == ["Who?", "Elspeth Varrow"]


def write_squad(folder: Path) -> Path:
    paragraphs = [
        ("Korrin_0", "The Korrin lighthouse keeper is named Elspeth Varrow."),
        ("Korrin_1", "The Korrin lamp is lit every evening at seven."),
        ("Tollow_0", "The Tollow bridge is painted bright orange."),
    ]
    questions = [
        ("Who keeps the Korrin lighthouse?", "Elspeth Varrow", "Korrin_0"),
        ("When is the Korrin lamp lit?", "every evening at seven", "Korrin_1"),
        ("What colour is the Tollow bridge?", "bright orange", "Tollow_0"),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "paragraphs.jsonl").write_text(
        "".join(json.dumps({"id": i, "title": i[:6], "text": t}) + "\n" for i, t in paragraphs)
    )
    (folder / "questions.jsonl").write_text(
        "".join(
            json.dumps({"id": f"{p}_q", "question": q, "answers": [a], "paragraph_id": p}) + "\n"
            for q, a, p in questions
        )
    )
    return folder


def test_reader_records_are_the_rag_prompt_with_the_short_answer(
    embedder: Embeddings, tmp_path: Path
) -> None:
    questions = write_squad_paragraphs(write_squad(tmp_path / "squad"), tmp_path / "docs")
    knowledge = KnowledgeBase(tmp_path / "kb", embedder)
    knowledge.ingest("articles", sorted((tmp_path / "docs").iterdir()))
    records, counts = reader_records(
        knowledge, "articles", questions, k=2, sentences=1, unanswerable_share=0.0
    )
    assert counts == {"answer": 3, "not_found": 0, "distractors_only": 0, "withheld": 0}
    first = records[0]["messages"]
    assert first[:2] == reader_messages(
        "Who keeps the Korrin lighthouse?",
        select_evidence(
            embedder,
            "Who keeps the Korrin lighthouse?",
            knowledge.search("articles", "Who keeps the Korrin lighthouse?", 2),
            1,
        ),
    )
    assert first[2] == {"role": "assistant", "content": "Elspeth Varrow"}
    without_article, counts = reader_records(
        knowledge, "articles", questions, k=2, sentences=1, unanswerable_share=1.0
    )
    assert counts["distractors_only"] == 3
    assert all(r["messages"][2]["content"] == NOT_IN_DOCUMENTS for r in without_article)
    assert "Elspeth" not in without_article[0]["messages"][1]["content"]


def test_reader_records_withheld_ask_the_own_document_without_the_answer(
    embedder: Embeddings, tmp_path: Path
) -> None:
    (tmp_path / "ferry.md").write_text(
        "# Tallow ferry\n\nThe Tallow ferry leaves at 9:15.\n\n"
        "The Tallow ferry carries bicycles free of charge.\n\n"
        "Tickets for the Tallow ferry are sold on board.\n"
    )
    knowledge = KnowledgeBase(tmp_path / "kb", embedder)
    knowledge.ingest("notices", [tmp_path / "ferry.md"])
    asked = [ReadingQuestion("When does the Tallow ferry leave?", ("9:15",), "ferry.md")]
    records, counts = reader_records(
        knowledge, "notices", asked, k=2, sentences=2, unanswerable_share=0.0, withheld_share=1.0
    )
    assert counts == {"answer": 0, "not_found": 0, "distractors_only": 0, "withheld": 1}
    prompt, target = records[0]["messages"][1]["content"], records[0]["messages"][2]["content"]
    # On the ferry's own notice, about the ferry, and still without the answer: decline.
    assert "Tallow ferry" in prompt and "9:15" not in prompt
    assert target == NOT_IN_DOCUMENTS


def test_reader_records_take_the_answer_only_from_the_questions_own_document(
    embedder: Embeddings, tmp_path: Path
) -> None:
    (tmp_path / "bakery.md").write_text("# Bakery\n\nThe bakery opens at 8:00 every day.\n")
    (tmp_path / "museum.md").write_text("# Museum\n\nThe museum is closed on Mondays.\n")
    knowledge = KnowledgeBase(tmp_path / "kb", embedder)
    knowledge.ingest("notices", sorted(tmp_path.glob("*.md")))
    asked = [
        ReadingQuestion("Is the bakery open on Monday?", ("closed",), "bakery.md"),
        ReadingQuestion("When is the museum closed?", ("Mondays",), "museum.md"),
    ]
    records, counts = reader_records(
        knowledge, "notices", asked, k=2, sentences=2, unanswerable_share=0.0
    )
    # "closed" stands only in the museum's notice: no answer is taught for the bakery.
    assert counts == {"answer": 1, "not_found": 1, "distractors_only": 0, "withheld": 0}
    assert records[0]["messages"][2]["content"] == "Mondays"


@pytest.mark.slow
def test_reader_training_command_publishes_an_adapter(resources, tmp_path: Path) -> None:
    squad = write_squad(tmp_path / "squad")
    records = tmp_path / "reader.jsonl"
    built = kbot(
        "reader-data",
        "--squad",
        str(squad),
        "--out",
        str(records),
        "--json",
        home=resources.settings.home,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    summary = json.loads(built.stdout)
    assert summary["records"] == 3 and len(summary["fingerprint"]) == 16
    assert summary["fingerprint"] == load_records(records).fingerprint
    trained = kbot(
        "train",
        "--method",
        "lora",
        "--name",
        "tiny-reader",
        "--data",
        str(records),
        "--max-steps",
        "2",
        "--json",
        home=resources.settings.home,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    meta = resources.artifacts.meta("tiny-reader")
    assert meta.steps == 2 and meta.data.fingerprint == summary["fingerprint"]


def test_the_leaning_is_calibrated_so_that_no_kind_of_document_declines_more() -> None:
    # Twenty answers of each kind: prose the reader answers by a wide margin (negative: it
    # prefers answering), tables by a narrow one; declines never limit the leaning.
    prose = [(False, -3.0 - i / 10) for i in range(20)] + [(True, 1.0)] * 5
    tables = [(False, -0.5 - i / 10) for i in range(20)] + [(True, -1.0)] * 5
    margins = prose + tables
    groups = ["prose"] * len(prose) + ["tables"] * len(tables)
    # 5% of 20 answers: one may be declined, so the leaning stops short of the second.
    assert calibrate_decline_bias(prose, 0.05) == 3.09
    assert calibrate_decline_bias(margins, 0.05, groups) == 0.59
    assert declined_share(margins, 0.59, declines=False) == 1 / 40
    # A kind of document with too few answers to say anything is left out.
    few = margins + [(False, 5.0)] * 3
    assert calibrate_decline_bias(few, 0.05, groups + ["notes"] * 3) == 0.59
