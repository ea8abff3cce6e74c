"""Question sets for the reader bench beyond SQuAD (`python bench/reader.py --suite ...`).

Each loader takes `n`, the number of questions wanted, and returns a `Suite`: the documents to
ingest, as the files a user would upload (name with its suffix, text), and the questions, chosen
evenly (deterministic) from the data set's evaluation split only. The documents are those the
chosen questions need plus distractors from the same split, kept under `MAX_CHARS` characters
so that a suite ingests in a couple of minutes on 2 CPUs.

Suites (data in shared/data/, see each folder's README; `notices` and part of `tech-docs` are
ours, in bench/data/):

  squad-dev            SQuAD v1.1 dev paragraphs (.txt), as bench/reader.py asks them, plus
                       questions of other dev articles that the collection cannot answer
  tat-qa               TAT-QA gold test: financial tables with their text (.md), span and
                       multi-span answers
  wikitablequestions   WikiTableQuestions test (unseen tables) as .csv, one-cell answers
  policyqa             PolicyQA test: one privacy policy per .txt file and collection
  tech-docs            Python 3.11 FAQ pages' own questions and our Flask tutorial questions,
                       over the .rst pages
  notices              our everyday documents (opening hours, a timetable, prices, house
                       rules, a FAQ, a manual, a club history), with unanswerable questions
  follow-ups           CANARD dev follow-ups with their QuAC dialogue history and the human
                       rewrite; the passages are the dialogue's answer spans (QuAC's sections
                       are not in the set)
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OURS = ROOT / "bench" / "data"

# The most characters of documents one suite ingests (about 2,000 a second on 2 CPUs with the
# default embedder): distractors stop here, the documents questions need always go in.
MAX_CHARS = 300_000


@dataclass
class Question:
    question: str
    answers: list[str]  # any one of them is right
    unanswerable: bool = False
    # Earlier turns as ChatService.reply takes them: {"role": "user"|"assistant", "content"}.
    history: list[dict[str, str]] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # multi-part answers: every one needed
    source: str = ""  # the document (file name) that answers it; "" if none
    rewrite: str = ""  # follow-ups: the human standalone rewrite
    group: str = ""  # the collection it is asked of, where a suite has several


@dataclass
class Suite:
    name: str
    split: str  # which split of which data set, in words
    documents: list[tuple[str, str]]  # (file name, text)
    questions: list[Question]
    groups: dict[str, str] = field(default_factory=dict)  # file name -> group ("": one)
    notes: str = ""

    @property
    def characters(self) -> int:
        return sum(len(text) for _, text in self.documents)


def spread(items: Sequence, count: int) -> list:
    """`count` items spread evenly over `items` (all of them if there are fewer)."""
    items = list(items)
    return items if count >= len(items) else [items[i * len(items) // count] for i in range(count)]


def jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def by_document(questions: Iterable[dict], key: str, n: int, per_doc: int) -> list[dict]:
    """`n` questions from about n / per_doc documents spread over the set, the questions
    spread within them: fewer documents to ingest, room left for distractors."""
    grouped: dict[str, list[dict]] = {}
    for q in questions:
        grouped.setdefault(q[key], []).append(q)
    docs = spread(list(grouped), max(1, math.ceil(n / per_doc)))
    each = math.ceil(n / len(docs))
    while sum(min(each, len(grouped[d])) for d in docs) < n and each < max(
        map(len, grouped.values())
    ):
        each += 1  # short documents leave more to the others
    return spread([q for d in docs for q in spread(grouped[d], each)], n)


def with_distractors(
    needed: list[tuple[str, str]],
    others: list[tuple[str, str]],
    count: int,
    budget: int = MAX_CHARS,
) -> list[tuple[str, str]]:
    """The documents questions need, then up to `count` others spread over the rest, while the
    whole stays under `budget` characters."""
    names = {name for name, _ in needed}
    total = sum(len(text) for _, text in needed)
    chosen = list(needed)
    for name, text in spread([d for d in others if d[0] not in names], count):
        if total + len(text) > budget:
            continue
        chosen.append((name, text))
        total += len(text)
    return chosen


def slug(text: str, length: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:length].strip("-") or "doc"


# SQuAD v1.1 dev ------------------------------------------------------------------------------


def squad_dev(n: int) -> Suite:
    from bench.reader import choose_articles, load_dev

    paragraphs, questions = load_dev()
    # As bench/reader.py: 6 articles for 100 questions or more, fewer for a trial.
    inside, outside = choose_articles(paragraphs, max(2, min(6, round(n / 17))))
    answerable = spread([q for q in questions if q["title"] in inside], n)
    unanswerable = spread([q for q in questions if q["title"] in outside], n // 3)
    return Suite(
        name="squad-dev",
        split=f"SQuAD v1.1 dev (evaluation only): every paragraph of {len(inside)} articles "
        f"({', '.join(inside)}); unanswerable: questions of the other dev articles",
        documents=[
            (f"{p['id']}.txt", p["text"] + "\n") for p in paragraphs if p["title"] in inside
        ],
        questions=[
            Question(q["question"], q["answers"], source=f"{q['paragraph_id']}.txt")
            for q in answerable
        ]
        + [Question(q["question"], [], unanswerable=True) for q in unanswerable],
    )


# TAT-QA ---------------------------------------------------------------------------------------


def tat_qa(n: int, split: str = "test") -> Suite:
    """The gold test split for evaluation; `split="dev"` is the reader's training data."""
    folder = DATA / "tat-qa"
    docs = {d["id"]: d for d in jsonl(folder / "documents.jsonl") if d["split"] == split}
    extractive = [
        q
        for q in jsonl(folder / "questions.jsonl")
        if q["split"] == split
        and q["answer_type"] in ("span", "multi-span")
        and q["answers_in_text"]
    ]
    chosen = by_document(extractive, "doc_id", n, per_doc=2)

    def name(doc_id: str) -> str:
        return f"report-{doc_id[:12]}.md"

    needed = {q["doc_id"] for q in chosen}
    documents = with_distractors(
        [(name(d), docs[d]["text"] + "\n") for d in sorted(needed)],
        [(name(d), docs[d]["text"] + "\n") for d in docs],
        max(5, len(needed) // 2),
    )
    return Suite(
        name="tat-qa",
        split=(
            "TAT-QA gold test split (the dev split trains the reader; train is not in the set)"
            if split == "test"
            else f"TAT-QA {split} split"
        )
        + ": answer_type span or multi-span with the answers verbatim in the document",
        documents=documents,
        questions=[
            Question(
                q["question"],
                [" and ".join(q["answers"])] if q["answer_type"] == "multi-span" else q["answers"],
                parts=q["answers"] if q["answer_type"] == "multi-span" else [],
                source=name(q["doc_id"]),
            )
            for q in chosen
        ],
        notes="one markdown file per report item: its table as a markdown table, then its "
        "paragraphs; multi-span answers need every span",
    )


# WikiTableQuestions ---------------------------------------------------------------------------

MAX_ROWS = 30  # a CSV row is a chunk: longer tables would blow the ingest budget
# Counts and sums whose value happens to equal some cell ("how many ..." -> "1") are computed
# answers, not cells: left out.
_COMPUTED = re.compile(
    r"\b(how many|number of|total|difference|average|sum|more than|less than|count)\b", re.I
)


def table_csv(table: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table["columns"])
    writer.writerows(table["rows"])
    return out.getvalue()


def wikitablequestions(n: int, split: str = "test") -> Suite:
    """The test split (unseen tables) for evaluation; `split="train"` trains the reader."""
    folder = DATA / "wikitablequestions"
    tables = {
        t["id"]: t
        for t in jsonl(folder / "tables.jsonl")
        if len(t["rows"]) <= MAX_ROWS and t["title"]
    }
    test = [
        q
        for q in jsonl(folder / "questions.jsonl")
        if q["split"] == split
        and q["answer_is_cell"]
        and len(q["answers"]) == 1
        and not _COMPUTED.search(q["question"])
        and q["table_id"] in tables
    ]
    chosen = by_document(test, "table_id", n, per_doc=3)

    def name(table_id: str) -> str:
        number = re.sub(r"\D+", "-", table_id).strip("-")
        return f"{slug(tables[table_id]['title'])}-{number}.csv"

    needed = sorted({q["table_id"] for q in chosen})
    all_split = sorted({q["table_id"] for q in test})
    documents = with_distractors(
        [(name(t), table_csv(tables[t])) for t in needed],
        [(name(t), table_csv(tables[t])) for t in all_split],
        max(5, len(needed) // 2),
    )
    return Suite(
        name="wikitablequestions",
        split=(
            "WikiTableQuestions 1.0.2 test split (pristine-unseen-tables; no table shared "
            "with train)"
            if split == "test"
            else f"WikiTableQuestions 1.0.2 {split} split"
        )
        + f": questions whose one answer is a cell (not a count or sum), on tables of at most "
        f"{MAX_ROWS} rows",
        documents=documents,
        questions=[
            Question(q["question"], q["answers"], source=name(q["table_id"])) for q in chosen
        ],
        notes="each table a .csv file (header row, then the rows), as a user would export it; "
        "the page title is only in the file name",
    )


# PolicyQA -------------------------------------------------------------------------------------


def policyqa(n: int, split: str = "test") -> Suite:
    """The test split for evaluation; `split="dev"` (other policies) trains the reader."""
    folder = DATA / "policyqa"
    segments = [p for p in jsonl(folder / "paragraphs.jsonl") if p["split"] == split]
    policies: dict[str, list[str]] = {}
    for p in segments:  # in file order, which is the policy's own order
        policies.setdefault(p["title"], []).append(p["text"].strip())
    questions = [q for q in jsonl(folder / "questions.jsonl") if q["split"] == split]
    chosen = by_document(questions, "title", n, per_doc=12)

    def name(title: str) -> str:
        return f"privacy-policy-{slug(title)}.txt"

    titles = sorted({q["title"] for q in chosen})
    documents = [(name(t), "\n\n".join(policies[t]) + "\n") for t in titles]
    return Suite(
        name="policyqa",
        split=(
            "PolicyQA test split (20 policies; the dev split's 20 other policies train the "
            "reader; train is not in the set)"
            if split == "test"
            else f"PolicyQA {split} split"
        ),
        documents=documents,
        questions=[
            # Each policy alone in its collection: no `source`, as hit@k would always be 1;
            # whether retrieval found the segment shows in the gold held by the chunks.
            Question(q["question"], q["answers"], group=q["title"])
            for q in chosen
        ],
        groups={name(t): t for t in titles},
        notes="one .txt file per policy (its segments in order, blank lines between), each "
        "policy its own collection: the questions never name the company, so they are asked "
        "of their own policy; the rest of that policy is what retrieval must pass over. "
        "Several gold spans per question (nested); F1 is the figure to read",
    )


# Tech docs: Python FAQ and the Flask tutorial --------------------------------------------------

PYTHON_DOCS = DATA / "python-3.11-docs" / "rst"
FLASK_DOCS = DATA / "flask-2.2-docs" / "rst"
_RST_HEADING = re.compile(r"^(?P<title>\S[^\n]*)\n(?P<rule>[-=~^\"'`#*+]{3,})[ \t]*$", re.M)
_ROLE = re.compile(r":([\w:.-]+):`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_NUMBERED_ROLES = {"pep": "PEP", "rfc": "RFC"}
# First sentences that point elsewhere or only announce the answer.
_NOT_AN_ANSWER = re.compile(
    r"^(see |there are (several|a number of|many)|it depends|that depends|this is not)", re.I
)
_STOP = frozenset(
    [
        "what",
        "when",
        "where",
        "which",
        "with",
        "does",
        "have",
        "from",
        "that",
        "this",
        "there",
        "they",
        "their",
        "your",
        "about",
        "into",
        "python",
    ]
)
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]*>`__?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'`])")


