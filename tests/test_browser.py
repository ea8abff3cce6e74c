"""The chat in a real browser: Debian's Chromium driven by Playwright (no downloaded browser)."""

from __future__ import annotations

import http.server
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.documents import squad_train_paragraphs

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# What the server sends waits its turn on a busy shared machine: seconds, not milliseconds.
SERVER_S = 30_000

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these flags Chromium keeps dialling Google's services, which this machine refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ImageServer:
    """A local HTTP server that records every request made to it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_response(404)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def export_conversation(page: Page, asked: str = "Who is the keeper") -> dict:
    """Export the chat from its accordion; returns the JSON file's content (the Markdown file
    is checked to hold the question `asked` too)."""
    page.get_by_text("Export this conversation").click()
    page.locator("#export").click()
    links = page.locator("#export-files a")
    try:
        expect(links).to_have_count(2, timeout=30_000)
    except AssertionError:
        raise AssertionError(page.locator(".toast-body").all_inner_texts()) from None
    hrefs = {name: links.nth(i).get_attribute("href") for i, name in enumerate(["a", "b"])}
    files = {href.rsplit("/", 1)[-1]: page.request.get(href) for href in hrefs.values()}
    assert {"conversation.json", "conversation.md"} == set(files)
    assert f"**You:** {asked}" in files["conversation.md"].text()
    return files["conversation.json"].json()


def open_chat(browser: Browser, url: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(url)
    page.locator("#message textarea").wait_for()
    return page


def choose_backend(page: Page, name: str) -> None:
    page.locator("#backend input").click()
    page.get_by_role("option", name=name).click()
    page.locator("#backend input").blur()


def send(page: Page, text: str) -> None:
    box = page.locator("#message textarea")
    box.fill(text)
    box.press("Enter")


def bot_answers(page: Page) -> list[str]:
    """The answers shown so far (the info lines under them excluded)."""
    return page.locator("#chatbot .message:not(.thought) > [data-testid='bot']").all_inner_texts()


def info_lines(page: Page) -> list[str]:
    """The info lines of finished answers (a line saying what an answer waits for ends with
    "…" and gives way to the answer)."""
    lines = page.locator("#chatbot .thought .title").all_inner_texts()
    return [line for line in lines if not line.strip().endswith("…")]


def press_until_said(press: Callable[[], None], said, expected: str, tries: int = 6) -> str:
    """Press (click, Enter) until one of `said`'s texts contains `expected`; return that text
    (or all shown, when none does). Polled: Playwright's own wait with a long timeout missed
    Gradio's validation messages. A press while the page's opening events still run, or
    while the last one is being checked, is dropped on a busy server (Gradio runs one event of
    a trigger at a time): it is pressed again, as a person would."""
    texts: list[str] = []
    for _ in range(tries):
        press()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            texts = said.all_inner_texts()
            if match := next((text for text in texts if expected in text), None):
                return match
            time.sleep(0.2)
    return " | ".join(texts)


def wait_for_answer(page: Page, count: int, timeout_s: float = 120) -> list[str]:
    """Wait for the `count`-th answer to finish; return the texts it showed while streaming."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while len(info_lines(page)) < count:
        if time.monotonic() > deadline:
            toasts = page.locator(".toast-body").all_inner_texts()
            page.screenshot(path="/tmp/kbot-browser-failure.png")
            raise AssertionError(f"no answer {count} after {timeout_s}s; messages: {toasts}")
        answers = bot_answers(page)
        if len(answers) >= count and (not seen or answers[count - 1] != seen[-1]):
            seen.append(answers[count - 1])
        time.sleep(0.05)
    return seen


def test_typed_message_gets_a_streamed_answer(browser: Browser, server: str) -> None:
    page = open_chat(browser, server)
    send(page, "Write two sentences about the capital of France.")
    partials = wait_for_answer(page, 1)
    final = bot_answers(page)[0]
    assert len(partials) >= 2, "the answer should appear piece by piece"
    assert "Paris" in final
    assert info_lines(page)[0].startswith("Base model ·")
    page.context.close()


