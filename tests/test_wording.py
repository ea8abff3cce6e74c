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
