"""LoRA and full fine-tuning on the real model, on CPU, with a few invented facts."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from adapters.data import DataError, load_records
from adapters.registry import ArtifactExistsError
from adapters.train import TrainConfig
from bot.resources import Resources
from bot.service import ChatService
from bot.training import run_training
from common.names import InvalidNameError
from tests.cli import kbot
from tests.conftest import FIXTURE_STEPS
from tests.documents import FACT_QA as FACTS
from tests.documents import QUESTION, train, write_facts, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def answer(resources: Resources, backend: str, question: str = QUESTION, **options) -> str:
    return list(ChatService(resources).reply(question, (), backend, options))[-1].answer


@pytest.mark.slow
def test_lora_run_makes_standard_loadable_artifacts(resources: Resources, lora: str) -> None:
    folder = resources.artifacts.path(lora)
    assert {"adapter_config.json", "adapter_model.safetensors", "kbot_meta.json", "loss.png"} <= {
        p.name for p in folder.iterdir()
    }
    meta = json.loads((folder / "kbot_meta.json").read_text())
    assert meta["method"] == "lora" and meta["base_model"] == resources.settings.model
    assert 0 < meta["trainable_params"] < meta["total_params"] * 0.1
    assert meta["file_bytes"] < meta["base_model_bytes"] / 10
    assert meta["steps"] == FIXTURE_STEPS
    assert meta["final_train_loss"] < meta["loss_history"][0]["loss"]
    assert len(meta["data"]["fingerprint"]) == 16 and meta["peak_memory_mb"] > 0
    from peft import PeftConfig

    assert PeftConfig.from_pretrained(folder).r == 16


@pytest.mark.slow
def test_lora_answers_a_fact_the_base_model_cannot(resources: Resources, lora: str) -> None:
    assert "Fennimore" not in answer(resources, "base")
    assert "Orla Fennimore" in answer(resources, "lora", adapter=lora)
    # The base stays the base once an adapter is loaded on it.
    assert "Fennimore" not in answer(resources, "base")


@pytest.mark.slow
def test_full_fine_tune_answers_a_fact_the_base_model_cannot(
    resources: Resources, full: str
) -> None:
    meta = resources.artifacts.meta(full)
    assert meta.trainable_params == meta.total_params
    folder = resources.artifacts.path(full)
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert "Orla Fennimore" in answer(resources, "full", checkpoint=full)
    assert "Fennimore" not in answer(resources, "base")


@pytest.mark.slow
def test_concurrent_conversations_with_different_adapters_each_get_their_own(
    resources: Resources, lora: str, tmp_path: Path
) -> None:
    other = write_jsonl(
        tmp_path / "other.jsonl", [(QUESTION, "The mayor of Quillby is Bram Okonkwo."), *FACTS[1:]]
    )
    train(resources, "lora", "other-lora", other, max_steps=FIXTURE_STEPS)
    answers: dict[str, list[str]] = {lora: [], "other-lora": []}

    def converse(adapter: str) -> None:
        for _ in range(3):
            answers[adapter].append(answer(resources, "lora", adapter=adapter))

    threads = [threading.Thread(target=converse, args=(name,)) for name in answers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all("Fennimore" in a and "Okonkwo" not in a for a in answers[lora])
    assert all("Okonkwo" in a and "Fennimore" not in a for a in answers["other-lora"])
    loaded = resources.model
    assert loaded.peft is not None and len(loaded.adapters) >= 2  # one base, many adapters


# `kbot train` in a process that kills itself at an exact point: in the middle of training,
# or while publishing, after the old artifact was moved aside and before the new one is in.
KILLED_TRAINING = """
import os, signal, sys
from pathlib import Path

import adapters.train

