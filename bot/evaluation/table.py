"""A comparison as a table of scores and costs, for terminals, the UI and the report."""

from __future__ import annotations

from typing import Any

from bot.evaluation.runner import Comparison

SCORE_LABELS = {
    "em": "exact match",
    "f1": "token F1",
    "contains": "contains gold",
    "hit_at_k": "hit@k",
}
COLUMNS = {
    "backend": "backend",
    "questions": "questions",
    "em": "EM",
    "f1": "F1",
    "contains": "contains",
    "hit_at_k": "hit@k",
    "latency_p50_s": "p50 s",
    "latency_p95_s": "p95 s",
    "tokens_per_s": "tok/s",
    "train_seconds": "train s",
    "trainable_params": "trained params",
    "artifact_bytes": "artifact MB",
    "peak_memory_mb": "peak mem MB",
    "index_bytes": "index MB",
    "ingest_seconds": "ingest s",
}


def format_value(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key.endswith("_bytes"):
        megabytes = value / 1e6
        return f"{megabytes:,.1f}" if megabytes >= 1 else f"{megabytes:.3f}"
    if key == "trainable_params":
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3f}" if key in SCORE_LABELS else f"{value:,.1f}"
    return str(value)


def table(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """Column titles and formatted rows, for the UI and the report alike."""
    rows = comparison.rows()
    return list(COLUMNS.values()), [[format_value(k, row.get(k)) for k in COLUMNS] for row in rows]


def text_table(comparison: Comparison) -> str:
    """The table as aligned plain text, for terminals."""
    titles, rows = table(comparison)
    widths = [max(len(t), *(len(r[i]) for r in rows)) for i, t in enumerate(titles)]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in [titles, *rows]
    )
