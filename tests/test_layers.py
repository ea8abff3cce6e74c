"""The layers stay apart: `knowledge/`, `adapters/` and `common/` never import the app, and
the command line's core paths never load the UI's libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_LIBRARIES = ("gradio", "pandas", "matplotlib")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("layer", ["knowledge", "adapters", "common"])
def test_lower_layers_never_import_the_app(layer: str) -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in (ROOT / layer).rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] == "bot"
    }
    assert not offenders


def test_common_imports_no_other_layer() -> None:
    for path in (ROOT / "common").rglob("*.py"):
        assert not {m.split(".")[0] for m in imported_modules(path)} & {"knowledge", "adapters"}


def python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_cli_help_imports_no_ui_library() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot.cli", "ask", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    loaded = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert loaded and not {m for m in loaded if m.split(".")[0] in UI_LIBRARIES}


def test_command_line_core_paths_load_no_ui_library() -> None:
    """What `kbot ask`, `kbot eval` (without --report) and `kbot train` import."""
    result = python(
        "import sys\n"
        "import bot.cli, bot.service, bot.training, bot.evaluation.runner, bot.evaluation.table\n"
        f"print(sorted(m for m in {UI_LIBRARIES!r} if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_training_on_documents_lists_files_without_loading_chroma(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Notes\n\nThe kettle whistles in F sharp.")
    result = python(
        "import sys\nfrom pathlib import Path\nfrom adapters.data import load_training_data\n"
        f"data = load_training_data([Path({str(tmp_path)!r})])\n"
        "print(len(data.texts), 'chromadb' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "False"]