def test_two_conversations_keep_their_own_backend(browser: Browser, server: str) -> None:
    echo, base = open_chat(browser, server), open_chat(browser, server)
    choose_backend(echo, "Echo")
    question = "What is the capital of France?"
    send(echo, question)
    send(base, question)
    wait_for_answer(echo, 1)
    wait_for_answer(base, 1)
    assert bot_answers(echo) == [question]
    assert info_lines(echo)[0].startswith("Echo ·")
    assert "Paris" in bot_answers(base)[0]
    assert info_lines(base)[0].startswith("Base model ·")

    # The choice stays with its conversation for the next message.
    send(echo, "second")
    send(base, "What is the capital of Italy?")
    wait_for_answer(echo, 2)
    wait_for_answer(base, 2)
    assert bot_answers(echo)[1] == "second" and info_lines(echo)[1].startswith("Echo ·")
    assert info_lines(base)[1].startswith("Base model ·")
    for page in (echo, base):
        page.context.close()


def choose(page: Page, dropdown: str, value: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=value).click()
    page.locator(f"{dropdown} input").blur()


def add_document(page: Page, collection: str, path) -> None:
    """Add `path` to `collection` (created if new) in the Knowledge tab, and wait for it."""
    page.get_by_role("tab", name="Knowledge").click()
    name = page.locator("#kb-collection input")
    name.fill(collection)
    name.press("Enter")
    page.locator("#kb-files input[type=file]").set_input_files(str(path))
    page.locator("#kb-add").click()
    added = re.compile(rf"\({re.escape(Path(path).name)}\), \d+ chunks? added")
    expect(page.locator("#kb-status")).to_contain_text(added, timeout=120_000)


def test_a_document_added_while_another_is_being_added_is_kept_too(
    browser: Browser, server: str, tmp_path: Path
) -> None:
    long = tmp_path / "almanac.txt"  # real text of about 70 chunks: seconds to embed
    long.write_text("\n\n".join(row["text"] for row in squad_train_paragraphs()[:60]))
    short = tmp_path / "ferry.txt"
    short.write_text("The Tallow ferry leaves the north quay at noon.")
    page = open_chat(browser, server)
    page.get_by_role("tab", name="Knowledge").click()
    name = page.locator("#kb-collection input")
    name.fill("browser-queue")
    name.press("Enter")
    for path in (long, short):  # the second while the first is still being embedded
        page.locator("#kb-files input[type=file]").set_input_files(str(path))
        page.locator("#kb-add").click()
    # The box still holds the first file then, so the second addition reads both: the first
    # is unchanged by then.
    done = re.compile(r"ferry\.txt\), 1 chunk added")
    expect(page.locator("#kb-status")).to_contain_text(done, timeout=120_000)
    listed = page.locator("#kb-documents")
    expect(listed).to_contain_text("almanac.txt")
    expect(listed).to_contain_text("ferry.txt")

    # The summary's Source lists the chosen collection's documents, to pick one from.
    page.get_by_role("tab", name="Chat").click()
    choose(page, "#backend", "Summary (whole collection)")
    choose(page, "#option-summary-collection", "browser-queue")
    source = page.locator("#option-summary-source input")
    for typed, document in (("alma", "almanac.txt"), ("ferr", "ferry.txt")):
        source.fill(typed)  # the list follows the chosen collection
        page.get_by_role("option", name=document).click(timeout=SERVER_S)
    expect(source).to_have_value("ferry.txt")
    send(page, "Summarise it.")
    wait_for_answer(page, 1)
    assert "Tallow ferry" in bot_answers(page)[0] and "almanac" not in bot_answers(page)[0]
    page.context.close()


def test_uploaded_file_answers_a_rag_question_with_a_cited_source(
    browser: Browser, server: str, tmp_path
) -> None:
    images = ImageServer()  # a document's remote images must never be fetched
    doc = tmp_path / "lighthouse.md"
    doc.write_text(
        "# The Korrin lighthouse\n\nThe Korrin lighthouse keeper is named Elspeth Varrow. "
        f'![map]({images.url}/map.png) <img src="{images.url}/raw.png"> '
        "The lamp is lit every evening at seven."
    )
    page = open_chat(browser, server)
    add_document(page, "browser-docs", doc)
    expect(page.locator("#kb-documents")).to_contain_text("lighthouse.md")

    page.get_by_role("tab", name="Chat").click()
    choose(page, "#backend", "RAG (retrieval)")
    choose(page, "#option-rag-collection", "browser-docs")
    send(page, "Who is the keeper of the Korrin lighthouse?")
    wait_for_answer(page, 1, timeout_s=60)
    assert info_lines(page)[0].startswith("RAG (retrieval) ·")
    page.locator("#chatbot .thought .title").first.click()
    sources = page.locator("#chatbot .thought").first.inner_text()
    assert "[1]" in sources and "lighthouse.md" in sources and "Elspeth Varrow" in sources
    assert "<img src=" in sources  # shown as text, not rendered
    exported = export_conversation(page)
    answer = exported["turns"][1]
    assert exported["turns"][0] == {
        "role": "user",
        "content": "Who is the keeper of the Korrin lighthouse?",
    }
    assert answer["content"] and answer["content"] in bot_answers(page)[0]
    origin = answer["provenance"]
    assert origin["backend"] == "rag" and origin["collection"]["name"] == "browser-docs"
    assert len(origin["collection"]["version"]) == 12 and origin["model"]
    assert origin["sources"][0]["source"] == "lighthouse.md"
    assert "Elspeth Varrow" in origin["sources"][0]["text"]
    # And should markup ever slip through, the page's content policy blocks remote images.
    page.evaluate(f"document.body.appendChild(new Image()).src = '{images.url}/slipped.png'")
    page.wait_for_timeout(1000)
    page.context.close()
    images.close()
    assert images.requests == []


