"""The chat in a real browser: Debian's Chromium driven by Playwright (no downloaded browser)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

pytestmark = pytest.mark.browser

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
    return page.locator("#chatbot .thought .title").all_inner_texts()


def wait_for_answer(page: Page, count: int, timeout_s: float = 120) -> list[str]:
    """Wait for the `count`-th answer to finish; return the texts it showed while streaming."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while len(info_lines(page)) < count:
        assert time.monotonic() < deadline, f"no answer {count} after {timeout_s}s"
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