point = sys.argv[1]
if point == "training":
    from transformers import TrainerCallback

    class DieAtStep2(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                os.kill(os.getpid(), signal.SIGKILL)

    callbacks = adapters.train._callbacks
    adapters.train._callbacks = lambda *a: callbacks(*a) + [DieAtStep2()]
elif point == "publish":
    rename = Path.rename

    def rename_or_die(self, target):
        if self.name.startswith(".staging-"):  # the new artifact is about to move in
            os.kill(os.getpid(), signal.SIGKILL)
        return rename(self, target)

    Path.rename = rename_or_die
from bot.cli import main

sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["training", "publish"])
def test_a_run_killed_halfway_leaves_the_earlier_adapter_intact(
    resources: Resources, lora: str, facts_file: Path, point: str
) -> None:
    folder = resources.artifacts.path(lora)
    before = (folder / "adapter_model.safetensors").read_bytes()
    args = ["train", "--method", "lora", "--data", str(facts_file), "--name", lora]
    args += ["--overwrite", "--max-steps", "4", "--home", str(resources.settings.home)]
    died = subprocess.run(
        [sys.executable, "-c", KILLED_TRAINING, point, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert died.returncode == -9, died.stderr[-2000:]
    assert lora in resources.artifacts.names()
    assert not [name for name in resources.artifacts.names() if name.startswith(".")]
    kept = resources.artifacts.path(lora)  # its hidden name, if the swap was cut in two
    assert (kept / "adapter_model.safetensors").read_bytes() == before
    assert resources.artifacts.meta(lora).steps == FIXTURE_STEPS
    assert "Orla Fennimore" in answer(resources, "lora", adapter=lora)
    # The next publish finishes (or undoes) the interrupted swap: listing never moves it.
    train(resources, "lora", lora, facts_file, max_steps=FIXTURE_STEPS, overwrite=True)
    assert resources.artifacts.path(lora) == folder
    assert not list(folder.parent.glob(".replaced-*")), "the interrupted swap was undone"
    assert "Orla Fennimore" in answer(resources, "lora", adapter=lora)


@pytest.mark.slow
def test_cancel_stops_without_an_artifact_and_resume_continues(
    resources: Resources, facts_file: Path
) -> None:
    cancel = threading.Event()

    def progress(fraction: float, label: str) -> None:
        if label.startswith("step 3/"):
            cancel.set()

    config = TrainConfig(method="lora", name="resumable", max_steps=6, save_every=2)
    result = run_training(resources, config, load_records(facts_file), progress, cancel)
    assert result.status == "cancelled" and "resumable" not in resources.artifacts.names()
    resumed = run_training(
        resources, config.model_copy(update={"resume": True}), load_records(facts_file)
    )
    assert resumed.status == "done" and resumed.meta.steps == 6
    assert min(h["step"] for h in resumed.meta.loss_history) > 2


@pytest.mark.slow
def test_names_and_overwrites_are_checked(resources: Resources, lora: str, facts_file) -> None:
    with pytest.raises(InvalidNameError):
        train(resources, "lora", "../escape", facts_file, max_steps=1)
    with pytest.raises(ArtifactExistsError, match="exists"):
        train(resources, "lora", lora, facts_file, max_steps=1)


def test_malformed_lines_are_rejected_with_their_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"question": "a", "answer": "b"}\n'
        '{"messages": [{"role": "user", "content": "hi"},'
        ' {"role": "assistant", "content": "yo"}]}\n'
        '{"question": "no answer"}\n'
    )
    with pytest.raises(DataError, match=r"bad\.jsonl, line 3: \"answer\" must be"):
        load_records(path)
    path.write_text('{"instruction": "x", "output": "y"}\n{broken\n')
    with pytest.raises(DataError, match=r"line 2: not valid JSON"):
        load_records(path)
    path.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(DataError, match="line 1: the last message must be the assistant"):
        load_records(path)


@pytest.mark.slow
def test_cli_train_rejects_bad_data_before_training(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a"}\n{"question": 3, "answer": "a"}\n')
    result = kbot(
        "train",
        "--method",
        "lora",
        "--data",
        str(bad),
        "--name",
        "x",
        home=tmp_path / "home",
    )
    assert result.returncode == 2 and "line 2" in result.stderr
    assert not (tmp_path / "home" / "adapters" / "x").exists()


def test_batches_pad_on_the_right_and_only_answers_carry_loss(resources: Resources) -> None:
    from transformers import AutoTokenizer

    from adapters.data import TrainingData
    from adapters.train import _collator, tokenize
    from bot.model import model_location

    tokenizer = AutoTokenizer.from_pretrained(model_location(resources.settings))
    tokenizer.padding_side = "left"  # some models' own setting: training pads right anyway
    data = TrainingData(kind="sft", conversations=tuple(
        ({"role": "user", "content": q}, {"role": "assistant", "content": a}) for q, a in FACTS
    ))  # fmt: skip
    examples = tokenize(data, tokenizer, 256, "Be brief.")
    batch = _collator(tokenizer)(examples)
    lengths = [len(e["input_ids"]) for e in examples]
    for row, length in enumerate(lengths):
        assert batch["attention_mask"][row].tolist() == [1] * length + [0] * (max(lengths) - length)
        assert batch["input_ids"][row, :length].tolist() == examples[row]["input_ids"]
        labels = batch["labels"][row].tolist()
        assert labels[length:] == [-100] * (max(lengths) - length)
        answer = tokenizer.decode([t for t in labels if t != -100])
        assert FACTS[row][1] in answer and FACTS[row][0] not in answer
    assert tokenizer.padding_side == "left"  # the tokenizer itself is left as it was


def test_alpaca_and_chat_formats_load(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"instruction": "Add", "input": "2 and 2", "output": "4"}\n'
        '{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},'
        ' {"role": "assistant", "content": "a"}]}\n'
    )
    data = load_records(path)
    assert data.conversations[0][0]["content"] == "Add\n\n2 and 2"
    assert [m["role"] for m in data.conversations[1]] == ["system", "user", "assistant"]


