"""Where an answer came from, and conversations exported with it (JSON and Markdown).

Each answer records its backend and options, the model, the collection and its version (a
hash of the documents' contents, which changes whenever one is added, changed or deleted), the
adapter or checkpoint and the fingerprint of the data it was trained on, the sources with their
text, and the timing. Options are found by name, as everywhere (`collection`, `adapter`,
`checkpoint`), so a new backend gets provenance without code of its own.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.views import ResourcesView

ARTIFACT_OPTIONS = ("adapter", "checkpoint")


def collection_version(resources: ResourcesView, name: str) -> str:
    """A short hash of what the collection holds: each document's name and content hash."""
    documents = resources.knowledge.documents(name)
    listing = json.dumps(sorted((Path(d["source"]).name, d["hash"]) for d in documents))
    return hashlib.sha256(listing.encode()).hexdigest()[:12]


def answer_provenance(
    resources: ResourcesView, backend: str, options: dict[str, Any], reply: Any
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "backend": backend,
        "options": options,
        "model": resources.settings.model,
        "answered_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "latency_s": round(reply.latency_s, 3),
        "queue_s": round(reply.queue_s, 3),
        "tokens": reply.tokens,
        "prompt_tokens": reply.prompt_tokens,
    }
    if options.get("collection"):
        name = options["collection"]
        record["collection"] = {"name": name, "version": collection_version(resources, name)}
    for option in ARTIFACT_OPTIONS:
        if options.get(option):
            meta = resources.artifacts.meta(options[option])
            record[option] = {
                "name": options[option],
                "method": meta.method,
                "data_fingerprint": meta.data.fingerprint,
                "trained_at": meta.created_at,
            }
    if reply.searched:
        record["searched"] = reply.searched
    if reply.sources:
        record["sources"] = [
            {"source": Path(s.get("source", "")).name, "text": s.get("text", "")}
            | ({"score": s["score"]} if "score" in s else {})
            for s in reply.sources
        ]
    if reply.evidence:
        record["evidence"] = [
            {"text": e["text"], "source": Path(e.get("source", "")).name} for e in reply.evidence
        ]
    return record


def message_text(content: Any) -> str:
    """Text of a message's content, which Gradio may give as a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def conversation_turns(
    history: list[dict[str, Any]], answers: list[tuple[str, str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The chat as shown (`history`: the chatbot's messages) as turns, each answer with its
    provenance. `answers` are (shown content, answer, provenance) of the answers given in this
    conversation, oldest first; an answer is matched by what was shown, so turns the user
    deleted or retried simply find no match."""
    unused = list(answers)
    turns: list[dict[str, Any]] = []
    for message in history:
        if (message.get("metadata") or {}).get("title"):
            continue  # the info line under an answer: its provenance carries the same
        content = message_text(message.get("content"))
        if not content:
            continue
        if message.get("role") == "user":
            turns.append({"role": "user", "content": content})
            continue
        match = next((a for a in unused if a[0] == content), None)
        if match is None:
            turns.append({"role": "assistant", "content": content})
            continue
        unused.remove(match)
        turns.append({"role": "assistant", "content": match[1], "provenance": match[2]})
    return turns


def conversation_json(turns: list[dict[str, Any]]) -> str:
    """`turns`: {"role", "content"} messages, answers with their "provenance"."""
    exported = {"exported_at": datetime.now(UTC).isoformat(timespec="seconds"), "turns": turns}
    return json.dumps(exported, indent=1, ensure_ascii=False)


def conversation_markdown(turns: list[dict[str, Any]]) -> str:
    lines = ["# Conversation", ""]
    for turn in turns:
        if turn["role"] == "user":
            lines += [f"**You:** {turn['content']}", ""]
            continue
        lines += [f"**Answer:** {turn['content']}", ""]
        origin = turn.get("provenance")
        if not origin:
            continue
        used = [f"backend `{origin['backend']}`", f"model `{origin['model']}`"]
        if "collection" in origin:
            c = origin["collection"]
            used.append(f"collection `{c['name']}` (version {c['version']})")
        for option in ARTIFACT_OPTIONS:
            if option in origin:
                a = origin[option]
                used.append(f"{option} `{a['name']}` (data {a['data_fingerprint']})")
        timing = f"{origin['latency_s']} s, {origin['tokens']} tokens"
        if origin.get("stopped"):
            timing = "stopped: the answer is incomplete"
        lines += [f"> {', '.join(used)}; {timing}; {origin['answered_at']}", ">"]
        for number, source in enumerate(origin.get("sources", []), start=1):
            text = " ".join(source["text"].split())
            lines.append(f"> [{number}] {source['source']}: {text}")
        lines.append("")
    return "\n".join(lines)
