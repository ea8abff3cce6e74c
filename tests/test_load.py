"""A short run of the load bench (bench/load.py): four sessions of two users, through the API
(streaming and not) and the page's queue, with mixed backends, on a real signed-in server
(in this process, on the tests' shared model)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.access import Access, Users
from bot.api import mount_api
from bot.resources import Resources
from bot.service import ChatService
from tests.test_access import launch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_concurrent_sessions_are_answered_fairly_without_unexplained_errors(
    resources: Resources, tmp_path: Path
) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import load

    users = Users()
    for name, (password, role) in load.USERS.items():
        users.add(name, password, role)
    keys = {name: users.new_api_key(name) for name in load.USERS}
    (tmp_path / "pool.txt").write_text(load.DOCUMENT)
    resources.knowledge.ingest(load.COLLECTION, [tmp_path / "pool.txt"])
    access = Access("signed-in", users)
    app, url = launch(resources, access)
    mount_api(app, ChatService(resources), access)
    try:
        server = load.Server(tmp_path, int(url.rsplit(":", 1)[1]), keys)
        run = load.run_load(server, 4, 20, ["base", "rag", "summary"], alone_s=0)["sessions"]
    finally:
        app.close()
    assert run["unexplained"] == 0, run["errors"]
    assert run["answered"] >= 4 and set(run["answered_by_way"]) == set(load.WAYS), run
    assert all(rate > 0 for rate in run["answers_per_s_by_user"].values()), run
    assert run["fairness_slowest_over_mean"] >= 0.5, run
