"""Backends over trained artifacts: a LoRA adapter on the shared base model, or a fully
fine-tuned checkpoint. Both answer like the base backend, with the trained weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable, RunnableParallel
from pydantic import BaseModel, ConfigDict, Field

from adapters.meta import ArtifactMeta
from adapters.registry import UnknownArtifactError
from bot.backends.backend import Backend, BackendError, UnknownNameError
from bot.backends.plain import chat_prompt
from bot.views import ResourcesView
from common.names import InvalidNameError


def checked_artifact(resources: ResourcesView, name: str, method: str, option: str) -> ArtifactMeta:
    """The metadata of artifact `name`, after checking it exists, is a `method` artifact and
    was trained on the model now loaded."""
    if not name:
        raise BackendError(f"Choose a trained {option} (train one first).")
    try:
        meta = resources.artifacts.meta(name)
    except UnknownArtifactError as error:
        raise UnknownNameError(str(error)) from None
    except InvalidNameError as error:
        raise BackendError(str(error)) from None
    if meta.method != method:
        raise BackendError(f"{name!r} is a {meta.method} artifact, not a {method} one.")
    if meta.base_model != resources.settings.model:
        raise BackendError(
            f"{name!r} was trained on {meta.base_model!r}, but the model loaded is "
            f"{resources.settings.model!r} (setting KBOT_MODEL)."
        )
    return meta


class ArtifactBackend(Backend):
    """Answers with the trained artifact named by option `option`, made by `method`."""

    method: ClassVar[str]
    option: ClassVar[str]

    def answer_model(self, resources: ResourcesView, name: str) -> BaseChatModel:
        """The model that answers with artifact `name` (its option names which kind)."""
        return resources.chat_model(**{self.option: name})

    def option_choices(
        self, resources: ResourcesView, field: str, chosen: Mapping[str, Any] | None = None
    ) -> list[str] | None:
        return resources.artifacts.names_of(self.method) if field == self.option else None

    def costs(self, resources: ResourcesView, options: BaseModel) -> dict[str, Any]:
        name = getattr(options, self.option)
        return checked_artifact(resources, name, self.method, self.option).costs()

    def build_chain(self, resources: ResourcesView, options: BaseModel) -> Runnable:
        name = getattr(options, self.option)
        checked_artifact(resources, name, self.method, self.option)
        llm = self.answer_model(resources, name)
        return RunnableParallel(answer=chat_prompt(resources.settings.system_prompt) | llm)


class LoraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    adapter: str = Field(default="", description="Trained LoRA adapter.")


class LoraBackend(ArtifactBackend):
    id = "lora"
    name = "LoRA adapter"
    description = "The base model with a small trained LoRA adapter switched on (base frozen)."
    Options = LoraOptions
    method, option = "lora", "adapter"
    positional = (option,)


class FullOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkpoint: str = Field(default="", description="Fully fine-tuned checkpoint.")


class FullBackend(ArtifactBackend):
    id = "full"
    name = "Full fine-tune"
    description = "A checkpoint whose every weight was trained on your data."
    Options = FullOptions
    method, option = "full", "checkpoint"
    positional = (option,)
