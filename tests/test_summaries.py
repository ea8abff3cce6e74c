"""Summaries of whole collections with the real embedder, model and Chroma: every document is
covered, and a changed collection re-summarises only what changed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.backends import BackendError
from bot.backends.summary import summarizer
from bot.resources import Resources
from bot.service import ChatService
from knowledge.chunking import chunk_documents, join_chunks
from knowledge.summaries import Summarizer, TooManyDocumentsError, faithful
from knowledge.text import split_sentences
from tests.cli import kbot
from tests.documents import ingest_texts, squad_train_paragraphs

# Each document is about one thing and holds one fact about it; names sort in this order.
DOCUMENTS = {
    "a-bridge.txt": "The Orvel Bridge crosses the river Tamsa near the old mill. It was built "
    "of local granite. In 1987 the town council had the Orvel Bridge painted green after a "
    "public vote. Tourists photograph it from the east bank.",
    "b-institute.txt": "Founded in 1931 in Lisbon, the Veltro Institute studies tidal energy. "
    "Its first director built a wave tank in the basement. Forty researchers now work on "
    "turbines that sit on the sea floor.",
    "c-recipe.txt": "Quince paste needs two kilograms of quinces and the same weight of sugar. "
    "Peel, core and simmer the fruit until soft, then puree it. Stir the paste over a low heat "
    "for ninety minutes until it turns deep red.",
    "d-festival.txt": "The Marrow Lantern Festival fills the harbour of Sellby with paper "
    "boats every October. The festival began in 1958, when fishermen lit lanterns for a lost "
    "crew. Children fold the boats at school the week before.",
    "e-lighthouse.txt": "The Kestrel Point lighthouse was lit for the first time in 1902. Its "
    "lamp burned paraffin until 1961. The keeper's cottage is now a museum of shipwrecks.",
}
LAST_FACT = ("Kestrel Point", "1902")  # only in the last document


@pytest.fixture()
def collection(resources: Resources, tmp_path: Path) -> tuple[str, Path]:
    folder = tmp_path / "docs"
    return ingest_texts(resources.knowledge, folder, DOCUMENTS, "sum"), folder


def chat(resources: Resources, message: str, **options: str) -> str:
    return list(ChatService(resources).reply(message, [], "summary", options))[-1].answer


def test_asking_what_a_collection_is_about_covers_every_document(
    resources: Resources, collection
) -> None:
    name, _ = collection
    service = ChatService(resources)
    replies = list(
        service.reply("What is this collection about?", [], "summary", {"collection": name})
    )
    streamed = [r.answer for r in replies if "a-bridge.txt" in r.answer]
    assert "e-lighthouse.txt" not in streamed[0]  # each document's summary as it is ready
    answer = replies[-1].answer
    for document in DOCUMENTS:
        assert f"**{document}**" in answer
    assert all(part in answer for part in LAST_FACT), answer
    assert "Orvel Bridge" in answer and "1987" in answer
    overview = answer.split("**In short:**")[1]  # the topics the documents name
    for topic in ["Orvel Bridge", "Veltro Institute", "Marrow Lantern", "Kestrel Point"]:
        assert topic in overview, overview


def wikipedia_articles(count: int, chars: int) -> dict[str, str]:
    """The first paragraphs (up to `chars` characters) of the first `count` SQuAD train
    articles that are that long: real text of several chunks each."""
    by_title: dict[str, list[str]] = {}
    for row in squad_train_paragraphs():
        by_title.setdefault(row["title"], []).append(row["text"])
    found: dict[str, str] = {}
    for title, paragraphs in sorted(by_title.items()):
        text = ""
        for paragraph in paragraphs:
            if len(text) + len(paragraph) > chars:
                break
            text += paragraph + "\n\n"
        if len(text) > chars * 0.8:
            found[f"{title}.txt"] = text.strip()
        if len(found) == count:
            return found
    raise AssertionError("not enough long articles")


@pytest.mark.slow
def test_a_fact_mentioned_in_passing_is_kept_and_every_sentence_is_whole(
    resources: Resources, tmp_path: Path
) -> None:
    # Six real articles of about three chunks each; in the middle of each, one fact that is
    # not about what the article is about, as a user's notes often hold one.
    planted, facts = {}, {}
    for i, (source, text) in enumerate(wikipedia_articles(6, 2500).items()):
        sentences = split_sentences(text)
        facts[source] = f"In {1950 + i} a survey by the Harrow Society recorded {4810 + i} sites."
        middle = len(sentences) // 2
        planted[source] = " ".join([*sentences[:middle], facts[source], *sentences[middle:]])
    name = ingest_texts(resources.knowledge, tmp_path / "docs", planted, "passing")
    summary = summarizer(resources).summarise(name)
    kept = [d.source for d in summary.documents if facts[d.source] in d.text]
    assert len(kept) >= 5, kept  # a summary of central sentences alone keeps about 1 in 6
    for document in summary.documents:
        own = set(split_sentences(planted[document.source]))
        shown = split_sentences(document.text)
        # Whole sentences of the document, none cut where one chunk ended and the next began.
        assert shown and all(sentence in own for sentence in shown), shown
        assert len(document.text.split()) < 0.4 * len(planted[document.source].split())


def test_chunks_join_back_into_their_document(tmp_path: Path) -> None:
    from langchain_core.documents import Document

    for text in wikipedia_articles(3, 4000).values():
        chunks = chunk_documents([Document(page_content=text)], ".txt", 1000, 150)
        assert len(chunks) >= 4
        joined = join_chunks([c.page_content for c in chunks])
        assert joined.split() == text.split()  # nothing lost or repeated (spaces aside)


def test_a_summary_of_the_documents_about_a_topic_covers_those_only(
    resources: Resources, collection
) -> None:
    name, _ = collection
    answer = chat(resources, "Summarise the documents about tidal energy", collection=name)
    assert "b-institute.txt" in answer and "Veltro" in answer
    assert not any(other in answer for other in DOCUMENTS if other != "b-institute.txt")
    one = chat(resources, "Summarise it", collection=name, source="e-lighthouse.txt")
    assert "Kestrel Point" in one and "a-bridge.txt" not in one
    nothing = chat(resources, "Summarise the documents about volcanoes", collection=name)
    assert nothing == "No document mentions 'volcanoes'."


def test_changing_the_collection_resummarises_only_what_changed(
    resources: Resources, collection
) -> None:
    name, folder = collection
    written = summarizer(resources)
    first = written.summarise(name)
    assert first.summarised == len(DOCUMENTS)

    added = folder / "f-observatory.txt"
    added.write_text(
        "The Pellam Observatory opened in 1874 on a hill above the town. Its brass telescope "
        "found a comet in 1881. Students still use it on clear nights."
    )
    resources.knowledge.ingest(name, [(added, "f-observatory.txt")])
    second = written.summarise(name)
    assert second.summarised == 1  # the new document only
    assert [d.source for d in second.documents if not d.cached] == ["f-observatory.txt"]
    assert "Pellam Observatory" in second.documents[-1].text
    assert "Pellam Observatory" in second.overview and "Pellam" not in first.overview

    changed = folder / "c-recipe.txt"
    changed.write_text("Rhubarb jam needs one kilogram of rhubarb and a lemon. Boil it hard.")
    resources.knowledge.ingest(name, [(changed, "c-recipe.txt")])
    third = written.summarise(name)
    assert [d.source for d in third.documents if not d.cached] == ["c-recipe.txt"]
    assert "Rhubarb" in third.documents[2].text and "Quince" not in json.dumps(third.as_json())

    resources.knowledge.forget(name, "a-bridge.txt")
    fourth = written.summarise(name)
    assert fourth.summarised == 0 and "Orvel" not in json.dumps(fourth.as_json())
    cache = resources.knowledge.summaries_folder(name)
    kept = [p for p in cache.glob("*.json") if not p.name.startswith("overview-")]
    assert len(kept) == len(fourth.documents)  # the deleted document's summary is gone too


@pytest.mark.slow
def test_the_model_can_write_the_summaries(resources: Resources, collection) -> None:
    name, _ = collection
    written = Summarizer(
        resources.knowledge,
        resources.embedder,
        method="model",
        model=lambda: resources.chat_model(repetition_penalty=1.0, max_new_tokens=60),
        model_name=resources.settings.model,
    )
    sources = ["b-institute.txt", "e-lighthouse.txt"]
    summary = written.summarise(name, sources)
    assert [d.source for d in summary.documents] == sources and summary.summarised == 2
    assert all(d.text for d in summary.documents)  # (the 135M model often copies short texts)
    again = written.summarise(name, sources)
    assert again.summarised == 0 and again.overview == summary.overview  # both cached
    given = " ".join(DOCUMENTS[s] for s in sources)
    assert faithful(summary.overview, given), summary.overview
    extracted = summarizer(resources).summarise(name, sources)
    assert extracted.summarised == 2  # each method keeps summaries of its own


def test_an_overview_that_misstates_repeats_or_copies_is_not_shown() -> None:
    # What the default model wrote for three short documents (a bell, a ferry, an orchard).
    source = (
        "- bell.txt: The Henmore bell weighs 410 kilograms.\n- ferries.txt: The Calder ferry "
        "leaves every forty minutes.\n- orchard.txt: The Pellow orchard grows seven varieties."
    )
    assert faithful("The documents cover a church bell, a ferry and an orchard.", source)
    assert not faithful("The ferry leaves every fourteen minutes.", source)
    assert not faithful("The bell weighs 140 kilograms.", source)
    assert not faithful(
        "The Henmore bell, the Calder ferry, the Pellow orchard, and the Henmore bell are all "
        "related to the Henmore bell.",
        source,
    )
    assert not faithful(" ".join([source] * 3), source)  # the list copied back


def test_bad_requests_get_clear_errors_and_change_nothing(
    resources: Resources, collection, kbot_home: Path
) -> None:
    name, _ = collection
    service = ChatService(resources)
    for options, message in (
        ({}, "needs a collection"),
        ({"collection": "no-such-thing"}, "Unknown collection 'no-such-thing'"),
        ({"collection": "../etc"}, "Invalid"),
        ({"collection": name, "source": "../../etc/passwd"}, "is not in collection"),
    ):
        with pytest.raises(BackendError, match=message):
            list(service.reply("What is this about?", [], "summary", options))
    bounded = Summarizer(resources.knowledge, resources.embedder, max_documents=3)
    with pytest.raises(TooManyDocumentsError, match="at most 3 documents"):
        bounded.summarise(name)
    assert len(summarizer(resources).summarise(name).documents) == len(DOCUMENTS)


def test_kbot_summarize(resources: Resources, collection, kbot_home: Path) -> None:
    name, _ = collection
    done = kbot("summarize", "--collection", name, "--json", home=kbot_home)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert [d["source"] for d in summary["documents"]] == list(DOCUMENTS)
    assert "1902" in summary["documents"][-1]["summary"] and summary["overview"]
    one = kbot(
        "summarize", "--collection", name, "--source", "d-festival.txt", "--json", home=kbot_home
    )
    assert [d["source"] for d in json.loads(one.stdout)["documents"]] == ["d-festival.txt"]
    missing = kbot("summarize", "--collection", name, "--source", "nope.txt", home=kbot_home)
    assert missing.returncode != 0 and "'nope.txt' is not in collection" in missing.stderr


def test_a_document_is_named_by_its_path_or_by_a_file_name_no_other_has(
    resources: Resources, tmp_path: Path, kbot_home: Path
) -> None:
    knowledge = resources.knowledge
    files = {"a/notes.txt": "Notes of the Orvel Bridge survey.", "b/notes.txt": "Other notes."}
    files["a/harbour.txt"] = DOCUMENTS["e-lighthouse.txt"]
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    name = f"named-{tmp_path.name[-8:]}".lower().replace("_", "-")
    assert not knowledge.ingest(name, [tmp_path / relative for relative in files]).errors
    harbour = str((tmp_path / "a/harbour.txt").resolve())

    assert knowledge.stored_source(name, "harbour.txt") == harbour
    assert knowledge.stored_source(name, harbour, paths=False) == harbour
    with pytest.raises(LookupError, match="2 documents .* are named 'notes.txt'"):
        knowledge.stored_source(name, "notes.txt")
    one = chat(resources, "Summarise it", collection=name, source="harbour.txt")
    assert "Kestrel Point" in one and "Orvel" not in one
    with pytest.raises(BackendError, match="are named 'notes.txt'"):
        chat(resources, "Summarise it", collection=name, source="notes.txt")
    with pytest.raises(BackendError, match="is not in collection"):  # a path is not looked up
        chat(
            resources, "Summarise it", collection=name, source=str(tmp_path / "a/../a/harbour.txt")
        )

    done = kbot("summarize", "--collection", name, "--source", "harbour.txt", "--json",
                home=kbot_home)  # fmt: skip
    assert [d["source"] for d in json.loads(done.stdout)["documents"]] == [harbour], done.stderr


def test_a_documents_markup_and_the_users_topic_are_shown_as_text(
    resources: Resources, tmp_path: Path
) -> None:
    page = {
        "tracker.md": "The Quarry Choir meets on Tuesdays. ![pixel](http://example.invalid/t.png) "
        "Members bring <b>sheet music</b> and a [form](javascript:alert(1)) signed.",
    }
    name = ingest_texts(resources.knowledge, tmp_path / "docs", page, "markup")
    answer = chat(resources, "Summarise the collection.", collection=name)
    assert "Quarry Choir" in answer
    unescaped = re.compile(r"(?<!\\)(!\[|<b>|\]\()")  # an image, a tag, a link as markup
    assert "pixel" in answer and not unescaped.search(answer)
    missing = chat(resources, "What about *[evil](http://x.invalid)*?", collection=name)
    assert "evil" in missing and not unescaped.search(missing)


NOTICE = """# Hostel Linden: house rules

## Arrival
- Check-in is from 15:00 to 22:00.
- Check-out is by 11:00.

## Prices
| Room | Per night |
|---|---|
| Dormitory bed | 28 euros |
| Private room | 74 euros |

Dogs under 10 kg are welcome for 15 euros per night.
"""


def test_a_structured_documents_summary_has_no_bare_headings_and_rows_keep_their_columns(
    resources: Resources, tmp_path: Path
) -> None:
    name = ingest_texts(resources.knowledge, tmp_path / "docs", {"rules.md": NOTICE}, "rules")
    summary = summarizer(resources).summarise(name).documents[0].text
    sentences = split_sentences(summary)
    assert "house rules" not in summary  # the title is not run into a sentence
    assert not {"Arrival.", "Prices.", "Arrival", "Prices"} & set(sentences), sentences
    assert "|" not in summary
    rows = [s for s in sentences if "euros" in s and "Room" in s]
    assert all("Per night:" in row for row in rows), summary