def test_knowledge_tab_sets_a_collections_mode_and_embedder(
    browser: Browser, server: str, tmp_path
) -> None:
    doc = tmp_path / "pier.txt"
    doc.write_text("The Dunmore pier is 410 metres long and was opened in 1871.")
    page = open_chat(browser, server)
    add_document(page, "browser-modes", doc)
    page.get_by_text("Retrieval and embedder").click()
    expect(page.locator("#kb-mode input")).to_have_value("hybrid")  # the default
    expect(page.locator("#kb-embedder input")).to_have_value("all-MiniLM-L6-v2")
    choose(page, "#kb-mode", "bm25")
    page.locator("#kb-set-mode").click()
    expect(page.locator("#kb-status")).to_contain_text("browser-modes now retrieves by bm25")
    page.locator("#kb-set-embedder").click()
    expect(page.locator("#kb-status")).to_contain_text("already embedded by all-MiniLM-L6-v2")

    again = open_chat(browser, server)  # another visit reads the mode back
    again.get_by_role("tab", name="Knowledge").click()
    choose(again, "#kb-collection", "browser-modes")
    again.get_by_text("Retrieval and embedder").click()
    expect(again.locator("#kb-mode input")).to_have_value("bm25")
    page.context.close()
    again.context.close()


def test_compare_tab_scores_backends_and_asks_them_all(
    browser: Browser, server: str, resources, lora: str, tmp_path
) -> None:
    from tests.documents import FACT_QA

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bridge.txt").write_text(FACT_QA[1][1])
    resources.knowledge.ingest("compare-docs", [docs / "bridge.txt"])
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        '{"question": "What colour is the Tollow bridge?", "answer": "bright orange", '
        '"source": "bridge.txt"}\n'
    )
    specs = ["base", "rag:compare-docs", f"lora:{lora}"]

    page = open_chat(browser, server)
    page.get_by_role("tab", name="Compare").click()
    # The model writes a question about the document's sentence; the reader picks its answer.
    choose(page, "#compare-gen-collection", "compare-docs")
    page.locator("#compare-generate").click()
    expect(page.locator("#compare-questions")).to_contain_text("bright orange", timeout=60_000)
    expect(page.locator("#compare-saved input")).to_have_value("compare-docs.jsonl")

    for spec in specs:
        page.locator("#compare-backends label").get_by_text(spec, exact=True).click()
    for mode in ("dense", "bm25"):  # RAG runs once in each
        page.locator("#compare-modes label").get_by_text(mode, exact=True).click()
    page.locator("#compare-upload input[type=file]").set_input_files(str(questions))
    expect(page.locator("#compare-questions")).to_contain_text("bright orange")
    page.locator("#compare-run").click()
    status = page.locator("#compare-status")
    status.get_by_text("4 answers scored").wait_for(timeout=180_000)
    results = page.locator("#compare-results")
    expect(results).to_contain_text(f"lora:{lora}")
    text = results.inner_text()
    order = ["base", "rag:compare-docs:dense", "rag:compare-docs:bm25", f"lora:{lora}"]
    assert 0 < text.index(order[0]) < text.index(order[1]) < text.index(order[2])
    assert text.index(order[2]) < text.index(order[3])
    expect(page.locator("#compare-report")).to_contain_text(".html")
    best = re.search(r"Best retrieval mode: compare-docs: (\w+)", status.inner_text())
    assert best and best[1] in ("dense", "bm25"), status.inner_text()
    page.locator("#compare-adopt").click()
    expect(status).to_contain_text(f"compare-docs now retrieves by {best[1]}")
    assert resources.knowledge.mode("compare-docs") == best[1]

    page.locator("#ask-all-question textarea").fill("What colour is the Tollow bridge?")
    page.locator("#ask-all-send").click()
    cards = page.locator("#ask-all-answers .ask-all-card")
    expect(cards).to_have_count(4)
    expect(cards.nth(3)).to_contain_text(" token", timeout=120_000)  # the last one is done
    answers = page.locator("#ask-all-answers .ask-all-answer").all_inner_texts()
    assert "orange" not in answers[0].lower()
    assert all("orange" in answer.lower() for answer in answers[1:])
    expect(cards.nth(1)).to_contain_text("bridge.txt")
    expect(cards.nth(2)).to_contain_text("bridge.txt")
    page.context.close()


