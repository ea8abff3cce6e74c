"""Helpers the tabs share: form controls built from typed fields, progress bars, and work
whose errors are shown to the user."""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import shutil
import tempfile
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import gradio as gr
from pydantic.fields import FieldInfo

from bot.access import Access, scope_of
from bot.flags import plain_type
from bot.scoped import scoped
from bot.views import ResourcesView
from common.errors import KbotError
from common.text import one_line

log = logging.getLogger(__name__)

# The form controls `field_control` makes, one per kind of typed field.
Control = gr.Dropdown | gr.Checkbox | gr.Number | gr.Textbox


def field_control(
    name: str,
    field: FieldInfo,
    *,
    default: Any = None,
    choices: list[str] | None = None,
    elem_id: str | None = None,
) -> Control:
    """A form control for one typed field: a dropdown where the values are known, otherwise a
    checkbox, number or text box by the field's type (an optional number: a text box left
    empty for its default), with its description as help."""
    label = field.title or name.replace("_", " ").capitalize()
    info = field.description
    if default is None and not field.is_required():
        default = field.get_default(call_default_factory=True)
    kind = plain_type(field.annotation)
    if choices is None and typing.get_origin(kind) is Literal:
        choices = list(typing.get_args(kind))
    if choices is not None:
        # The only choice is the one a user would pick: preselect it.
        value = default or (choices[0] if len(choices) == 1 else None)
        return gr.Dropdown(choices=choices, value=value, label=label, info=info, elem_id=elem_id)
    if kind is bool:
        return gr.Checkbox(value=bool(default), label=label, info=info, elem_id=elem_id)
    if kind in (int, float) and default is None:
        # A number box cannot be empty (it shows and sends 0): a text box whose emptiness
        # means "the default", as its placeholder says.
        return gr.Textbox(value="", label=label, info=info, placeholder="default", elem_id=elem_id)
    if kind in (int, float):
        return gr.Number(
            value=default,
            label=label,
            info=info,
            precision=0 if kind is int else None,
            elem_id=elem_id,
        )
    return gr.Textbox(value=default or "", label=label, info=info, elem_id=elem_id)


@functools.cache
def _downloads() -> Path:
    """This process's own folder for downloads: made by mkdtemp (private, a name nobody can
    guess or make first), removed when the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="kbot-downloads-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def download_folder(kept_s: float) -> Path:
    """A fresh folder for files handed to a browser (exports, reports). Gradio serves files
    from temp folders, not from KBOT_HOME, and copies them into its cache, which it clears
    itself (`delete_cache`); folders here older than `kept_s` are deleted on the way."""
    now = time.time()
    for old in _downloads().iterdir():
        if now - old.stat().st_mtime > kept_s:
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=_downloads()))


def progress_callback(progress: gr.Progress) -> Callable[[float, str], None]:
    """The core's `progress(fraction, label)` shown as a Gradio progress bar."""

    def update(fraction: float, label: str) -> None:
        progress(fraction, desc=label)

    return update


def caller_view(resources: ResourcesView, access: Access, request: gr.Request) -> ResourcesView:
    """The resources as the caller may see them (`bot/scoped.py`)."""
    try:
        return scoped(resources, scope_of(access, request))
    except KbotError as error:
        raise gr.Error(str(error)) from None


def _shown(error: Exception) -> gr.Error:
    """A refusal or a user's mistake as the one line it is (logged without a trace); anything
    else is a bug: its whole trace goes to the server's log."""
    if isinstance(error, gr.Error):
        log.info("Refused: %s", one_line(str(error.message)))
        return gr.Error(one_line(str(error.message)), duration=error.duration)
    if isinstance(error, KbotError):
        log.info("Refused: %s", one_line(str(error)))
        return gr.Error(one_line(str(error)))
    log.exception("A request failed")  # the whole trace stays in the server's log
    return gr.Error(f"Something went wrong: {one_line(str(error)) or type(error).__name__}")


def one_line_errors(handler: Callable) -> Callable:
    """`handler`, with every error it raises shown to the user as one line: no traceback,
    no server paths. Generators stay generators (Gradio streams those)."""
    if inspect.isgeneratorfunction(handler):

        @functools.wraps(handler)
        def streaming(*args: Any, **kwargs: Any) -> Any:
            try:
                return (yield from handler(*args, **kwargs))
            except Exception as error:
                raise _shown(error) from None

        streaming.one_line = True  # type: ignore[attr-defined]
        return streaming

    @functools.wraps(handler)
    def plain(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception as error:
            raise _shown(error) from None

    plain.one_line = True  # type: ignore[attr-defined]
    return plain


# Why an input's value is refused (None when it is fine).
Check = Callable[[Any], str | None]


def needs(message: str) -> Check:
    """A check that refuses an empty value with `message`."""
    return lambda value: None if value else message


def checked(*checks: Check | None) -> Callable[..., list[dict[str, Any]]]:
    """A Gradio validator for an event whose inputs are checked in order by `checks` (None:
    any value). A refused form shows why beside the input, and the handler does not run, so
    nothing else on the page changes (an error raised by the handler would mark each of its
    outputs instead). Over HTTP the call fails with the same message."""

    def validate(*values: Any) -> list[dict[str, Any]]:
        pairs = zip(checks, values, strict=True)
        found = [check(value) if check else None for check, value in pairs]
        first = next((i for i, why in enumerate(found) if why), None)
        # One line, beside the first input refused.
        return [gr.validate(i != first, found[i] or "") for i in range(len(values))]

    return validate


def cancel_live(*_: Any) -> gr.Button:
    """A Cancel button while its work runs (the form's values, if given, are not needed)."""
    return gr.Button(interactive=True)


def cancel_idle() -> gr.Button:
    """A Cancel button when nothing runs: shown, but not as live as the Start beside it."""
    return gr.Button(interactive=False)


class Confirmation:
    """A question asked before what cannot be undone, under the button that asks it: "Delete
    it" goes on, "Keep it" puts the question away."""

    def __init__(self, confirm_id: str, keep_id: str) -> None:
        with gr.Group(visible=False) as self.group:
            self.text = gr.Markdown()
            with gr.Row():
                self.confirm = gr.Button("Delete it", variant="stop", size="sm", elem_id=confirm_id)
                self.keep = gr.Button("Keep it", size="sm", elem_id=keep_id)

    def asked_by(
        self, button: gr.Button, question: Callable[..., str], inputs: Any, **event: Any
    ) -> None:
        """`button` asks `question(*inputs)`; `event`: more of the click's settings (a
        validator that refuses before anything is asked)."""

        @functools.wraps(question)  # Gradio reads its signature (a `gr.Request` it fills in)
        def ask(*values: Any) -> list[Any]:
            return [gr.Markdown(question(*values)), gr.Group(visible=True)]

        button.click(
            one_line_errors(ask),
            inputs,
            [self.text, self.group],
            api_visibility="private",
            **event,
        )
        self.keep.click(hidden, None, self.group, api_visibility="private", queue=False)


@one_line_errors
def hidden() -> Any:
    return gr.Group(visible=False)
