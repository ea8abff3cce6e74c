"""Trained adapters and checkpoints under KBOT_HOME/adapters: list, inspect, delete, publish.

Each artifact is a folder named after it, holding the standard files (PEFT's
`adapter_config.json` + `adapter_model.safetensors`, or a `save_pretrained` checkpoint) and
`kbot_meta.json`. Artifacts appear atomically: they are written in a hidden staging folder
and renamed into place, so a killed run never leaves a half-written artifact under its name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from adapters.meta import META_FILE, ArtifactMeta
from common.errors import KbotError, NotFound
from common.names import validate_name
from common.processes import mark_gone, process_mark


class UnknownArtifactError(NotFound):
    pass


class ArtifactExistsError(KbotError, FileExistsError):
    pass


class ArtifactRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        """The artifact's folder. Between the two renames of a replacement (or after a crash
        there) the old version is the one in, under its hidden name: readers find it there
        and never move it, since another process may be in the middle of publishing."""
        final = self._final(name)
        trash = self._trash(name)
        return trash if not final.exists() and trash.exists() else final

    def _final(self, name: str) -> Path:
        return self.root / validate_name(name, "adapter")

    def _trash(self, name: str) -> Path:
        return self.root / f".replaced-{name}"

    def _recover(self, name: str) -> None:
        """Finish a replacement that a crash interrupted between its two renames (writers
        only: they take turns under the training lock)."""
        trash, final = self._trash(name), self._final(name)
        if trash.exists() and not final.exists():
            trash.rename(final)
        elif trash.exists():
            shutil.rmtree(trash, ignore_errors=True)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        # Hidden folders are work in progress (staging), or an artifact's old version while
        # it is being replaced, which stays its name's artifact until the new one is in.
        names = set()
        for folder in self.root.iterdir():
            name = folder.name.removeprefix(".replaced-")
            if not name.startswith(".") and (folder / META_FILE).is_file():
                names.add(name)
        return sorted(names)

    def names_of(self, method: str) -> list[str]:
        return [name for name in self.names() if self.meta(name).method == method]

    def meta(self, name: str) -> ArtifactMeta:
        meta_file = self.path(name) / META_FILE
        if not meta_file.is_file():
            known = ", ".join(self.names()) or "none yet"
            raise UnknownArtifactError(
                f"Unknown adapter or checkpoint {name!r}. Existing: {known}."
            )
        return ArtifactMeta.model_validate_json(meta_file.read_text())

    def all(self) -> list[tuple[str, ArtifactMeta]]:
        return [(name, self.meta(name)) for name in self.names()]

    def delete(self, name: str) -> None:
        self.meta(name)  # raises for unknown names
        shutil.rmtree(self.path(name))

    def check_free(self, name: str, overwrite: bool) -> None:
        if self.path(name).exists() and not overwrite:
            raise ArtifactExistsError(
                f"An adapter or checkpoint named {name!r} exists; choose another name or "
                "ask to overwrite it."
            )

    def staging(self, name: str) -> Path:
        """A fresh hidden folder to write artifact `name` into before `publish`."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f".staging-{validate_name(name, 'adapter')}@*"):
            if mark_gone(stale.name.rsplit("@", 1)[-1]):
                shutil.rmtree(stale, ignore_errors=True)
        folder = self.root / f".staging-{name}@{process_mark()}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        return folder

    def publish(self, staging: Path, name: str, overwrite: bool) -> Path:
        """Move a complete artifact into place; the old one goes only once the new one is in."""
        self._recover(name)
        self.check_free(name, overwrite)
        final, trash = self._final(name), self._trash(name)
        if final.exists():
            final.rename(trash)
        staging.rename(final)
        shutil.rmtree(trash, ignore_errors=True)
        return final
