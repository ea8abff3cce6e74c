"""The chain and the chat core, with an echo backend where the model's words don't matter."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from bot.backends import BackendRegistry
from bot.backends.plain import chat_prompt
from bot.resources import Resources
from bot.service import EMPTY_MESSAGE_REPLY, ChatService, history_messages
from bot.settings import load_settings
from tests.test_registry import Echo


def echo_service(**settings: object) -> ChatService:
    registry = BackendRegistry()
    registry.register(Echo())
    return ChatService(Resources(load_settings(**settings)), registry)


def test_prompt_holds_system_history_and_question_in_order() -> None:
    history = [HumanMessage("Hi"), AIMessage("Hello!")]
    messages = chat_prompt("Be brief.").invoke({"history": history, "question": "Why?"}).messages
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage, AIMessage, HumanMessage]
    assert [m.content for m in messages] == ["Be brief.", "Hi", "Hello!", "Why?"]


def test_braces_in_a_question_are_text_not_template_fields() -> None:
    messages = chat_prompt("S").invoke({"history": [], "question": "What is {x}?"}).messages
    assert messages[-1].content == "What is {x}?"


def test_history_skips_info_lines_and_empty_turns() -> None:
    history = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "assistant", "content": "sources", "metadata": {"title": "Base · 3 tokens"}},
        {"role": "user", "content": [{"type": "text", "text": "Q2"}]},
        {"role": "assistant", "content": ""},
    ]
    messages = history_messages(history)
    assert [(m.type, m.content) for m in messages] == [
        ("human", "Q1"),
        ("ai", "A1"),
        ("human", "Q2"),
    ]


def test_reply_streams_through_the_chosen_backend_with_its_options() -> None:
    replies = list(echo_service().reply("ping", backend="echo", options={"prefix": "> "}))
    assert replies[-1].done and replies[-1].answer == "> ping"
    assert replies[-1].backend == "echo"
    assert all(not r.done for r in replies[:-1])


def test_empty_and_oversized_messages_get_a_helpful_reply() -> None:
    service = echo_service(max_message_chars=50)
    (empty,) = service.reply("   ", backend="echo")
    assert empty.done and empty.answer == EMPTY_MESSAGE_REPLY
    (huge,) = service.reply("x" * 51, backend="echo")
    assert huge.done and "limit is 50" in huge.answer and "KBOT_MAX_MESSAGE_CHARS" in huge.answer


def test_an_only_choice_is_chosen_for_the_user() -> None:
    import gradio as gr

    from bot.backends.rag import RagOptions
    from bot.ui.common import field_control

    field = RagOptions.model_fields["collection"]
    with gr.Blocks():
        only = field_control("collection", field, choices=["manuals"])
        several = field_control("collection", field, choices=["manuals", "notes"])
    assert only.value == "manuals" and several.value is None


def test_history_is_cut_to_the_newest_turns_within_the_token_budget(
    resources: Resources,
) -> None:
    service = ChatService(resources)
    budget = resources.settings.max_history_tokens
    tokenizer = resources.model.tokenizer
    turn = "The ferry to Inchmore leaves at half past nine from the eastern pier. " * 3
    history = [{"role": ("user", "assistant")[i % 2], "content": f"{i}: {turn}"} for i in range(60)]
    kept = service.earlier_turns(history)
    used = sum(len(tokenizer.encode(m.text, add_special_tokens=False)) for m in kept)
    assert 0 < used <= budget and len(kept) < 60
    assert kept[-1].text.startswith("59:")  # the newest turns, in order
    assert [int(m.text.split(":")[0]) for m in kept] == list(range(60 - len(kept), 60))
    # Whatever a client sends, at most the newest `max_history_turns` are read at all.
    many = [{"role": "user", "content": "a"}] * 20_000
    assert len(service.earlier_turns(many)) == resources.settings.max_history_turns
