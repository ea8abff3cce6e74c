"""deploy/docker-compose.yml cannot run here (no Docker): it is held to the settings and
command-line flags that exist, so a renamed setting or flag cannot leave it behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())


def test_every_kbot_setting_in_the_compose_file_exists() -> None:
    named = {
        key
        for service in COMPOSE["services"].values()
        for key in (service.get("environment") or {})
        if key.startswith("KBOT_")
    }
    assert named >= {"KBOT_HOME", "KBOT_MODEL_URL", "KBOT_CHROMA_URL", "KBOT_MODEL_API_KEY"}
    fields = {f"KBOT_{name.upper()}" for name in Settings.model_fields}
    assert named <= fields, named - fields


def test_every_kbot_command_in_the_compose_file_takes_its_flags() -> None:
    commands = [
        " ".join(service["command"]) if isinstance(service["command"], list) else ""
        for service in COMPOSE["services"].values()
        if "command" in service
    ]
    kbot = [c.split("kbot ", 1)[1].split("&&")[0].strip('" ') for c in commands if "kbot " in c]
    assert {line.split()[0] for line in kbot} == {"serve", "model-server"}
    for line in kbot:
        command, *words = line.split()
        shown = subprocess.run(
            [sys.executable, "-m", "bot.cli", command, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for flag in (word for word in words if word.startswith("--")):
            assert flag in shown, f"kbot {command} has no {flag}"
