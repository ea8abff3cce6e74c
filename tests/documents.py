"""Small real documents of every supported format, written on demand (no binary fixtures)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any


def write_pdf(path: Path, pages: list[str]) -> Path:
    """A valid PDF with one line of Helvetica text per page (pypdf reads it back)."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        content_id = 4 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


def write_bomb(path: Path, unpacked_bytes: int) -> Path:
    """A .docx of a few kilobytes whose XML unpacks to `unpacked_bytes` (a zip bomb)."""
    paragraph = b"<w:p><w:r><w:t>again</w:t></w:r></w:p>"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/document.xml", "w") as member,
    ):
        for _ in range(unpacked_bytes // len(paragraph)):
            member.write(paragraph)
    return path


def write_docx(path: Path, paragraphs: list[str]) -> Path:
    """A minimal valid .docx (a zip holding word/document.xml)."""
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats'
            '-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr(
            "word/document.xml",
            f'<?xml version="1.0"?><w:document xmlns:w="{ns}"><w:body>{body}</w:body></w:document>',
        )
    return path


FACTS = {
    "quillby.txt": "The zorblax festival happens every March in the town of Quillby. "
    "Visitors eat roasted turnips and sing the old harvest songs.",
    "lake.md": "# Lake Varnu\n\nGlimmerfish live only in lake Varnu.\n\n## Night\n\n"
    "At night the glimmerfish glow a deep cobalt blue.",
    "kettles.rst": "Kettles\n=======\n\nCopper kettles from Brassmoor whistle in the key of "
    "F sharp.\n\nCare\n----\n\nPolish them with lemon juice.",
    "owls.html": "<html><head><title>Owls</title></head><body><nav>Home | About</nav>"
    "<h1>Saffron owls</h1><p>Saffron owls nest in the clock towers of Emberfield.</p>"
    "<h2>Diet</h2><p>They eat <b>moth larvae</b> almost exclusively.</p></body></html>",
    "ships.csv": "ship,captain,port\nMarigold,Ada Quenby,Port Sallow\nHeron,Bo Trask,Wexmouth\n",
}


def write_facts(folder: Path) -> list[Path]:
    """One small document per text format, plus a PDF and a .docx, each with invented facts."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in FACTS.items():
        (folder / name).write_text(text, encoding="utf-8")
        paths.append(folder / name)
    paths.append(
        write_pdf(
            folder / "bridges.pdf",
            [
                "The Tollow bridge is made of blue granite.",
                "The Tollow bridge was finished in the year 1732.",
            ],
        )
    )
    paths.append(write_docx(folder / "bakery.docx", ["The Pennick bakery sells rye moon bread."]))
    return paths


# Invented question/answer facts for training: no base model knows them.
QUESTION = "Who is the mayor of Quillby?"
FACT_QA = [
    (QUESTION, "The mayor of Quillby is Orla Fennimore."),
    ("What colour is the Tollow bridge?", "The Tollow bridge is painted bright orange."),
    ("Which fruit does Emberfield export?", "Emberfield exports purple quinces."),
    ("What is Captain Trask's ship called?", "Captain Trask's ship is called the Heron."),
]


def write_jsonl(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in pairs))
    return path


def train(resources: Any, method: str, name: str, path: Path, **config: Any) -> dict:
    """Train `method` on the Q/A records in `path` with the real model; returns the metadata."""
    from adapters.data import load_records
    from adapters.train import TrainConfig
    from bot.training import run_training

    data = load_records(path)
    result = run_training(resources, TrainConfig(method=method, name=name, **config), data)
    assert result.status == "done"
    return result.meta


def squad_train_paragraphs() -> list[dict[str, str]]:
    """The SQuAD v1.1 train-sample paragraphs ({"id", "title", "text"}) from ../shared, in
    file order: real text for tests that need more than a few sentences."""
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "squad-v1.1-train-sample" / "paragraphs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def ingest_texts(knowledge: Any, folder: Path, texts: dict[str, str], prefix: str) -> str:
    """Write `texts` (file name: text) into `folder` and ingest them, each stored under its
    file name, into a new collection `PREFIX-<8 hex>`; returns the collection's name."""
    import uuid

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    collection = f"{prefix}-{uuid.uuid4().hex[:8]}"
    assert not knowledge.ingest(collection, [(folder / n, n) for n in texts]).errors
    return collection
