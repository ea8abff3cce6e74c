"""Gradio controls built from a backend's `Options` model, so new backends need no UI code."""

from __future__ import annotations

import typing
from typing import Any

import gradio as gr
from pydantic.fields import FieldInfo

from bot.backends import Backend
from bot.resources import Resources


def _control(
    backend: Backend, resources: Resources, name: str, field: FieldInfo
) -> gr.components.Component:
    label = field.title or name.replace("_", " ").capitalize()
    elem_id = f"option-{backend.id}-{name}"
    info = field.description
    default = backend.option_defaults(resources).get(name)
    if default is None and not field.is_required():
        default = field.get_default(call_default_factory=True)
    choices = backend.option_choices(resources, name)
    if choices is not None:
        return gr.Dropdown(
            choices=choices, value=default or None, label=label, info=info, elem_id=elem_id
        )
    kind = _plain_type(field.annotation)
    if kind is bool:
        return gr.Checkbox(value=bool(default), label=label, info=info, elem_id=elem_id)
    if kind in (int, float):
        return gr.Number(
            value=default,
            label=label,
            info=info,
            precision=0 if kind is int else None,
            elem_id=elem_id,
        )
    return gr.Textbox(value=default or "", label=label, info=info, elem_id=elem_id)


def _plain_type(annotation: Any) -> Any:
    """`int | None` -> int: optional options are shown as their plain type, left empty."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 else annotation


class OptionControls:
    """All backends' option controls; only the selected backend's group is visible."""

    def __init__(self, backends: list[Backend], resources: Resources, selected: str) -> None:
        self.backends = backends
        self.resources = resources
        self.groups: dict[str, gr.Group] = {}
        self.controls: list[tuple[str, str, gr.components.Component]] = []
        for backend in backends:
            fields = backend.Options.model_fields
            with gr.Group(visible=backend.id == selected and bool(fields)) as group:
                for name, field in fields.items():
                    control = _control(backend, resources, name, field)
                    self.controls.append((backend.id, name, control))
            self.groups[backend.id] = group

    @property
    def components(self) -> list[gr.components.Component]:
        return [component for _, _, component in self.controls]

    def options_for(self, backend_id: str, *values: Any) -> dict[str, Any]:
        return {
            name: value
            for (owner, name, _), value in zip(self.controls, values, strict=True)
            if owner == backend_id and value not in (None, "")
        }

    def visibility(self, backend_id: str) -> list[Any]:
        return [
            gr.Group(visible=backend.id == backend_id and bool(backend.Options.model_fields))
            for backend in self.backends
        ]

    @property
    def dropdowns(self) -> list[gr.Dropdown]:
        return [c for _, _, c in self.controls if isinstance(c, gr.Dropdown)]

    def refreshed_choices(self) -> list[Any]:
        """Fresh dropdown choices (collections and adapters change while the app runs),
        one update per component of `dropdowns`."""
        by_id = {backend.id: backend for backend in self.backends}
        updates = [
            gr.Dropdown(choices=by_id[owner].option_choices(self.resources, name))
            for owner, name, control in self.controls
            if isinstance(control, gr.Dropdown)
        ]
        return updates
