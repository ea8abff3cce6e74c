"""The server's rules for training and question writing hold for whoever calls the service,
not only for the Train and Compare tabs (`bot/jobs.py`): called directly here, as another
entry point (an HTTP API) would call it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from adapters.train import TrainConfig
from bot.access import Access, AccessDenied, Users
from bot.jobs import Jobs
from bot.resources import Resources
from bot.training import TrainingQuota
from common.errors import BadInput, NotFound, OverLimit
from tests.test_access import PASSWORDS


def signed_in() -> Access:
    users = Users()
    for name in ("bo", "cy"):
        users.add(name, PASSWORDS[name], "user")
    return Access("signed-in", users)


def request(user: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(username=user, session_hash="page", client=None, headers={})


@pytest.fixture
def facts(resources: Resources, facts_file: Path) -> list[str]:
    return [str(facts_file)]


def lora(name: str, **recipe: int) -> TrainConfig:
    return TrainConfig(method="lora", name=name, **recipe)


def test_nobody_trains_or_writes_questions_on_a_chat_only_server(resources: Resources) -> None:
    jobs = Jobs(resources, Access("chat-only"))
    with pytest.raises(AccessDenied, match="chat-only: nobody may train models"):
        jobs.prepare_training(request(), lora("x"), collection="any")
    with pytest.raises(AccessDenied, match="nobody may write question sets"):
        jobs.write_questions(request(), "any")


def test_a_visitor_must_sign_in_and_a_user_trains_on_their_own_uploads(
    resources: Resources, facts: list[str]
) -> None:
    jobs = Jobs(resources, signed_in())
    with pytest.raises(AccessDenied, match="Sign in to train models"):
        jobs.prepare_training(request(), lora("x"), uploads=facts)
    # A path bo did not upload (here: a file on the server) is refused, naming no path.
    with pytest.raises(AccessDenied, match="facts.jsonl: not a file you uploaded"):
        jobs.prepare_training(request("bo"), lora("x"), uploads=facts)
    resources.uploads.record(facts, "bo")
    job = jobs.prepare_training(request("bo"), lora("mine"), uploads=facts)
    assert job.view.scope.user == "bo" and job.quota_key == "bo"
    assert job.data.origin == "facts.jsonl"  # the file's name, not the server's path
    with pytest.raises(AccessDenied, match="not a file you uploaded"):
        jobs.prepare_training(request("cy"), lora("x"), uploads=facts)
    with pytest.raises(NotFound, match="Unknown question set"):
        jobs.prepare_training(request("bo"), lora("x"), question_set="../../etc/passwd")


def test_recipes_over_the_servers_limits_and_a_spent_day_are_refused(
    resources: Resources, facts: list[str], tmp_path: Path
) -> None:
    jobs = Jobs(resources, Access("open"))
    with pytest.raises(BadInput, match="Batch size 100 is over this server's limit of 32"):
        jobs.prepare_training(request(), lora("x", batch_size=100), uploads=facts)
    with pytest.raises(BadInput, match="LoRA rank 1,000 is over this server's limit"):
        jobs.prepare_training(request(), lora("x", lora_r=1000), uploads=facts)
    settings = resources.settings.model_copy(update={"home": tmp_path / "home"})
    spent = Jobs(Resources(settings), Access("open"))
    TrainingQuota(settings.runs_dir / "usage.json", settings.train_minutes_per_day).use(
        "everyone", settings.train_minutes_per_day * 60
    )
    with pytest.raises(OverLimit, match="KBOT_TRAIN_MINUTES_PER_DAY"):
        spent.prepare_training(request(), lora("x"), uploads=facts)
    # The machine's own local server is not limited by the day's time.
    assert (
        Jobs(Resources(settings), Access("local"))
        .prepare_training(request(), lora("x"), uploads=facts)
        .quota_key
        is None
    )


def test_question_sets_are_written_from_a_bounded_number_of_chunks(resources: Resources) -> None:
    jobs = Jobs(resources, Access("open"))
    with pytest.raises(OverLimit, match="1 to 200 chunks at a time"):
        jobs.write_questions(request(), "any", max_chunks=10**7)
    with pytest.raises(BadInput, match="Choose the knowledge collection"):
        jobs.write_questions(request(), None)


@pytest.mark.slow
def test_a_run_stops_when_the_callers_time_for_the_day_runs_out(
    resources: Resources, facts: list[str], tmp_path: Path
) -> None:
    settings = resources.settings.model_copy(
        update={"home": tmp_path / "home", "train_minutes_per_day": 0.5}
    )
    own = Resources(settings)
    jobs = Jobs(own, Access("open"))
    quota = jobs.quota
    quota.use("everyone", 30 - 2)  # two seconds left today: the run starts, then stops
    job = jobs.prepare_training(request(), lora("late", max_steps=2000), uploads=facts)
    outcome = jobs.run_training(job)
    assert outcome.result.status == "cancelled" and outcome.result.meta is None
    assert outcome.stopped == quota.refusal()
    assert quota.left("everyone") == 0 and "late" not in own.artifacts.names()
    with pytest.raises(OverLimit, match="possible again tomorrow"):
        jobs.prepare_training(request(), lora("later"), uploads=facts)
