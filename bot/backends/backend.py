"""What a backend is: one way of answering.

A backend is one module: it declares `id`, `name`, `description` and an `Options` model, and
builds the LangChain runnable for a conversation. The UI, CLI and API are built from this data,
so adding a backend never touches them (only one line in `bot/backends/__init__.py`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict, ValidationError

from common.errors import BadInput, NotFound

if TYPE_CHECKING:
    from bot.views import ResourcesView


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


def validation_problems(error: ValidationError, whole: str = "value") -> str:
    """A pydantic error as one line a user can act on: "field: what is wrong; ..."."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in error.errors())


class BackendError(BadInput):
    """A request names a backend or options that cannot be used; the message says why."""


class UnknownNameError(BackendError, NotFound):
    """A request names a backend, collection or trained artifact that does not exist (for the
    caller: others' private data is unknown to them too)."""


class Backend(ABC):
    """One way of answering. The runnable it builds takes `{"question": str, "history":
    list[BaseMessage]}` and streams dicts: `{"answer": AIMessageChunk}` pieces and, for
    backends that retrieve, one `{"sources": list[dict]}`."""

    id: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions
    # Options that a short spec such as "rag:manuals" gives in this order (`kbot eval`), then
    # those it may add after them ("rag:manuals:bm25").
    positional: ClassVar[tuple[str, ...]] = ()
    optional_positional: ClassVar[tuple[str, ...]] = ()
    # Whether replies come with the passages they were answered from (`sources`).
    retrieves: ClassVar[bool] = False
    # Whether the model writes every reply (a summary may be the documents' own sentences).
    generates: ClassVar[bool] = True

    # Options whose choices depend on another's value: {"source": "collection"}.
    option_depends: ClassVar[dict[str, str]] = {}

    def option_choices(
        self, resources: ResourcesView, field: str, chosen: Mapping[str, Any] | None = None
    ) -> list[str] | None:
        """Allowed values of a text option (collections, adapters...), or None for free input.
        `chosen`: the other options chosen so far, for a list that depends on them (the
        documents of the chosen collection); see `option_depends`."""
        return None

    def option_defaults(self, resources: ResourcesView) -> dict[str, Any]:
        """Values to prefill in the UI where an option's default comes from the settings."""
        return {}

    def costs(self, resources: ResourcesView, options: BaseModel) -> dict[str, Any]:
        """What building this backend's knowledge cost (index size, training time...), for
        comparisons; the base model costs nothing beyond itself."""
        return {}

    def parse_options(self, options: dict | None) -> BaseModel:
        if options is not None and not isinstance(options, dict):
            raise BackendError(
                f"Invalid options for backend {self.id!r}: expected a JSON object of "
                f"option names and values, got {type(options).__name__}."
            )
        unknown = sorted(set(options or {}) - set(self.Options.model_fields))
        if unknown:
            known = ", ".join(self.Options.model_fields) or "none"
            raise BackendError(
                f"Invalid options for backend {self.id!r}: {', '.join(unknown)} "
                f"(unknown; this backend takes: {known})"
            )
        try:
            return self.Options.model_validate(options or {})
        except ValidationError as error:
            problems = validation_problems(error, "options")
            raise BackendError(f"Invalid options for backend {self.id!r}: {problems}") from None

    @abstractmethod
    def build_chain(self, resources: ResourcesView, options: BaseModel) -> Runnable:
        """The runnable that answers one message of a conversation using this backend."""


def existing_collection(resources: ResourcesView, backend_name: str, name: str) -> str:
    """`name` if it is a collection the caller may use; otherwise a clear `BackendError`."""
    from common.names import InvalidNameError, validate_name

    if not name:
        raise BackendError(
            f"{backend_name} needs a collection: choose one in the sidebar, or add documents "
            "to a new one in the Knowledge tab (or with `kbot ingest`)."
        )
    try:
        validate_name(name)
    except InvalidNameError as error:
        raise BackendError(str(error)) from None
    known = resources.knowledge.collections()
    if name not in known:
        listed = ", ".join(known) or "none yet"
        raise UnknownNameError(f"Unknown collection {name!r}. Existing: {listed}.")
    return name