def test_a_chat_that_cannot_run_says_why_and_keeps_the_conversation(
    browser: Browser, server: str, resources, tmp_path
) -> None:
    for name in ("notes-a", "notes-b"):  # two collections: none is chosen for the user
        (tmp_path / f"{name}.txt").write_text(f"These are the {name} of the team.")
        resources.knowledge.ingest(name, [tmp_path / f"{name}.txt"])
    page = open_chat(browser, server)
    send(page, "What is the capital of France?")
    wait_for_answer(page, 1)
    choose(page, "#backend", "RAG (retrieval)")
    send(page, "What do my notes say?")
    expect(page.locator("#chatbot")).to_contain_text("needs a collection", timeout=60_000)
    expect(page.locator("#chatbot")).to_contain_text("What do my notes say?")
    assert "Paris" in bot_answers(page)[0], "the conversation so far stays in view"
    assert page.locator(".toast-body").count() == 0
    page.context.close()


def test_a_refused_form_says_why_in_one_line_and_changes_nothing_else(
    browser: Browser, server: str, resources, tmp_path
) -> None:
    (tmp_path / "kept.txt").write_text("The Quorn depot keeps spare wheels.")
    resources.knowledge.ingest("refusals", [tmp_path / "kept.txt"])
    page = open_chat(browser, server)
    page.get_by_role("tab", name="Knowledge").click()
    said = page.locator("div.validation-error")
    add = page.locator("#kb-add").click
    why = "Choose a collection or type a name for a new one."
    assert press_until_said(add, said, why).strip() == why  # nothing chosen: one line, no more
    choose(page, "#kb-collection", "refusals")
    expect(page.locator("#kb-documents")).to_contain_text("kept.txt")
    why = "Add one or more files first."
    assert press_until_said(add, said, why).strip() == why  # no file chosen
    page.get_by_role("tab", name="Compare").click()
    why = "Tick one backend or more to compare."
    assert why in press_until_said(page.locator("#compare-run").click, said, why)  # none ticked
    time.sleep(1)  # what a failed handler would mark, it marks at once
    assert page.get_by_text("Error", exact=True).count() == 0
    assert page.locator(".toast-body").count() == 0
    page.get_by_role("tab", name="Knowledge").click()
    expect(page.locator("#kb-collection input")).to_have_value("refusals")
    expect(page.locator("#kb-documents")).to_contain_text("kept.txt")
    page.context.close()


