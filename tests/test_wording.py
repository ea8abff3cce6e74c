"""Figures and dates as people read them."""

from __future__ import annotations

import pytest

from bot.evaluation.report import bar_value
from common.text import friendly_time


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.008, "0.008"), (0.0, "0"), (0.25, "0.25"), (12.34, "12.3"), (1234.4, "1,234")],
)
def test_a_small_bar_is_labelled_with_its_digits_not_rounded_to_zero(
    value: float, shown: str
) -> None:
    assert bar_value(value) == shown


def test_timestamps_read_as_dates() -> None:
    assert friendly_time("2026-12-06T06:45:12.123456+00:00") == "6 Dec 2026, 06:45 UTC"
    assert friendly_time("2026-01-31T23:05:00") == "31 Jan 2026, 23:05"
    assert friendly_time("not a date") == "not a date"


def test_an_answer_the_model_did_not_write_has_no_token_count() -> None:
    from bot.app import render_reply
    from bot.service import Reply

    written = render_reply(Reply("base", "Paris.", tokens=3, latency_s=1.0, done=True), "Base")
    stored = render_reply(Reply("summary", "A summary.", latency_s=0.4, done=True), "Summary")
    assert isinstance(written, list) and isinstance(stored, list)
    assert written[1]["metadata"]["title"] == "Base · 3 tokens · 1.0 s"
    assert stored[1]["metadata"]["title"] == "Summary · 0.4 s"
