"""Command-line flags built from typed models (`Settings`, `TrainConfig`, a backend's
`Options`), so each default, bound and help text lives once, in the model."""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined


def plain_type(annotation: Any) -> Any:
    """`int | None` -> int: an optional field's plain type."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return annotation


def flag_name(name: str, field: FieldInfo) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    return "--" + str(extra.get("flag", name)).replace("_", "-")


def add_model_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    model: type[BaseModel],
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    required: Iterable[str] = (),
    defaults_from_model: bool = False,
    hidden: bool = False,
) -> None:
    """One flag per field of `model`: `--field-name` (or the field's own `flag`), typed, with
    its description as help. Unset flags stay None, so the model (or the environment) keeps
    its default; `defaults_from_model` only shows that default in the help; `hidden` flags
    work but are left out of the help."""
    wanted = set(only) if only is not None else None
    for name, field in model.model_fields.items():
        if name in set(exclude) or (wanted is not None and name not in wanted):
            continue
        kind = plain_type(field.annotation)
        help_text = field.description or ""
        if defaults_from_model and field.default not in (None, False, PydanticUndefined):
            help_text += f" (default: {field.default})"
        shown = argparse.SUPPRESS if hidden else help_text or None
        options: dict[str, Any] = {"dest": name, "help": shown}
        if kind is bool:
            options.update(action="store_true", default=None)
        elif typing.get_origin(kind) is Literal:
            options.update(choices=list(typing.get_args(kind)), default=None)
        else:
            convert = kind if kind in (int, float, str, Path) else str
            options.update(type=convert, default=None, metavar=name.upper())
        if name in set(required):
            options["required"] = True
        parser.add_argument(flag_name(name, field), **options)


def model_values(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:
    """The fields of `model` given on the command line (unset flags left out)."""
    return {
        name: getattr(args, name)
        for name in model.model_fields
        if getattr(args, name, None) is not None
    }
