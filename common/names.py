"""Names that users give to collections, adapters and checkpoints become folder names:
one rule for all of them keeps `../` and friends out."""

from __future__ import annotations

import re

from common.errors import BadInput

# fullmatch: `$` would also accept a trailing newline ("facts\n").
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")


class InvalidNameError(BadInput):
    pass


def validate_name(name: str, kind: str = "collection") -> str:
    """Return `name` if it is a safe name for a `kind`, else raise with what is allowed."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InvalidNameError(
            f"Invalid {kind} name {name!r}: use 1-63 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit, with no '/' and no '..'."
        )
    return name
