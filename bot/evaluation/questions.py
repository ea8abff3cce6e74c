"""Question sets: JSONL lines `{"question", "answer" | "answers": [...], "source"?, "id"?}`.

Every line is checked before anything runs; a bad one fails with its line number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import BadInput
from common.files import write_atomically

FORMAT = '{"question": "...", "answer": "..." or "answers": ["...", ...], "source": optional}'


class QuestionFileError(BadInput):
    """A question file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "question": self.question}
        data["answers"] = list(self.answers)
        if self.source:
            data["source"] = self.source
        return data


def _nonempty_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'"{field}" must be a non-empty string')
    return value.strip()


def question_of(record: Any, number: int) -> Question:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    question = _nonempty_text(record.get("question"), "question")
    if "answers" in record:
        answers = record["answers"]
        if not isinstance(answers, list) or not answers:
            raise ValueError('"answers" must be a non-empty list of strings')
        answers = [_nonempty_text(a, "answers[]") for a in answers]
    elif "answer" in record:
        answers = [_nonempty_text(record["answer"], "answer")]
    else:
        raise ValueError('missing "answer" (or "answers")')
    source = record.get("source")
    if source is not None:
        source = _nonempty_text(source, "source")
    return Question(str(record.get("id", number)), question, tuple(answers), source)


def parse_questions(text: str, origin: str = "questions") -> list[Question]:
    questions = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            questions.append(question_of(json.loads(line), number))
        except json.JSONDecodeError as error:
            raise QuestionFileError(
                f"{origin}, line {number}: broken JSON ({error.msg} at column {error.colno})"
            ) from None
        except ValueError as error:
            message = f"{origin}, line {number}: {error}. Expected {FORMAT}."
            raise QuestionFileError(message) from None
    if not questions:
        raise QuestionFileError(f"{origin} has no questions. Expected JSONL lines {FORMAT}.")
    return questions


def load_questions(path: Path, max_bytes: int = 50_000_000) -> list[Question]:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise QuestionFileError(f"Cannot read question file {path}: {error.strerror}.") from None
    if size > max_bytes:
        raise QuestionFileError(
            f"{path.name} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB "
            "(setting KBOT_MAX_FILE_MB)."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise QuestionFileError(f"{path.name} is not UTF-8 text (binary?).") from None
    return parse_questions(text, path.name)


def write_questions(path: Path, questions: list[dict[str, Any]]) -> Path:
    """Write records as JSONL, atomically: an existing file is replaced only when complete."""
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in questions)
    return write_atomically(path, lines)