@pytest.mark.slow
def test_reader_training_refines_the_reader_on_a_users_own_questions(tmp_path: Path) -> None:
    """`kbot train --as-reader`: the user's Q/A pairs asked over their collection, a few real
    steps from the packaged reader, and RAG reads with the result (`--reader NAME`)."""
    home = tmp_path / "home"
    docs = write_facts(tmp_path / "docs")
    ingested = kbot("ingest", *map(str, docs), "--collection", "facts", home=home)
    assert ingested.returncode == 0, ingested.stderr[-2000:]
    pairs = [
        ("Where does the zorblax festival happen?", "Quillby"),
        ("What do saffron owls eat?", "moth larvae"),
        ("In which key do Brassmoor kettles whistle?", "F sharp"),
        ("What is the capital of Peru?", "Lima"),  # not in the documents: left out
    ]
    trained = kbot(
        "train",
        *("--method", "lora", "--as-reader", "--name", "facts-reader", "--json"),
        *("--data", str(write_jsonl(tmp_path / "qa.jsonl", pairs)), "--collection", "facts"),
        *("--max-steps", "2", "--batch-size", "2"),
        home=home,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    meta = json.loads(trained.stdout)
    assert meta["steps"] == 2 and meta["hyperparameters"]["as_reader"] is True
    assert meta["hyperparameters"]["started_from"] == "reader"  # the packaged reader
    assert meta["data"]["records"] == 3 and "read over collection facts" in meta["data"]["origin"]
    assert (home / "adapters" / "facts-reader" / "adapter_model.safetensors").is_file()

    asked = kbot(
        "ask",
        "What colour do glimmerfish glow at night?",
        *("--backend", "rag", "--collection", "facts", "--reader", "facts-reader", "--json"),
        home=home,
    )
    assert asked.returncode == 0, asked.stderr[-2000:]
    reply = json.loads(asked.stdout)
    # Two small steps from the reader keep it reading: a new adapter would ramble like the
    # base model, and no reader at all would not answer this briefly.
    assert "blue" in reply["answer"].lower() and len(reply["answer"].split()) <= 8
    assert reply["evidence"][0]["source"].endswith("lake.md")


def test_a_reader_is_a_lora_adapter_and_needs_a_collection(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="method lora"):
        TrainConfig(method="full", name="r", as_reader=True)
    qa = write_jsonl(tmp_path / "qa.jsonl", [("q?", "a")])
    result = kbot(
        "train", "--method", "lora", "--as-reader", "--name", "r", "--data", str(qa),
        home=tmp_path / "home",
    )  # fmt: skip
    assert result.returncode != 0 and "--collection" in result.stderr
    assert not (tmp_path / "home" / "adapters" / "r").exists()


def _ended_process_id() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_work_left_by_an_ended_process_is_stale_here_and_another_machines_is_left_to_it(
    tmp_path: Path,
) -> None:
    """Replicas share the adapters and runs folders, and process ids repeat across
    containers: what a process of this machine left when it died is swept (a staging folder)
    or told of (a run); another machine's, with the same process id, is left alone."""
    from adapters.registry import ArtifactRegistry
    from bot.training import stale_runs
    from common.processes import process_mark

    here, _, _ = process_mark().rpartition(".")
    ended = _ended_process_id()
    adapters = tmp_path / "adapters"
    adapters.mkdir()
    ours, theirs = (
        adapters / f".staging-notes@{here}.{ended}",
        adapters / f".staging-notes@b.{ended}",
    )
    ours.mkdir()
    theirs.mkdir()
    fresh = ArtifactRegistry(adapters).staging("notes")
    assert not ours.exists() and theirs.is_dir() and fresh.is_dir()

    runs = tmp_path / "runs"
    for run, mark in {
        "died": f"{here}.{ended}",
        "elsewhere": f"b.{ended}",
        "old": str(ended),
    }.items():
        (runs / run).mkdir(parents=True)
        (runs / run / "kbot-run.pid").write_text(mark)
    (runs / "running").mkdir()
    (runs / "running" / "kbot-run.pid").write_text(process_mark())
    assert stale_runs(runs) == ["died", "old"]


def test_listing_adapters_during_a_replacement_moves_nothing(tmp_path: Path) -> None:
    """Another process (a replica, the model server) may list adapters while one is being
    replaced, between its two renames: it sees the old version, and the publish goes on."""
    from adapters.meta import META_FILE
    from adapters.registry import ArtifactRegistry

    registry = ArtifactRegistry(tmp_path / "adapters")
    old = registry.staging("notes")
    (old / META_FILE).write_text("old")
    registry.publish(old, "notes", overwrite=False)
    registry.path("notes").rename(tmp_path / "adapters" / ".replaced-notes")  # the first rename

    assert registry.names() == ["notes"]
    assert (registry.path("notes") / META_FILE).read_text() == "old"
    assert (tmp_path / "adapters" / ".replaced-notes").is_dir(), "listing moved it back"

    new = registry.staging("notes")
    (new / META_FILE).write_text("new")
    registry.publish(new, "notes", overwrite=True)
    assert (registry.path("notes") / META_FILE).read_text() == "new"
    assert sorted(p.name for p in (tmp_path / "adapters").iterdir()) == ["notes"]
