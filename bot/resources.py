"""Heavy objects shared by every conversation, loaded once on first use."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel

from bot.access import Scope
from bot.admission import Admission
from bot.engine import Engine, LocalEngine, make_engine
from bot.model import GenerationParams, LoadedModel
from bot.settings import Settings
from bot.uploads import Uploads
from common.errors import BadInput
from knowledge.reading import NOT_IN_DOCUMENTS

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from adapters.registry import ArtifactRegistry
    from bot.views import ResourcesView
    from knowledge.knowledge_base import KnowledgeBase

    # The type checker matches properties, not cached_property, against the views' Protocols.
    cached_property = property
else:
    from functools import cached_property

log = logging.getLogger(__name__)

HYDE_PROMPT = "Write a short passage that answers the question."
HYDE_TOKENS = 64
# How the questions mode's questions are generated (greedy: the same chunk, the same questions).
QUESTION_GENERATION = {"max_new_tokens": 48, "temperature": 0.0, "repetition_penalty": 1.0}


class Resources:
    # Whose data these are: everything shared. A signed-in caller sees them through
    # `bot.scoped.ScopedResources`, which has a scope of its own.
    scope = Scope()

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        """`engine` generates the answers; by default the model of `settings`, in this process.
        The model and the embedder load on first use; `load()` forces the model at start."""
        self.settings = settings
        self.engine: Engine = engine or make_engine(settings)
        if settings.torch_threads:
            import torch

            torch.set_num_threads(settings.torch_threads)
        self._lock = threading.Lock()

    @property
    def model(self) -> LoadedModel:
        """The shared base model itself (for benchmarks and tests of the model)."""
        assert isinstance(self.engine, LocalEngine), "only the local engine has a model here"
        return self.engine.model

    @cached_property
    def embedder(self) -> Embeddings:
        from knowledge.embeddings import load_embedder

        s = self.settings
        return load_embedder(s.embedder, s.embed_dtype, s.embed_batch_size)

    @cached_property
    def knowledge(self) -> KnowledgeBase:
        from knowledge.embeddings import load_embedder
        from knowledge.knowledge_base import KnowledgeBase

        with self._lock:
            s = self.settings
            return KnowledgeBase(
                s.knowledge_dir,
                self.embedder,
                chunk_size=s.chunk_size,
                chunk_overlap=s.chunk_overlap,
                file_limits=s.file_limits,
                embed_batch_size=s.embed_batch_size,
                default_mode=s.retrieval_mode,
                hypothesize=self.hypothetical_answer,
                write_questions=self.chunk_questions,
                questions_max_chunks=s.questions_max_chunks,
                embedder_name=s.embedder,
                load_embedder=lambda spec: load_embedder(spec, s.embed_dtype, s.embed_batch_size),
                chroma_url=s.chroma_url,
            )

    @cached_property
    def admission(self) -> Admission:
        """Every chat request of this server, from the page and the API, is admitted here."""
        s = self.settings
        return Admission(per_caller=s.caller_requests, total=s.queue_size)

    @cached_property
    def uploads(self) -> Uploads:
        """Who sent each uploaded file (on a signed-in server)."""
        return Uploads()

    @cached_property
    def artifacts(self) -> ArtifactRegistry:
        from adapters.registry import ArtifactRegistry

        return ArtifactRegistry(self.settings.adapters_dir)

    @cached_property
    def reader(self) -> Path | None:
        """The reader adapter's folder (setting `reader`), or None for the plain model. A
        reader trained on another base model cannot be used with this one: it is left off."""
        from adapters.meta import META_FILE, ArtifactMeta
        from adapters.reader import PACKAGED_READER

        choice = self.settings.reader.strip()
        if choice.lower() in ("", "none"):
            return None
        if choice == "packaged":
            folder = PACKAGED_READER
        elif Path(choice).is_dir():
            folder = Path(choice)
        else:
            folder = self.artifacts.path(choice)
        meta_file = folder / META_FILE
        if not meta_file.is_file():
            raise BadInput(f"KBOT_READER={choice!r}: no trained adapter in {folder}.")
        trained_on = ArtifactMeta.model_validate_json(meta_file.read_text()).base_model
        if trained_on != self.settings.model:
            log.warning(
                "The reader was trained on %s, not %s: RAG reads without it.",
                trained_on,
                self.settings.model,
            )
            return None
        return folder

    @cached_property
    def decline_bias(self) -> float:
        """How much the reader leans towards "The documents do not say.": the setting, else
        the value calibrated for the reader (`decline_bias` in its metadata), else none."""
        from adapters.meta import META_FILE

        if self.settings.decline_bias is not None:
            return self.settings.decline_bias
        if self.reader is None:
            return 0.0
        meta = json.loads((self.reader / META_FILE).read_text())
        return float(meta.get("decline_bias", 0.0))

    def load(self) -> Resources:
        """Load the base model now (at start) and find the reader, so a bad setting fails
        before serving."""
        self.engine.load()
        _ = self.reader
        return self

    def reader_model(self, **overrides: Any) -> BaseChatModel:
        """The shared model with the reader adapter on (the plain model when there is none),
        for reading passages. No repetition penalty: it would punish copying facts from the
        passages; prompt lookup drafts those copies (13% less time per answer on the reader
        bench's questions)."""
        reading = {
            "repetition_penalty": 1.0,
            "prompt_lookup": 8,
            "lean_towards": NOT_IN_DOCUMENTS,
            "lean": self.decline_bias,
        }
        params = _params(self.settings, reading | overrides)
        return self.engine.chat_model(params, adapter=self.reader)

    def hypothetical_answer(self, question: str) -> str:
        """What the plain model answers without documents: the hyde mode searches with it,
        since an answer, right or wrong, is worded like the passages that hold the real one."""
        model = self.chat_model(max_new_tokens=HYDE_TOKENS)
        return model.invoke([("system", HYDE_PROMPT), ("human", question)]).text

    def chunk_questions(self, text: str) -> list[str]:
        """Questions that `text` answers, for the questions mode: one for each of up to
        `questions_per_chunk` of its sentences, spread over it."""
        from adapters.qa import chunk_questions

        return chunk_questions(text, self.settings.questions_per_chunk, self.question_for)

    def question_for(self, sentence: str) -> str | None:
        """The model's question that `sentence` answers, as `kbot qa` writes them (the model
        phrases; the sentence holds the answer), or None where it wrote no usable one."""
        from langchain_core.messages import convert_to_messages

        from adapters.qa import write_question

        model = self.chat_model(**QUESTION_GENERATION)
        return write_question(
            sentence, lambda messages: model.invoke(convert_to_messages(messages)).text
        )

    def chat_model(
        self, adapter: str | None = None, checkpoint: str | None = None, **overrides: Any
    ) -> BaseChatModel:
        return answering_model(self, adapter, checkpoint, overrides)


def _params(settings: Settings, overrides: dict[str, Any]) -> GenerationParams:
    return replace(GenerationParams.from_settings(settings), **overrides)


def answering_model(
    resources: ResourcesView,
    adapter: str | None,
    checkpoint: str | None,
    overrides: dict[str, Any],
) -> BaseChatModel:
    """A chat model from the engine: the base model, with the LoRA `adapter` switched on or
    the fully fine-tuned `checkpoint` instead (named as `resources`' caller knows them);
    `overrides` change generation parameters for one chain. Models are never copied."""
    artifacts = resources.artifacts
    return resources.engine.chat_model(
        _params(resources.settings, overrides),
        adapter=artifacts.path(adapter) if adapter else None,
        checkpoint=artifacts.path(checkpoint) if checkpoint else None,
    )
