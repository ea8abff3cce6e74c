"""A comparison as charts and one self-contained HTML file (inline CSS, PNG charts as data
URIs), to open anywhere or attach to an issue."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: charts are files and images

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bot.evaluation.runner import Comparison  # noqa: E402
from bot.evaluation.table import SCORE_LABELS, table  # noqa: E402
from common.files import write_atomically  # noqa: E402


def scores_figure(comparison: Comparison) -> Figure:
    rows = comparison.rows()
    metrics = [m for m in SCORE_LABELS if any(row[m] is not None for row in rows)]
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(rows) + 2), 3.6), layout="constrained")
    width = 0.8 / max(len(metrics), 1)
    for offset, metric in enumerate(metrics):
        # No bar where a score does not apply (hit@k of a backend that does not retrieve).
        shown = [(i, row[metric]) for i, row in enumerate(rows) if row[metric] is not None]
        positions = [i + (offset - (len(metrics) - 1) / 2) * width for i, _ in shown]
        values = [value for _, value in shown]
        bars = axes.bar(positions, values, width, label=SCORE_LABELS[metric])
        axes.bar_label(bars, fmt="%.2f", fontsize=7)
    axes.set_xticks(range(len(rows)), [row["backend"] for row in rows])
    axes.set_ylim(0, 1.1)
    axes.set_ylabel("share of questions")
    axes.set_title(f"Answer quality on {len(comparison.questions)} questions")
    axes.legend(loc="upper left", fontsize=8, ncols=len(metrics))
    return figure


def bar_value(value: float) -> str:
    """A bar's label with the digits that tell bars apart: 0.008, 0.25, 12.3, 1,234."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value else "0"


def costs_figure(comparison: Comparison) -> Figure:
    rows = comparison.rows()
    names = [row["backend"] for row in rows]
    panels = [
        ("median latency (s)", [row["latency_p50_s"] or 0 for row in rows]),
        (
            "build time (s): training + ingestion",
            [(row["train_seconds"] or 0) + (row["ingest_seconds"] or 0) for row in rows],
        ),
        (
            "disk (MB): artifact + index",
            [((row["artifact_bytes"] or 0) + (row["index_bytes"] or 0)) / 1e6 for row in rows],
        ),
    ]
    figure, axes = plt.subplots(
        1, len(panels), figsize=(max(9, 2.4 * len(rows) + 3), 3.2), layout="constrained"
    )
    for ax, (title, values) in zip(axes, panels, strict=True):
        bars = ax.bar(names, values, color="#6b8fc7")
        ax.bar_label(bars, labels=[bar_value(v) for v in values], fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    return figure


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: right; }
th:first-child, td:first-child, .answers td { text-align: left; }
th { background: #f1f3f7; }
img { max-width: 100%; }
.muted { color: #666; font-size: 0.85rem; }
"""


def render_html(comparison: Comparison) -> str:
    titles, rows = table(comparison)
    head = "".join(f"<th>{html.escape(t)}</th>" for t in titles)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    answers = "".join(
        f"<tr><td>{html.escape(r.contender.spec)}</td><td>{html.escape(q.question)}</td>"
        f"<td>{html.escape(' | '.join(q.answers))}</td><td>{html.escape(a.answer)}</td>"
        f"<td>{a.f1:.2f}</td></tr>"
        for r in comparison.results
        for q, a in zip(comparison.questions, r.answers, strict=False)
    )
    status = " (cancelled: partial results)" if comparison.cancelled else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Knowledge Bot comparison</title><style>{_CSS}</style></head>
<body>
<h1>Which way of adding knowledge works best?</h1>
<p class="muted">Model {html.escape(comparison.model)} · {len(comparison.questions)} questions ·
{comparison.created_at}{status}</p>
<h2>Scores and costs</h2>
<table id="scores"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<p class="muted">EM and F1 as in SQuAD (best over the gold answers); "contains" is the share of
answers that contain a gold answer; hit@k is the share of questions whose expected source was
retrieved. Latency counts retrieval and generation. Costs come from the collection and from
the trained artifacts' metadata.</p>
<img alt="answer quality" src="data:image/png;base64,{_png(scores_figure(comparison))}">
<img alt="costs" src="data:image/png;base64,{_png(costs_figure(comparison))}">
<details><summary>Every answer</summary>
<table class="answers"><thead><tr><th>backend</th><th>question</th><th>gold</th><th>answer</th>
<th>F1</th></tr></thead><tbody>{answers}</tbody></table></details>
</body></html>
"""


def write_report(comparison: Comparison, path: Path) -> Path:
    return write_atomically(path, render_html(comparison))
