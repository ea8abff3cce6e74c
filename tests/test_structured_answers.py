"""RAG on the documents people bring (lists under headings, timetables, manuals with codes and
commands), end to end: real embedder, real Chroma, the real model with the packaged reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.resources import Resources
from bot.service import ChatService
from knowledge.reading import NOT_IN_DOCUMENTS

CENTRE = """# Harbourside Leisure Centre

Welcome to the Harbourside Leisure Centre on Quay Road.

## Sauna

- Monday: 14:00 to 21:00
- Wednesday: 14:00 to 21:00
- Saturday: 10:00 to 18:00

## Climbing wall

The wall has 24 routes, graded from 4 to 7b.

- Monday: closed
- Tuesday: 16:00 to 22:00
- Thursday: closed
- Friday: 16:00 to 22:00
"""

FERRY = """# Skerry Ferry timetable

The Skerry Ferry runs between Ardmore and Inishcale all year.

| Departs | From | Arrives |
|---|---|---|
| 07:40 | Ardmore | 08:25 |
| 12:10 | Inishcale | 12:55 |
| 17:30 | Ardmore | 18:15 |

The crossing takes 45 minutes. Bicycles travel free.
"""

MANUAL = """# Brightwash 300 dishwasher

## Child lock

The child lock stops the door from opening during a programme. To switch it on from a phone,
run:

```
brightwash lock --child on
```

## Fault codes

- F2: the water inlet is blocked.
- F5: the filter is clogged.
- F8: the door is not closed.
"""


@pytest.fixture(scope="module")
def notices(resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("notices")
    files = []
    for name, text in [("centre.md", CENTRE), ("ferry.md", FERRY), ("dishwasher.md", MANUAL)]:
        (folder / name).write_text(text)
        files.append(folder / name)
    assert resources.knowledge.ingest("notices", files).errors == []
    return "notices"


def ask(resources: Resources, question: str, history=(), **options):
    return list(ChatService(resources).reply(question, history, "rag", options))[-1]


def test_a_list_item_is_found_and_shown_with_its_heading(
    resources: Resources, notices: str
) -> None:
    reply = ask(resources, "When does the sauna open on Saturday?", collection=notices)
    assert "10:00" in reply.answer
    best = reply.evidence[0]
    assert best["text"] == "Sauna > Saturday: 10:00 to 18:00"
    assert best["location"].endswith("Sauna")


def test_a_count_is_answered_with_its_number(resources: Resources, notices: str) -> None:
    reply = ask(resources, "How many routes does the climbing wall have?", collection=notices)
    assert "24" in reply.answer


def test_a_follow_up_searches_the_document_the_conversation_is_about(
    resources: Resources, notices: str
) -> None:
    history = [
        {"role": "user", "content": "When does the first Skerry Ferry leave Ardmore?"},
        {"role": "assistant", "content": "07:40 [1]"},
    ]
    reply = ask(resources, "How long does the crossing take?", history, collection=notices)
    assert Path(reply.sources[0]["source"]).name == "ferry.md"
    assert "45 minutes" in reply.answer


def test_the_question_searched_for_a_follow_up_comes_with_the_answer(
    resources: Resources, notices: str
) -> None:
    history = [
        {"role": "user", "content": "What does fault code F5 mean on the Brightwash 300?"},
        {"role": "assistant", "content": "the filter is clogged [1]"},
    ]
    reply = ask(resources, "And what does it mean when it shows F8?", history, collection=notices)
    assert "door" in reply.answer
    assert reply.searched and reply.searched != "And what does it mean when it shows F8?"
    assert reply.as_json()["searched"] == reply.provenance["searched"] == reply.searched


def test_a_fact_the_documents_lack_is_declined(resources: Resources, notices: str) -> None:
    reply = ask(resources, "What is the phone number of the leisure centre?", collection=notices)
    assert reply.answer == NOT_IN_DOCUMENTS
