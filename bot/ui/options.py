"""Gradio controls built from a backend's `Options` model, so new backends need no UI code."""

from __future__ import annotations

from typing import Any

import gradio as gr
from pydantic.fields import FieldInfo

from bot.backends import Backend
from bot.ui.common import Control, field_control
from bot.views import ResourcesView


def _control(backend: Backend, resources: ResourcesView, name: str, field: FieldInfo) -> Control:
    return field_control(
        name,
        field,
        default=backend.option_defaults(resources).get(name),
        choices=backend.option_choices(resources, name),
        elem_id=f"option-{backend.id}-{name}",
    )


class OptionControls:
    """All backends' option controls; only the selected backend's group is visible."""

    def __init__(self, backends: list[Backend], resources: ResourcesView, selected: str) -> None:
        self.backends = backends
        self.by_id = {backend.id: backend for backend in backends}
        self.resources = resources
        self.groups: dict[str, gr.Group] = {}
        self.controls: list[tuple[str, str, Control]] = []
        for backend in backends:
            fields = backend.Options.model_fields
            with gr.Group(visible=backend.id == selected and bool(fields)) as group:
                for name, field in fields.items():
                    control = _control(backend, resources, name, field)
                    self.controls.append((backend.id, name, control))
            self.groups[backend.id] = group

    @property
    def components(self) -> list[Control]:
        return [component for _, _, component in self.controls]

    def options_for(self, backend_id: str, *values: Any) -> dict[str, Any]:
        return {
            name: value
            for (owner, name, _), value in zip(self.controls, values, strict=True)
            if owner == backend_id and value not in (None, "")
        }

    def restored(
        self, resources: ResourcesView, backend_id: str | None, options: dict[str, Any]
    ) -> list[Any]:
        """Each control's value as a saved conversation had it: its backend's options that
        still exist in `resources` (the caller's view; a deleted collection is left unchosen),
        every other control unchanged."""
        values: list[Any] = []
        for owner, name, control in self.controls:
            value = options.get(name)
            if owner != backend_id or value in (None, ""):
                values.append(gr.skip())
                continue
            if isinstance(control, gr.Dropdown):
                choices = self.by_id[owner].option_choices(resources, name, options)
                if choices is not None and value not in choices:
                    values.append(gr.skip())
                    continue
            values.append(value)
        return values

    def visibility(self, backend_id: str) -> list[Any]:
        return [
            gr.Group(visible=backend.id == backend_id and bool(backend.Options.model_fields))
            for backend in self.backends
        ]

    @property
    def dropdowns(self) -> list[gr.Dropdown]:
        return [c for _, _, c in self.controls if isinstance(c, gr.Dropdown)]

    def _depends_on(self, owner: str, name: str) -> str | None:
        return self.by_id[owner].option_depends.get(name)

    @property
    def dependents(self) -> list[Control]:
        """Controls whose choices follow another option's value (a collection's documents)."""
        return [c for owner, name, c in self.controls if self._depends_on(owner, name)]

    @property
    def parents(self) -> list[Control]:
        """The controls that `dependents` follow."""
        wanted = {(o, self._depends_on(o, n)) for o, n, _ in self.controls}
        return [c for owner, name, c in self.controls if (owner, name) in wanted]

    def dependent_choices(self, resources: ResourcesView, *values: Any) -> list[Any]:
        """The choices of each of `dependents` for the options chosen now (`values`: one per
        component), as `resources` (the caller's view) hold them."""
        chosen: dict[str, dict[str, Any]] = {}
        for (owner, name, _), value in zip(self.controls, values, strict=True):
            chosen.setdefault(owner, {})[name] = value
        updates = []
        for owner, name, _ in self.controls:
            if self._depends_on(owner, name):
                choices = self.by_id[owner].option_choices(resources, name, chosen[owner]) or []
                # Kept while still a choice; never the first one picked for the user.
                value = chosen[owner][name] if chosen[owner][name] in choices else None
                updates.append(gr.Dropdown(choices=choices, value=value))
        return updates

    def refreshed_choices(self, resources: ResourcesView, page_opened: bool = False) -> list[Any]:
        """Fresh dropdown choices as `resources` (the caller's view) hold them: collections
        and adapters change while the app runs. One update per component of `dropdowns`. The
        only choice is chosen for the user; when a page opens with several, none is (a
        default from when the app started may be stale)."""
        updates = []
        for owner, name, control in self.controls:
            if isinstance(control, gr.Dropdown) and self._depends_on(owner, name):
                # Its choices follow the chosen collection (`dependent_choices`).
                updates.append(gr.Dropdown(choices=[], value=None) if page_opened else gr.skip())
            elif isinstance(control, gr.Dropdown):
                choices = self.by_id[owner].option_choices(resources, name) or []
                chosen: dict[str, Any] = {}
                if len(choices) == 1:
                    chosen = {"value": choices[0]}
                elif page_opened:
                    chosen = {"value": None}
                updates.append(gr.Dropdown(choices=choices, **chosen))
        return updates
