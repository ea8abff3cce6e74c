"""The plain base model: a system prompt, the conversation history and the question."""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableParallel
from pydantic import BaseModel

from bot.backends.backend import Backend
from bot.views import ResourcesView


def chat_prompt(system_prompt: str) -> ChatPromptTemplate:
    # The system prompt is a setting, not a template: escape braces a user may have put in it.
    system = system_prompt.replace("{", "{{").replace("}", "}}")
    return ChatPromptTemplate.from_messages(
        [("system", system), MessagesPlaceholder("history"), ("human", "{question}")]
    )


class BaseModelBackend(Backend):
    id = "base"
    name = "Base model"
    description = "The model as it is, with no added knowledge."

    def build_chain(self, resources: ResourcesView, options: BaseModel) -> Runnable:
        prompt = chat_prompt(resources.settings.system_prompt)
        return RunnableParallel(answer=prompt | resources.chat_model())
