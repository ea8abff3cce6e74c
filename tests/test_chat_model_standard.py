"""LangChain's standard chat-model unit tests (`langchain-tests`) on `LocalChatModel`, built over
the session's real loaded model (the `resources` fixture in conftest.py), never a mock.

Capabilities the local model does not have are declared through the suite's own properties, so
the suite turns those tests into no-ops instead of them being skipped by hand:

- tool calling / tool choice and structured output: `LocalChatModel` implements neither
  `bind_tools` nor `with_structured_output` (the suite's defaults detect that; stated here too);
- image, PDF, audio and video inputs: the model is text-only (`to_chat_dicts` keeps `.text`).

Two standard tests do not apply by design; `NOT_APPLICABLE` names them, conftest.py deselects
them (rather than leaving the suite's own skips behind), and the companion tests at the bottom
assert what does hold instead:

- `test_init_from_env`: nothing in `LocalChatModel` is read from the environment (no API key,
  no endpoint); it wraps a model already loaded in this process, so `init_from_env_params` stays
  empty.
- `test_serdes`: the model holds live torch weights (`LoadedModel`), which cannot be written to
  or rebuilt from LangChain's JSON, so it is not `is_lc_serializable()`.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumpd
from langchain_tests.unit_tests import ChatModelUnitTests
from pydantic import ValidationError

from bot.llm import LocalChatModel
from bot.model import GenerationParams, LoadedModel
from bot.resources import Resources
from bot.settings import Settings

NOT_APPLICABLE = {"test_init_from_env", "test_serdes"}


class TestLocalChatModelStandard(ChatModelUnitTests):
    loaded: LoadedModel  # set once per class from the session's real model (below)
    generation: GenerationParams

    @pytest.fixture(autouse=True, scope="class")
    def _real_model(
        self, request: pytest.FixtureRequest, resources: Resources, settings: Settings
    ) -> None:
        """The suite reads `chat_model_params` as a property, outside any fixture; store the
        session's loaded model on the class so every test builds on the same real weights."""
        request.cls.loaded = resources.model
        request.cls.generation = GenerationParams.from_settings(settings)

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return LocalChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "params": self.generation}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_tool_choice(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_pdf_inputs(self) -> bool:
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        return False

    @property
    def supports_video_inputs(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True  # the last streamed chunk carries input/output/total tokens

    # What holds where the two standard tests above do not apply.

    def test_needs_a_loaded_model_not_the_environment(self) -> None:
        """Stands in for `test_init_from_env`: the only required input is the in-process model."""
        with pytest.raises(ValidationError, match="loaded"):
            LocalChatModel()
        assert LocalChatModel(**self.chat_model_params).loaded is self.loaded

    def test_not_serializable_by_design(self, model: BaseChatModel) -> None:
        """Stands in for `test_serdes`: live weights have no JSON form, and LangChain says so."""
        assert not LocalChatModel.is_lc_serializable()
        assert dumpd(model)["type"] == "not_implemented"
