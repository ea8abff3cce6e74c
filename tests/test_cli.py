"""The command line's contract: with `--json`, stdout is exactly one JSON document (logs and
progress go to stderr); long commands show progress on stderr unless `--quiet`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.resources import Resources
from tests.cli import kbot, kbot_process
from tests.documents import write_facts
from tests.test_reading import write_squad

pytestmark = pytest.mark.slow


def commands_with_json() -> set[str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {
        name
        for name, sub in subparsers.choices.items()
        if any("--json" in action.option_strings for action in sub._actions)
    }


def test_every_json_command_prints_exactly_one_json_document(
    resources: Resources, facts_file: Path, tmp_path: Path
) -> None:
    home = resources.settings.home
    docs = tmp_path / "docs"
    write_facts(docs)
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"id": "q1", "text": "saffron owls"}\n{"id": 2, "text": "rye bread"}\n')
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "Where are saffron owls?", "answer": "Emberfield"}\n')
    squad = write_squad(tmp_path / "squad")
    runs = [
        ("ingest", [str(docs), "--collection", "cli-json"]),
        ("collections", []),
        ("retrieve", ["saffron owls", "--collection", "cli-json", "-k", "2"]),
        ("retrieve", ["--queries", str(queries), "--collection", "cli-json", "-k", "2"]),
        ("ask", ["Where do saffron owls nest?", "--backend", "rag", "--collection", "cli-json"]),
        ("train", ["--method", "lora", "--name", "cli-json", "--data", str(facts_file)]),
        ("adapters", []),
        # Every pair kept: this checks the output, not whether RAG answers its own questions.
        ("qa", ["--collection", "cli-json", "--max-chunks", "1", "--per-chunk", "1", "--keep-all"]),
        ("eval", ["--questions", str(questions), "--backends", "base,rag:cli-json"]),
        ("summarize", ["--collection", "cli-json"]),
        ("forget", ["--collection", "cli-json", "--source", str(docs / "owls.html")]),
        ("adapters", ["--delete", "cli-json"]),
        ("reader-data", ["--squad", str(squad), "--out", str(tmp_path / "reader.jsonl")]),
        ("users", ["list", "--auth", str(tmp_path / "users.json")]),
    ]
    runs[5][1].extend(["--max-steps", "2"])
    outputs: dict[str, list] = {}
    for command, args in runs:
        # `ask` imports everything (model, embedder, Chroma): a fresh process shows that no
        # import prints on stdout. The others run in this process (tests/cli.py says why).
        run = kbot_process if command == "ask" else kbot
        result = run(command, *args, "--json", home=home)
        assert result.returncode == 0, f"kbot {command}: {result.stderr[-2000:]}"
        outputs.setdefault(command, []).append(json.loads(result.stdout))
        if command in ("train", "qa", "eval", "reader-data"):  # long: progress on stderr
            assert "%" in result.stderr or "‰" in result.stderr, result.stderr[-500:]
    assert set(outputs) == commands_with_json(), "every --json command is checked here"

    assert outputs["ingest"][0]["files"] == 7 and outputs["ingest"][0]["errors"] == []
    assert [r["id"] for r in outputs["retrieve"][1]] == ["q1", 2]
    assert outputs["retrieve"][0][0]["source"].endswith("owls.html")
    asked = outputs["ask"][0]
    assert set(asked) == {
        "answer", "backend", "latency_s", "queue_s", "tokens", "prompt_tokens", "sources",
        "evidence", "provenance",
    }  # fmt: skip
    assert asked["provenance"]["collection"]["name"] == "cli-json"
    assert asked["provenance"]["sources"][0]["source"] == "owls.html"
    assert asked["evidence"][0]["source"].endswith("owls.html")
    assert asked["backend"] == "rag" and asked["tokens"] > 0
    assert asked["sources"][0]["source"].endswith("owls.html")
    trained = outputs["train"][0]
    assert trained["status"] == "done" and trained["steps"] == 2 and "loss_history" not in trained
    assert "cli-json" in {row["name"] for row in outputs["adapters"][0]}
    assert outputs["qa"][0]["pairs"] >= 1
    assert [row["backend"] for row in outputs["eval"][0]["backends"]] == ["base", "rag:cli-json"]
    summary = outputs["summarize"][0]
    assert len(summary["documents"]) == 7 and summary["overview"]
    assert outputs["forget"][0]["chunks"] >= 1
    assert outputs["adapters"][1] == {"deleted": "cli-json"}
    assert outputs["users"][0]["users"] == []
    assert outputs["reader-data"][0]["records"] == 3


def test_quiet_hides_the_progress_bar(resources: Resources, tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "What is the capital of France?", "answer": "Paris"}\n')
    args = ["--questions", str(questions), "--backends", "base", "--json"]
    loud = kbot("eval", *args, home=resources.settings.home)
    quiet = kbot("eval", *args, "--quiet", home=resources.settings.home)
    assert loud.returncode == quiet.returncode == 0
    assert "question 1 of 1" in loud.stderr and "question 1 of 1" not in quiet.stderr
    assert json.loads(quiet.stdout)["questions"] == 1


def test_a_commands_help_lists_its_own_flags_and_the_settings_on_request(tmp_path: Path) -> None:
    helped = kbot("users", "--help", home=tmp_path)
    assert helped.returncode == 0 and "--role" in helped.stdout
    for setting in ("--model ", "--chunk-size", "--top-k", "--embedder"):
        assert setting not in helped.stdout
    assert "--help-settings" in helped.stdout
    everything = kbot("users", "--help-settings", home=tmp_path)
    assert everything.returncode == 0 and "--role" in everything.stdout
    assert "--chunk-size" in everything.stdout and "--model MODEL" in everything.stdout
    # Hidden from the help, a setting still works.
    listed = kbot("users", "list", "--json", "--top-k", "3", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
