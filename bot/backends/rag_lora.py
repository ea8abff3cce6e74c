"""Retrieval into an adapted model: RAG's passages, answered by the base model with a LoRA
adapter switched on. Shows whether training and retrieval add up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import Field

from bot.backends.finetuned import checked_artifact
from bot.backends.rag import RagBackend, RagOptions
from bot.views import ResourcesView


class RagLoraOptions(RagOptions):
    adapter: str = Field(default="", description="Trained LoRA adapter.")


class RagLoraBackend(RagBackend):
    id = "rag+lora"
    name = "RAG + LoRA"
    description = (
        "Retrieves a collection's passages like RAG and answers with a LoRA adapter switched "
        "on, showing the sentences it read as evidence."
    )
    Options = RagLoraOptions
    positional = ("collection", "adapter")

    def option_choices(
        self, resources: ResourcesView, field: str, chosen: Mapping[str, Any] | None = None
    ) -> list[str] | None:
        if field == "adapter":
            return resources.artifacts.names_of("lora")
        return super().option_choices(resources, field, chosen)

    def costs(self, resources: ResourcesView, options: Any) -> dict[str, Any]:
        meta = checked_artifact(resources, options.adapter, "lora", "adapter")
        return {**super().costs(resources, options), **meta.costs()}

    def answer_model(self, resources: ResourcesView, options: Any) -> BaseChatModel:
        checked_artifact(resources, options.adapter, "lora", "adapter")
        return resources.chat_model(adapter=options.adapter, repetition_penalty=1.0)
