"""Saved conversations: ids and owners never become paths outside the store, the newest are
kept, and a damaged file costs only itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.conversations import (
    Conversation,
    ConversationFolder,
    Conversations,
    owner_folder,
)
from bot.ui.conversations import continued
from common.errors import BadInput, NotFound


def conversation(question: str) -> Conversation:
    return Conversation(
        title=question,
        backend="rag",
        options={"collection": "notes"},
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "content": f"About {question}"},
        ],
        answered=[(f"About {question}", f"About {question}", {"backend": "rag"})],
    )


def folder_store(root: Path, owner: str = "ana", limit: int = 10) -> Conversations:
    return Conversations(ConversationFolder(owner_folder(root, owner)), limit)


def test_a_saved_conversation_reads_back_whole(tmp_path: Path) -> None:
    store = folder_store(tmp_path)
    saved = store.save(conversation("When does the ferry leave?"))
    again = folder_store(tmp_path).get(saved.id)
    assert again.messages == saved.messages
    assert again.backend == "rag" and again.options == {"collection": "notes"}
    assert again.answered == [("About When does the ferry leave?",) * 2 + ({"backend": "rag"},)]


def test_each_owner_sees_only_their_own(tmp_path: Path) -> None:
    saved = folder_store(tmp_path, "ana").save(conversation("Ana's question"))
    other = folder_store(tmp_path, "bo")
    assert other.listing() == []
    with pytest.raises(NotFound):
        other.get(saved.id)
    with pytest.raises(NotFound):
        other.delete(saved.id)
    assert folder_store(tmp_path, "ana").get(saved.id).title == "Ana's question"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "..", "a" * 32, "", None, 7, "0" * 31 + "/"])
def test_an_id_that_this_store_did_not_make_is_refused(tmp_path: Path, bad: object) -> None:
    store = folder_store(tmp_path)
    store.save(conversation("kept"))
    with pytest.raises(NotFound):
        store.get(bad)
    with pytest.raises(NotFound):
        store.delete(bad)
    with pytest.raises(NotFound):
        store.rename(bad, "new title")
    assert [c.title for c in store.listing()] == ["kept"]


@pytest.mark.parametrize("owner", ["../../outside", "/etc", "a/b", "..", "ünïcode name"])
def test_any_owner_name_is_one_folder_inside_the_store(tmp_path: Path, owner: str) -> None:
    root = tmp_path / "conversations"
    folder_store(root, owner).save(conversation("q"))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].parent.parent == root


def test_the_most_recent_are_kept_and_listed_first(tmp_path: Path) -> None:
    store = folder_store(tmp_path, limit=3)
    for number in range(5):
        store.save(conversation(f"question {number}"))
    assert [c.title for c in store.listing()] == ["question 4", "question 3", "question 2"]


def test_a_damaged_file_costs_only_itself(tmp_path: Path) -> None:
    store = folder_store(tmp_path)
    kept = store.save(conversation("kept"))
    broken = store.save(conversation("broken"))
    (owner_folder(tmp_path, "ana") / f"{broken.id}.json").write_bytes(b"\x00\xff{not json")
    assert [c.title for c in store.listing()] == ["kept"]
    assert store.get(kept.id).title == "kept"
    with pytest.raises(NotFound):
        store.get(broken.id)


def test_renaming_needs_a_title_and_keeps_it_to_one_short_line(tmp_path: Path) -> None:
    store = folder_store(tmp_path)
    saved = store.save(conversation("q"))
    with pytest.raises(BadInput):
        store.rename(saved.id, "   ")
    renamed = store.rename(saved.id, "Ferry\ntimes " + "x" * 300)
    assert "\n" not in renamed.title and len(renamed.title) <= 80
    assert store.get(saved.id).title == renamed.title


def test_browser_records_that_are_not_ours_are_left_out() -> None:
    records = {"0" * 32: {"messages": "not a list"}, "x": 5}
    store = Conversations(records, 20)
    assert store.listing() == []
    saved = store.save(conversation("fresh"))
    assert [c.id for c in store.listing()] == [saved.id]


def test_answers_no_longer_shown_lose_their_provenance(tmp_path: Path) -> None:
    store = folder_store(tmp_path)
    saved = conversation("q")
    saved.answered.append(("an answer undone since", "x", {}))
    assert len(store.save(saved).answered) == 1


def test_a_flooded_browser_store_is_read_only_up_to_its_bound() -> None:
    records = {f"{n:032x}": conversation(f"q{n}").model_dump() for n in range(5_000)}
    store = Conversations(records, 20)
    assert len(store.listing()) == 20


def test_a_save_for_another_chat_never_writes_over_the_open_conversation(tmp_path: Path) -> None:
    store = folder_store(tmp_path)
    open_one = store.save(conversation("Who keeps the lighthouse?"))
    assert continued(store, open_one.id, "Who keeps the lighthouse?").id == open_one.id
    # A late save carries the old id while the chat holds a new conversation.
    other = continued(store, open_one.id, "A second conversation about tides.")
    assert other.id != open_one.id and other.title == "A second conversation about tides."
    assert continued(store, None, "Anything?").messages == []
