"""The plain base model: a system prompt, the conversation history and the question."""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableParallel
from pydantic import BaseModel

from bot.backends.registry import Backend
from bot.resources import Resources


def chat_prompt(system_prompt: str) -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [("system", system_prompt), MessagesPlaceholder("history"), ("human", "{question}")]
    )


class BaseModelBackend(Backend):
    id = "base"
    name = "Base model"
    description = "The model as it is, with no added knowledge."

    def build_chain(self, resources: Resources, options: BaseModel) -> Runnable:
        # The system prompt is a template string: escape braces a user may have put in it.
        system = resources.settings.system_prompt.replace("{", "{{").replace("}", "}}")
        return RunnableParallel(answer=chat_prompt(system) | resources.chat_model())