def rst_plain(text: str) -> str:
    """reST inline markup as the words a reader sees."""
    text = _ROLE.sub(
        lambda m: " ".join(filter(None, [_NUMBERED_ROLES.get(m.group(1), ""), m.group(2).strip()])),
        text,
    )
    text = _LINK.sub(r"\1", text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    text = re.sub(r"\*\*?([^*]+)\*\*?", r"\1", text)
    text = re.sub(r"`([^`]+)`_?", r"\1", text)
    return " ".join(text.split())


def content_words(text: str) -> set[str]:
    """Words of four letters or more, cut to five letters (a stand-in for a stem)."""
    words = re.findall(r"[a-z]{4,}", text.lower())
    return {w[:5] for w in words if w not in _STOP}


def faq_pairs(page: str) -> list[tuple[str, str]]:
    """(question heading, short answer) of one FAQ page: the first sentence of the answer
    (after a bare "Yes."/"No.", the next), where it is a sentence of 4 to 30 words that does
    not lead into a code block, point elsewhere ("See the next question.") or only announce
    the answer, and shares a content word with the question."""
    heads = list(_RST_HEADING.finditer(page))
    pairs = []
    for head, after in zip(heads, [*heads[1:], None], strict=False):
        title = head.group("title").strip()
        if not title.endswith("?") or len(head.group("rule")) < len(title):
            continue
        body = page[head.end() : after.start() if after else len(page)]
        paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
        paragraphs = [p for p in paragraphs if not p.lstrip().startswith("..")]
        if not paragraphs or paragraphs[0].startswith((" ", "\t", ">>>")):
            continue
        sentences = _SENTENCE_END.split(rst_plain(paragraphs[0]))
        if sentences and sentences[0].rstrip(".!").lower() in ("yes", "no"):
            sentences = sentences[1:]
        if not sentences:
            continue
        first = sentences[0]
        question = rst_plain(title)
        if (
            first.endswith(":")
            or not 4 <= len(first.split()) <= 30
            or _NOT_AN_ANSWER.match(first)
            or not content_words(first) & content_words(question)
        ):
            continue
        pairs.append((question, first))
    return pairs


def tech_docs(n: int) -> Suite:
    def name(path: Path, root: Path, prefix: str) -> str:
        return f"{prefix}-" + str(path.relative_to(root)).replace("/", "-").replace(
            ".rst.txt", ".rst"
        )

    faq = [
        {"question": question, "answer": answer, "page": name(page, PYTHON_DOCS, "python")}
        for page in sorted((PYTHON_DOCS / "faq").glob("*.rst.txt"))
        for question, answer in faq_pairs(page.read_text(encoding="utf-8"))
    ]
    flask = jsonl(OURS / "tech-docs" / "flask_tutorial_questions.jsonl")
    flask_count = min(len(flask), max(1, n // 5))
    chosen_flask = spread(flask, flask_count)
    chosen_faq = by_document(faq, "page", n - flask_count, per_doc=6)
    questions = [Question(q["question"], [q["answer"]], source=q["page"]) for q in chosen_faq] + [
        Question(
            q["question"],
            q["answers"],
            parts=q.get("parts", []),
            source=name(FLASK_DOCS / q["page"], FLASK_DOCS, "flask"),
        )
        for q in chosen_flask
    ]
    pages = {name(p, PYTHON_DOCS, "python"): p for p in sorted(PYTHON_DOCS.rglob("*.rst.txt"))} | {
        name(p, FLASK_DOCS, "flask"): p for p in sorted(FLASK_DOCS.rglob("*.rst.txt"))
    }
    needed = sorted({q.source for q in questions})
    # Distractors: the rest of the Flask tutorial and FAQ, then other pages of both sites.
    near = [p for p in pages if p.startswith(("flask-tutorial-", "python-faq-"))]
    others = [p for p in pages if p not in near]
    needed_docs = [(p, pages[p].read_text(encoding="utf-8")) for p in needed]
    # The FAQ pages are long: distractors add at most a quarter to what must be ingested.
    documents = with_distractors(
        needed_docs,
        [(p, pages[p].read_text(encoding="utf-8")) for p in near + spread(others, 30)],
        8,
        min(MAX_CHARS, int(1.25 * sum(len(text) for _, text in needed_docs))),
    )
    return Suite(
        name="tech-docs",
        split="Python 3.11 FAQ pages (their own questions; gold: the first sentence of the "
        "answer) and 15 Flask 2.2 tutorial questions written for this bench "
        "(bench/data/tech-docs); corpus only, never trained on",
        documents=documents,
        questions=questions,
        notes=f"{len(chosen_faq)} FAQ + {len(chosen_flask)} Flask questions; .rst pages as "
        "Sphinx ships them; FAQ gold is a whole sentence, so read F1 and contains, not EM",
    )


# Notices (ours) -------------------------------------------------------------------------------


def notices(n: int) -> Suite:
    folder = OURS / "notices"
    rows = jsonl(folder / "questions.jsonl")
    return Suite(
        name="notices",
        split="bench/data/notices: documents and questions written for this bench "
        "(evaluation only)",
        documents=[
            (p.name, p.read_text(encoding="utf-8"))
            for p in sorted(folder.glob("*.md"))
            if p.name != "README.md"
        ],
        questions=[
            Question(
                r["question"],
                r["answers"],
                unanswerable=r["unanswerable"],
                parts=r.get("parts", []),
                source="" if r["unanswerable"] else r["source"],
            )
            for r in spread([r for r in rows if not r["unanswerable"]], n - n // 6)
            + spread([r for r in rows if r["unanswerable"]], n // 6)
        ],
    )


# Follow-ups: CANARD ---------------------------------------------------------------------------


def _unknown(answer: str) -> bool:
    return answer.strip().lower().startswith("i don't know")


def canard_half(dialog: str) -> str:
    """CANARD dev, halved by dialogue: the "train" half's rewrites teach the reader to rewrite
    follow-ups (bench/reader_data.py); the "eval" half is the follow-ups suite."""
    return "train" if zlib.crc32(dialog.encode()) % 2 == 0 else "eval"


def canard_rows(half: str) -> list[dict]:
    rows = jsonl(DATA / "canard-dev" / "rewrites.jsonl")
    return [r for r in rows if canard_half(r["quac_dialog_id"]) == half]


def follow_ups(n: int) -> Suite:
    rows = canard_rows("eval")
    last: dict[str, dict] = {}
    for r in rows:
        if r["turn"] >= last.get(r["quac_dialog_id"], {"turn": 0})["turn"]:
            last[r["quac_dialog_id"]] = r

    def name(dialog: str) -> str:
        r = last[dialog]
        return f"{slug(r['title'], 30)}-{slug(r['section'], 30)}-{dialog[-6:].lower()}.md"

    def passage(dialog: str) -> str:
        """The dialogue's answers (spans of the section) in dialogue order, under the article
        and section title."""
        r = last[dialog]
        spans = [t["text"] for t in r["history"] if t["role"] == "assistant"]
        spans += [r["answer"]] if r["answer"] else []
        body = "\n\n".join(s for s in spans if not _unknown(s))
        return f"# {r['title']}: {r['section']}\n\n{body}\n"

    follow = [r for r in rows if r["turn"] >= 2 and r["answer"] is not None]
    chosen = spread(follow, n)
    needed = sorted({r["quac_dialog_id"] for r in chosen})
    documents = with_distractors(
        [(name(d), passage(d)) for d in needed],
        [(name(d), passage(d)) for d in sorted(last)],
        max(10, len(needed) // 2),
    )
    return Suite(
        name="follow-ups",
        split="CANARD dev, the half of its dialogues kept for evaluation (the other half's "
        "rewrites train the reader): follow-up questions (turn 2 on) that have an answer; "
        "QuAC's 'I don't know' answers count as unanswerable",
        documents=documents,
        questions=[
            Question(
                r["question"],
                [] if _unknown(r["answer"]) else [r["answer"]],
                unanswerable=_unknown(r["answer"]),
                # CANARD's history opens with the article and section titles.
                history=[{"role": "user", "content": f"{r['title']}: {r['section']}"}]
                + [{"role": t["role"], "content": t["text"]} for t in r["history"]],
                source="" if _unknown(r["answer"]) else name(r["quac_dialog_id"]),
                rewrite=r["rewrite"],
            )
            for r in chosen
        ],
        notes="QuAC's section texts are not in the set: each dialogue's document is its "
        "answers (verbatim spans of the section) in dialogue order under '# title: section', "
        "so the answers are in the documents but the text between them is missing. Asked "
        "twice: the raw follow-up with the dialogue as history (the app condenses it), and "
        "the human rewrite alone. QuAC answers are long spans: read F1",
    )


SUITES: dict[str, Callable[[int], Suite]] = {
    "squad-dev": squad_dev,
    "tat-qa": tat_qa,
    "wikitablequestions": wikitablequestions,
    "policyqa": policyqa,
    "tech-docs": tech_docs,
    "notices": notices,
    "follow-ups": follow_ups,
}


_JOINERS = ("and", "both")


def score(reply: str, question: Question) -> dict[str, float]:
    """EM, F1 and contains as bench/reader.py scores them (`answer_scores`, best over the
    gold answers). A multi-part answer counts as contained only with every part in the reply,
    as exact only if the reply is the parts and nothing but "and" or "both"; its F1 is that of
    the reply without those words against all the parts together."""
    from bot.evaluation.scoring import answer_scores, f1_score, normalize_answer

    if not question.parts:
        return answer_scores(reply, question.answers)
    said = f" {normalize_answer(reply)} "
    parts = [normalize_answer(p) for p in question.parts]
    rest = normalize_answer(reply).split()
    for part in parts:
        words = part.split()
        for i in range(len(rest) - len(words) + 1):
            if rest[i : i + len(words)] == words:
                del rest[i : i + len(words)]
                break
        else:
            rest.append("\0")  # a part missing
    return {
        "em": float(all(w in _JOINERS for w in rest)),
        "f1": f1_score(" ".join(w for w in said.split() if w not in _JOINERS), " ".join(parts)),
        "contains": float(all(part and f" {part} " in said for part in parts)),
    }


def held(texts: Sequence[str], question: Question) -> bool:
    """Whether `texts` (the retrieved chunks, or the evidence the reader reads) hold a gold
    answer, or every part of a multi-part one; counts that must be counted never are."""
    from bot.evaluation.scoring import normalize_answer

    joined = f" {normalize_answer(' '.join(texts))} "
    golds = [normalize_answer(g) for g in question.parts or question.answers]
    found = [bool(g) and f" {g} " in joined for g in golds]
    return all(found) if question.parts else any(found)