def test_an_empty_send_adds_nothing_and_a_refused_message_stays_in_the_box(
    browser: Browser, server: str, resources
) -> None:
    page = open_chat(browser, server)
    box = page.locator("#message textarea")
    box.press("Enter")  # nothing typed
    box.fill("   ")
    box.press("Enter")
    too_long = "Tell me more. " * (resources.settings.max_message_chars // 10)
    box.fill(too_long)
    # A send while the blank one is still being checked is dropped (Gradio runs one submit
    # at a time): on a busy server it is pressed again, as a person would.
    refused = page.locator("#message div.validation-error")
    why = "characters long; the limit is"
    assert why in press_until_said(lambda: box.press("Enter"), refused, why)
    expect(box).to_have_value(too_long)
    time.sleep(1)
    assert page.locator("#chatbot .message").count() == 0, "no bubble for a refused send"
    page.context.close()


def test_a_phone_opens_on_the_chat_and_a_desktop_with_the_sidebar(
    browser: Browser, server: str
) -> None:
    for width, sidebar_open in ((390, False), (1280, True)):
        page = browser.new_context(viewport={"width": width, "height": 844}).new_page()
        page.goto(server)
        box = page.locator("#message textarea")
        box.wait_for()
        sidebar = page.locator(".sidebar").first
        if sidebar_open:
            expect(sidebar).to_have_class(re.compile(r"\bopen\b"))
        else:
            expect(sidebar).not_to_have_class(re.compile(r"\bopen\b"))
            box.click()  # nothing covers the message box
            box.fill("Hello")
            expect(box).to_have_value("Hello")
            page.get_by_role("button", name="Toggle Sidebar").click()
            expect(sidebar).to_have_class(re.compile(r"\bopen\b"))
        page.context.close()


def test_an_empty_chat_says_what_to_do_first_and_offers_the_collections(
    browser: Browser, server: str, resources, tmp_path
) -> None:
    page = open_chat(browser, server)
    chat = page.locator("#chatbot")
    expect(chat).to_contain_text("Ask your own documents")
    expect(chat).to_contain_text(re.compile(r"Knowledge|Your collections"))
    (tmp_path / "welcome.txt").write_text("The Quorn depot opens at six.")
    resources.knowledge.ingest("aa-welcome", [tmp_path / "welcome.txt"])  # listed first
    page.reload()
    expect(chat).to_contain_text("Your collections:")
    expect(chat).to_contain_text("aa-welcome")
    # An example sets up the backend and collection that answer it; the question waits in the
    # box, to be sent or changed.
    chat.get_by_text("What is aa-welcome about?").click()
    expect(page.locator("#backend input")).to_have_value("Summary (whole collection)")
    expect(page.locator("#option-summary-collection input")).to_have_value("aa-welcome")
    expect(page.locator("#message textarea")).to_have_value("What is this collection about?")
    page.locator("#message textarea").press("Enter")
    wait_for_answer(page, 1)
    assert "Quorn depot opens at six" in bot_answers(page)[0]
    expect(chat).not_to_contain_text("Ask your own documents")
    page.context.close()


def test_a_document_is_removed_only_once_its_removal_is_confirmed(
    browser: Browser, server: str, resources, tmp_path
) -> None:
    for name, text in (("keep.txt", "The Orrin mill grinds oats."), ("drop.txt", "Tolls rise.")):
        (tmp_path / name).write_text(text)
    resources.knowledge.ingest("removals", [tmp_path / "keep.txt", tmp_path / "drop.txt"])
    page = open_chat(browser, server)
    page.get_by_role("tab", name="Knowledge").click()
    choose(page, "#kb-collection", "removals")
    choose(page, "#kb-document", "drop.txt")
    page.locator("#kb-delete").click()
    asked = page.get_by_text("Remove drop.txt from removals?")
    expect(asked).to_be_visible(timeout=SERVER_S)
    page.locator("#kb-keep-document").click()
    expect(asked).to_be_hidden(timeout=SERVER_S)
    assert len(resources.knowledge.documents("removals")) == 2, "kept: nothing removed"

    page.locator("#kb-delete").click()
    page.locator("#kb-confirm-delete").click()
    expect(page.locator("#kb-status")).to_contain_text("Removed drop.txt", timeout=SERVER_S)
    expect(page.locator("#kb-documents")).not_to_contain_text("drop.txt")
    expect(page.locator("#kb-documents")).to_contain_text("keep.txt")
    expect(asked).to_be_hidden()
    assert [Path(d["source"]).name for d in resources.knowledge.documents("removals")] == [
        "keep.txt"
    ]
    page.context.close()


def test_a_stopped_answer_is_marked_as_stopped(browser: Browser, server: str) -> None:
    page = open_chat(browser, server)
    send(page, "Write a long story about a lighthouse keeper and her cat.")
    expect(page.locator("#chatbot [data-testid='bot']").first).not_to_have_text("", timeout=60_000)
    page.locator("#message .stop-button").click()
    expect(page.locator("#chatbot")).to_contain_text("Stopped", timeout=10_000)
    time.sleep(2)  # whatever was still on its way does not wipe the mark
    assert any("Stopped" in line for line in info_lines(page)), info_lines(page)
    send(page, "Name a colour.")
    wait_for_answer(page, 2)
    lines = info_lines(page)
    assert "Stopped" in lines[0] and "Stopped" not in lines[1], lines
    # The export says so too, and where the stopped answer came from.
    turns = export_conversation(page, "Write a long story")["turns"]
    stopped, finished = turns[1], turns[3]
    assert stopped["content"] and stopped["provenance"]["stopped"] is True
    assert stopped["provenance"]["backend"] == "base"
    assert "stopped" not in finished["provenance"]
    page.context.close()


# The chart is an SVG drawn by Vega: its axes and points carry aria-labels with their values.
READ_PLOT = """selector => {
  const svg = document.querySelector(selector + ' .vega-embed svg');
  if (!svg) return null;
  const y = svg.querySelector('g.role-axis[aria-label^="Y-axis"]');
  const points = [...svg.querySelectorAll('g.mark-symbol.role-mark path[aria-label]')].map(
    p => Object.fromEntries(p.getAttribute('aria-label').split('; ').map(kv => kv.split(': '))));
  const x = svg.querySelector('g.role-axis[aria-label^="X-axis"]');
  const legend = svg.querySelector('g.role-legend');
  return {y_axis: y ? y.getAttribute('aria-label') : '', points,
          x_axis: x ? x.getAttribute('aria-label') : '',
          legend: legend ? legend.textContent : ''};
}"""


def test_train_tab_trains_and_plots_the_real_losses(
    browser: Browser, server: str, resources, facts_file
) -> None:
    page = open_chat(browser, server)
    page.get_by_role("tab", name="Train").click()
    page.locator("#train-name textarea").fill("browser-lora")
    page.locator("#train-files input[type=file]").set_input_files(str(facts_file))
    page.locator("#train-max_steps textarea").fill("4")
    cancel = page.locator("#train-cancel")
    expect(cancel).to_be_disabled()  # nothing runs yet
    page.locator("#train-start").click()
    page.locator("#train-status").get_by_text("is ready").wait_for(timeout=300_000)

    meta = resources.artifacts.meta("browser-lora")
    losses = [h["loss"] for h in meta.loss_history if "loss" in h]
    assert meta.steps == 4 and len(losses) == 4
    page.wait_for_function(
        f"() => ({READ_PLOT})('#train-plot')?.points.filter(p => p.series === 'train')"
        f".length === {len(losses)}",
        timeout=30_000,
    )
    plot = page.evaluate(READ_PLOT, "#train-plot")
    # A numeric axis whose range holds the losses (not one category per value).
    assert "linear scale" in plot["y_axis"], plot["y_axis"]
    low, high = (float(v) for v in plot["y_axis"].split("values from ")[1].split(" to "))
    assert low <= min(losses) and max(losses) <= high <= 2 * max(losses) + 1
    shown = sorted(
        (float(p["step"]), float(p["loss"])) for p in plot["points"] if p["series"] == "train"
    )
    assert [step for step, _ in shown] == [1, 2, 3, 4]
    assert [loss for _, loss in shown] == pytest.approx(losses, rel=1e-3)
    # Whole steps on an axis from 0 (not 1 to 4 in quarter steps), a legend that names both.
    assert "values from 0 to 10" in plot["x_axis"], plot["x_axis"]
    assert "train" in plot["legend"] and "eval" in plot["legend"], plot["legend"]
    expect(cancel).to_be_disabled()  # done: nothing left to cancel

    card = page.locator("#train-card")
    expect(card).to_contain_text("trainable parameters")
    assert card.locator("th").all_inner_texts() == ["measure", "value"]
    page.context.close()


@pytest.fixture(scope="module")
def signed_in_server(resources) -> Iterator[str]:
    from bot.access import Access, Users
    from tests.test_access import PASSWORDS, launch

    users = Users()
    for name in ("bo", "cy"):
        users.add(name, PASSWORDS[name], "user")
    app, url = launch(resources, Access("signed-in", users))
    yield url
    app.close()


def sign_in(browser: Browser, url: str, user: str) -> Page:
    from tests.test_access import PASSWORDS

    page = browser.new_context().new_page()
    page.goto(url)
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Login").click()
    page.locator("#message textarea").wait_for()
    return page


def choices_of(page: Page, dropdown: str) -> list[str]:
    page.locator(f"{dropdown} input").click()
    shown = page.get_by_role("option").all_inner_texts()
    page.locator(f"{dropdown} input").press("Escape")
    page.locator(f"{dropdown} input").blur()
    return [text.split("\n")[-1].strip() for text in shown]  # without the "✓" of the chosen


def test_two_signed_in_users_each_keep_their_documents_and_adapters(
    browser: Browser, signed_in_server: str, facts_file, tmp_path
) -> None:
    doc = tmp_path / "atlas.txt"
    doc.write_text("The Orrin atlas was drawn by Tamsin Vale. It maps the coast of Orrin.")
    bo = sign_in(browser, signed_in_server, "bo")
    add_document(bo, "atlas", doc)

    bo.get_by_role("tab", name="Train").click()
    bo.locator("#train-name textarea").fill("bo-tutor")
    bo.locator("#train-files input[type=file]").set_input_files(str(facts_file))
    bo.locator("#train-max_steps textarea").fill("2")
    bo.locator("#train-start").click()
    bo.locator("#train-status").get_by_text("is ready").wait_for(timeout=300_000)

    bo.get_by_role("tab", name="Chat").click()
    choose_backend(bo, "LoRA adapter")
    assert "bo-tutor" in choices_of(bo, "#option-lora-adapter")
    choose_backend(bo, "RAG (retrieval)")
    choose(bo, "#option-rag-collection", "atlas")
    send(bo, "Who drew the Orrin atlas?")
    wait_for_answer(bo, 1, timeout_s=60)
    assert "Tamsin Vale" in bot_answers(bo)[0]

    cy = sign_in(browser, signed_in_server, "cy")
    choose_backend(cy, "LoRA adapter")
    assert "bo-tutor" not in choices_of(cy, "#option-lora-adapter")
    choose_backend(cy, "RAG (retrieval)")
    assert "atlas" not in choices_of(cy, "#option-rag-collection")
    cy.get_by_role("tab", name="Knowledge").click()
    assert "atlas" not in choices_of(cy, "#kb-collection")

    # Bo's conversation is kept for Bo, in another browser too, and never listed for Cy.
    asked = "Who drew the Orrin atlas"
    expect(bo.locator("#conversations")).to_contain_text(asked, timeout=SERVER_S)
    assert not any(asked in name for name in listed_conversations(cy))
    elsewhere = sign_in(browser, signed_in_server, "bo")
    expect(elsewhere.locator("#conversations")).to_contain_text(asked, timeout=SERVER_S)
    for page in (bo, cy, elsewhere):
        page.context.close()


def launch_chat(resources, port: int | None = None, access=None) -> tuple[object, str]:
    """A fresh app on `resources` (with the echo backend), as a restarted server would be."""
    from bot.app import LOCAL, build_app
    from bot.backends import default_registry
    from bot.service import ChatService
    from tests.conftest import free_port
    from tests.test_registry import Echo

    registry = default_registry()
    registry.register(Echo())
    app = build_app(ChatService(resources, registry), access or LOCAL).queue()
    port = port or free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return app, f"http://127.0.0.1:{port}/"


def wait_until_saved(resources, text: str, timeout_s: float = 60) -> None:
    """Wait until a conversation saved on the server holds `text`."""
    deadline = time.monotonic() + timeout_s
    folder = resources.settings.conversations_dir
    while not any(text in p.read_text() for p in folder.rglob("*.json")):
        assert time.monotonic() < deadline, f"no saved conversation holds {text!r}"
        time.sleep(0.2)


def listed_conversations(page: Page) -> list[str]:
    return page.locator("#conversations label").all_inner_texts()


def user_messages(page: Page) -> list[str]:
    return page.locator("#chatbot [data-testid='user']").all_inner_texts()


def test_a_conversation_survives_a_reload_and_a_restart_and_reopens_from_the_list(
    browser: Browser, resources
) -> None:
    app, url = launch_chat(resources)
    page = open_chat(browser, url)
    choose_backend(page, "Echo")
    page.locator("#option-echo-prefix textarea").fill("echo: ")
    page.locator("#option-echo-prefix textarea").blur()
    send(page, "Who is the keeper of the lighthouse on Skerry Point?")
    wait_for_answer(page, 1)
    send(page, "And since when?")
    wait_for_answer(page, 2)
    assert bot_answers(page) == [
        "echo: Who is the keeper of the lighthouse on Skerry Point?",
        "echo: And since when?",
    ]
    wait_until_saved(resources, "And since when?")  # saved just after the answer shows
    expect(page.locator("#conversations")).to_contain_text("Skerry Point", timeout=SERVER_S)

    # A reload brings back the open conversation, its backend and its options.
    page.reload()
    expect(page.locator("#chatbot")).to_contain_text("And since when?", timeout=30_000)
    expect(page.locator("#backend input")).to_have_value("Echo", timeout=SERVER_S)
    expect(page.locator("#option-echo-prefix textarea")).to_have_value("echo: ", timeout=SERVER_S)
    send(page, "Still there?")
    wait_for_answer(page, 3)

    # A second conversation, then the first reopened from the list.
    page.locator("#new-conversation").click()
    expect(page.locator("#chatbot [data-testid='user']")).to_have_count(0, timeout=SERVER_S)
    send(page, "A second conversation about tides.")
    wait_for_answer(page, 1)
    expect(page.locator("#conversations")).to_contain_text(
        "A second conversation", timeout=SERVER_S
    )
    # Other tests of the session keep conversations in the same store: named by what is its own.
    page.locator("#conversations label", has_text="Skerry Point").click()
    expect(page.locator("#chatbot")).to_contain_text("Still there?", timeout=30_000)
    assert len(user_messages(page)) == 3

    page.get_by_text("Rename or delete").click()
    # As a person would, edit the title once it shows the reopened conversation's: on a busy
    # server it arrives after the messages, and would replace what was typed before it.
    title = page.locator("#conversation-title textarea")
    expect(title).to_have_value(re.compile("Skerry Point"), timeout=SERVER_S)
    title.fill("Lighthouse notes")
    listing = page.locator("#conversations")
    assert "Lighthouse notes" in press_until_said(
        page.locator("#rename").click, listing, "Lighthouse notes"
    )

    # The server restarts (same address, same data folder): the list and the open one stay.
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    app.close()
    app, url = launch_chat(resources, port)
    page.reload()
    expect(page.locator("#chatbot")).to_contain_text("Still there?", timeout=30_000)
    names = listed_conversations(page)
    assert any("Lighthouse notes" in n for n in names), names
    assert any("A second conversation" in n for n in names), names
    exported = export_conversation(page)
    assert [t["role"] for t in exported["turns"]] == ["user", "assistant"] * 3
    assert all(t["provenance"]["backend"] == "echo" for t in exported["turns"][1::2])

    # Deleting asks first; "Keep it" keeps it, "Delete it" removes it for good.
    page.get_by_text("Rename or delete").click()
    page.locator("#delete-conversation").click()
    expect(page.get_by_text("Delete “Lighthouse notes”?")).to_be_visible(timeout=SERVER_S)
    page.locator("#keep-conversation").click()
    expect(page.locator("#conversations")).to_contain_text("Lighthouse notes", timeout=SERVER_S)
    page.locator("#delete-conversation").click()
    page.locator("#confirm-delete").click()
    expect(page.locator("#conversations")).not_to_contain_text("Lighthouse notes", timeout=SERVER_S)
    expect(page.locator("#chatbot [data-testid='user']")).to_have_count(0, timeout=SERVER_S)
    page.reload()
    page.locator("#message textarea").wait_for()
    expect(page.locator("#conversations")).to_contain_text(
        "A second conversation", timeout=SERVER_S
    )
    expect(page.locator("#conversations")).not_to_contain_text("Lighthouse notes", timeout=SERVER_S)
    page.context.close()
    app.close()


def test_an_anonymous_visitors_conversations_stay_in_their_own_browser(
    browser: Browser, resources
) -> None:
    from bot.access import Access

    app, url = launch_chat(resources, access=Access("chat-only"))
    page = open_chat(browser, url)
    choose_backend(page, "Echo")
    send(page, "Is the harbour ferry running on Sundays?")
    wait_for_answer(page, 1)
    expect(page.locator("#conversations")).to_contain_text(
        "Is the harbour ferry running", timeout=SERVER_S
    )
    page.reload()
    expect(page.locator("#chatbot")).to_contain_text("Is the harbour ferry", timeout=30_000)
    expect(page.locator("#conversations")).to_contain_text(
        "Is the harbour ferry running", timeout=SERVER_S
    )

    # Another visitor (another browser) sees none of it, and the server keeps none of it.
    stranger = open_chat(browser, url)
    time.sleep(2)  # the list is filled on load
    assert listed_conversations(stranger) == []
    assert user_messages(stranger) == []
    stored = resources.settings.conversations_dir
    assert not any("harbour ferry" in p.read_text() for p in stored.rglob("*.json"))
    for open_page in (page, stranger):
        open_page.context.close()
    app.close()
