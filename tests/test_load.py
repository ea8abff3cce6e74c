"""A short run of the load bench (bench/load.py): four sessions of two users, through the API
(streaming and not) and the page's queue, with mixed backends, on a real server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.resources import Resources

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_concurrent_sessions_are_answered_fairly_without_unexplained_errors(
    resources: Resources, tmp_path: Path
) -> None:
    settings = resources.settings  # the model converted once, copied for the server
    sys.path.insert(0, str(ROOT / "bench"))
    import load

    home = Path.home() / ".cache" / "kbot-tests" / tmp_path.name
    try:
        results = load.main(
            ["--sessions", "4", "--seconds", "30", "--alone", "0", "--backends",
             "base,rag,summary", "--max-new-tokens", "16", "--home", str(home),
             "--model-cache", str(settings.models_dir), "--results", str(tmp_path / "l.json")]
        )  # fmt: skip
    finally:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    run = results["load"]["sessions"]
    assert run["unexplained"] == 0, run["errors"]
    assert run["answered"] >= 4 and set(run["answered_by_way"]) == set(load.WAYS), run
    assert all(rate > 0 for rate in run["answers_per_s_by_user"].values()), run
    assert run["fairness_slowest_over_mean"] >= 0.5, run
