"""The screenshots in docs/screenshots/, taken in Chromium from a real server on the packaged
models: the first-run page, a RAG answer with its evidence, the conversation list and the
phone layout. Run `python docs/screenshots.py [TAB ...]` (about two minutes; named tabs are
shot into the temp folder for a look); the documents are the notices of bench/data/notices
(written for this project)."""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import LOCAL, build_app  # noqa: E402
from bot.resources import Resources  # noqa: E402
from bot.service import ChatService  # noqa: E402
from bot.settings import load_settings  # noqa: E402

SHOTS = ROOT / "docs" / "screenshots"
NOTICES = ROOT / "bench" / "data" / "notices"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


def choose(page: Page, dropdown: str, value: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=value).click()
    page.locator(f"{dropdown} input").blur()


def ask(page: Page, question: str, answers: int) -> None:
    box = page.locator("#message textarea")
    box.fill(question)
    box.press("Enter")
    titles = page.locator("#chatbot .thought .title")
    deadline = time.monotonic() + 300
    while sum(not t.strip().endswith("…") for t in titles.all_inner_texts()) < answers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer to {question!r}")
        time.sleep(0.2)


def main() -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="kbot-screens-", dir=Path.home()))
    try:
        settings = load_settings(home=home)
        resources = Resources(settings).load()
        app = build_app(ChatService(resources), LOCAL).queue()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        url = f"http://127.0.0.1:{port}/"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=CHROMIUM_ARGS,
            )
            desktop = browser.new_context(viewport={"width": 1280, "height": 1200})
            page = desktop.new_page()
            page.goto(url)
            page.locator("#message textarea").wait_for()
            time.sleep(2)
            page.screenshot(path=SHOTS / "first-run.png")

            documents = [p for p in sorted(NOTICES.glob("*.md")) if p.name != "README.md"]
            resources.knowledge.ingest("town-notices", documents)
            page.reload()
            page.locator("#message textarea").wait_for()
            choose(page, "#backend", "RAG (retrieval)")
            choose(page, "#option-rag-collection", "town-notices")
            ask(page, "How many free hours of meeting rooms does a member get?", 1)
            ask(page, "And what does an extra hour cost?", 2)
            time.sleep(1)
            page.screenshot(path=SHOTS / "rag-answer.png")

            page.locator("#new-conversation").click()
            ask(page, "When does the first bus leave Harbour Station on weekdays?", 1)
            page.locator("#new-conversation").click()
            choose(page, "#backend", "Summary (whole collection)")
            choose(page, "#option-summary-collection", "town-notices")
            ask(page, "What are these documents about?", 1)
            page.locator("#conversations label").nth(1).click()
            expect(page.locator("#chatbot")).to_contain_text("Harbour Station")
            time.sleep(1)
            page.locator("#conversation-list").screenshot(path=SHOTS / "conversations.png")

            phone = browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
            ).new_page()
            phone.goto(url)
            phone.locator("#message textarea").wait_for()
            time.sleep(2)
            phone.screenshot(path=SHOTS / "phone.png")
            for tab in sys.argv[1:]:  # any tab named on the command line, for a look
                page.get_by_role("tab", name=tab).click()
                time.sleep(1)
                page.screenshot(path=Path(tempfile.gettempdir()) / f"kbot-{tab.lower()}.png")
            browser.close()
        app.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(f"Screenshots in {SHOTS}")


if __name__ == "__main__":
    main()
